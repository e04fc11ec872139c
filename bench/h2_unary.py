"""A minimal gRPC unary client over HTTP/2 (RFC 9113), for load generation: the deposits'
submitter in bench_mesh, where each call carries a different signed transaction (h2load
sends one body for every call, so it serves GetVault but not this).

It spends a fraction of grpc.aio's client CPU per call, and the benchmark that keeps it is
bench/bench_mesh.py, which submits the same deposits with each client and records the load
generator's CPU per deposit: 0.19-0.23 ms with this one against 0.49-0.54 ms with grpc.aio's
(bench/README.md's latest results). Requests are written as pre-encoded frames
from the event loop's thread, responses read frame by frame in `data_received`, no task per
call and no polling thread. It is a load generator, not a general client:

* cleartext only, no compression, no metadata, one connection;
* request headers are HPACK literals without indexing, so the server's decoder table never
  grows; response headers are not decoded at all. A call succeeds when its response message
  arrives: gRPC sends a message only from a handler that returned one, and a failed call
  ends with trailers alone (HEADERS with END_STREAM and no DATA) or a reset, which fail the
  call here. bench_mesh checks every message's content too, and the server's own count of
  OK calls.

Flow control is honoured both ways: request bodies wait for the server's connection window
(and must fit its per-stream window), streams above the server's concurrency limit wait, and
the connection's receive window is replenished as response bytes are read."""

from __future__ import annotations

import asyncio
import struct
from collections import deque
from typing import cast

from bench.h2load import grpc_frame

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0x0, 0x1, 0x3, 0x4, 0x6, 0x7, 0x8
END_STREAM = ACK = 0x1
END_HEADERS, PADDED = 0x4, 0x8
SETTINGS_MAX_CONCURRENT_STREAMS, SETTINGS_INITIAL_WINDOW_SIZE = 0x3, 0x4
DEFAULT_WINDOW = 65_535
REPLENISH_AT = 32_768  # received bytes after which the connection window is reopened
_HEADER = struct.Struct(">HBBBI")  # 24-bit length as 16 + 8 bits, type, flags, stream


class H2CallFailed(Exception):
    """A call ended without a response message (its status is in trailers, not decoded
    here), was reset, or the connection went away."""


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return _HEADER.pack(len(payload) >> 8, len(payload) & 0xFF, kind, flags, stream) + payload


def hpack_int(value: int, prefix_bits: int, first: int = 0) -> bytes:
    """An HPACK integer (RFC 7541 5.1) with `first`'s high bits in the first byte."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out, value = [first | limit], value - limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def hpack_string(value: bytes) -> bytes:
    return hpack_int(len(value), 7) + value  # no Huffman coding


def request_headers(path: str, authority: str) -> bytes:
    """POST `path` with gRPC's headers, every one a literal without indexing."""
    return (b"\x83\x86"  # :method POST, :scheme http (static table 3 and 6)
            + hpack_int(4, 4) + hpack_string(path.encode())  # :path (static name 4)
            + hpack_int(1, 4) + hpack_string(authority.encode())  # :authority (static name 1)
            + hpack_int(31, 4) + hpack_string(b"application/grpc")  # content-type (static name 31)
            + b"\x00" + hpack_string(b"te") + hpack_string(b"trailers"))


