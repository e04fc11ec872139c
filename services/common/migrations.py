"""A small migration runner: applies `migrations/NNN_name.sql` in order, each once, in its
own transaction, under an advisory lock so replicas starting together do not race.
Numbers are unique and ascending; they need not be consecutive (work on separate branches
takes separate ranges), and a database applies whichever it has not applied yet, in order."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import asyncpg

logger = logging.getLogger("migrations")
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
_LOCK_KEY = 0x6376_6D69  # "cvmi"
_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


def pending_files(directory: Path = MIGRATIONS_DIR) -> list[tuple[int, Path]]:
    files = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise ValueError(f"migration file {path.name} is not named NNN_name.sql")
        files.append((int(match.group(1)), path))
    versions = [v for v, _ in files]
    if len(set(versions)) != len(versions) or 0 in versions:
        raise ValueError(f"migrations must have unique numbers from 001: {versions}")
    return files


async def migrate(pool: asyncpg.Pool, directory: Path = MIGRATIONS_DIR) -> list[int]:
    """Applies what is missing; returns the versions applied now."""
    applied_now: list[int] = []
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        try:
            await conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                               "version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                               "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for version, path in pending_files(directory):
                if version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(path.read_text())
                    await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                                       version, path.name)
                logger.info("applied migration %s", path.name)
                applied_now.append(version)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied_now
