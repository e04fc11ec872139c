"""Assembly of monitor."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from collateral_vault.v1 import vault_monitor_pb2, vault_monitor_pb2_grpc

from services.common import cluster, pools
from services.common.chain import ChainClient
from services.common.grpc_server import GrpcService, ServiceApp, registration
from services.common.migrations import migrate
from services.monitor.admin_alerts import AdminChangeAlerts
from services.monitor.service import VaultMonitorService
from services.monitor.watcher import Watcher, WatcherConfig
from vault_client.config import Settings


@dataclass
class MonitorApp(ServiceApp):
    watcher_config: WatcherConfig = field(default_factory=WatcherConfig)
    run_watcher: bool = True
    watcher: Watcher | None = None
    admin_changes: AdminChangeAlerts | None = None

    async def start(self, *, metrics: bool = True) -> None:
        s = self.settings
        pool = await pools.postgres(s.database_url)
        await migrate(pool)
        chain = ChainClient.for_settings(s)
        await cluster.verify_or_close(s, chain, pool)
        self.watcher = Watcher(pool, chain, self.watcher_config)
        task = asyncio.create_task(self.watcher.run()) if self.run_watcher else None
        # the timelock's changes, from indexed events (admin_alerts.py)
        self.admin_changes = AdminChangeAlerts(pool, self.watcher.raise_alert, self.watcher_config.interval_seconds)
        admin_task = asyncio.create_task(self.admin_changes.run()) if self.run_watcher else None
        service = VaultMonitorService(pool, chain)
        self.grpc = GrpcService(s, [registration(service, vault_monitor_pb2, vault_monitor_pb2_grpc, "VaultMonitor")])

        async def close() -> None:
            for running in (task, admin_task):
                if running:
                    running.cancel()
            await chain.close()
            await pool.close()

        self.grpc.on_stop.append(close)
        await self.grpc.start(metrics=metrics)


def settings() -> Settings:
    return Settings.for_service("monitor")
