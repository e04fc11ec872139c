"""The gateway's protections, over real sockets (issue 21's lows): slow clients cut off and
a bounded number of connections, a bounded rate-limit table keyed by the client behind a
trusted proxy, allowed browser origins (CORS, WebSocket upgrades), readiness that does not
depend on an optional backend, and HTTPS. Each test failed on the gateway before."""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from localnet.node_harness import free_port
from scripts.dev_pki import DevPki
from services.gateway.app import Gateway
from services.gateway.client_address import ClientAddress
from services.gateway.ratelimit import RateLimiter
from tests.conftest import RedisNamespace
from vault_client.config import GatewayConfig


@asynccontextmanager
async def health_server() -> AsyncIterator[str]:
    """A gRPC server with only the standard health service, SERVING (what readiness asks)."""
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


@asynccontextmanager
async def gateway(redis_ns: RedisNamespace, **options: object) -> AsyncIterator[GatewayConfig]:
    dead = f"127.0.0.1:{free_port()}"
    config = GatewayConfig(**{"host": "127.0.0.1", "port": free_port(), "vault_manager": dead,
                              "balance_tracker": dead, "monitor": dead, "rate_per_second": 10_000, "burst": 10_000,
                              **options})  # type: ignore[arg-type]
    running = Gateway(config)
    await running.start()
    try:
        yield config
    finally:
        await running.stop()


async def _status(session: aiohttp.ClientSession, url: str, **kwargs: object) -> int:
    async with session.get(url, **kwargs) as response:  # type: ignore[arg-type]
        await response.read()
        return response.status


async def test_slow_clients_are_cut_off_and_connections_are_bounded(redis_ns: RedisNamespace) -> None:
    async with gateway(redis_ns, header_timeout_seconds=1.0, body_timeout_seconds=1.0, max_connections=20) as config:
        started = time.monotonic()

        async def slowloris() -> tuple[bytes, float]:
            reader, writer = await asyncio.open_connection("127.0.0.1", config.port)
            writer.write(b"GET /openapi.json HTTP/1.1\r\nHost: gateway\r\n")
            answer = b""
            for i in range(100):  # one more header line every 0.1 s, never the blank line
                try:
                    answer = await asyncio.wait_for(reader.read(1024), 0.1)
                    break  # an answer, or the end of the connection
                except TimeoutError:
                    pass
                except ConnectionError:
                    break
                try:
                    writer.write(b"X-Slow-%d: 1\r\n" % i)
                    await writer.drain()
                except ConnectionError:
                    break
            writer.close()
            return answer, time.monotonic() - started

        slow = [asyncio.create_task(slowloris()) for _ in range(30)]
        await asyncio.sleep(0.3)
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{config.port}/openapi.json"
            assert await _status(session, url) == 503  # the slow ones hold every connection
            results = await asyncio.gather(*slow)
            busy = [answer for answer, _ in results if answer.startswith(b"HTTP/1.1 503")]
            assert len(busy) == 10  # those over the limit of 20 were answered at once
            assert max(held for _, held in results) < 3.0  # the rest were closed after about 1 s
            assert await _status(session, url) == 200  # and the gateway serves again

        # a body that trickles: 408 after the body timeout, the connection closed
        reader, writer = await asyncio.open_connection("127.0.0.1", config.port)
        writer.write(b"POST /transactions/deposit HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 50\r\n\r\n{\"owner\": ")
        began = time.monotonic()
        answer = await asyncio.wait_for(reader.read(), 5)
        assert answer.startswith(b"HTTP/1.1 408") and b"REQUEST_TIMEOUT" in answer
        assert time.monotonic() - began < 3.0
        writer.close()


def test_the_rate_limit_table_is_bounded() -> None:
    limiter = RateLimiter(rate_per_second=1, burst=1, max_clients=3)
    for client in ("a", "b", "c", "d", "e"):
        assert limiter.allow(client) == 0.0
    assert len(limiter) == 3
    assert limiter.allow("e") > 0  # still limited: the most recent clients are kept
    assert limiter.allow("a") == 0.0  # forgotten (least recently seen), starts with a full bucket


