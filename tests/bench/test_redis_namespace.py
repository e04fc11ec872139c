"""bench/environment.py's `drop_redis_prefix`: a run's Redis namespace is deleted, whatever
its size, and nothing outside it (real Redis)."""

from __future__ import annotations

import uuid

import redis.asyncio as aioredis

from bench.environment import drop_redis_prefix, redis_url


async def test_a_namespace_is_dropped_and_nothing_else() -> None:
    run, other = f"cvtest:{uuid.uuid4().hex[:12]}:", f"cvtest:{uuid.uuid4().hex[:12]}:"
    client = aioredis.from_url(redis_url())
    try:
        async with client.pipeline(transaction=False) as pipe:
            for i in range(25_000):  # more than one unlink batch
                pipe.set(f"{run}vault:{i}", b"x", ex=600)
            pipe.set(f"{other}vault:0", b"y", ex=600)
            await pipe.execute()
        assert await drop_redis_prefix(redis_url(), run) == 25_000
        assert [k async for k in client.scan_iter(match=run + "*", count=10_000)] == []
        assert await client.get(f"{other}vault:0") == b"y"
        assert await drop_redis_prefix(redis_url(), run) == 0  # nothing left: nothing to do
    finally:
        await drop_redis_prefix(redis_url(), other)
        await client.aclose()
