"""Browser origins (GATEWAY_CORS_ORIGINS). A request that carries an Origin header not in
the list is refused with 403, WebSocket upgrades included (browsers always send Origin on
them); requests without one (wallets' and exchanges' backends) are not affected. Listed
origins get CORS headers and their preflight requests (OPTIONS) are answered."""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

ALLOWED_METHODS = "GET, POST, OPTIONS"
ALLOWED_HEADERS = "content-type, x-request-id"
EXPOSED_HEADERS = "retry-after"


class OriginPolicy:
    def __init__(self, origins: Iterable[str]) -> None:
        self.origins = frozenset(origin.rstrip("/") for origin in origins)

    def allowed(self, origin: str) -> bool:
        return origin in self.origins

    def preflight(self, origin: str) -> web.Response:
        return web.Response(status=204, headers={
            "Access-Control-Allow-Origin": origin, "Access-Control-Allow-Methods": ALLOWED_METHODS,
            "Access-Control-Allow-Headers": ALLOWED_HEADERS, "Access-Control-Max-Age": "600", "Vary": "Origin"})

    @staticmethod
    def decorate(response: web.StreamResponse, origin: str) -> None:
        if response.prepared:  # a WebSocket: its headers went out with the upgrade
            return
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        response.headers.add("Vary", "Origin")
