"""A keep-alive HTTP/1.1 client for one JSON-RPC endpoint, on asyncio streams.

It POSTs a body and returns the status, header fields and body, over a pool of persistent
connections (TLS for https URLs). Responses are framed by Content-Length, chunked transfer
coding or the end of the connection, with the framing rules localnet's server uses
(`http1.py`); 1xx interim responses are skipped; a gzip or deflate body (which it does not
ask for) is decoded within the size limit.

A request that finds its reused connection closed by the server before any byte of an answer
arrived (an idle keep-alive connection the server dropped) is sent once more on a new
connection; JSON-RPC reads are idempotent and so is sendTransaction (the cluster refuses a
signature it has seen). Every other failure, a timeout included, closes that connection and
raises `HttpTransportError`. The timeout is the whole request's, the wait for one of the
`max_connections` included, so an endpoint that stops answering costs each caller at most
that time however many wait.

It replaces aiohttp's client on the services' chain path, and the benchmark that keeps it is
bench/bench_rpc_client.py (client CPU per getSignatureStatuses against localnet, the two
clients in turn): 307-430 us through aiohttp's client and 140-190 us through this one when
it replaced it (three runs), 96.7 us and 43.3 us in the run bench/README.md shows. Every
submitted transaction takes such a call in vault_manager (its send and status lookup share
one)."""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
import zlib
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import unquote, urlsplit

from vault_client import redact
from vault_client.http1 import (
    MAX_HEAD_BYTES,
    FramingError,
    chunked,
    content_length,
    keep_alive,
    parse_fields,
    read_chunked,
)

DEFAULT_MAX_BODY = 256 * 1024 * 1024  # getProgramAccounts over every vault can be large
_READ_SIZE = 64 * 1024


class HttpTransportError(ConnectionError):
    """The endpoint could not be reached, or its answer was not a well-framed HTTP response."""


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes


class _Stale(Exception):
    """A reused connection was found closed before any byte of the answer."""


