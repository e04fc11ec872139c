"""Table upkeep when PostgreSQL's autovacuum is off: what autovacuum would do for the tables
this service's role owns — ANALYZE a table once enough rows changed since its statistics
were taken, VACUUM it once enough rows died or were inserted since its last vacuum — by the
server's own autovacuum thresholds (`autovacuum_*_threshold + autovacuum_*_scale_factor x
rows`).

Why (issue 25): a server may run without autovacuum (this repository's CI server does). Then
a table the indexer filled has no statistics at all: at 100k vaults the planner took the
vaults table for 265 rows and answered each ListVaults page by sorting all 100k open vaults
(85 ms a page instead of a few) until its prepared plan turned generic; and the vault rows,
rewritten by every event, would keep their dead versions forever. With autovacuum on (as a
production server should run, docs/deployment.md) a pass finds it on and does nothing.

One replica at a time: a pass holds a session advisory lock and skips when another replica
holds it. A table at a time, the lightest first (ANALYZE reads a fixed sample of rows;
VACUUM is online: reads and writes go on)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import asyncpg

logger = logging.getLogger("table_upkeep")
_LOCK_KEY = 0x7461_626C_6575_7000  # "tableup\0": one upkeep pass at a time across replicas

_SETTINGS = "SELECT name, setting FROM pg_settings WHERE name = ANY($1::text[])"

# this role's tables, with what changed since their statistics and their last vacuum
_TABLES = """
SELECT format('%I.%I', s.schemaname, s.relname) AS name, greatest(c.reltuples, 0)::float8 AS rows,
       s.n_mod_since_analyze AS modified, s.n_dead_tup AS dead, s.n_ins_since_vacuum AS inserted
FROM pg_stat_user_tables AS s JOIN pg_class AS c ON c.oid = s.relid
WHERE c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
ORDER BY c.relpages, s.relname
"""


@dataclass(frozen=True)
class Thresholds:
    """The server's autovacuum settings (pg_settings)."""

    autovacuum: bool
    track_counts: bool
    analyze_threshold: float = 50
    analyze_scale: float = 0.1
    vacuum_threshold: float = 50
    vacuum_scale: float = 0.2
    insert_threshold: float = 1000
    insert_scale: float = 0.2

    @property
    def upkeep_needed(self) -> bool:
        """Whether this service keeps the tables: autovacuum is off (or cannot run: without
        track_counts there are no counts to go by, and so no upkeep either)."""
        return not self.autovacuum and self.track_counts


@dataclass(frozen=True)
class Work:
    table: str
    analyze: bool
    vacuum: bool


# Thresholds' fields by the server setting each is read from (the fields' defaults are
# PostgreSQL's, for a setting the server does not list)
_FROM_SETTINGS = {"analyze_threshold": "autovacuum_analyze_threshold",
                  "analyze_scale": "autovacuum_analyze_scale_factor",
                  "vacuum_threshold": "autovacuum_vacuum_threshold",
                  "vacuum_scale": "autovacuum_vacuum_scale_factor",
                  "insert_threshold": "autovacuum_vacuum_insert_threshold",
                  "insert_scale": "autovacuum_vacuum_insert_scale_factor"}


async def thresholds(pool: asyncpg.Pool) -> Thresholds:
    values: dict[str, str] = {r["name"]: r["setting"] for r in await pool.fetch(
        _SETTINGS, ["autovacuum", "track_counts", *_FROM_SETTINGS.values()])}
    return Thresholds(values.get("autovacuum") == "on", values.get("track_counts") == "on",
                      **{name: float(values[setting]) for name, setting in _FROM_SETTINGS.items() if setting in values})


async def due(db: asyncpg.Pool | asyncpg.Connection, limits: Thresholds) -> list[Work]:
    """The tables autovacuum would analyze or vacuum now, by `limits`."""
    work = []
    for row in await db.fetch(_TABLES):
        rows = float(row["rows"])
        analyze = row["modified"] > limits.analyze_threshold + limits.analyze_scale * rows
        vacuum = (row["dead"] > limits.vacuum_threshold + limits.vacuum_scale * rows
                  or (limits.insert_threshold >= 0
                      and row["inserted"] > limits.insert_threshold + limits.insert_scale * rows))
        if analyze or vacuum:
            work.append(Work(row["name"], analyze, vacuum))
    return work


async def upkeep(pool: asyncpg.Pool, limits: Thresholds | None = None) -> list[Work] | None:
    """One pass: the work done, [] if none was due (or autovacuum is on), None if another
    replica's pass is running."""
    limits = limits or await thresholds(pool)
    if not limits.upkeep_needed:
        return []
    async with pool.acquire() as conn:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK_KEY):
            return None
        try:
            work = await due(conn, limits)
            for each in work:
                # `table` is quoted by format('%I.%I'); VACUUM cannot run inside a transaction
                verb = "VACUUM (ANALYZE)" if each.vacuum and each.analyze else "VACUUM" if each.vacuum else "ANALYZE"
                await conn.execute(f"{verb} {each.table}")
            return work
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


async def every(pool: asyncpg.Pool, seconds: float) -> None:
    """An upkeep pass every `seconds` (the first at once: a restart after a bulk load finds
    tables without statistics); says once whether it is needed."""
    told: bool | None = None
    while True:
        try:
            limits = await thresholds(pool)
            if limits.upkeep_needed != told:
                told = limits.upkeep_needed
                if told:
                    logger.warning("PostgreSQL runs without autovacuum: this service analyzes and vacuums its "
                                   "tables itself, by autovacuum's thresholds; run the server with autovacuum on")
            work = await upkeep(pool, limits)
            if work:
                logger.info("table upkeep: %s", ", ".join(
                    f"{w.table} ({'vacuum' if w.vacuum else ''}{'+' if w.vacuum and w.analyze else ''}"
                    f"{'analyze' if w.analyze else ''})" for w in work))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            logger.warning("table upkeep skipped: %s", exc)
        await asyncio.sleep(seconds)
