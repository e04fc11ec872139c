"""GET /tvl: the total value locked, from the monitor (VaultMonitor.GetTvl)."""

from __future__ import annotations

from aiohttp import web
from collateral_vault.v1 import vault_monitor_pb2, vault_monitor_pb2_grpc

from services.gateway.responses import as_json
from vault_client.config import GatewayConfig


class Tvl:
    def __init__(self, monitor: vault_monitor_pb2_grpc.VaultMonitorStub, config: GatewayConfig) -> None:
        self.monitor = monitor
        self.config = config

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/tvl", self.tvl)

    async def tvl(self, request: web.Request) -> web.Response:
        return web.json_response(as_json(await self.monitor.GetTvl(vault_monitor_pb2.GetTvlRequest(),
                                                                   timeout=self.config.deadline_seconds)))