def test_the_client_behind_a_trusted_proxy() -> None:
    behind = ClientAddress(["10.0.0.0/8", "127.0.0.1"])
    assert behind.of("10.1.2.3", "203.0.113.7") == "203.0.113.7"
    assert behind.of("10.1.2.3", "198.51.100.1, 203.0.113.7, 10.9.9.9") == "203.0.113.7"  # claims left of it ignored
    assert behind.of("192.0.2.1", "203.0.113.7") == "192.0.2.1"  # not a trusted proxy: its header is ignored
    assert behind.of("10.1.2.3", "garbage") == "10.1.2.3"
    assert behind.of("10.1.2.3", None) == "10.1.2.3"
    assert behind.of("10.1.2.3", "2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert ClientAddress([]).of("127.0.0.1", "203.0.113.7") == "127.0.0.1"


async def test_rate_limits_key_by_the_forwarded_client_only_behind_a_trusted_proxy(
        redis_ns: RedisNamespace) -> None:
    async with aiohttp.ClientSession() as session:
        async with gateway(redis_ns, rate_per_second=0.01, burst=2, trusted_proxies=("127.0.0.1",)) as config:
            url = f"http://127.0.0.1:{config.port}/openapi.json"
            alice, bob = {"X-Forwarded-For": "203.0.113.1"}, {"X-Forwarded-For": "203.0.113.2"}
            assert [await _status(session, url, headers=alice) for _ in range(3)] == [200, 200, 429]
            assert await _status(session, url, headers=bob) == 200  # another client behind the same ingress
        async with gateway(redis_ns, rate_per_second=0.01, burst=2) as config:  # no trusted proxy
            url = f"http://127.0.0.1:{config.port}/openapi.json"
            spoofed = [await _status(session, url, headers={"X-Forwarded-For": f"203.0.113.{i}"}) for i in range(3)]
            assert spoofed == [200, 200, 429]  # a forged header buys no new bucket


async def test_browser_origins(redis_ns: RedisNamespace) -> None:
    app, evil = "https://app.example", "https://evil.example"
    async with gateway(redis_ns, cors_origins=(app,)) as config, aiohttp.ClientSession() as session:
        base = f"http://127.0.0.1:{config.port}"
        async with session.get(f"{base}/openapi.json", headers={"Origin": app}) as response:
            assert response.status == 200 and response.headers["Access-Control-Allow-Origin"] == app
        async with session.get(f"{base}/openapi.json", headers={"Origin": evil}) as response:
            assert response.status == 403 and "not allowed" in (await response.json())["error"]["message"]
            assert "Access-Control-Allow-Origin" not in response.headers
        preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
        async with session.options(f"{base}/transactions/submit", headers={"Origin": app, **preflight}) as response:
            assert response.status == 204 and "POST" in response.headers["Access-Control-Allow-Methods"]
        async with session.options(f"{base}/transactions/submit", headers={"Origin": evil, **preflight}) as response:
            assert response.status == 403
        ws_url = f"ws://127.0.0.1:{config.port}/ws?owner=11111111111111111111111111111111"
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(ws_url, headers={"Origin": evil})
        assert refused.value.status == 403
        ws = await session.ws_connect(ws_url, headers={"Origin": app})
        await ws.close()
        ws = await session.ws_connect(ws_url)  # no Origin: not a browser
        await ws.close()


async def test_readiness_needs_the_core_backends_only(redis_ns: RedisNamespace) -> None:
    async with health_server() as vault_manager, health_server() as balance_tracker, aiohttp.ClientSession() as s:
        async with gateway(redis_ns, vault_manager=vault_manager, balance_tracker=balance_tracker) as config:
            async with s.get(f"http://127.0.0.1:{config.port}/healthz") as response:  # the monitor is down
                body = await response.json()
            assert response.status == 200 and body["status"] == "degraded"
            assert body["backends"] == {"vault_manager": "SERVING", "balance_tracker": "SERVING",
                                        "monitor": "UNAVAILABLE"}
        async with gateway(redis_ns, vault_manager=vault_manager, monitor=balance_tracker) as config:
            async with s.get(f"http://127.0.0.1:{config.port}/healthz") as response:  # balance_tracker is down
                body = await response.json()
            assert response.status == 503 and body["status"] == "unavailable"
        async with gateway(redis_ns, vault_manager=vault_manager, balance_tracker=balance_tracker,
                           monitor=balance_tracker) as config:
            async with s.get(f"http://127.0.0.1:{config.port}/healthz") as response:
                assert response.status == 200 and (await response.json())["status"] == "ok"


async def test_https(redis_ns: RedisNamespace, tmp_path: Path) -> None:
    pki = DevPki(tmp_path / "pki")
    cert, key = pki.server("gateway")
    async with gateway(redis_ns, tls_cert=str(cert), tls_key=str(key)) as config, aiohttp.ClientSession() as s:
        trust = ssl.create_default_context(cafile=str(pki.ca_cert))
        assert await _status(s, f"https://127.0.0.1:{config.port}/openapi.json", ssl=trust) == 200
        with pytest.raises(aiohttp.ClientError):
            await _status(s, f"http://127.0.0.1:{config.port}/openapi.json")
        assert dataclasses.asdict(config)["tls_cert"] == str(cert)
