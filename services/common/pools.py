"""Connection pools: asyncpg for PostgreSQL and redis.asyncio for Redis, with start-up
retries so a service waits for its stores instead of crashing."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import redis.asyncio as aioredis

logger = logging.getLogger("pools")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Released connections are not reset beyond rolling back an open transaction (which
    asyncpg always does): the services keep no session state (no LISTEN, SET or advisory
    lock outlives its use), and the default reset costs a round trip per release."""


async def postgres(url: str, *, min_size: int = 1, max_size: int = 10, attempts: int = 30,
                   server_settings: dict[str, str] | None = None) -> asyncpg.Pool:
    """`server_settings`: session settings of every connection (application_name, timeouts)."""
    delay = 0.2
    for attempt in range(1, attempts + 1):
        try:
            pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size, command_timeout=30,
                                             reset=_keep_session, server_settings=server_settings)
            assert pool is not None
            return pool
        except (OSError, asyncpg.PostgresError) as exc:
            if attempt == attempts:
                raise
            logger.warning("PostgreSQL not reachable (%s); retrying in %.1f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
    raise AssertionError("unreachable")


def redis(url: str) -> aioredis.Redis:
    return aioredis.from_url(url, socket_connect_timeout=2, socket_timeout=2, health_check_interval=30)
