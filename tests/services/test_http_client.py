"""The services' keep-alive HTTP/1.1 client against a scripted server over real sockets:
connection reuse and its limit, every response framing, interim responses, a keep-alive
connection the server dropped, TLS, and a clear `HttpTransportError` (with the connection
closed) for every answer it cannot trust."""

from __future__ import annotations

import asyncio
import gzip
import ssl
import subprocess
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from localnet.node_harness import free_port
from vault_client.http_client import HttpClient, HttpTransportError

HANG = b"<hang>"  # the server reads the request and never answers
DROP = b"<drop>"  # the server closes the connection without answering


@dataclass
class Script:
    """What the server answers to its n-th request (1-based), and whether it closes after."""

    answer: Callable[[int, bytes], tuple[bytes, bool]]
    port: int = 0
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    closed_by_client: int = 0
    in_flight: int = 0
    most_in_flight: int = 0


def ok(body: bytes = b'{"ok":true}', extra: str = "") -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


@asynccontextmanager
async def scripted(answer: Callable[[int, bytes], tuple[bytes, bool]],
                   tls: ssl.SSLContext | None = None) -> AsyncIterator[Script]:
    script = Script(answer)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        script.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                script.requests.append(head + await reader.readexactly(length))
                script.in_flight += 1
                script.most_in_flight = max(script.most_in_flight, script.in_flight)
                raw, close = script.answer(len(script.requests), head)
                if raw == HANG:
                    if await reader.read(1) == b"":
                        script.closed_by_client += 1
                    return
                await asyncio.sleep(0.01)
                script.in_flight -= 1
                if raw == DROP:
                    return
                writer.write(raw)
                await writer.drain()
                if close:
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    script.port = free_port()
    server = await asyncio.start_server(serve, "127.0.0.1", script.port, ssl=tls)
    try:
        yield script
    finally:
        server.close()


def client(script: Script, scheme: str = "http", **options: object) -> HttpClient:
    return HttpClient(f"{scheme}://127.0.0.1:{script.port}/rpc?key=1", **options)  # type: ignore[arg-type]


async def test_one_connection_serves_request_after_request() -> None:
    async with scripted(lambda n, _: (ok(b"%d" % n), False)) as script:
        http = client(script)
        bodies = [(await http.post(b'{"n":%d}' % i)).body for i in range(20)]
        await http.close()
    assert bodies == [b"%d" % n for n in range(1, 21)] and http.requests == 20
    assert script.connections == 1
    first = script.requests[0].decode()
    assert first.startswith("POST /rpc?key=1 HTTP/1.1\r\n") and f"Host: 127.0.0.1:{script.port}\r\n" in first
    assert "Content-Type: application/json\r\n" in first and first.endswith('Content-Length: 7\r\n\r\n{"n":0}')


async def test_concurrent_requests_stay_within_the_connection_limit() -> None:
    async with scripted(lambda n, _: (ok(), False)) as script:
        http = client(script, max_connections=3)
        answers = await asyncio.gather(*(http.post(b"{}") for _ in range(30)))
        await http.close()
    assert [a.status for a in answers] == [200] * 30
    assert script.connections == 3 and script.most_in_flight == 3


@pytest.mark.parametrize(("raw", "body"), [
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nT: v\r\n\r\n",
     b'{"a":1}'),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n" + ok(b"final"), b"final"),
    (b"HTTP/1.1 204 No Content\r\n\r\n", b""),
    (ok(gzip.compress(b'{"z":1}'), "Content-Encoding: gzip\r\n"), b'{"z":1}'),
    (ok(zlib.compress(b'{"d":1}'), "Content-Encoding: deflate\r\n"), b'{"d":1}'),
])
async def test_response_framings(raw: bytes, body: bytes) -> None:
    async with scripted(lambda n, _: (raw, False)) as script:
        http = client(script)
        assert (await http.post(b"{}")).body == body
        assert (await http.post(b"{}")).body == body  # and the connection was left in a state to reuse
        await http.close()
    assert script.connections == 1


@pytest.mark.parametrize("raw", [
    ok(extra="Connection: close\r\n"),
    b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}",
    b"HTTP/1.1 200 OK\r\n\r\n{\"until\":\"close\"}",
])
async def test_a_connection_that_ends_with_the_response_is_not_reused(raw: bytes) -> None:
    async with scripted(lambda n, _: (raw, True)) as script:
        http = client(script)
        first, second = await http.post(b"{}"), await http.post(b"{}")
        await http.close()
    assert first.body == second.body and first.status == 200
    assert script.connections == 2


async def test_a_keep_alive_connection_the_server_dropped_is_replaced() -> None:
    # closed by the server after each answer without saying so: the next request finds it
    # gone (seen before sending, or when no answer comes) and goes out on a new connection
    async with scripted(lambda n, _: (ok(b"%d" % n), True)) as script:
        http = client(script)
        bodies = [(await http.post(b"{}")).body for _ in range(3)]
        await http.close()
    assert bodies == [b"1", b"2", b"3"] and script.connections == 3
    # closed while the request was on its way, before any byte of the answer: sent once more
    answers = {1: (ok(b"1"), False), 2: (DROP, True), 3: (ok(b"3"), False)}
    async with scripted(lambda n, _: answers[n]) as script:
        http = client(script)
        bodies = [(await http.post(b"{}")).body for _ in range(2)]
        await http.close()
    assert bodies == [b"1", b"3"] and script.connections == 2 and len(script.requests) == 3


