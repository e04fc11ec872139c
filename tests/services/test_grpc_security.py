"""TLS, mutual TLS and authorization of the gRPC services (auth.py, both grpc_tls.py), over real
sockets against balance_tracker, with a CA and credentials made by openssl
(scripts/dev_pki.py). Reproduces issue 21 finding 6: anyone reaching a port could start
reconciliations, and 20 concurrent calls made 20 runs."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import grpc
import pytest
from collateral_vault.v1 import (
    balance_tracker_pb2,
    balance_tracker_pb2_grpc,
    cpi_manager_pb2,
    cpi_manager_pb2_grpc,
    transaction_builder_pb2,
    vault_manager_pb2,
    vault_monitor_pb2,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc
from solders.pubkey import Pubkey

from localnet.node import Node
from localnet.node_harness import free_port, running_node
from scripts.dev_pki import DevPki, Principal
from services.common import auth
from tests.conftest import RedisNamespace
from tests.support.grpc_calls import status_of
from tests.support.services import balance_tracker, cpi_manager, settings_for
from vault_client import grpc_tls
from vault_client.config import ClientSecurity, ConfigError, ServerSecurity, Settings


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    pki = DevPki(tmp_path_factory.mktemp("pki") / "ca")
    pki.server("services")
    return pki


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    async with running_node() as n:
        yield n


def _security(pki: DevPki, mutual: bool) -> ServerSecurity:
    cert, key = pki.server("services")
    admin, submitter = pki.token("admin"), pki.token("gateway")
    principals = [Principal("ops", ["admin"], token=admin), Principal("gateway", ["submitter"], token=submitter)]
    if mutual:
        principals = [Principal("ops", ["admin"], certificate="ops"),
                      Principal("gateway", ["submitter"], certificate="gateway")]
    auth_file = pki.principals("mutual.toml" if mutual else "tokens.toml", principals)
    return ServerSecurity(tls_cert=str(cert), tls_key=str(key), client_ca=str(pki.ca_cert) if mutual else "",
                          auth_file=str(auth_file), health_port=free_port())


def _client(pki: DevPki, token: str | None = None, certificate: str | None = None) -> ClientSecurity:
    cert, key = pki.client(certificate) if certificate else ("", "")
    return ClientSecurity(ca_file=str(pki.ca_cert), token_file=str(pki.token(token)) if token else "",
                          cert=str(cert), key=str(key))


def _stub(channel: grpc.aio.Channel) -> balance_tracker_pb2_grpc.BalanceTrackerStub:
    return balance_tracker_pb2_grpc.BalanceTrackerStub(channel)


async def _twenty_at_once(database_url: str, stub: balance_tracker_pb2_grpc.BalanceTrackerStub
                          ) -> list[balance_tracker_pb2.ReconcileResponse]:
    """20 concurrent Reconcile calls, all made while the first run is held (the vaults table
    locked), so none can come after it finished."""
    conn = await asyncpg.connect(database_url)
    try:
        held = conn.transaction()
        await held.start()
        await conn.execute("LOCK TABLE vaults IN ACCESS EXCLUSIVE MODE")
        calls = asyncio.gather(*(stub.Reconcile(balance_tracker_pb2.ReconcileRequest()) for _ in range(20)))
        await asyncio.sleep(0.5)
        await held.rollback()
        return await calls
    finally:
        await conn.close()


async def _runs(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM reconciliation_runs"))
    finally:
        await conn.close()


async def test_tls_with_bearer_tokens(node: Node, pg_database: str, redis_ns: RedisNamespace, pki: DevPki) -> None:
    security = _security(pki, mutual=False)
    settings = dataclasses.replace(settings_for("balance_tracker", node, pg_database, redis_ns.url, redis_ns.prefix),
                                   security=security)
    target = f"127.0.0.1:{settings.grpc_port}"
    reconcile = balance_tracker_pb2.ReconcileRequest()
    balance = balance_tracker_pb2.GetBalanceRequest(owner=str(Pubkey.new_unique()))
    async with balance_tracker(settings, indexer_enabled=False):
        async with grpc.aio.insecure_channel(target) as plaintext:  # nothing is served in plaintext
            assert await status_of(_stub(plaintext).GetBalance(balance, timeout=5)) == grpc.StatusCode.UNAVAILABLE
        async with grpc_tls.channel(target, _client(pki)) as anonymous:
            assert await status_of(_stub(anonymous).GetBalance(balance)) == grpc.StatusCode.NOT_FOUND  # open: reached
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await _stub(anonymous).Reconcile(reconcile)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert "Reconcile needs the admin role" in (refused.value.details() or "")
        forged = pki.directory / "forged.token"
        forged.write_text("not-a-token-anyone-was-given")
        async with grpc_tls.channel(target, dataclasses.replace(_client(pki), token_file=str(forged))) as channel:
            assert await status_of(_stub(channel).Reconcile(reconcile)) == grpc.StatusCode.UNAUTHENTICATED
        async with grpc_tls.channel(target, _client(pki, token="gateway")) as gateway:
            with pytest.raises(grpc.aio.AioRpcError) as denied:
                await _stub(gateway).Reconcile(reconcile)
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "gateway lacks the admin role" in (denied.value.details() or "")
        assert await _runs(pg_database) == 0  # nothing refused started a run
        async with grpc_tls.channel(target, _client(pki, token="admin")) as admin:
            replies = await _twenty_at_once(pg_database, _stub(admin))
        assert len({reply.run_id for reply in replies}) == 1 and await _runs(pg_database) == 1
        # probes that cannot speak TLS use the plaintext health port, which serves nothing else
        async with grpc.aio.insecure_channel(f"127.0.0.1:{security.health_port}") as probe:
            reply = await health_pb2_grpc.HealthStub(probe).Check(health_pb2.HealthCheckRequest())
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            assert await status_of(_stub(probe).GetBalance(balance)) == grpc.StatusCode.UNIMPLEMENTED


async def test_mutual_tls(node: Node, pg_database: str, redis_ns: RedisNamespace, pki: DevPki,
                          tmp_path: Path) -> None:
    settings = dataclasses.replace(settings_for("balance_tracker", node, pg_database, redis_ns.url, redis_ns.prefix),
                                   security=_security(pki, mutual=True))
    target = f"127.0.0.1:{settings.grpc_port}"
    reconcile = balance_tracker_pb2.ReconcileRequest()
    balance = balance_tracker_pb2.GetBalanceRequest(owner=str(Pubkey.new_unique()))
    rogue = DevPki(tmp_path / "rogue", ca_name="someone else's CA")
    async with balance_tracker(settings, indexer_enabled=False):
        # no client certificate, or one another CA issued: the handshake fails
        async with grpc_tls.channel(target, _client(pki)) as anonymous:
            assert await status_of(_stub(anonymous).GetBalance(balance, timeout=5)) == grpc.StatusCode.UNAVAILABLE
        cert, key = rogue.client("ops")
        outsider = ClientSecurity(ca_file=str(pki.ca_cert), cert=str(cert), key=str(key))
        async with grpc_tls.channel(target, outsider) as channel:
            assert await status_of(_stub(channel).Reconcile(reconcile, timeout=5)) == grpc.StatusCode.UNAVAILABLE
        # the cluster's CA issued it, but no principal has that name: open RPCs only
        async with grpc_tls.channel(target, _client(pki, certificate="stranger")) as stranger:
            assert await status_of(_stub(stranger).GetBalance(balance)) == grpc.StatusCode.NOT_FOUND
            assert await status_of(_stub(stranger).Reconcile(reconcile)) == grpc.StatusCode.PERMISSION_DENIED
        async with grpc_tls.channel(target, _client(pki, certificate="gateway")) as gateway:
            assert await status_of(_stub(gateway).Reconcile(reconcile)) == grpc.StatusCode.PERMISSION_DENIED
        async with grpc_tls.channel(target, _client(pki, certificate="ops")) as ops:
            # a run pages the database's vaults (none here: the indexer is off), not the chain's
            run = await _stub(ops).Reconcile(reconcile)
            assert run.run_id >= 1 and run.vaults_checked == 0 and not run.findings


async def test_concurrent_reconciliations_share_one_run(node: Node, pg_database: str,
                                                         redis_ns: RedisNamespace) -> None:
    settings = settings_for("balance_tracker", node, pg_database, redis_ns.url, redis_ns.prefix)
    async with balance_tracker(settings, indexer_enabled=False), \
            grpc.aio.insecure_channel(f"127.0.0.1:{settings.grpc_port}") as channel:
        replies = await _twenty_at_once(pg_database, _stub(channel))
        assert len({reply.run_id for reply in replies}) == 1 and await _runs(pg_database) == 1
        # a run going on in another replica (it holds the lock): ABORTED, naming it
        conn = await asyncpg.connect(pg_database)
        try:
            await conn.execute("SELECT pg_advisory_lock($1)", 0x6376_7263)
            await conn.execute("INSERT INTO reconciliation_runs DEFAULT VALUES")
            with pytest.raises(grpc.aio.AioRpcError) as busy:
                await _stub(channel).Reconcile(balance_tracker_pb2.ReconcileRequest())
            assert busy.value.code() == grpc.StatusCode.ABORTED
            assert "is going on in another replica" in (busy.value.details() or "")
        finally:
            await conn.close()
        assert (await _stub(channel).Reconcile(balance_tracker_pb2.ReconcileRequest())).run_id > 0  # lock gone


def test_every_rpc_is_classified_and_the_policy_names_real_rpcs() -> None:
    rpcs = {f"{service.full_name}/{method.name}"
            for module in (balance_tracker_pb2, cpi_manager_pb2, transaction_builder_pb2, vault_manager_pb2,
                           vault_monitor_pb2)
            for service in module.DESCRIPTOR.services_by_name.values() for method in service.methods}
    assert set(auth.POLICY) | auth.OPEN == rpcs and not set(auth.POLICY) & auth.OPEN
    assert set(auth.POLICY.values()) <= auth.ROLES
    assert auth.POLICY["collateral_vault.v1.BalanceTracker/Reconcile"] == auth.ADMIN
    assert auth.POLICY["collateral_vault.v1.TransactionBuilder/SubmitTransaction"] == auth.SUBMITTER
    with pytest.raises(ConfigError, match=r"neither in auth\.POLICY nor in auth\.OPEN"):
        auth.required_role("collateral_vault.v1.CpiManager/BuildLiquidate")
    assert auth.required_role("grpc.health.v1.Health/Check") is None


def test_the_principals_file_is_checked(pki: DevPki, tmp_path: Path) -> None:
    cert, key = pki.server("services")
    tls = ServerSecurity(tls_cert=str(cert), tls_key=str(key))
    for text, problem in (
        ('[[principal]]\nname = "a"\nroles = ["root"]\ntoken_sha256 = "' + "0" * 64 + '"', "roles must be"),
        ('[[principal]]\nname = "a"\nroles = []\ntoken_sha256 = "xyz"', "64 lower-case hex"),
        ('[[principal]]\nname = "a"\nroles = []', "give token_sha256 or certificate"),
        ('[[principal]]\nname = "a"\nroles = []\ncertificate = "a"', "needs mutual TLS"),
        ("[[principal", "cannot be read"),
    ):
        path = tmp_path / "auth.toml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=problem):
            auth.Principals.load(str(path), tls)
    path.write_text('[[principal]]\nname = "a"\nroles = []\ntoken_sha256 = "' + "0" * 64 + '"')
    with pytest.raises(ConfigError, match="only over TLS"):
        auth.Principals.load(str(path), ServerSecurity())
    with pytest.raises(ConfigError, match="GRPC_TLS_CERT and GRPC_TLS_KEY go together"):
        Settings(service="x", security=ServerSecurity(tls_cert=str(cert)))


async def test_only_the_matching_engine_may_call_the_operator_rpcs(node: Node, pg_database: str,
                                                                   redis_ns: RedisNamespace, pki: DevPki) -> None:
    """cpi_manager's Lock, Release, Settle and Liquidate need the operator role: without a
    credential UNAUTHENTICATED, with another role PERMISSION_DENIED; the Build* and read
    RPCs stay open."""
    cert, key = pki.server("services")
    auth_file = pki.principals("operator.toml", [
        Principal("matching-engine", ["operator"], token=pki.token("matching-engine")),
        Principal("gateway", ["submitter"], token=pki.token("gateway"))])
    security = ServerSecurity(tls_cert=str(cert), tls_key=str(key), client_ca="", auth_file=str(auth_file),
                              health_port=0)
    settings = dataclasses.replace(settings_for("cpi_manager", node, pg_database, redis_ns.url, redis_ns.prefix),
                                   security=security)
    nobody = str(Pubkey.new_unique())
    calls = [("Lock", cpi_manager_pb2.LockRequest(trader=nobody, amount=1, client_request_id="x")),
             ("Release", cpi_manager_pb2.ReleaseRequest(trader=nobody, amount=1, client_request_id="x")),
             ("Settle", cpi_manager_pb2.SettleRequest(client_request_id="x", pairs=[cpi_manager_pb2.SettlementPair(
                 payer=nobody, receiver=str(Pubkey.new_unique()), amount=1)])),
             ("Liquidate", cpi_manager_pb2.LiquidateRequest(trader=nobody, amount=1, client_request_id="x"))]
    async with cpi_manager(settings) as cm:
        for who, expected in ((None, grpc.StatusCode.UNAUTHENTICATED), ("gateway", grpc.StatusCode.PERMISSION_DENIED),
                              ("matching-engine", grpc.StatusCode.NOT_FOUND)):  # reached: no vault
            async with grpc_tls.channel(cm.target, _client(pki, token=who)) as channel:
                stub = cpi_manager_pb2_grpc.CpiManagerStub(channel)
                for name, request in calls:
                    assert await status_of(getattr(stub, name)(request)) == expected, (who, name)
                # open: a read and a wallet's Build* need no credential
                assert await status_of(stub.GetGrant(cpi_manager_pb2.GetGrantRequest(trader=nobody))) \
                    == grpc.StatusCode.NOT_FOUND
