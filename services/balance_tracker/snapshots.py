"""Balance snapshots that cost what changed (migration 252, docs/snapshots.md).

* A pass takes the owners whose balances changed since their last snapshot
  (`vaults_changed`, filled by triggers in the transactions that change vault rows), a
  batch at a time, and in the same statement writes their snapshots and marks when the
  previous snapshot of each expires. An idle vault costs nothing: a pass over an idle
  system reads one empty index.
* Retention deletes the snapshots whose time has come (`expires_at`, by its index), a
  bounded batch per statement with a pause between batches, so it never holds the database
  for long: all snapshots for a day, the last of each hour for 30 days, the last of each day
  after that.

Both run as paced background tasks of balance_tracker, never on a request."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

import asyncpg

logger = logging.getLogger("snapshots")

BATCH_ROWS = 1_000  # owners per transaction: an indexer batch touching one of them waits for it (tens of ms)
PAUSE_SECONDS = 0.05  # between two batches of one pass: other work gets the database in between

# A batch of the owners whose balances changed, taken (their markers deleted) in the
# transaction that writes their snapshots: a pass that fails leaves them for the next.
_TAKE = """
DELETE FROM vaults_changed
WHERE owner IN (SELECT owner FROM vaults_changed LIMIT $1 FOR UPDATE SKIP LOCKED)
RETURNING owner
"""

# $1 the owners taken, $2 the snapshot time. A vault whose balances are back where its last
# snapshot had them gets no new one. Every lookup is by primary key, one owner at a time
# (LATERAL ... LIMIT 1 keeps them so whatever the planner's statistics say: a plan that
# joined by hashing read every vault, or every snapshot, per batch), and the previous
# snapshots are updated by their tuple ids.
_WRITE = """
WITH current AS (
    SELECT t.owner, v.last_slot, v.total_balance, v.locked_balance, v.available_balance,
           p.ctid AS previous_row, p.taken_at AS previous_at, p.total_balance AS previous_total,
           p.locked_balance AS previous_locked, p.available_balance AS previous_available
    FROM unnest($1::text[]) AS t(owner)
    CROSS JOIN LATERAL (SELECT last_slot, total_balance, locked_balance, available_balance FROM vaults
                        WHERE owner = t.owner AND closed_at IS NULL LIMIT 1) AS v
    LEFT JOIN LATERAL (SELECT ctid, taken_at, total_balance, locked_balance, available_balance
                       FROM balance_snapshots AS s WHERE s.owner = t.owner AND s.taken_at < $2
                       ORDER BY taken_at DESC LIMIT 1) AS p ON TRUE
), changed AS MATERIALIZED (
    SELECT * FROM current
    WHERE previous_at IS NULL OR (total_balance, locked_balance, available_balance)
                                 IS DISTINCT FROM (previous_total, previous_locked, previous_available)
), expiring AS (
    UPDATE balance_snapshots SET expires_at = CASE
            WHEN date_trunc('hour', taken_at, 'UTC') = date_trunc('hour', $2::timestamptz, 'UTC')
                THEN taken_at + interval '1 day'
            WHEN date_trunc('day', taken_at, 'UTC') = date_trunc('day', $2::timestamptz, 'UTC')
                THEN taken_at + interval '30 days'
        END
    WHERE ctid = ANY(ARRAY(SELECT previous_row FROM changed WHERE previous_row IS NOT NULL))
)
INSERT INTO balance_snapshots (owner, taken_at, slot, total_balance, locked_balance, available_balance)
SELECT owner, $2, last_slot, total_balance, locked_balance, available_balance FROM changed
ON CONFLICT DO NOTHING
"""

_EXPIRED = """
DELETE FROM balance_snapshots AS s
USING (SELECT owner, taken_at FROM balance_snapshots WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2) AS d
WHERE s.owner = d.owner AND s.taken_at = d.taken_at
"""


async def take_batch(conn: asyncpg.Connection, batch: int, now: datetime) -> tuple[int, int]:
    """Up to `batch` changed vaults: (how many were taken, how many snapshots written). With
    nothing changed, one read of an empty index and nothing else."""
    async with conn.transaction():
        owners = [r["owner"] for r in await conn.fetch(_TAKE, batch)]
        if not owners:
            return 0, 0
        result = await conn.execute(_WRITE, owners, now)
    return len(owners), int(result.split()[-1])


async def take(pool: asyncpg.Pool, now: datetime | None = None, batch: int = BATCH_ROWS,
               pause: float = PAUSE_SECONDS) -> int:
    """One pass: snapshots of every vault that changed since its last one, `batch` owners
    per transaction; returns how many were written."""
    written = 0
    async with pool.acquire() as conn:
        at = now or await conn.fetchval("SELECT now()")
        while True:
            taken, count = await take_batch(conn, batch, at)
            written += count
            if taken < batch:
                return written
            await asyncio.sleep(pause)


async def thin(pool: asyncpg.Pool, now: datetime | None = None, batch: int = BATCH_ROWS,
               pause: float = PAUSE_SECONDS) -> int:
    """Deletes the snapshots the retention policy no longer keeps, `batch` per statement;
    returns how many."""
    deleted = 0
    while True:
        result = await pool.execute(_EXPIRED, now or await pool.fetchval("SELECT now()"), batch)
        count = int(result.split()[-1])
        deleted += count
        if count < batch:
            return deleted
        await asyncio.sleep(pause)


async def every(pool: asyncpg.Pool, seconds: float, retention_seconds: float, batch: int = BATCH_ROWS) -> None:
    """Snapshot passes every `seconds`, retention every `retention_seconds`."""
    loop = asyncio.get_running_loop()
    thinned_at = loop.time()
    while True:
        await asyncio.sleep(seconds)
        try:
            count = await take(pool, batch=batch)
            logger.info("took %d balance snapshots", count)
            if loop.time() - thinned_at >= retention_seconds:
                thinned_at = loop.time()
                logger.info("retention deleted %d balance snapshots", await thin(pool, batch=batch))
        except (OSError, asyncpg.PostgresError) as exc:
            logger.warning("snapshot pass skipped: %s", exc)