async def test_a_new_connection_closed_without_an_answer_is_an_error_not_a_loop() -> None:
    async with scripted(lambda n, _: (DROP, True)) as script:
        http = client(script)
        with pytest.raises(HttpTransportError, match=r"IncompleteReadError|closed"):
            await http.post(b"{}")
        await http.close()
    assert len(script.requests) == 1


async def test_a_reused_connection_dropped_after_part_of_an_answer_is_not_resent() -> None:
    answers = {1: (ok(), False), 2: (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", True)}
    async with scripted(lambda n, _: answers[n]) as script:
        http = client(script)
        await http.post(b"{}")
        with pytest.raises(HttpTransportError, match="IncompleteReadError"):
            await http.post(b"{}")
        await http.close()
    assert len(script.requests) == 2  # the request that may have been acted on is not sent again


async def test_a_timeout_is_an_error_and_closes_the_connection() -> None:
    async with scripted(lambda n, _: (HANG if n == 1 else ok(), False)) as script:
        http = client(script, timeout=0.3)
        with pytest.raises(HttpTransportError, match=r"within 0\.3 s"):
            await http.post(b"{}")
        assert (await http.post(b"{}")).status == 200  # on a new connection
        await http.close()
        await asyncio.sleep(0.05)
    assert script.closed_by_client == 1 and script.connections == 2


async def test_a_request_waiting_for_a_connection_counts_the_wait_in_its_timeout() -> None:
    """Reproduces a defect: the timeout covered the exchange only, so behind a node that
    stopped answering the n-th queued request failed after n / max_connections timeouts
    (here the last two after 2 s) and the queue of waiters grew with every caller."""
    async with scripted(lambda n, _: (HANG, False)) as script:
        http = client(script, timeout=0.5, max_connections=2)
        started = asyncio.get_running_loop().time()

        async def failure() -> float:
            with pytest.raises(HttpTransportError, match=r"within 0\.5 s"):
                await http.post(b"{}")
            return asyncio.get_running_loop().time() - started

        waited = await asyncio.gather(*(failure() for _ in range(8)))
        await http.close()
    assert max(waited) < 2 * 0.5  # each its own 0.5 s, not one per wave of two ahead of it


@pytest.mark.parametrize(("raw", "message"), [
    (b"HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n", "malformed status line"),
    (b"HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n", "malformed status line"),
    (b"ICY 200 OK\r\n\r\n", "malformed status line"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\n{}", "invalid Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", "conflicting Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n", "limited to 1024 bytes"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\n{}\r\n0\r\n\r\n", "invalid chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n", "does not end with CRLF"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "unsupported transfer-encoding"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n", "both Transfer-Encoding"),
    (b"HTTP/1.1 200 OK\r\nbroken header\r\n\r\n", "malformed header line"),
    (ok(b"not gzip", "Content-Encoding: gzip\r\n"), "does not decode"),
    (ok(gzip.compress(b" " * 5000), "Content-Encoding: gzip\r\n"), "limited to 1024 bytes"),
    (ok(b"{}", "Content-Encoding: br\r\n"), "unsupported content-encoding"),
    (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", "switched protocols"),
    (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", "LimitOverrun|chunk exceed"),
])
async def test_an_answer_that_cannot_be_trusted_is_an_error(raw: bytes, message: str) -> None:
    async with scripted(lambda n, _: (raw if n == 1 else ok(), False)) as script:
        http = client(script, max_body=1024)
        with pytest.raises(HttpTransportError, match=message):
            await http.post(b"{}")
        assert (await http.post(b"{}")).status == 200
        await http.close()
    assert script.connections == 2  # the connection whose framing was lost is not reused


async def test_error_statuses_are_answers() -> None:
    raw = b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 4\r\n\r\nslow"
    async with scripted(lambda n, _: (raw, False)) as script:
        http = client(script)
        answer = await http.post(b"{}")
        await http.close()
    assert (answer.status, answer.headers["retry-after"], answer.body) == (429, "1", b"slow")


async def test_credentials_in_the_url_become_basic_authorization() -> None:
    async with scripted(lambda n, _: (ok(), False)) as script:
        http = HttpClient(f"http://user:p%40ss@127.0.0.1:{script.port}")
        await http.post(b"{}")
        await http.close()
    assert b"Authorization: Basic dXNlcjpwQHNz\r\n" in script.requests[0]  # user:p@ss
    assert script.requests[0].startswith(b"POST / HTTP/1.1\r\n")


async def test_unreachable_closed_and_malformed() -> None:
    with pytest.raises(HttpTransportError, match="Connect"):
        await HttpClient(f"http://127.0.0.1:{free_port()}", timeout=2).post(b"{}")
    closed = HttpClient("http://127.0.0.1:1")
    await closed.close()
    with pytest.raises(HttpTransportError, match="closed"):
        await closed.post(b"{}")
    for url in ("ftp://host/", "http:///nohost", "localhost:8899"):
        with pytest.raises(ValueError, match="not an http"):
            HttpClient(url)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


async def test_https(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    async with scripted(lambda n, _: (ok(b"%d" % n), False), tls=server_side) as script:
        trusting = client(script, "https", ssl_context=ssl.create_default_context(cafile=str(cert)))
        assert [(await trusting.post(b"{}")).body for _ in range(3)] == [b"1", b"2", b"3"]
        await trusting.close()
        assert script.connections == 1
        default = client(script, "https", timeout=5)  # the system's trust store does not know this certificate
        with pytest.raises(HttpTransportError, match="CERTIFICATE_VERIFY_FAILED"):
            await default.post(b"{}")
        await default.close()
