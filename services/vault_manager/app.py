"""Assembly of vault_manager: stores, chain client, the vault-change subscription and the gRPC servicers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from collateral_vault.v1 import (
    transaction_builder_pb2,
    transaction_builder_pb2_grpc,
    vault_manager_pb2,
    vault_manager_pb2_grpc,
)

from services.common import cluster, page_tokens, pools
from services.common.audit import AuditLog
from services.common.audit_outbox import AuditOutbox
from services.common.chain import ChainClient
from services.common.grpc_server import GrpcService, ServiceApp, registration
from services.common.migrations import migrate
from services.common.page_tokens import PageTokens
from services.common.vault_cache import VaultCache
from services.vault_manager import vault_changes
from services.vault_manager.page_workers import PageWorkers
from services.vault_manager.transaction_builder.service import TransactionBuilderService
from services.vault_manager.vault_service import VaultManagerService
from vault_client.config import Settings


@dataclass
class VaultManagerApp(ServiceApp):
    sync_task: asyncio.Task[None] | None = None

    async def start(self, *, metrics: bool = True) -> None:
        s = self.settings
        pool = await pools.postgres(s.database_url)
        await migrate(pool)
        redis = pools.redis(s.redis_url, max_connections=s.redis_max_connections,
                            wait_seconds=s.redis_pool_wait_seconds)
        chain = ChainClient.for_settings(s)
        await cluster.verify_or_close(s, chain, pool, redis)
        cache = VaultCache(redis, s.redis_prefix, s.cache_ttl_seconds)
        tokens = PageTokens(page_tokens.read_key(s.page_token_key_file), "ListVaults", s.page_token_ttl_seconds)
        pages = PageWorkers(s.database_url, s.list_page_processes)
        await pages.start()
        vaults = VaultManagerService(chain, cache, s.service, pages, tokens)
        outbox = AuditOutbox(AuditLog(pool), Path(s.audit_spool_dir) / f"{s.service}-audit.log", s.service)
        await outbox.open()  # delivers what an earlier process journaled and did not see stored
        builder = TransactionBuilderService(chain, redis, outbox, {s.position_manager_id}, s.redis_prefix, s.service,
                                            on_landed=vaults.mirror.landed)
        ready = asyncio.Event()
        self.sync_task = asyncio.create_task(vault_changes.follow(s.solana_ws_url, s.program, vaults.mirror,
                                                                  s.commitment, ready))
        self.grpc = GrpcService(s, [
            registration(vaults, vault_manager_pb2, vault_manager_pb2_grpc, "VaultManager"),
            registration(builder, transaction_builder_pb2, transaction_builder_pb2_grpc, "TransactionBuilder"),
        ])

        async def close() -> None:
            if self.sync_task:
                self.sync_task.cancel()
            await outbox.close()
            await pages.close()
            await chain.close()
            await redis.aclose()
            await pool.close()

        self.grpc.on_stop.append(close)
        await self.grpc.start(metrics=metrics)
        try:
            await asyncio.wait_for(ready.wait(), 5)
        except TimeoutError:
            pass  # the node may be down; GetVault falls back to the chain and the sync retries


def settings() -> Settings:
    return Settings.for_service("vault_manager")
