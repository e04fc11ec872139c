"""Assembly of cpi_manager."""

from __future__ import annotations

from dataclasses import dataclass

from collateral_vault.v1 import cpi_manager_pb2, cpi_manager_pb2_grpc

from services.common import pools
from services.common.chain import ChainClient
from services.common.config import Settings
from services.common.grpc_server import GrpcService
from services.common.migrations import migrate
from services.cpi_manager.service import CpiManagerService

GRPC_PORT, METRICS_PORT = 50053, 9103


@dataclass
class CpiManagerApp:
    settings: Settings
    grpc: GrpcService | None = None

    async def start(self, *, metrics: bool = True) -> None:
        s = self.settings
        pool = await pools.postgres(s.database_url)
        await migrate(pool)
        chain = ChainClient(s.solana_rpc_url, s.program, s.service, s.commitment)
        service = CpiManagerService(chain, pool, s.position_manager_id)
        self.grpc = GrpcService(s, [
            (lambda server: cpi_manager_pb2_grpc.add_CpiManagerServicer_to_server(service, server),
             cpi_manager_pb2.DESCRIPTOR.services_by_name["CpiManager"].full_name)])

        async def close() -> None:
            await chain.close()
            await pool.close()

        self.grpc.on_stop.append(close)
        await self.grpc.start(metrics=metrics)

    async def stop(self) -> None:
        if self.grpc:
            await self.grpc.stop()


def settings() -> Settings:
    return Settings.for_service("cpi_manager", GRPC_PORT, METRICS_PORT)
