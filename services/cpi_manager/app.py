"""Assembly of cpi_manager."""

from __future__ import annotations

from dataclasses import dataclass

from collateral_vault.v1 import cpi_manager_pb2, cpi_manager_pb2_grpc

from services.common import cluster, pools
from services.common.chain import ChainClient
from services.common.config import Settings
from services.common.grpc_server import GrpcService, ServiceApp, registration
from services.common.migrations import migrate
from services.cpi_manager.service import CpiManagerService

GRPC_PORT, METRICS_PORT = 50053, 9103


@dataclass
class CpiManagerApp(ServiceApp):

    async def start(self, *, metrics: bool = True) -> None:
        s = self.settings
        pool = await pools.postgres(s.database_url)
        await migrate(pool)
        chain = ChainClient.for_settings(s)
        await cluster.verify_or_close(s, chain, pool)
        service = CpiManagerService(chain, pool, s.position_manager_id)
        self.grpc = GrpcService(s, [registration(service, cpi_manager_pb2, cpi_manager_pb2_grpc, "CpiManager")])

        async def close() -> None:
            await chain.close()
            await pool.close()

        self.grpc.on_stop.append(close)
        await self.grpc.start(metrics=metrics)


def settings() -> Settings:
    return Settings.for_service("cpi_manager", GRPC_PORT, METRICS_PORT)
