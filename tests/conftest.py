"""Shared fixtures. PostgreSQL and Redis come from DATABASE_URL / REDIS_URL, which
`make test` sets (found or started by scripts/devservices.py). Tests create and drop
their own databases and use their own Redis key prefix: they never touch other data."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest
import redis.asyncio as aioredis

from bench.environment import drop_redis_prefix, redis_url
from services.common.migrations import migrate
from tests.support.databases import temporary_database

# The tests run the development profile (dev ids, localnet) unless a test says otherwise;
# unset, the services would run as production and refuse the dev ids (config.py).
os.environ.setdefault("CV_PROFILE", "development")


@pytest.fixture
async def pg_database() -> AsyncIterator[str]:
    """A fresh, empty database (URL), dropped after the test."""
    async with temporary_database() as url:
        yield url


@pytest.fixture
async def migrated_pool(pg_database: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool of up to four connections to a fresh database with every migration applied."""
    pool = await asyncpg.create_pool(pg_database, min_size=1, max_size=4)
    assert pool is not None
    await migrate(pool)
    try:
        yield pool
    finally:
        await pool.close()


@dataclass
class RedisNamespace:
    url: str
    prefix: str
    client: aioredis.Redis


@pytest.fixture
async def redis_ns() -> AsyncIterator[RedisNamespace]:
    """A Redis client and a unique key prefix; every key under the prefix is deleted after."""
    prefix = f"cvtest:{uuid.uuid4().hex[:16]}:"
    client = aioredis.from_url(redis_url())
    try:
        yield RedisNamespace(redis_url(), prefix, client)
    finally:
        await client.aclose()
        await drop_redis_prefix(redis_url(), prefix)
