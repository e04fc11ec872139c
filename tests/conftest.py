"""Shared fixtures. PostgreSQL and Redis come from DATABASE_URL / REDIS_URL, which
`make test` sets (found or started by scripts/devservices.py). Tests create and drop
their own databases and use their own Redis key prefix: they never touch other data."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import redis.asyncio as aioredis

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def database_url() -> str:
    return os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)


def redis_url() -> str:
    return os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@pytest.fixture
async def pg_database() -> AsyncIterator[str]:
    """A fresh, empty database (URL), dropped after the test."""
    name = f"cvtest_{uuid.uuid4().hex[:16]}"
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
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
