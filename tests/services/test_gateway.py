"""The REST/WebSocket gateway over the real gRPC services: the wallet flow, clear 4xx
errors, rate and size limits, WebSocket events with resume, and schemathesis run over the
OpenAPI document the gateway serves."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.pubkey import Pubkey

from bench.traffic import Account, users_with_vaults
from localnet.node import Node
from localnet.node_harness import free_port, running_node
from localnet.svm import ROOT
from services.balance_tracker.app import BalanceTrackerApp
from services.gateway.app import Gateway, GatewayConfig
from services.gateway.websocket.limits import SocketLimits
from tests.conftest import RedisNamespace
from tests.support.services import balance_tracker, monitor, settings_for, sign, vault_manager
from vault_client.config import Settings

USDT = 10**6


@dataclass
class Stack:
    node: Node
    url: str
    client: AsyncClient
    config: GatewayConfig
    tracker: BalanceTrackerApp


@pytest.fixture
async def stack(pg_database: str, redis_ns: RedisNamespace) -> AsyncIterator[Stack]:
    async with running_node() as node:
        def conf(name: str) -> Settings:
            return settings_for(name, node, pg_database, redis_ns.url, redis_ns.prefix)

        vm, bt, mon = conf("vault_manager"), conf("balance_tracker"), conf("monitor")
        config = GatewayConfig(host="127.0.0.1", port=free_port(), vault_manager=f"127.0.0.1:{vm.grpc_port}",
                               balance_tracker=f"127.0.0.1:{bt.grpc_port}", monitor=f"127.0.0.1:{mon.grpc_port}",
                               rate_per_second=10_000, burst=10_000)
        async with balance_tracker(bt) as tracker, vault_manager(vm), monitor(mon), \
                AsyncClient(node.rpc_url, commitment=Confirmed) as client:
            gateway = Gateway(config)
            await gateway.start()
            try:
                yield Stack(node, f"http://127.0.0.1:{config.port}", client, config, tracker)  # type: ignore[arg-type]
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
        assert status == 200 and tvl["total"] == str(25 * USDT) and int(tvl["slot"]) > 0

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
        assert (await ws.receive()).type == aiohttp.WSMsgType.CLOSE and ws.close_code == 4404


async def test_websocket_limits_refuse_before_the_upgrade_and_a_closed_socket_frees_its_stream(
        stack: Stack) -> None:
    config = GatewayConfig(**{**stack.config.__dict__, "port": free_port(), "ws_max_connections": 3,
                              "ws_max_per_client": 2})
    gateway = Gateway(config)
    await gateway.start()
    url = f"ws://127.0.0.1:{config.port}/ws"
    owner = str(Pubkey.new_unique())
    fanout = stack.tracker.fanout
    assert fanout is not None
    try:
        async with aiohttp.ClientSession() as session:
            for bad in ("not-a-key", "x" * 5_000):  # owner was not validated
                async with session.get(f"{url}?owner={bad}") as response:
                    body = await response.json()
                    assert response.status == 400 and len(body["error"]["message"]) < 200, body
            sockets = [await session.ws_connect(f"{url}?owner={owner}") for _ in range(2)]
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await session.ws_connect(f"{url}?owner={owner}")
            assert info.value.status == 429  # per client, before the upgrade
            async with session.get(f"{url}?owner={owner}") as response:
                assert response.status == 429 and "at most 2" in (await response.json())["error"]["message"]
            deadline = time.monotonic() + 5
            while fanout.subscribers < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert fanout.subscribers == 2  # each WebSocket holds one StreamEvents stream
            for ws in sockets:
                await ws.close()
            while fanout.subscribers and time.monotonic() < deadline + 5:
                await asyncio.sleep(0.02)
            assert fanout.subscribers == 0 and len(gateway.sockets) == 0
            again = await session.ws_connect(f"{url}?owner={owner}")
            await again.close()
    finally:
        await gateway.stop()


async def test_websockets_per_client_key_by_the_forwarded_client_behind_a_trusted_proxy(stack: Stack) -> None:
    """Before: the per-client WebSocket limit keyed on the socket's peer, so behind an ingress
    every user shared one budget (the HTTP rate limit already keyed on the forwarded client)."""
    config = GatewayConfig(**{**stack.config.__dict__, "port": free_port(), "ws_max_per_client": 1,
                              "trusted_proxies": ("127.0.0.1",)})
    gateway = Gateway(config)
    await gateway.start()
    url = f"ws://127.0.0.1:{config.port}/ws?owner={Pubkey.new_unique()}"
    alice, bob = {"X-Forwarded-For": "203.0.113.1"}, {"X-Forwarded-For": "203.0.113.2"}
    try:
        async with aiohttp.ClientSession() as session:
            first = await session.ws_connect(url, headers=alice)
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await session.ws_connect(url, headers=alice)
            assert info.value.status == 429
            other = await session.ws_connect(url, headers=bob)  # another user behind the same ingress
            await first.close()
            await other.close()
            deadline = time.monotonic() + 5
            while len(gateway.sockets) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert len(gateway.sockets) == 0  # released under the key it was admitted with
            again = await session.ws_connect(url, headers=alice)
            await again.close()
    finally:
        await gateway.stop()


async def test_more_idle_websockets_than_a_redis_pool_holds_do_not_make_the_gateway_deaf(stack: Stack) -> None:
    """Reproduces issue 21's second finding at the gateway: each WebSocket took a connection
    from a Redis pool capped at 100, so the 101st client got nothing."""
    config = GatewayConfig(**{**stack.config.__dict__, "port": free_port(), "ws_max_per_client": 200,
                              "ws_max_connections": 200})
    gateway = Gateway(config)
    await gateway.start()
    [alice] = await users_with_vaults(stack.node, stack.client, 1)
    url = f"ws://127.0.0.1:{config.port}/ws"
    try:  # (the client's own pool must hold them all too: aiohttp's holds 100 by default)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            idle = [await session.ws_connect(f"{url}?owner={Pubkey.new_unique()}") for _ in range(110)]
            ws = await session.ws_connect(f"{url}?owner={alice.user.key}")
            await asyncio.sleep(0.3)
            await deposit(stack, session, alice, 3 * USDT)
            message = await ws.receive_json(timeout=10)
            assert message["type"] == "event", message
            while message["event"]["kind"] != "deposit":
                message = await ws.receive_json(timeout=10)
            assert message["event"]["amount"] == str(3 * USDT)
            for socket in [*idle, ws]:
                await socket.close()
    finally:
        await gateway.stop()


def test_socket_limits_count_per_client_and_in_total() -> None:
    limits = SocketLimits(3, 2)
    assert [limits.admit(c) for c in ("a", "a")] == [None, None]
    assert "at most 2" in (limits.admit("a") or "")
    assert limits.admit("b") is None and "at most 3" in (limits.admit("c") or "")
    limits.release("a")
    assert limits.admit("c") is None and len(limits) == 3
    with pytest.raises(ValueError):
        SocketLimits(0, 1)


async def test_openapi_conformance_with_schemathesis(stack: Stack) -> None:
    """schemathesis generates requests for every operation and checks status codes, content
    types and response bodies against the document (no 5xx allowed), from a process of its
    own (tests/support/openapi_conformance.py says why not a thread)."""
    checker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.support.openapi_conformance", stack.url, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(checker.communicate(), 240)
    assert checker.returncode == 0, err.decode()[-4000:]
    assert out.split() == [b"7"]


async def test_websocket_carries_the_exchange_programs_events(stack: Stack) -> None:
    """position_manager's events (issue 22) reach the WebSocket: a trader's grant, sent by
    his wallet straight to the chain, arrives with its kind, amount and expiry."""
    assert stack.node.ledger is not None
    exchange = stack.node.ledger.deployment.exchange
    [alice] = await users_with_vaults(stack.node, stack.client, 1)
    owner = str(alice.user.key)
    expires = int(time.time()) + 3_600
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"{stack.url.replace('http', 'ws')}/ws?owner={owner}")
        await asyncio.sleep(0.2)
        await alice.user.send([exchange.grant(alice.user.key, 50 * USDT, expires)])
        message = await ws.receive_json(timeout=10)
        while message["event"]["kind"] != "grant_set":
            message = await ws.receive_json(timeout=10)
        event = message["event"]
        assert (event["amount"], event["expires_at"], event["caller_program"]) == (
            str(50 * USDT), str(expires), str(exchange.program_id))
        await ws.close()
