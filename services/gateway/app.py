"""The gateway (aiohttp) assembled: the REST API (`rest/`) and the WebSocket event stream
(`websocket/`) over the gRPC services, behind one middleware (allowed browser origins,
per-client rate limiting keyed by the client behind trusted proxies, the request body's size
and time limits, gRPC statuses mapped to HTTP codes with the backend's message), served by a
listener with a connection limit and HTTPS when configured. It reaches the services over TLS
with its own credential when configured (GRPC_CA_FILE, GRPC_TOKEN_FILE)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import grpc
from aiohttp import web
from collateral_vault.v1 import (
    balance_tracker_pb2_grpc,
    transaction_builder_pb2_grpc,
    vault_manager_pb2_grpc,
    vault_monitor_pb2_grpc,
)

from services.gateway.client_address import ClientAddress
from services.gateway.listener import listen, tls_context
from services.gateway.origins import OriginPolicy
from services.gateway.ratelimit import RateLimiter
from services.gateway.responses import HTTP_STATUS, MAX_BODY, error
from services.gateway.rest import openapi
from services.gateway.rest.health import Health
from services.gateway.rest.transactions import Transactions
from services.gateway.rest.tvl import Tvl
from services.gateway.rest.vaults import Vaults
from services.gateway.websocket.events import EventSocket
from services.gateway.websocket.limits import SocketLimits
from vault_client import grpc_tls
from vault_client.config import GatewayConfig

__all__ = ["Gateway", "GatewayConfig"]

logger = logging.getLogger("gateway")
LINGER_SECONDS = 1.0


class Gateway:
    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.limiter = RateLimiter(config.rate_per_second, config.burst, config.rate_clients)
        self.clients = ClientAddress(config.trusted_proxies)
        self.origins = OriginPolicy(config.cors_origins)
        self.channels = {name: grpc_tls.channel(addr, config.backends) for name, addr in (
            ("vault_manager", config.vault_manager), ("balance_tracker", config.balance_tracker),
            ("monitor", config.monitor))}
        vaults = vault_manager_pb2_grpc.VaultManagerStub(self.channels["vault_manager"])
        builder = transaction_builder_pb2_grpc.TransactionBuilderStub(self.channels["vault_manager"])
        tracker = balance_tracker_pb2_grpc.BalanceTrackerStub(self.channels["balance_tracker"])
        monitor = vault_monitor_pb2_grpc.VaultMonitorStub(self.channels["monitor"])
        self.sockets = SocketLimits(config.ws_max_connections, config.ws_max_per_client)
        self.health = Health(self.channels)
        self.tvl = Tvl(monitor, config)
        self.vaults = Vaults(vaults, tracker, config)
        self.transactions = Transactions(builder, config)
        self.events = EventSocket(tracker, self.clients, self.sockets)
        self.runner: web.AppRunner | None = None
        self.listener: asyncio.Server | None = None

    @web.middleware
    async def middleware(self, request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and not self.origins.allowed(origin):
            return error(403, "PERMISSION_DENIED", f"origin {origin[:100]!r} is not allowed (GATEWAY_CORS_ORIGINS)")
        if origin is not None and request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            return self.origins.preflight(origin)
        client = self.clients.of(request.remote, request.headers.get("X-Forwarded-For"))
        wait = self.limiter.allow(client)
        if wait:
            response: web.StreamResponse = error(
                429, "RESOURCE_EXHAUSTED", f"rate limit of {self.config.rate_per_second:g} requests/s exceeded",
                {"Retry-After": str(max(1, round(wait)))})
        else:
            response = await self._handle(request, handler)
        if origin is not None:
            self.origins.decorate(response, origin)
        return response

    async def _handle(self, request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        try:
            if request.body_exists:  # the whole body within the time limit, before any handler waits on it
                try:
                    await asyncio.wait_for(request.read(), self.config.body_timeout_seconds)
                except TimeoutError:
                    late = error(408, "REQUEST_TIMEOUT", f"the request body did not arrive within "
                                 f"{self.config.body_timeout_seconds:g} s")
                    late.force_close()
                    return late
            return await handler(request)
        except grpc.aio.AioRpcError as exc:
            status = HTTP_STATUS.get(exc.code(), 502)
            return error(status, exc.code().name, exc.details() or exc.code().name)
        except web.HTTPRequestEntityTooLarge:
            return error(413, "REQUEST_TOO_LARGE", f"request bodies are limited to {MAX_BODY} bytes")
        except web.HTTPException:
            raise
        except Exception:
            logger.exception("gateway error")
            return error(500, "INTERNAL", "internal error")

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self.middleware])
        app.router.add_get("/openapi.json", openapi.openapi)
        for routes in (self.health, self.tvl, self.vaults, self.transactions, self.events):
            routes.add_routes(app.router)
        return app

    async def start(self) -> None:
        config = self.config
        # aiohttp's keep-alive timeout closes a connection that has not sent a whole request
        # head within it (from connecting or from its last response): the header timeout;
        # the rest of a body a request was answered without (a 408, a 413) is drained for at
        # most LINGER_SECONDS before the connection closes
        self.runner = web.AppRunner(self.app(), access_log=None, keepalive_timeout=config.header_timeout_seconds,
                                    lingering_time=LINGER_SECONDS)
        await self.runner.setup()
        assert self.runner.server is not None
        tls = tls_context(config.tls_cert, config.tls_key) if config.tls_cert else None
        self.listener = await listen(self.runner.server, config.host, config.port,
                                     max_connections=config.max_connections,
                                     handshake_timeout=config.header_timeout_seconds, tls=tls)

    async def stop(self) -> None:
        if self.listener is not None:
            self.listener.close()
        if self.runner:
            await self.runner.cleanup()
        for channel in self.channels.values():
            await channel.close()
