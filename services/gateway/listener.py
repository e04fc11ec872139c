"""The gateway's listening socket, with the limits aiohttp's own sites lack: at most
`max_connections` open connections (one more is answered 503 and closed at once), a
TLS handshake bounded by the header timeout, and HTTPS when a certificate is configured.
The header timeout itself is aiohttp's keep-alive timeout (see `Gateway.start`): a
connection that has not delivered a whole request head within it, counted from connecting
or from its previous response, is closed however slowly it trickles bytes."""

from __future__ import annotations

import asyncio
import ssl
from typing import cast

from aiohttp import web

_BODY = b'{"error": {"code": "UNAVAILABLE", "message": "too many open connections"}}'
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
         b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(_BODY), _BODY))


class _Gate(asyncio.Protocol):
    """Each new connection's first protocol: once the connection is made (after the TLS
    handshake, if any) it hands the connection to a new aiohttp handler, or answers 503 and
    closes it when `max_connections` are open. The count and the hand-over happen in one
    callback, so connections accepted together cannot all slip under the limit."""

    def __init__(self, server: web.Server, max_connections: int) -> None:
        self.server = server
        self.max_connections = max_connections

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's TLS transport is one without subclassing asyncio's)
        stream = cast(asyncio.Transport, transport)
        if len(self.server.connections) >= self.max_connections:
            stream.write(_BUSY)
            stream.close()
            return
        handler = self.server()
        stream.set_protocol(handler)
        handler.connection_made(stream)

    def connection_lost(self, exc: Exception | None) -> None:
        pass  # refused above; an accepted connection's loss goes to its handler


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


async def listen(server: web.Server, host: str, port: int, *, max_connections: int, handshake_timeout: float,
                 tls: ssl.SSLContext | None) -> asyncio.Server:
    """Serves `server` (aiohttp's protocol factory) on host:port within the limits."""

    return await asyncio.get_running_loop().create_server(
        lambda: _Gate(server, max_connections), host, port, ssl=tls,
        ssl_handshake_timeout=handshake_timeout if tls else None, reuse_address=True, backlog=256)
