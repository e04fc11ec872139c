"""GET /healthz, the gateway's readiness. The core routes (vaults, history, transactions,
the WebSocket's replay) need vault_manager and balance_tracker; without one of them the
gateway is not ready (503). The monitor serves only /tvl: without it the gateway stays ready
and reports itself degraded. (Live events come from balance_tracker's StreamEvents; the
gateway holds no Redis connection.)"""

from __future__ import annotations

import asyncio

import grpc
from aiohttp import web
from grpc_health.v1 import health_pb2, health_pb2_grpc

CORE_BACKENDS = ("vault_manager", "balance_tracker")
OPTIONAL_BACKENDS = ("monitor",)
HEALTH_TIMEOUT_SECONDS = 2.0


class Health:
    def __init__(self, channels: dict[str, grpc.aio.Channel]) -> None:
        self.channels = channels

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/healthz", self.health)

    async def _backend_status(self, name: str) -> str:
        try:
            reply = await health_pb2_grpc.HealthStub(self.channels[name]).Check(
                health_pb2.HealthCheckRequest(), timeout=HEALTH_TIMEOUT_SECONDS)
            return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        except grpc.aio.AioRpcError as exc:
            return exc.code().name
        except (OSError, TimeoutError):
            return "UNAVAILABLE"

    async def health(self, request: web.Request) -> web.Response:
        """Readiness: 200 while the core backends serve (status "degraded" if an optional
        one does not), 503 when a core backend does not."""
        names = CORE_BACKENDS + OPTIONAL_BACKENDS
        backends = dict(zip(names, await asyncio.gather(*(self._backend_status(n) for n in names)), strict=True))
        ready = all(backends[name] == "SERVING" for name in CORE_BACKENDS)
        status = "unavailable" if not ready else "ok" if all(v == "SERVING" for v in backends.values()) \
            else "degraded"
        return web.json_response({"status": status, "backends": backends, "optional": list(OPTIONAL_BACKENDS)},
                                 status=200 if ready else 503)
