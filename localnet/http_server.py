"""localnet's HTTP/1.1 server: just what JSON-RPC clients use, on asyncio streams.

A validator's RPC answers a POST of a JSON body and keeps the connection open; that is all
this serves: requests read in order on each connection (pipelined ones too), bodies by
Content-Length or chunked, `Expect: 100-continue`, keep-alive by HTTP/1.1 rules. Anything
else gets a status and, when the connection's framing can no longer be trusted, a close.

It replaces aiohttp's server here because every transaction a service sends costs localnet
two requests, and aiohttp's request machinery cost about 125 us of CPU per request against
about 50 us for this, measured once when it was replaced (no benchmark in bench/ runs
aiohttp's server today). What keeps it is a stand-in for a validator that does not eat the
cores the services are measured on: bench/bench_mesh.py records localnet's CPU per deposit
(0.66 ms of the system's 3.25 ms in bench/README.md's latest results) and
bench/bench_localnet.py its rate over JSON-RPC against LiteSVM in process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus

from vault_client.http1 import (
    MAX_HEAD_BYTES,
    FramingError,
    chunked,
    content_length,
    keep_alive,
    parse_fields,
    read_chunked,
)

log = logging.getLogger("localnet.http")
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"


Handler = Callable[[Request], Awaitable[Response]]


class HttpServer:
    def __init__(self, handler: Handler, max_body: int) -> None:
        self.handler = handler
        self.max_body = max_body
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._connection, host, port, limit=MAX_HEAD_BYTES)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._connections):
            writer.close()
        if self._server is not None:
            await self._server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        try:
            while await self._exchange(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away mid-request
        finally:
            self._connections.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serves one request; whether the connection stays open for the next."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip():
                self._write(writer, Response(HTTPStatus.BAD_REQUEST, b"incomplete request head", "text/plain"), False)
            return False
        except asyncio.LimitOverrunError:
            self._write(writer, Response(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, b"request head too large",
                                         "text/plain"), False)
            return False
        try:
            method, path, version, headers = _parse_head(head)
            persistent = keep_alive(version, headers.get("connection", ""))
            body = await self._body(reader, writer, method, headers)
        except FramingError as bad:
            self._write(writer, Response(bad.status, str(bad).encode(), "text/plain"), False)
            return False
        try:
            response = await self.handler(Request(method, path, headers, body))
        except Exception:
            log.exception("internal error serving %s %s", method, path)
            response, persistent = Response(HTTPStatus.INTERNAL_SERVER_ERROR, b"internal error", "text/plain"), False
        self._write(writer, response, persistent)
        await writer.drain()
        return persistent

    async def _body(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, method: str,
                    headers: dict[str, str]) -> bytes:
        """The request's body, once its framing is checked (a client waiting on
        `Expect: 100-continue` is told to send it only then)."""
        size: int | None = None  # None: chunked
        if not chunked(headers):
            length = headers.get("content-length")
            if length is None:
                if method == "POST":
                    raise FramingError(HTTPStatus.LENGTH_REQUIRED, "a POST needs Content-Length or chunked encoding")
                return b""
            size = content_length(length, self.max_body)
        if headers.get("expect", "").lower() == "100-continue":
            writer.write(_CONTINUE)
        return await read_chunked(reader, self.max_body) if size is None else await reader.readexactly(size)

    @staticmethod
    def _write(writer: asyncio.StreamWriter, response: Response, persistent: bool) -> None:
        status = HTTPStatus(response.status)
        connection = "" if persistent else "Connection: close\r\n"
        head = (f"HTTP/1.1 {status.value} {status.phrase}\r\nContent-Type: {response.content_type}\r\n"
                f"Content-Length: {len(response.body)}\r\n{connection}\r\n")
        writer.write(head.encode("latin-1") + response.body)


def _parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    lines = head[:-4].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[1]:
        raise FramingError(HTTPStatus.BAD_REQUEST, "malformed request line")
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise FramingError(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, f"{version} is not supported")
    return method, target.split("?", 1)[0], version, parse_fields(lines[1:])

