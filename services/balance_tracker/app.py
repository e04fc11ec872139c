"""Assembly of balance_tracker: the indexer (leader-elected), snapshots, scheduled
reconciliation, table upkeep (when the server runs without autovacuum) and the
BalanceTracker gRPC service."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from collateral_vault.v1 import balance_tracker_pb2, balance_tracker_pb2_grpc
from grpc_health.v1 import health_pb2

from services.balance_tracker import reconcile, snapshots, table_upkeep
from services.balance_tracker.fanout import EventFanout
from services.balance_tracker.indexer import progress
from services.balance_tracker.indexer.follower import Indexer, IndexerConfig, indexer_pool
from services.balance_tracker.indexer.leadership import new_holder
from services.balance_tracker.indexer.publisher import Publisher
from services.balance_tracker.service import BalanceTrackerService
from services.common import cluster, pools
from services.common.chain import ChainClient
from services.common.grpc_server import GrpcService, ServiceApp, registration
from services.common.migrations import migrate
from services.common.vault_cache import VaultCache
from vault_client import event_loop
from vault_client.config import Settings


@dataclass
class BalanceTrackerApp(ServiceApp):
    indexer_enabled: bool | None = None  # None: the settings' INDEXER_ENABLED
    snapshot_seconds: float | None = None  # None: the settings' SNAPSHOT_INTERVAL_SECONDS
    reconcile_seconds: float | None = None  # None: the settings' RECONCILE_INTERVAL_SECONDS
    indexer: Indexer | None = None
    fanout: EventFanout | None = None  # the live event feed StreamEvents reads
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self, *, metrics: bool = True) -> None:
        s = self.settings
        pool = await pools.postgres(s.database_url)
        await migrate(pool)
        redis = pools.redis(s.redis_url, max_connections=s.redis_max_connections,
                            wait_seconds=s.redis_pool_wait_seconds)
        cache = VaultCache(redis, s.redis_prefix, s.cache_ttl_seconds)
        chain = ChainClient.for_settings(s)
        await cluster.verify_or_close(s, chain, pool, redis)
        publisher = Publisher(redis, cache, s.program, s.redis_prefix)
        config = IndexerConfig(s.solana_rpc_url, s.solana_ws_url, s.database_url, s.program, s.commitment,
                               exchange_program=s.position_manager_id, lease_seconds=s.indexer_lease_seconds,
                               rpc_max_batch=s.rpc_max_batch)
        pools_to_close = [pool]
        if s.indexer_enabled if self.indexer_enabled is None else self.indexer_enabled:
            holder = new_holder()
            own = await indexer_pool(s.database_url, holder, config.lease_seconds)
            pools_to_close.append(own)
            self.indexer = Indexer(config, own, publisher, holder)
            self.tasks.append(asyncio.create_task(self.indexer.run()))
            self.tasks.append(asyncio.create_task(progress.watch(self.indexer, self._report_progress,
                                                                 s.indexer_stuck_seconds,
                                                                 min(5.0, s.indexer_stuck_seconds / 4))))
        snapshot_seconds = self.snapshot_seconds or s.snapshot_interval_seconds
        self.tasks.append(asyncio.create_task(snapshots.every(pool, snapshot_seconds, s.snapshot_retention_seconds,
                                                              s.snapshot_batch_rows)))
        self.tasks.append(asyncio.create_task(table_upkeep.every(pool, s.table_upkeep_seconds)))
        reconciler = reconcile.Reconciler(pool, chain, config.cursor_name)
        self.tasks.append(asyncio.create_task(reconcile.every(
            reconciler, s.reconcile_interval_seconds if self.reconcile_seconds is None else self.reconcile_seconds)))
        self.fanout = fanout = EventFanout(s.redis_url, s.redis_prefix, pool,
                                           max_subscribers=s.stream_max_subscribers,
                                           max_per_client=s.stream_max_per_client, queue_size=s.stream_queue_size)
        fanout.start()
        service = BalanceTrackerService(pool, redis, cache, chain, fanout, config.cursor_name, reconciler)
        self.grpc = GrpcService(s, [
            registration(service, balance_tracker_pb2, balance_tracker_pb2_grpc, "BalanceTracker")])

        async def close() -> None:
            await fanout.stop()
            await event_loop.cancel_and_wait(self.tasks)
            await chain.close()
            await redis.aclose()
            for each in pools_to_close:
                await each.close()

        self.grpc.on_stop.append(close)
        await self.grpc.start(metrics=metrics)

    async def _report_progress(self, healthy: bool) -> None:
        """A stuck indexer makes this replica unhealthy (its liveness probe fails)."""
        if self.grpc is None or self.grpc.health is None:
            return
        status = health_pb2.HealthCheckResponse.SERVING if healthy else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ("", balance_tracker_pb2.DESCRIPTOR.services_by_name["BalanceTracker"].full_name):
            await self.grpc.health.set(name, status)


def settings() -> Settings:
    return Settings.for_service("balance_tracker")
