"""Connection pools: asyncpg for PostgreSQL and redis.asyncio for Redis, with start-up
retries so a service waits for its stores instead of crashing. Both are bounded: a burst of
calls, or a store that stopped answering, makes callers wait for a connection (and then
fail as if the store were down), never opens one connection per call in flight."""

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


def redis(url: str, *, max_connections: int, wait_seconds: float) -> aioredis.Redis:
    """A client on at most `max_connections` connections. A command that finds them all busy
    waits up to `wait_seconds` for one, then fails with redis' ConnectionError, which callers
    already take as Redis being down (GetVault reads the chain, the indexer withdraws the
    cache's trust). redis-py's default pool has no bound: a Redis that stopped answering (each
    command held for the 2 s socket timeout) left vault_manager opening a connection for every
    GetVault in flight, and under issue 25's load the pool grew to 68. Only short commands
    use it: the live event feed subscribes on a client of its own (balance_tracker/fanout.py)."""
    pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=wait_seconds,
                                                    socket_connect_timeout=2, socket_timeout=2,
                                                    health_check_interval=30)
    return aioredis.Redis.from_pool(pool)