class H2Unary(asyncio.Protocol):
    """One HTTP/2 connection carrying unary gRPC calls to one method."""

    def __init__(self, path: str, authority: str) -> None:
        self._headers = request_headers(path, authority)
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._next_stream = 1
        self._calls: dict[int, tuple[asyncio.Future[bytes], bytearray]] = {}
        self._waiting: deque[tuple[bytes, asyncio.Future[bytes]]] = deque()
        self._send_window = DEFAULT_WINDOW  # the server's connection window for our DATA
        self._stream_window = DEFAULT_WINDOW  # the server's initial window per stream
        self._max_streams = 2**31 - 1
        self._unacknowledged = 0  # response bytes read since the receive window was reopened
        self._closed: BaseException | None = None

    @classmethod
    async def connect(cls, host: str, port: int, path: str) -> H2Unary:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(lambda: cls(path, f"{host}:{port}"), host, port)
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._transport.write(PREFACE + frame(SETTINGS, 0, 0, struct.pack(">HI", 0x2, 0)))  # no server push

    def call(self, message: bytes) -> asyncio.Future[bytes]:
        """Sends one call; the future is the response message's bytes, or H2CallFailed."""
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        body = grpc_frame(message)
        if self._closed is not None:
            future.set_exception(H2CallFailed(f"the connection is closed: {self._closed}"))
        elif len(body) > self._stream_window:
            future.set_exception(H2CallFailed(f"a {len(body)}-byte request exceeds the server's stream window "
                                              f"of {self._stream_window}"))
        else:
            self._waiting.append((body, future))
            self._send()
        return future

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _send(self) -> None:
        assert self._transport is not None
        out = []
        while self._waiting and len(self._calls) < self._max_streams:
            body, future = self._waiting[0]
            if len(body) > self._send_window:
                break  # until the server's WINDOW_UPDATE
            self._waiting.popleft()
            stream, self._next_stream = self._next_stream, self._next_stream + 2
            self._send_window -= len(body)
            self._calls[stream] = (future, bytearray())
            out.append(frame(HEADERS, END_HEADERS, stream, self._headers) + frame(DATA, END_STREAM, stream, body))
        if out:
            self._transport.write(b"".join(out))

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        offset = 0
        while len(buffer) - offset >= 9:
            high, low, kind, flags, stream = _HEADER.unpack_from(buffer, offset)
            length = (high << 8) | low
            end = offset + 9 + length
            if len(buffer) < end:
                break
            self._frame(kind, flags, stream & 0x7FFFFFFF, bytes(buffer[offset + 9:end]))
            offset = end
        del buffer[:offset]

    def _frame(self, kind: int, flags: int, stream: int, payload: bytes) -> None:
        assert self._transport is not None
        if kind == DATA:
            self._unacknowledged += len(payload)
            if self._unacknowledged >= REPLENISH_AT:
                self._transport.write(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", self._unacknowledged)))
                self._unacknowledged = 0
            if flags & PADDED:
                payload = payload[1:len(payload) - payload[0]]
            call = self._calls.get(stream)
            if call is not None:
                call[1].extend(payload)
                if flags & END_STREAM:
                    self._finish(stream)
        elif kind == HEADERS:
            if flags & END_STREAM:
                self._finish(stream)
        elif kind == RST_STREAM:
            code = struct.unpack(">I", payload)[0]
            self._fail(stream, H2CallFailed(f"stream {stream} reset by the server (error code {code})"))
        elif kind == SETTINGS and not flags & ACK:
            for at in range(0, len(payload) - 5, 6):
                key, value = struct.unpack_from(">HI", payload, at)
                if key == SETTINGS_MAX_CONCURRENT_STREAMS:
                    self._max_streams = value
                elif key == SETTINGS_INITIAL_WINDOW_SIZE:
                    self._stream_window = value
            self._transport.write(frame(SETTINGS, ACK, 0))
            self._send()
        elif kind == PING and not flags & ACK:
            self._transport.write(frame(PING, ACK, 0, payload))
        elif kind == WINDOW_UPDATE and stream == 0:
            self._send_window += struct.unpack(">I", payload)[0] & 0x7FFFFFFF
            self._send()
        elif kind == GOAWAY:
            self._lost(H2CallFailed(f"the server sent GOAWAY (error code {struct.unpack_from('>I', payload, 4)[0]})"))

    def _finish(self, stream: int) -> None:
        future, body = self._calls.pop(stream)
        self._send()
        if future.done():
            return
        if len(body) < 5:
            future.set_exception(H2CallFailed(f"stream {stream} ended without a response message"))
        elif body[0] != 0 or struct.unpack_from(">I", body, 1)[0] != len(body) - 5:
            future.set_exception(H2CallFailed(f"stream {stream}: not one uncompressed gRPC message"))
        else:
            future.set_result(bytes(body[5:]))

    def _fail(self, stream: int, error: H2CallFailed) -> None:
        call = self._calls.pop(stream, None)
        if call is not None and not call[0].done():
            call[0].set_exception(error)
        self._send()

    def _lost(self, error: BaseException) -> None:
        self._closed = error
        for future, _ in self._calls.values():
            if not future.done():
                future.set_exception(H2CallFailed(str(error)))
        for _, future in self._waiting:
            if not future.done():
                future.set_exception(H2CallFailed(str(error)))
        self._calls.clear()
        self._waiting.clear()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost(exc or ConnectionResetError("the server closed the connection"))
