"""Throwaway PostgreSQL databases (created and dropped by whoever asked for one)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def database_url() -> str:
    return os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@asynccontextmanager
async def temporary_database(prefix: str = "cvtest") -> AsyncIterator[str]:
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(database_url())
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield with_database(database_url(), name)
    finally:
        admin = await asyncpg.connect(database_url())
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


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
