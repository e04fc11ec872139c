"""GetBalance's `indexed_slot` source (real PostgreSQL): one read shared by concurrent
callers, reused for at most `max_age`, never ahead of the database's cursor."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from services.balance_tracker.indexer.watermark import CursorWatermark


class CountingPool:
    """The pool, counting the queries that reach it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.queries = 0

    async def fetchrow(self, query: str, *args: Any) -> Any:
        self.queries += 1
        await asyncio.sleep(0.02)  # a slow read: the concurrent callers arrive meanwhile
        return await self.pool.fetchrow(query, *args)


async def move_cursor(pool: asyncpg.Pool, slot: int) -> None:
    await pool.execute("INSERT INTO indexer_cursor (name, slot, signature) VALUES ('w', $1, 'sig') "
                       "ON CONFLICT (name) DO UPDATE SET slot = excluded.slot", slot)


async def test_one_shared_read_reused_for_at_most_max_age(migrated_pool: asyncpg.Pool) -> None:
    counting = CountingPool(migrated_pool)
    watermark = CursorWatermark(counting, "w", max_age=0.2)
    assert await watermark.slot() == 0  # no cursor yet: nothing indexed
    await asyncio.sleep(0.25)
    await move_cursor(migrated_pool, 100)
    counting.queries = 0
    assert await asyncio.gather(*(watermark.slot() for _ in range(20))) == [100] * 20
    assert counting.queries == 1
    await move_cursor(migrated_pool, 150)
    assert await watermark.slot() == 100  # within max_age: the earlier (lower) reading
    await asyncio.sleep(0.25)
    assert await watermark.slot() == 150 and counting.queries == 2


async def test_a_cancelled_caller_does_not_cancel_the_shared_read(migrated_pool: asyncpg.Pool) -> None:
    await move_cursor(migrated_pool, 7)
    watermark = CursorWatermark(CountingPool(migrated_pool), "w")
    impatient = asyncio.ensure_future(watermark.slot())
    patient = asyncio.ensure_future(watermark.slot())
    await asyncio.sleep(0)
    impatient.cancel()
    assert await patient == 7
