"""Assembly of cpi_manager."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import asyncpg
from collateral_vault.v1 import cpi_manager_pb2, cpi_manager_pb2_grpc

from services.common import cluster, pools
from services.common.chain import ChainClient
from services.common.grpc_server import GrpcService, ServiceApp, registration
from services.common.migrations import migrate
from services.cpi_manager.executor import OperatorExecutor
from services.cpi_manager.request_store import RequestStore
from services.cpi_manager.service import CpiManagerService
from services.cpi_manager.signer import signer_for
from vault_client.config import Settings
from vault_client.vault_program import ExchangeProgram

PRUNE_SECONDS = 3600.0
logger = logging.getLogger("cpi_manager")


async def prune_every(store: RequestStore, retention_days: float, seconds: float = PRUNE_SECONDS) -> None:
    """Finished requests are kept for the retention, then forgotten (the table stays bounded)."""
    while True:
        try:
            while await store.prune(retention_days) > 0:
                pass
        except (OSError, asyncpg.PostgresError) as exc:
            logger.warning("pruning finished operator requests failed: %s", exc)
        await asyncio.sleep(seconds)


@dataclass
class CpiManagerApp(ServiceApp):

    async def start(self, *, metrics: bool = True) -> None:
        s = self.settings
        pool = await pools.postgres(s.database_url)
        await migrate(pool)
        chain = ChainClient.for_settings(s)
        await cluster.verify_or_close(s, chain, pool)
        try:
            signer = await signer_for(s.operator_signer)
        except BaseException:
            await chain.close()
            await pool.close()
            raise
        # the per-trader locks' own connections (request_store.py)
        lock_pool = await pools.postgres(s.database_url, max_size=s.operator_concurrency)
        # the operator's transactions are checked (preflight) and its reads made at `processed`:
        # each operation sees the trader's previous ones, even those not yet confirmed
        operator_chain = ChainClient(s.solana_rpc_url, s.program, s.service, "processed", s.rpc_max_batch)
        executor = OperatorExecutor(operator_chain, RequestStore(pool, lock_pool),
                                    ExchangeProgram(s.program, s.position_manager_id), signer)
        if signer is None:
            logger.warning("no operator signer configured: Lock, Release, Settle and Liquidate answer "
                           "FAILED_PRECONDITION")
        else:
            logger.info("operator operations are signed by %s", signer.public_key)
        store = executor.store
        pruning = asyncio.create_task(prune_every(store, s.operator_request_retention_days))
        service = CpiManagerService(chain, s, executor)
        self.grpc = GrpcService(s, [registration(service, cpi_manager_pb2, cpi_manager_pb2_grpc, "CpiManager")])

        async def close() -> None:
            pruning.cancel()
            if signer is not None:
                await signer.close()
            await chain.close()
            await operator_chain.close()
            await lock_pool.close()
            await pool.close()

        self.grpc.on_stop.append(close)
        await self.grpc.start(metrics=metrics)


def settings() -> Settings:
    return Settings.for_service("cpi_manager")