class _Connection:
    __slots__ = ("idle_since", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.idle_since = 0.0

    def usable(self, now: float, idle_seconds: float) -> bool:
        return not (self.reader.at_eof() or self.writer.is_closing() or now - self.idle_since > idle_seconds)

    def close(self) -> None:
        self.writer.close()


class HttpClient:
    def __init__(self, url: str, *, timeout: float | None = 10.0, max_connections: int = 64,
                 max_body: int = DEFAULT_MAX_BODY, idle_seconds: float = 30.0,
                 ssl_context: ssl.SSLContext | None = None, headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {redact.url(url)}")
        self.url = url
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = (ssl_context or ssl.create_default_context()) if parts.scheme == "https" else None
        self.timeout = timeout
        self.max_body = max_body
        self.idle_seconds = idle_seconds
        fields = {"Host": _host_field(self.host, parts.port), "User-Agent": "collateral-vault",
                  "Content-Type": "application/json", "Accept-Encoding": "identity", **(headers or {})}
        if parts.username is not None:
            credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            fields["Authorization"] = "Basic " + base64.b64encode(credentials).decode()
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._head = (f"POST {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())).encode()
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[_Connection] = []
        self._closed = False
        self.requests = 0  # POSTs made, each one round trip (a resend after a dropped connection aside)

    async def post(self, body: bytes) -> HttpResponse:
        """POSTs `body`; the response whatever its status."""
        if self._closed:
            raise HttpTransportError("the HTTP client is closed")
        request = self._head + b"Content-Length: %d\r\n\r\n" % len(body) + body
        self.requests += 1
        try:
            # the timeout covers the wait for a connection too: behind a node that stopped
            # answering, a queued request fails when its own time is up, not after every
            # request ahead of it has timed out in turn
            async with asyncio.timeout(self.timeout), self._slots:
                connection = self._take_idle()
                if connection is not None:
                    try:
                        return await self._on(connection, request)
                    except _Stale:
                        pass  # the server dropped the idle connection: once more, on a new one
                return await self._on(None, request)  # a new connection is never found stale
        except TimeoutError:
            raise HttpTransportError(f"no answer from {redact.url(self.url)} within {self.timeout} s") from None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, FramingError) as exc:
            raise HttpTransportError(f"{type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        self._closed = True
        for connection in self._idle:
            connection.close()
        self._idle.clear()

    def _take_idle(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if connection.usable(now, self.idle_seconds):
                return connection
            connection.close()
        return None

    async def _on(self, connection: _Connection | None, request: bytes) -> HttpResponse:
        """One exchange on `connection` (a new one if None), which goes back to the pool only
        if the exchange completed and both sides keep it open."""
        reused = connection is not None
        persistent = False
        try:
            if connection is None:
                reader, writer = await asyncio.open_connection(
                    self.host, self.port, ssl=self.ssl, server_hostname=self.host if self.ssl else None,
                    limit=MAX_HEAD_BYTES)
                connection = _Connection(reader, writer)
            response, persistent = await self._exchange(connection, request, reused)
            return response
        finally:
            if connection is not None:
                if persistent and not self._closed:
                    connection.idle_since = time.monotonic()
                    self._idle.append(connection)
                else:
                    connection.close()

    async def _exchange(self, connection: _Connection, request: bytes, reused: bool) -> tuple[HttpResponse, bool]:
        reader, writer = connection.reader, connection.writer
        try:
            writer.write(request)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
        except (ConnectionResetError, BrokenPipeError, asyncio.IncompleteReadError) as exc:
            partial = exc.partial if isinstance(exc, asyncio.IncompleteReadError) else b""
            if reused and not partial:
                raise _Stale from exc
            raise
        while True:
            lines = head[:-4].decode("latin-1").split("\r\n")
            version, status = _status_line(lines[0])
            fields = parse_fields(lines[1:])
            if status >= 200:
                break
            if status == HTTPStatus.SWITCHING_PROTOCOLS:
                raise FramingError(HTTPStatus.BAD_GATEWAY, "the server switched protocols")
            head = await reader.readuntil(b"\r\n\r\n")  # 1xx: the final response follows
        persistent = keep_alive(version, fields.get("connection", ""))
        if status in (HTTPStatus.NO_CONTENT, HTTPStatus.NOT_MODIFIED):
            body = b""
        elif chunked(fields):
            body = await read_chunked(reader, self.max_body)
        elif "content-length" in fields:
            body = await reader.readexactly(content_length(fields["content-length"], self.max_body))
        else:  # framed by the end of the connection
            body, persistent = await self._until_eof(reader), False
        return HttpResponse(status, fields, _decoded(body, fields.get("content-encoding", ""), self.max_body)), \
            persistent

    async def _until_eof(self, reader: asyncio.StreamReader) -> bytes:
        parts: list[bytes] = []
        total = 0
        while chunk := await reader.read(_READ_SIZE):
            total += len(chunk)
            if total > self.max_body:
                raise FramingError(HTTPStatus.BAD_GATEWAY, f"bodies are limited to {self.max_body} bytes")
            parts.append(chunk)
        return b"".join(parts)


def _host_field(host: str, port: int | None) -> str:
    name = f"[{host}]" if ":" in host else host
    return name if port is None else f"{name}:{port}"


def _status_line(line: str) -> tuple[str, int]:
    version, _, rest = line.partition(" ")
    code = rest[:3]
    if version not in ("HTTP/1.1", "HTTP/1.0") or len(code) != 3 or not code.isdigit() or rest[3:4] not in ("", " "):
        raise FramingError(HTTPStatus.BAD_GATEWAY, f"malformed status line {line[:80]!r}")
    return version, int(code)


def _decoded(body: bytes, encoding: str, max_body: int) -> bytes:
    """The body without its content coding (gzip or deflate), within `max_body`."""
    coding = encoding.strip().lower()
    if coding in ("", "identity"):
        return body
    if coding not in ("gzip", "x-gzip", "deflate"):
        raise FramingError(HTTPStatus.BAD_GATEWAY, f"unsupported content-encoding {encoding!r}")
    # gzip: header and trailer; deflate: the zlib wrapper (RFC 9110), raw deflate if it is missing
    wbits = 16 + zlib.MAX_WBITS if coding != "deflate" else (zlib.MAX_WBITS if body[:1] == b"\x78" else -zlib.MAX_WBITS)
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, max_body + 1)
    except zlib.error as exc:
        raise FramingError(HTTPStatus.BAD_GATEWAY, f"a {coding} body that does not decode: {exc}") from None
    if len(out) > max_body or inflater.unconsumed_tail:
        raise FramingError(HTTPStatus.BAD_GATEWAY, f"bodies are limited to {max_body} bytes")
    return out
