"""balance_tracker's table upkeep (services/balance_tracker/table_upkeep.py) on real
PostgreSQL. The defect it fixes (issue 25): on a server without autovacuum (the machine's CI
server runs so) a table the indexer filled never gets statistics, and ListVaults' page query
sorted every open vault instead of reading the address index in order. Tests pass the
thresholds explicitly (autovacuum off or on), so they hold whatever the server runs with."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time

import asyncpg
import pytest

from services.balance_tracker import table_upkeep
from services.common.vault_rows import _PAGE
from tests.services.test_snapshots import make_vaults
from vault_client.config import ConfigError, Settings

VAULTS = 20_000


async def _stats(pool: asyncpg.Pool) -> asyncpg.Record:
    return await pool.fetchrow(
        "SELECT s.last_analyze, s.last_vacuum, c.reltuples FROM pg_stat_user_tables AS s "
        "JOIN pg_class AS c ON c.oid = s.relid WHERE s.relname = 'vaults'")


async def _due_for(pool: asyncpg.Pool, limits: table_upkeep.Thresholds, table: str = "public.vaults"
                   ) -> table_upkeep.Work:
    """The work due for `table`, once the server's statistics show it (they are flushed by
    each backend within about a second)."""
    deadline = time.monotonic() + 10
    while True:
        work = {w.table: w for w in await table_upkeep.due(pool, limits)}
        if table in work or time.monotonic() > deadline:
            assert table in work, f"{table} never became due: {sorted(work)}"
            return work[table]
        await asyncio.sleep(0.2)


async def _page_plan(pool: asyncpg.Pool) -> str:
    async with pool.acquire() as conn:
        await conn.execute(f"PREPARE page(text, int, text) AS {_PAGE}")
        try:
            return "\n".join(r[0] for r in await conn.fetch("EXPLAIN EXECUTE page('', 501, 'collateral_vault')"))
        finally:
            await conn.execute("DEALLOCATE page")


@pytest.fixture
async def off(migrated_pool: asyncpg.Pool) -> table_upkeep.Thresholds:
    return dataclasses.replace(await table_upkeep.thresholds(migrated_pool), autovacuum=False, track_counts=True)


async def test_without_autovacuum_a_filled_table_is_analyzed_and_pages_read_the_index(
        migrated_pool: asyncpg.Pool, off: table_upkeep.Thresholds) -> None:
    pool = migrated_pool
    await make_vaults(pool, VAULTS)
    assert (await _stats(pool))["reltuples"] < 0  # never analyzed: the defect, reproduced
    assert "Sort" in await _page_plan(pool)
    work = await _due_for(pool, off)
    assert work.analyze
    done = await table_upkeep.upkeep(pool, off)
    assert done is not None and "public.vaults" in {w.table for w in done}
    stats = await _stats(pool)
    assert stats["last_analyze"] is not None or stats["last_vacuum"] is not None
    assert stats["reltuples"] == pytest.approx(VAULTS, rel=0.05)
    plan = await _page_plan(pool)
    assert "Index Scan using vaults_open_by_address" in plan and "Sort" not in plan


async def test_dead_rows_are_vacuumed(migrated_pool: asyncpg.Pool, off: table_upkeep.Thresholds) -> None:
    pool = migrated_pool
    await make_vaults(pool, 2_000)
    await table_upkeep.upkeep(pool, off)
    await pool.execute("UPDATE vaults SET total_balance = total_balance + 1, available_balance = available_balance + 1")
    work = await _due_for(pool, off)
    assert work.vacuum
    await table_upkeep.upkeep(pool, off)
    assert (await _stats(pool))["last_vacuum"] is not None


async def test_nothing_is_done_while_autovacuum_runs(migrated_pool: asyncpg.Pool,
                                                     off: table_upkeep.Thresholds) -> None:
    pool = migrated_pool
    await make_vaults(pool, 2_000)
    await _due_for(pool, off)
    on = dataclasses.replace(off, autovacuum=True)
    assert not on.upkeep_needed
    assert await table_upkeep.upkeep(pool, on) == []
    assert (await _stats(pool))["last_analyze"] is None
    # without track_counts there are no counts to go by: no upkeep either
    assert not dataclasses.replace(off, track_counts=False).upkeep_needed


async def test_one_pass_at_a_time_across_replicas(migrated_pool: asyncpg.Pool,
                                                  off: table_upkeep.Thresholds) -> None:
    pool = migrated_pool
    await make_vaults(pool, 2_000)
    await _due_for(pool, off)
    async with pool.acquire() as other:  # another replica's pass holds the lock
        assert await other.fetchval("SELECT pg_try_advisory_lock($1)", table_upkeep._LOCK_KEY)
        try:
            assert await table_upkeep.upkeep(pool, off) is None
            assert (await _stats(pool))["last_analyze"] is None
        finally:
            await other.execute("SELECT pg_advisory_unlock($1)", table_upkeep._LOCK_KEY)
    assert await table_upkeep.upkeep(pool, off)


async def test_the_loop_outlives_a_lost_database(pg_database: str, caplog: pytest.LogCaptureFixture) -> None:
    pool = await asyncpg.create_pool(pg_database, min_size=1, max_size=1)
    await pool.close()  # every call now fails: as with a database cut
    caplog.set_level(logging.WARNING, "table_upkeep")
    task = asyncio.create_task(table_upkeep.every(pool, 0.05))
    await asyncio.sleep(0.3)
    assert not task.done()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert any("table upkeep skipped" in r.getMessage() for r in caplog.records)


def test_a_non_positive_interval_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABLE_UPKEEP_SECONDS", "0")
    with pytest.raises(ConfigError, match="TABLE_UPKEEP_SECONDS must be positive"):
        Settings.for_service("balance_tracker")
