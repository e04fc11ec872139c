"""The REST/WebSocket gateway over the real gRPC services: the wallet flow, clear 4xx
errors, rate and size limits, WebSocket events with resume, and schemathesis run over the
OpenAPI document the gateway serves."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.pubkey import Pubkey

from localnet.node import Node
from services.common.config import Settings
from services.gateway.app import Gateway, GatewayConfig
from services.gateway.recent import RecentIds
from tests.conftest import RedisNamespace
from tests.support.localnet_node import free_port, running_node
from tests.support.services import balance_tracker, monitor, settings_for, sign, vault_manager
from tests.support.traffic import Account, users_with_vaults

USDT = 10**6


@dataclass
class Stack:
    node: Node
    url: str
    client: AsyncClient
    config: GatewayConfig


@pytest.fixture
async def stack(pg_database: str, redis_ns: RedisNamespace) -> AsyncIterator[Stack]:
    async with running_node() as node:
        def conf(name: str) -> Settings:
            return settings_for(name, node, pg_database, redis_ns.url, redis_ns.prefix)

        vm, bt, mon = conf("vault_manager"), conf("balance_tracker"), conf("monitor")
        config = GatewayConfig(host="127.0.0.1", port=free_port(), vault_manager=f"127.0.0.1:{vm.grpc_port}",
                               balance_tracker=f"127.0.0.1:{bt.grpc_port}", monitor=f"127.0.0.1:{mon.grpc_port}",
                               redis_url=redis_ns.url, redis_prefix=redis_ns.prefix, rate_per_second=10_000,
                               burst=10_000)
        async with balance_tracker(bt), vault_manager(vm), monitor(mon), \
                AsyncClient(node.rpc_url, commitment=Confirmed) as client:
            gateway = Gateway(config)
            await gateway.start()
            try:
                yield Stack(node, f"http://127.0.0.1:{config.port}", client, config)
            finally:
                await gateway.stop()


async def call(session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
    async with session.request(method, url, **kwargs) as response:
        return response.status, await response.json(content_type=None)


async def deposit(stack: Stack, session: aiohttp.ClientSession, account: Account, amount: int) -> dict[str, Any]:
    status, unsigned = await call(session, "POST", f"{stack.url}/transactions/deposit",
                                  json={"owner": str(account.user.key), "amount": str(amount)})
    assert status == 200, unsigned
    status, result = await call(session, "POST", f"{stack.url}/transactions/submit", json={
        "signed_transaction_base64": sign(unsigned["transaction_base64"], account.user.keypair)})
    assert status == 200 and result["error"] == "" and result["commitment"] in ("confirmed", "finalized"), result
    return result


async def test_wallet_flow_and_errors(stack: Stack) -> None:
    [alice] = await users_with_vaults(stack.node, stack.client, 1)
    owner = str(alice.user.key)
    async with aiohttp.ClientSession() as session:
        assert (await call(session, "GET", f"{stack.url}/healthz"))[1]["status"] == "ok"
        await deposit(stack, session, alice, 40 * USDT)
        status, vault = await call(session, "GET", f"{stack.url}/vaults/{owner}")
        assert status == 200 and vault["total_balance"] == str(40 * USDT)
        status, unsigned = await call(session, "POST", f"{stack.url}/transactions/withdraw",
                                      json={"owner": owner, "amount": 15 * USDT})
        assert status == 200
        await call(session, "POST", f"{stack.url}/transactions/submit",
                   json={"signed_transaction_base64": sign(unsigned["transaction_base64"], alice.user.keypair)})
        for _ in range(50):
            status, history = await call(session, "GET", f"{stack.url}/vaults/{owner}/history")
            if len(history["events"]) == 3:
                break
            await asyncio.sleep(0.05)
        assert [e["kind"] for e in history["events"]] == ["withdraw", "deposit", "vault_initialized"]
        status, tvl = await call(session, "GET", f"{stack.url}/tvl")
        assert status == 200 and tvl["total"] == str(25 * USDT) and tvl["chain_matches"] is True

        for method, path, kwargs, expected, code in (
            ("GET", "/vaults/not-a-key", {}, 400, "INVALID_ARGUMENT"),
            ("GET", f"/vaults/{alice.token_account}", {}, 404, "NOT_FOUND"),
            ("POST", "/transactions/withdraw", {"json": {"owner": owner, "amount": "999999999999"}}, 409,
             "FAILED_PRECONDITION"),
            ("POST", "/transactions/deposit", {"json": {"owner": owner, "amount": -5}}, 400, "INVALID_ARGUMENT"),
            ("POST", "/transactions/deposit", {"json": {"owner": owner}}, 400, "INVALID_ARGUMENT"),
            ("POST", "/transactions/deposit", {"data": b"{not json", "headers": {"content-type": "application/json"}},
             400, "INVALID_ARGUMENT"),
            ("POST", "/transactions/deposit", {"json": [1, 2]}, 400, "INVALID_ARGUMENT"),
            # "²" passes str.isdigit() and int() refuses it; deep nesting overflows json's recursion (500s before)
            ("POST", "/transactions/deposit", {"json": {"owner": owner, "amount": "\u00b2"}}, 400, "INVALID_ARGUMENT"),
            ("POST", "/transactions/deposit", {"json": {"owner": owner, "amount": "1" * 5000}}, 400,
             "INVALID_ARGUMENT"),
            ("POST", "/transactions/deposit", {"data": b"[" * 30_000 + b"]" * 30_000,
                                               "headers": {"content-type": "application/json"}}, 400,
             "INVALID_ARGUMENT"),
            ("POST", "/transactions/submit", {"json": {"signed_transaction_base64": "AAAA"}}, 400, "INVALID_ARGUMENT"),
            ("POST", "/transactions/submit", {"json": {"signed_transaction_base64": "x", "wait_for": "soon"}}, 400,
             "INVALID_ARGUMENT"),
            ("GET", f"/vaults/{owner}/history?page_size=0", {}, 400, "INVALID_ARGUMENT"),
            ("GET", f"/vaults/{owner}/history?kind=bogus", {}, 400, "INVALID_ARGUMENT"),
            ("POST", "/transactions/deposit", {"data": b"x" * 70_000, "headers": {"content-type": "application/json"}},
             413, "REQUEST_TOO_LARGE"),
        ):
            status, body = await call(session, method, stack.url + path, **kwargs)
            assert (status, body["error"]["code"]) == (expected, code), (path, body)
            assert body["error"]["message"]
        # a 60 KB owner is quoted by a short prefix only (it came back whole)
        status, body = await call(session, "POST", f"{stack.url}/transactions/deposit",
                                  json={"owner": "k" * 60_000, "amount": "1"})
        assert status == 400 and len(body["error"]["message"]) < 200, body["error"]["message"][:300]


async def test_rate_limit_per_client(stack: Stack) -> None:
    config = GatewayConfig(**{**stack.config.__dict__, "port": free_port(), "rate_per_second": 5.0, "burst": 5.0})
    gateway = Gateway(config)
    await gateway.start()
    try:
        async with aiohttp.ClientSession() as session:
            statuses = [(await call(session, "GET", f"http://127.0.0.1:{config.port}/openapi.json"))[0]
                        for _ in range(8)]
            assert statuses[:5] == [200] * 5 and 429 in statuses[5:]
            async with session.get(f"http://127.0.0.1:{config.port}/openapi.json") as response:
                assert response.status == 429 and int(response.headers["Retry-After"]) >= 1
    finally:
        await gateway.stop()


async def test_websocket_events_and_resume(stack: Stack) -> None:
    [alice] = await users_with_vaults(stack.node, stack.client, 1)
    owner = str(alice.user.key)
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"{stack.url.replace('http', 'ws')}/ws?owner={owner}")
        await asyncio.sleep(0.2)
        started = time.perf_counter()
        await deposit(stack, session, alice, 5 * USDT)
        message = await ws.receive_json(timeout=10)
        while message["event"]["kind"] != "deposit":
            message = await ws.receive_json(timeout=10)
        latency = time.perf_counter() - started
        assert message["type"] == "event" and message["event"]["amount"] == str(5 * USDT)
        assert latency < 2.0  # includes building, signing, confirming and indexing
        last_id = message["event"]["id"]
        await ws.close()

        # two deposits while disconnected, then resume from the last event seen
        await deposit(stack, session, alice, 6 * USDT)
        await deposit(stack, session, alice, 7 * USDT)
        await asyncio.sleep(0.5)
        ws = await session.ws_connect(f"{stack.url.replace('http', 'ws')}/ws?owner={owner}&since={last_id}")
        replayed = [await ws.receive_json(timeout=10), await ws.receive_json(timeout=10)]
        assert [m["event"]["amount"] for m in replayed] == [str(6 * USDT), str(7 * USDT)]
        await deposit(stack, session, alice, 8 * USDT)
        live = await ws.receive_json(timeout=10)
        assert live["event"]["amount"] == str(8 * USDT)  # no gap, no duplicate
        await ws.close()

        ws = await session.ws_connect(f"{stack.url.replace('http', 'ws')}/ws?owner={owner}&since=nope:0:0")
        message = await ws.receive_json(timeout=10)
        assert message["type"] == "error" and "unknown event id" in message["message"]
        await ws.close()


async def test_websocket_sends_each_event_once_and_unsubscribes_when_the_client_leaves(
        stack: Stack, redis_ns: RedisNamespace) -> None:
    owner = str(Pubkey.new_unique())
    channel = f"{redis_ns.prefix}events:{owner}"

    async def subscribers() -> int:
        return int(dict(await redis_ns.client.pubsub_numsub(channel))[channel.encode()])

    async def publish(event_id: str, amount: int) -> None:
        await redis_ns.client.publish(channel, json.dumps(
            {"id": event_id, "owner": owner, "kind": "EVENT_KIND_DEPOSIT", "amount": amount}))

    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"{stack.url.replace('http', 'ws')}/ws?owner={owner}")
        deadline = time.monotonic() + 5
        while await subscribers() != 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await publish("a:0:0", 1)
        await publish("a:0:0", 1)  # published twice (a replay racing the live stream): sent once
        await publish("b:0:0", 2)
        received = [await ws.receive_json(timeout=5), await ws.receive_json(timeout=5)]
        assert [(m["event"]["id"], m["event"]["kind"], m["event"]["amount"]) for m in received] == [
            ("a:0:0", "deposit", "1"), ("b:0:0", "deposit", "2")]
        await ws.close()
        while await subscribers() and time.monotonic() < deadline + 5:
            await asyncio.sleep(0.02)
        assert await subscribers() == 0  # the connection's Redis subscription went with it


def test_recent_ids_remember_a_bounded_window() -> None:
    recent = RecentIds(3)
    assert [recent.add(i) for i in ("a", "b", "a", "c", "d")] == [True, True, False, True, True]
    assert len(recent) == 3 and recent.add("a")  # "a" was the oldest, and was forgotten
    assert not recent.add("d")
    with pytest.raises(ValueError):
        RecentIds(0)


async def test_openapi_conformance_with_schemathesis(stack: Stack) -> None:
    """schemathesis generates requests for every operation and checks status codes, content
    types and response bodies against the document (no 5xx allowed)."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import positive_data_acceptance

    def run_all() -> int:  # in a thread: the gateway answers on this test's event loop
        schema = schemathesis.openapi.from_url(f"{stack.url}/openapi.json")
        checked = 0
        for result in schema.get_all_operations():
            operation = result.ok()  # type: ignore[union-attr]

            @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            @given(case=operation.as_strategy())
            def check(case: Any) -> None:
                # A base58 pattern cannot say "decodes to exactly 32 bytes", so a schema-valid
                # key may still be refused with 400: that one check is excluded.
                case.call_and_validate(excluded_checks=[positive_data_acceptance])

            check()
            checked += 1
        return checked

    assert await asyncio.to_thread(run_all) == 7
