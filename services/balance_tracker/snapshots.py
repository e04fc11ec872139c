"""Periodic balance snapshots of every open vault."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

logger = logging.getLogger("snapshots")


async def take(pool: asyncpg.Pool) -> int:
    result = await pool.execute(
        "INSERT INTO balance_snapshots (owner, taken_at, slot, total_balance, locked_balance, available_balance) "
        "SELECT owner, now(), last_slot, total_balance, locked_balance, available_balance FROM vaults "
        "WHERE closed_at IS NULL ON CONFLICT DO NOTHING")
    return int(result.split()[-1])


async def every(pool: asyncpg.Pool, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            count = await take(pool)
            logger.info("took %d balance snapshots", count)
        except (OSError, asyncpg.PostgresError) as exc:
            logger.warning("snapshot skipped: %s", exc)
