"""localnet's HTTP/1.1 server: just what JSON-RPC clients use, on asyncio streams.

A validator's RPC answers a POST of a JSON body and keeps the connection open; that is all
this serves: requests read in order on each connection (pipelined ones too), bodies by
Content-Length or chunked, `Expect: 100-continue`, keep-alive by HTTP/1.1 rules. Anything
else gets a status and, when the connection's framing can no longer be trusted, a close.

It replaces aiohttp's server here because every transaction a service sends costs localnet
two requests, and aiohttp's request machinery cost about 125 us of CPU per request against
about 50 us for this (a stand-in for a validator should not eat the cores the services
are measured on: bench/bench_mesh.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus

log = logging.getLogger("localnet.http")
MAX_HEADER_BYTES = 64 * 1024
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_HEX_DIGITS = b"0123456789abcdefABCDEF"


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


class _BadRequest(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


class HttpServer:
    def __init__(self, handler: Handler, max_body: int) -> None:
        self.handler = handler
        self.max_body = max_body
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._connection, host, port, limit=MAX_HEADER_BYTES)

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
            keep_alive = _keep_alive(version, headers.get("connection", ""))
            body = await self._body(reader, writer, method, headers)
        except _BadRequest as bad:
            self._write(writer, Response(bad.status, str(bad).encode(), "text/plain"), False)
            return False
        try:
            response = await self.handler(Request(method, path, headers, body))
        except Exception:
            log.exception("internal error serving %s %s", method, path)
            response, keep_alive = Response(HTTPStatus.INTERNAL_SERVER_ERROR, b"internal error", "text/plain"), False
        self._write(writer, response, keep_alive)
        await writer.drain()
        return keep_alive

    async def _body(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, method: str,
                    headers: dict[str, str]) -> bytes:
        """The request's body, once its framing is checked (a client waiting on
        `Expect: 100-continue` is told to send it only then)."""
        encoding = headers.get("transfer-encoding")
        length = headers.get("content-length")
        if encoding is not None:
            if length is not None:
                raise _BadRequest(HTTPStatus.BAD_REQUEST, "both Transfer-Encoding and Content-Length")
            if encoding.lower() != "chunked":
                raise _BadRequest(HTTPStatus.NOT_IMPLEMENTED, f"unsupported transfer-encoding {encoding!r}")
        elif length is None:
            if method == "POST":
                raise _BadRequest(HTTPStatus.LENGTH_REQUIRED, "a POST needs Content-Length or chunked encoding")
            return b""
        elif not (length.isascii() and length.isdigit()):  # int() would take "²" or "+1"
            raise _BadRequest(HTTPStatus.BAD_REQUEST, f"invalid Content-Length {length!r}")
        elif int(length) > self.max_body:
            raise _BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"bodies are limited to {self.max_body} bytes")
        if headers.get("expect", "").lower() == "100-continue":
            writer.write(_CONTINUE)
        if length is None:
            return await self._chunked(reader)
        return await reader.readexactly(int(length))

    async def _chunked(self, reader: asyncio.StreamReader) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            digits = (await _line(reader)).split(b";", 1)[0].strip()  # chunk extensions are ignored
            if not digits or digits.translate(None, _HEX_DIGITS):  # int() would take "-1", "0x1", "1_0"
                raise _BadRequest(HTTPStatus.BAD_REQUEST, "invalid chunk size")
            size = int(digits, 16)
            if size == 0:
                while await _line(reader):  # trailer fields, up to the empty line
                    pass
                return b"".join(parts)
            total += size
            if total > self.max_body:
                raise _BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"bodies are limited to {self.max_body} bytes")
            parts.append(await reader.readexactly(size))
            if await reader.readexactly(2) != b"\r\n":
                raise _BadRequest(HTTPStatus.BAD_REQUEST, "a chunk does not end with CRLF")

    @staticmethod
    def _write(writer: asyncio.StreamWriter, response: Response, keep_alive: bool) -> None:
        status = HTTPStatus(response.status)
        connection = "" if keep_alive else "Connection: close\r\n"
        head = (f"HTTP/1.1 {status.value} {status.phrase}\r\nContent-Type: {response.content_type}\r\n"
                f"Content-Length: {len(response.body)}\r\n{connection}\r\n")
        writer.write(head.encode("latin-1") + response.body)


async def _line(reader: asyncio.StreamReader) -> bytes:
    try:
        return (await reader.readuntil(b"\r\n"))[:-2]
    except asyncio.LimitOverrunError:
        raise _BadRequest(HTTPStatus.BAD_REQUEST, "chunk line too long") from None


def _parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    lines = head[:-4].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[1]:
        raise _BadRequest(HTTPStatus.BAD_REQUEST, "malformed request line")
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise _BadRequest(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, f"{version} is not supported")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise _BadRequest(HTTPStatus.BAD_REQUEST, "malformed header line")
        name, value = name.lower(), value.strip()
        if name == "content-length" and headers.get(name, value) != value:
            raise _BadRequest(HTTPStatus.BAD_REQUEST, "conflicting Content-Length headers")
        headers[name] = f"{headers[name]}, {value}" if name in headers and name != "content-length" else value
    return method, target.split("?", 1)[0], version, headers


def _keep_alive(version: str, connection: str) -> bool:
    tokens = {token.strip().lower() for token in connection.split(",")}
    if version == "HTTP/1.0":
        return "keep-alive" in tokens
    return "close" not in tokens
