"""Running services for tests: real gRPC over loopback sockets, against an in-process
localnet, a private PostgreSQL database and a private Redis key prefix."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from bench.service_settings import operator_key_file, settings_for, spool_dir
from localnet import genesis
from vault_client.config import Settings
from vaultctl.wallet import sign

__all__ = ["operator_key_file", "settings_for", "sign", "spool_dir"]


@dataclass
class Running:
    settings: Settings
    app: Any = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.settings.grpc_port}"


@asynccontextmanager
async def running_app(app: Any, settings: Settings, *, metrics: bool = True) -> AsyncIterator[Running]:
    """Starts a service app (real gRPC socket) for the duration of the block."""
    await app.start(metrics=metrics)
    try:
        yield Running(settings, app)
    finally:
        await app.stop()


def vault_manager(settings: Settings) -> AbstractAsyncContextManager[Running]:
    from services.vault_manager.app import VaultManagerApp

    return running_app(VaultManagerApp(settings), settings)


@asynccontextmanager
async def balance_tracker(settings: Settings, **options: object) -> AsyncIterator[object]:
    from services.balance_tracker.app import BalanceTrackerApp

    app = BalanceTrackerApp(settings, **options)  # type: ignore[arg-type]
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


#: owners of the vaults localnet's genesis creates (the exchange's fee and insurance-fund vaults)
GENESIS_OWNERS = [str(genesis.dev_keypair(name).pubkey()) for name in ("fee_vault_owner", "insurance_vault_owner")]


async def wait_for_rows(database_url: str, expected: int, timeout: float = 60.0, kind: str | None = None) -> int:
    """Waits until the transactions table holds `expected` rows (of `kind`) besides genesis'
    own (the exchange's fee and insurance-fund vaults, created at localnet's genesis);
    returns the count."""
    import asyncio
    import time

    import asyncpg

    deadline = time.monotonic() + timeout
    count = -1
    while time.monotonic() < deadline:
        try:
            conn = await asyncpg.connect(database_url)
            try:
                count = await conn.fetchval(
                    "SELECT count(*) FROM transactions WHERE ($1::text IS NULL OR kind = $1) AND owner <> ALL($2)",
                    kind, GENESIS_OWNERS)
            finally:
                await conn.close()
        except (OSError, asyncpg.PostgresError):
            pass
        if count >= expected:
            return count
        await asyncio.sleep(0.1)
    return count


async def fund_operator(client: Any, sol: int = 10) -> None:
    """The operator pays its transactions' fees: SOL for localnet's operator key."""
    from solana.rpc.commitment import Confirmed

    signature = (await client.request_airdrop(genesis.dev_keypair("operator").pubkey(), sol * 10**9)).value
    await client.confirm_transaction(signature, Confirmed, sleep_seconds=0.02)


def cpi_manager(settings: Settings) -> AbstractAsyncContextManager[Running]:
    from services.cpi_manager.app import CpiManagerApp

    return running_app(CpiManagerApp(settings), settings)


def monitor(settings: Settings) -> AbstractAsyncContextManager[Running]:
    from services.monitor.app import MonitorApp

    return running_app(MonitorApp(settings, run_watcher=False), settings, metrics=False)
