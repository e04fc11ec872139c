"""The services' Redis client has a bounded pool (services/common/pools.py; issue 25: nothing
grows without bound, one slow peer never stalls the rest). Real Redis, reached through a
loopback proxy that counts the connections a client opens and can stall (a Redis that
vanished without closing: nothing forwarded, nothing closed).

Reproduces the defect first: with redis-py's default pool, which the services used, a burst
of reads in flight opened a connection for each, and so did every read while Redis was
stalled (each held for the 2 s socket timeout). Bounded, the reads share the pool's
connections; with Redis stalled the ones that find none free give up after the pool's wait
and read as misses (GetVault then reads the chain, tests/services/test_cache_trust.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from solders.pubkey import Pubkey

from services.common import pools
from services.common.vault_cache import VaultCache
from tests.conftest import RedisNamespace
from tests.services.test_vault_cache import vault
from tests.support.proxy import TcpProxy
from vault_client.config import ConfigError, Settings
from vault_client.vault_program import Vault

BURST = 64
BOUND = 4
SOCKET_TIMEOUT = 2.0  # pools.redis: a command held longer fails


@pytest.fixture
async def link(redis_ns: RedisNamespace) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy.to(redis_ns.url, 6379)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()


async def vouched_entry(redis_ns: RedisNamespace) -> tuple[Pubkey, tuple[Vault, int]]:
    """An owner whose entry is in the cache, with the cache vouched for (as by an indexer),
    and the entry as a read returns it."""
    cache = VaultCache(redis_ns.client, redis_ns.prefix, 60)
    owner = Pubkey.new_unique()
    state = vault(owner, 7)
    await cache.put(state, 3)
    await cache.vouch(3, 60_000)
    return owner, (state, 3)


async def reads(client: aioredis.Redis, redis_ns: RedisNamespace, owner: Pubkey, count: int) -> list[object]:
    cache = VaultCache(client, redis_ns.prefix, 60)
    return list(await asyncio.gather(*(cache.get_if_current(owner) for _ in range(count))))


async def test_a_burst_of_reads_shares_the_pools_connections(link: TcpProxy, redis_ns: RedisNamespace) -> None:
    owner, entry = await vouched_entry(redis_ns)
    unbounded = aioredis.from_url(link.url(redis_ns.url))  # the client the services had
    try:
        assert await reads(unbounded, redis_ns, owner, BURST) == [entry] * BURST
    finally:
        await unbounded.aclose()
    assert link.accepted == BURST  # the defect: one connection per read in flight
    link.accepted = 0
    bounded = pools.redis(link.url(redis_ns.url), max_connections=BOUND, wait_seconds=2)
    try:
        assert await reads(bounded, redis_ns, owner, BURST) == [entry] * BURST
    finally:
        await bounded.aclose()
    assert 1 <= link.accepted <= BOUND


async def test_a_vanished_redis_costs_each_read_a_bounded_wait_and_no_more_connections(
        link: TcpProxy, redis_ns: RedisNamespace) -> None:
    owner, entry = await vouched_entry(redis_ns)
    client = pools.redis(link.url(redis_ns.url), max_connections=2, wait_seconds=0.2)
    try:
        assert await reads(client, redis_ns, owner, 1) == [entry]
        link.stall()
        started = time.monotonic()
        assert await reads(client, redis_ns, owner, 32) == [None] * 32  # misses, never an error
        assert time.monotonic() - started < SOCKET_TIMEOUT + 1.5  # the longest: a held command's timeout
        assert link.accepted <= 2  # the unbounded pool opened one per read here too
        link.resume()
        assert await reads(client, redis_ns, owner, 4) == [entry] * 4  # and it recovers
    finally:
        link.resume()
        await client.aclose()


@pytest.mark.parametrize("name", ["REDIS_MAX_CONNECTIONS", "REDIS_POOL_WAIT_SECONDS"])
def test_a_pool_without_connections_or_wait_is_refused(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, "0")
    with pytest.raises(ConfigError, match=f"{name} must be positive"):
        Settings.for_service("vault_manager")
