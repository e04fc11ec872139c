"""Issue 25 item 3: balance snapshots cost what changed, and thin out by the retention policy
(all for a day, the last of each hour for 30 days, the last of each day after that).
Real PostgreSQL; the snapshot times are given to the pass, so days pass in a test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from services.balance_tracker import snapshots
from services.common.migrations import migrate
from tests.support.databases import migrated_before

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


async def make_vaults(pool: asyncpg.Pool, count: int) -> None:
    await pool.execute(
        "INSERT INTO vaults (owner, address, token_account, total_balance, available_balance, last_slot) "
        "SELECT 'o' || i, 'a' || i, 't' || i, i, i, i FROM generate_series(1, $1) AS i", count)


async def set_balance(pool: asyncpg.Pool, owner: str, total: int) -> None:
    await pool.execute("UPDATE vaults SET total_balance = $2, available_balance = $2, locked_balance = 0, "
                       "last_slot = last_slot + 1 WHERE owner = $1", owner, total)


async def rows(pool: asyncpg.Pool, owner: str) -> list[tuple[datetime, int, datetime | None]]:
    return [(r["taken_at"], int(r["total_balance"]), r["expires_at"]) for r in await pool.fetch(
        "SELECT taken_at, total_balance, expires_at FROM balance_snapshots WHERE owner = $1 ORDER BY taken_at",
        owner)]


async def test_a_pass_writes_only_the_vaults_that_changed(migrated_pool: asyncpg.Pool) -> None:
    pool = migrated_pool
    await make_vaults(pool, 300)
    assert await snapshots.take(pool, T0, batch=64, pause=0) == 300  # every vault is new: 5 batches
    assert await pool.fetchval("SELECT count(*) FROM vaults_changed") == 0

    # an idle pass writes nothing and reads no vault row and no snapshot: neither table gives
    # a row to a scan or an index while it runs (the counters of this backend, read before
    # and after it in one transaction)
    async with pool.acquire() as conn, conn.transaction():
        async def reads() -> list[int]:
            row = await conn.fetchrow(
                "SELECT pg_stat_get_xact_tuples_returned('vaults'::regclass) AS vr, "
                "pg_stat_get_xact_tuples_fetched('vaults'::regclass) AS vf, "
                "pg_stat_get_xact_tuples_returned('balance_snapshots'::regclass) AS sr, "
                "pg_stat_get_xact_tuples_fetched('balance_snapshots'::regclass) AS sf")
            assert row is not None
            return list(row.values())

        before = await reads()
        assert await snapshots.take_batch(conn, 100, T0 + timedelta(minutes=1)) == (0, 0)
        assert await reads() == before
    assert await pool.fetchval("SELECT count(*) FROM balance_snapshots") == 300

    # one vault changes: one snapshot, and its previous one (same hour) now expires after a day
    await set_balance(pool, "o7", 70)
    assert await snapshots.take(pool, T0 + timedelta(minutes=2), pause=0) == 1
    assert await rows(pool, "o7") == [(T0, 7, T0 + timedelta(days=1)), (T0 + timedelta(minutes=2), 70, None)]
    # a change undone before the next pass: the balances are the snapshot's, nothing is written
    await set_balance(pool, "o8", 80)
    await set_balance(pool, "o8", 8)
    assert await snapshots.take(pool, T0 + timedelta(minutes=3), pause=0) == 0
    assert await pool.fetchval("SELECT count(*) FROM vaults_changed") == 0
    # a locked amount is a change too; a closed vault gets no snapshot
    await pool.execute("UPDATE vaults SET locked_balance = 5, available_balance = 4 WHERE owner = 'o9'")
    await pool.execute("UPDATE vaults SET total_balance = 0, available_balance = 0, closed_at = now() "
                       "WHERE owner = 'o10'")
    assert await snapshots.take(pool, T0 + timedelta(minutes=4), pause=0) == 1
    assert [r[1] for r in await rows(pool, "o9")] == [9, 9] and len(await rows(pool, "o10")) == 1


async def test_retention_keeps_a_day_then_hourly_then_daily(migrated_pool: asyncpg.Pool) -> None:
    pool = migrated_pool
    await make_vaults(pool, 2)
    times = [T0, T0 + timedelta(minutes=20), T0 + timedelta(minutes=40),  # three in one hour
             T0 + timedelta(hours=1, minutes=10), T0 + timedelta(hours=3),  # the same day, later hours
             T0 + timedelta(days=1, hours=-1)]  # the next day
    for n, at in enumerate(times):
        await set_balance(pool, "o1", 100 + n)
        assert await snapshots.take(pool, at, pause=0) == (2 if n == 0 else 1)
    day, month = timedelta(days=1), timedelta(days=30)
    assert [r[2] for r in await rows(pool, "o1")] == [
        times[0] + day, times[1] + day,  # not the last of their hour: a day
        times[2] + month, times[3] + month,  # the last of their hour, not of their day: 30 days
        None, None]  # the last of their day (and the newest): kept
    assert await snapshots.thin(pool, T0 + timedelta(hours=23)) == 0  # nothing is a day old yet
    assert await snapshots.thin(pool, T0 + timedelta(days=2), batch=1, pause=0) == 2  # batches of one
    assert [r[0] for r in await rows(pool, "o1")] == times[2:]
    assert await snapshots.thin(pool, T0 + timedelta(days=29)) == 0
    assert await snapshots.thin(pool, T0 + timedelta(days=31)) == 2
    assert [r[0] for r in await rows(pool, "o1")] == times[4:]  # one a day from then on
    assert await snapshots.thin(pool, T0 + timedelta(days=3650)) == 0
    assert len(await rows(pool, "o2")) == 1  # the idle vault: its one snapshot, kept


async def test_the_migration_dates_old_snapshots_and_marks_vaults_without_a_current_one(pg_database: str) -> None:
    async with migrated_before(pg_database, 252) as pool:
        await make_vaults(pool, 3)  # balances 1, 2, 3
        old = [("o1", T0, 5), ("o1", T0 + timedelta(minutes=10), 5), ("o1", T0 + timedelta(hours=2), 5),
               ("o1", T0 + timedelta(days=1), 5), ("o2", T0, 2)]  # o1's last differs; o2's is current; o3: none
        await pool.executemany("INSERT INTO balance_snapshots (owner, taken_at, slot, total_balance, "
                               "locked_balance, available_balance) VALUES ($1, $2, 1, $3, 0, $3)", old)
        await migrate(pool)
        assert [r[2] for r in await rows(pool, "o1")] == [T0 + timedelta(days=1),
                                                         T0 + timedelta(minutes=10, days=30), None, None]
        assert {r["owner"] for r in await pool.fetch("SELECT owner FROM vaults_changed")} == {"o1", "o3"}
