"""Throwaway PostgreSQL databases (created and dropped by whoever asked for one): the
benchmarks' own (bench/environment.py), which may not import tests/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from bench.environment import DEFAULT_DATABASE_URL, database_url, temporary_database, with_database

__all__ = ["DEFAULT_DATABASE_URL", "database_url", "migrated_before", "temporary_database", "with_database"]


@asynccontextmanager
async def migrated_before(url: str, version: int) -> AsyncIterator[asyncpg.Pool]:
    """A pool to `url` with the migrations numbered below `version` applied (a database as an
    earlier release left it); `migrate(pool)` then applies the rest, as an upgrade would."""
    import shutil
    import tempfile
    from pathlib import Path

    from services.common.migrations import MIGRATIONS_DIR, migrate

    earlier = Path(tempfile.mkdtemp(prefix="cvmigrations-"))
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    assert pool is not None
    try:
        for path in MIGRATIONS_DIR.glob("*.sql"):
            if int(path.name[:3]) < version:
                shutil.copy(path, earlier / path.name)
        await migrate(pool, earlier)
        yield pool
    finally:
        await pool.close()
        shutil.rmtree(earlier, ignore_errors=True)
