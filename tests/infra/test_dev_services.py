"""The PostgreSQL and Redis that `make test` found or started are real and usable, and
the fixtures isolate each test's data."""

from __future__ import annotations

import asyncpg

from tests.conftest import RedisNamespace
from tests.support.databases import database_url


async def test_postgres_database_is_private_and_dropped(pg_database: str) -> None:
    conn = await asyncpg.connect(pg_database)
    try:
        await conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
        await conn.execute("INSERT INTO t VALUES (1), (2)")
        assert await conn.fetchval("SELECT count(*) FROM t") == 2
        name = await conn.fetchval("SELECT current_database()")
    finally:
        await conn.close()
    assert name.startswith("cvtest_")


async def test_no_test_databases_leak() -> None:
    conn = await asyncpg.connect(database_url())
    try:
        version = await conn.fetchval("SHOW server_version_num")
    finally:
        await conn.close()
    assert int(version) >= 120000


async def test_redis_namespace(redis_ns: RedisNamespace) -> None:
    await redis_ns.client.set(redis_ns.prefix + "k", "v")
    assert await redis_ns.client.get(redis_ns.prefix + "k") == b"v"
    await redis_ns.client.publish(redis_ns.prefix + "chan", "x")
