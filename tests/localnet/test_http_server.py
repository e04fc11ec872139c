"""localnet's HTTP/1.1 server over real sockets: keep-alive and pipelining, chunked bodies,
100-continue, and a status (then a close) for every malformed or oversized request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from localnet.http_server import HttpServer, Request, Response
from localnet.node import Node
from localnet.node_harness import free_port, running_node

MAX_BODY = 1024


async def echo(request: Request) -> Response:
    if request.body == b"boom":
        raise RuntimeError("handler failure")
    return Response(200, f"{request.method} {request.path} {request.body.decode()}".encode(), "text/plain")


@pytest.fixture
async def port() -> AsyncIterator[int]:
    server, number = HttpServer(echo, MAX_BODY), free_port()
    await server.start("127.0.0.1", number)
    yield number
    await server.stop()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split(" ")[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:] if line)}
    return status, headers, await reader.readexactly(int(headers.get("content-length", "0")))


async def exchange(port: int, raw: bytes, responses: int = 1) -> tuple[list[tuple[int, dict[str, str], bytes]], bool]:
    """Sends `raw`, reads `responses`; then whether the server closed the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        out = [await asyncio.wait_for(read_response(reader), 5) for _ in range(responses)]
        closed = await asyncio.wait_for(reader.read(1), 0.3) == b""
    except TimeoutError:
        closed = False
    finally:
        writer.close()
    return out, closed


def post(body: bytes, extra: str = "", version: str = "HTTP/1.1") -> bytes:
    return f"POST / {version}\r\nHost: x\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


async def test_keep_alive_and_pipelined_requests_answer_in_order(port: int) -> None:
    responses, closed = await exchange(port, post(b"one") + post(b"two") + b"GET /health?x=1 HTTP/1.1\r\n\r\n", 3)
    assert [r[2] for r in responses] == [b"POST / one", b"POST / two", b"GET /health "]
    assert all(r[0] == 200 and "connection" not in r[1] for r in responses)
    assert not closed  # HTTP/1.1 keeps the connection open


@pytest.mark.parametrize("raw", [post(b"x", "Connection: close\r\n"), post(b"x", version="HTTP/1.0")])
async def test_close_when_the_client_asks_or_speaks_http_1_0(port: int, raw: bytes) -> None:
    [(status, headers, body)], closed = await exchange(port, raw)
    assert (status, headers["connection"], body, closed) == (200, "close", b"POST / x", True)


async def test_http_1_0_keep_alive_is_honoured(port: int) -> None:
    responses, closed = await exchange(port, post(b"a", "Connection: keep-alive\r\n", "HTTP/1.0") * 2, 2)
    assert [r[2] for r in responses] == [b"POST / a", b"POST / a"] and not closed


async def test_chunked_body_and_100_continue(port: int) -> None:
    chunked = (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: t\r\n\r\n")
    [(status, _, body)], _ = await exchange(port, chunked)
    assert (status, body) == (200, b"POST / abcde")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST / HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
    assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5) == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"hi")
    assert (await asyncio.wait_for(read_response(reader), 5))[2] == b"POST / hi"
    writer.close()
    # a body that would be refused is not asked for: the final status comes instead of 100
    [(status, _, _)], closed = await exchange(
        port, b"POST / HTTP/1.1\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
    assert (status, closed) == (413, True)


@pytest.mark.parametrize(("raw", "status"), [
    (b"NONSENSE\r\n\r\n", 400),
    (b"POST / HTTP/2.0\r\nContent-Length: 0\r\n\r\n", 505),
    (b"POST / HTTP/1.1\r\nno colon here\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\n\r\n", 411),
    (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: 1025\r\n\r\n", 413),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", 400),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0x1\r\na\r\n0\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n401\r\n", 413),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\naXX", 400),
    (b"POST / HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", 431),
    (post(b"boom"), 500),
])
async def test_bad_requests_get_a_status_and_a_close(port: int, raw: bytes, status: int) -> None:
    [(got, headers, _)], closed = await exchange(port, raw)
    assert (got, headers["connection"], closed) == (status, "close", True)


async def test_a_client_leaving_mid_request_costs_nothing(port: int) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
    writer.close()
    [(status, _, body)], _ = await exchange(port, post(b"still here"))
    assert (status, body) == (200, b"POST / still here")


@pytest.fixture(scope="module")
async def node() -> AsyncIterator[Node]:
    async with running_node() as running:
        yield running


async def test_node_routes(node: Node) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(node.rpc_url + "/health") as response:
            assert (response.status, await response.text()) == (200, "ok")
        async with session.get(node.rpc_url + "/") as response:
            assert response.status == 405
        async with session.post(node.rpc_url + "/health", data=b"{}") as response:
            assert response.status == 405
        async with session.post(node.rpc_url + "/elsewhere", data=b"{}") as response:
            assert response.status == 404
        async with session.post(node.rpc_url, json={"jsonrpc": "2.0", "id": 3, "method": "getSlot"}) as response:
            assert response.status == 200 and response.content_type == "application/json"
            assert (await response.json())["id"] == 3
