"""Observability around every handler, over a real grpc.aio server on a socket: statuses
from `ServiceError`, INTERNAL without internals for anything unexpected, the caller's
request id in the log context (or a new one), and requests, codes and latency in
Prometheus, for unary and server-streaming methods alike."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import grpc
import pytest
from collateral_vault.v1 import balance_tracker_pb2, balance_tracker_pb2_grpc, vault_manager_pb2, vault_manager_pb2_grpc
from google.protobuf import descriptor_pb2, descriptor_pool, empty_pb2  # noqa: F401 (empty_pb2: DoIt's type)
from prometheus_client import REGISTRY

from services.common import log
from services.common.errors import ServiceError
from services.common.grpc_metrics import BUCKETS, GrpcServerCollector
from services.common.observability import ObservingInterceptor
from vault_client.config import ConfigError

SERVICE = "observability_test"
seen_request_ids: list[str] = []
logged_lines: list[dict[str, str]] = []


class Vaults(vault_manager_pb2_grpc.VaultManagerServicer):
    async def GetVault(self, request: vault_manager_pb2.GetVaultRequest,
                       context: grpc.aio.ServicerContext) -> vault_manager_pb2.GetVaultResponse:
        seen_request_ids.append(str(log.request_id.get()))
        if request.owner == "log":  # what a log line written during the call carries
            record = logging.LogRecord("t", logging.INFO, __file__, 0, "during the call", None, None)
            logged_lines.append(json.loads(log.JsonFormatter("t").format(record)))
        if request.owner == "missing":
            raise ServiceError(grpc.StatusCode.NOT_FOUND, "no vault for owner missing")
        if request.owner == "bug":
            raise RuntimeError("secret connection string postgres://user:pw@db")
        return vault_manager_pb2.GetVaultResponse()


class Events(balance_tracker_pb2_grpc.BalanceTrackerServicer):
    async def StreamEvents(self, request: balance_tracker_pb2.StreamEventsRequest, context: grpc.aio.ServicerContext
                           ) -> AsyncIterator[balance_tracker_pb2.StreamEventsResponse]:
        yield balance_tracker_pb2.StreamEventsResponse()
        raise ServiceError(grpc.StatusCode.UNAVAILABLE, "event stream lost")


def count(method: str, code: str) -> float:
    return REGISTRY.get_sample_value("grpc_server_requests_total",
                                     {"service": SERVICE, "method": method, "code": code}) or 0.0


@pytest.fixture
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    services = [vault_manager_pb2.DESCRIPTOR.services_by_name["VaultManager"].full_name,
                balance_tracker_pb2.DESCRIPTOR.services_by_name["BalanceTracker"].full_name]
    server = grpc.aio.server(interceptors=[ObservingInterceptor(SERVICE, services)])
    # test doubles implement only the methods under test
    vault_manager_pb2_grpc.add_VaultManagerServicer_to_server(Vaults(), server)  # type: ignore[abstract]
    balance_tracker_pb2_grpc.add_BalanceTrackerServicer_to_server(Events(), server)  # type: ignore[abstract]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as opened:
            yield opened
    finally:
        await server.stop(None)


async def test_statuses_request_ids_and_metrics(channel: grpc.aio.Channel) -> None:
    stub = vault_manager_pb2_grpc.VaultManagerStub(channel)
    ok, missing, internal = count("GetVault", "OK"), count("GetVault", "NOT_FOUND"), count("GetVault", "INTERNAL")

    await stub.GetVault(vault_manager_pb2.GetVaultRequest(owner="x"), metadata=(("x-request-id", "req-123"),))
    await stub.GetVault(vault_manager_pb2.GetVaultRequest(owner="x"))
    assert seen_request_ids[-2] == "req-123" and seen_request_ids[-1] not in ("", "req-123")
    await stub.GetVault(vault_manager_pb2.GetVaultRequest(owner="log"), metadata=(("x-request-id", "req-7"),))
    await stub.GetVault(vault_manager_pb2.GetVaultRequest(owner="log"))
    assert logged_lines[-2]["request_id"] == "req-7"
    assert logged_lines[-1]["request_id"] == seen_request_ids[-1] not in ("", "req-7")

    with pytest.raises(grpc.aio.AioRpcError) as not_found:
        await stub.GetVault(vault_manager_pb2.GetVaultRequest(owner="missing"))
    assert not_found.value.code() == grpc.StatusCode.NOT_FOUND
    assert not_found.value.details() == "no vault for owner missing"

    with pytest.raises(grpc.aio.AioRpcError) as bug:
        await stub.GetVault(vault_manager_pb2.GetVaultRequest(owner="bug"), metadata=(("x-request-id", "req-9"),))
    assert bug.value.code() == grpc.StatusCode.INTERNAL
    assert bug.value.details() == "internal error (request id req-9)"  # nothing of the exception leaks

    assert count("GetVault", "OK") == ok + 4
    assert count("GetVault", "NOT_FOUND") == missing + 1
    assert count("GetVault", "INTERNAL") == internal + 1
    assert (REGISTRY.get_sample_value("grpc_server_handling_seconds_count",
                                      {"service": SERVICE, "method": "GetVault"}) or 0) >= 6
    assert REGISTRY.get_sample_value("grpc_server_in_flight", {"service": SERVICE}) == 0


async def test_server_streams_are_observed_too(channel: grpc.aio.Channel) -> None:
    stub = balance_tracker_pb2_grpc.BalanceTrackerStub(channel)
    before = count("StreamEvents", "UNAVAILABLE")
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as lost:
        async for item in stub.StreamEvents(balance_tracker_pb2.StreamEventsRequest()):
            received.append(item)
    assert len(received) == 1
    assert lost.value.code() == grpc.StatusCode.UNAVAILABLE and lost.value.details() == "event stream lost"
    # The server counts the status after it has sent it: the client can see it first.
    for _ in range(500):
        if count("StreamEvents", "UNAVAILABLE") == before + 1:
            break
        await asyncio.sleep(0.01)
    assert count("StreamEvents", "UNAVAILABLE") == before + 1


def test_latency_buckets_are_cumulative_and_a_bound_counts_in_its_own_bucket() -> None:
    collector = GrpcServerCollector()
    calls = collector.service("s").method("M")
    for seconds in (0.0005, 0.0006, 0.001, 3.0, 11.0):  # 0.0005 and 0.001 are bounds themselves
        calls.record("OK", seconds)
    calls.record("NOT_FOUND", 0.0001)
    families = {family.name: family for family in collector.collect()}
    requests = {s.labels["code"]: s.value for s in families["grpc_server_requests"].samples}
    assert requests == {"OK": 5, "NOT_FOUND": 1}
    samples = families["grpc_server_handling_seconds"].samples
    buckets = {s.labels["le"]: s.value for s in samples if s.name.endswith("_bucket")}
    assert list(buckets) == [*map(repr, BUCKETS), "+Inf"]
    assert (buckets["0.0005"], buckets["0.001"], buckets["2.5"], buckets["5.0"], buckets["+Inf"]) == (2, 4, 4, 5, 6)
    count = next(s.value for s in samples if s.name.endswith("_count"))
    total = next(s.value for s in samples if s.name.endswith("_sum"))
    assert count == 6 and total == pytest.approx(0.0005 + 0.0006 + 0.001 + 3.0 + 11.0 + 0.0001)
    in_flight = families["grpc_server_in_flight"].samples
    assert [(s.labels, s.value) for s in in_flight] == [({"service": "s"}, 0)]


def test_an_unclassified_rpc_stops_the_server_before_any_call() -> None:
    """The interceptor decides at start which RPCs need a role, from the services'
    descriptors: an RPC of the package that auth does not classify is refused then, not at
    its first call."""
    proto = descriptor_pb2.FileDescriptorProto(name="observability_test_unclassified.proto",
                                               package="collateral_vault.v1",
                                               dependency=["google/protobuf/empty.proto"])
    proto.service.add(name="Unclassified").method.add(name="DoIt", input_type=".google.protobuf.Empty",
                                                      output_type=".google.protobuf.Empty")
    descriptor_pool.Default().AddSerializedFile(proto.SerializeToString())
    with pytest.raises(ConfigError, match=r"collateral_vault\.v1\.Unclassified/DoIt is neither in auth\.POLICY"):
        ObservingInterceptor(SERVICE, ["collateral_vault.v1.Unclassified"])
    ObservingInterceptor(SERVICE, [vault_manager_pb2.DESCRIPTOR.services_by_name["VaultManager"].full_name])
