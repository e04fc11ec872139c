"""GetVault's trust in the Redis vault cache (issue 25): entries live a day, and vault_manager
serves one only while balance_tracker's indexer vouches for the cache (`{prefix}indexer:current`,
set by its progress check). Real Redis, PostgreSQL, localnet and gRPC; vault_manager's own
vault-change subscription is stopped in the service tests so that its mirror learns nothing
by itself and the key alone decides between Redis and the chain.

* an idle vault is served from Redis with an entry that outlives the old 30 s TTL;
* the indexer gone: its key runs out by itself and GetVault reads the chain;
* the indexer behind: a stale entry is served no later than the stated bound, and the key is
  withdrawn at the first look that knows it is behind;
* Redis down: the chain;
* the progress check's decision case by case (`progress.vouch`), on a real Indexer object
  that is not running: caught up, behind, lost cache writes, a vault held at a gap, fenced."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator

import grpc
import pytest
import redis.asyncio as aioredis
from collateral_vault.v1 import common_pb2, vault_manager_pb2, vault_manager_pb2_grpc
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.pubkey import Pubkey

from bench.traffic import Account, users_with_vaults
from localnet.node import Node
from localnet.node_harness import running_node
from services.balance_tracker.app import BalanceTrackerApp
from services.balance_tracker.indexer import progress
from services.balance_tracker.indexer.follower import Indexer
from services.balance_tracker.indexer.gaps import Gap, Held
from services.common.vault_cache import VaultCache
from services.vault_manager.vault_service import LOCAL_TTL_SECONDS
from tests.conftest import RedisNamespace
from tests.services.test_vault_cache import vault
from tests.support.proxy import TcpProxy
from tests.support.services import settings_for, vault_manager
from vault_client.config import Settings

USDT = 10**6
STUCK_SECONDS = 1.0  # balance_tracker's progress check runs every STUCK_SECONDS / 4
EVERY = STUCK_SECONDS / 4
WINDOW = EVERY * progress.TRUST_CHECKS  # the staleness bound the key gives


@pytest.fixture(scope="module")
async def node() -> AsyncIterator[Node]:
    async with running_node() as n:
        yield n


async def get_vault(channel: grpc.aio.Channel, owner: Pubkey) -> common_pb2.Vault:
    stub = vault_manager_pb2_grpc.VaultManagerStub(channel)
    return (await stub.GetVault(vault_manager_pb2.GetVaultRequest(owner=str(owner)))).vault


async def until(check: object, seconds: float, what: str) -> float:
    started = time.monotonic()
    while not await check():  # type: ignore[operator]
        assert time.monotonic() - started < seconds, f"{what}: not within {seconds} s"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


def tracker(node: Node, database: str, redis_ns: RedisNamespace, ws_url: str | None = None) -> BalanceTrackerApp:
    settings = dataclasses.replace(settings_for("balance_tracker", node, database, redis_ns.url, redis_ns.prefix),
                                   indexer_stuck_seconds=STUCK_SECONDS, solana_ws_url=ws_url or node.ws_url)
    return BalanceTrackerApp(settings)


async def unsubscribed_vault_manager(settings: Settings) -> AsyncIterator[grpc.aio.Channel]:
    async with vault_manager(settings) as running, grpc.aio.insecure_channel(running.target) as channel:
        running.app.sync_task.cancel()  # its mirror learns only from its own reads
        yield channel


async def indexed_vault(node: Node, client: AsyncClient, redis_ns: RedisNamespace, cache: VaultCache) -> Account:
    """A new vault, once the running indexer has written its entry and vouches for the cache."""
    [account] = await users_with_vaults(node, client, 1)
    owner = account.user.key
    await until(lambda: redis_ns.client.exists(cache.key(owner)), 30, "the indexer writes its entry")
    await until(lambda: redis_ns.client.exists(cache.current_key()), 5, "the indexer vouches")
    return account


async def test_an_idle_vault_is_served_from_redis_and_from_the_chain_once_the_indexer_is_gone(
        node: Node, pg_database: str, redis_ns: RedisNamespace) -> None:
    cache = VaultCache(redis_ns.client, redis_ns.prefix, 60)
    app = tracker(node, pg_database, redis_ns)
    await app.start(metrics=False)
    settings = settings_for("vault_manager", node, pg_database, redis_ns.url, redis_ns.prefix)
    try:
        async with AsyncClient(node.rpc_url, commitment=Confirmed) as client:
            account = await indexed_vault(node, client, redis_ns, cache)
            owner = account.user.key
            # the entry the indexer wrote outlives the old 30 s TTL by far (CACHE_TTL_SECONDS: a day)
            assert await redis_ns.client.ttl(cache.key(owner)) > 86_000
            async for channel in unsubscribed_vault_manager(settings):
                served = await get_vault(channel, owner)
                assert served.source == common_pb2.DATA_SOURCE_CACHE and served.total_balance == 0
                await asyncio.sleep(LOCAL_TTL_SECONDS + 0.1)  # its memory's answer expired: Redis again
                assert (await get_vault(channel, owner)).source == common_pb2.DATA_SOURCE_CACHE
                await app.stop()  # the indexer is gone: nobody vouches any more
                gone = await until(lambda: _absent(redis_ns.client, cache.current_key()), WINDOW + 1,
                                   "the key runs out")
                assert gone <= WINDOW + 0.5
                await asyncio.sleep(LOCAL_TTL_SECONDS + 0.1)
                assert await cache.get(owner) is not None  # the entry is still there, and correct
                assert (await get_vault(channel, owner)).source == common_pb2.DATA_SOURCE_CHAIN
    finally:
        await app.stop()


async def _absent(client: aioredis.Redis, key: str) -> bool:
    return not await client.exists(key)


async def test_a_stale_entry_is_not_served_beyond_the_bound_once_the_indexer_is_behind(
        node: Node, pg_database: str, redis_ns: RedisNamespace) -> None:
    """The indexer's subscription stalls (its peer vanished without closing): the chain moves
    on, the Redis entry does not. GetVault may answer the old state only within the bound
    (its memory's second, then the key's window); after that, the chain's."""
    assert node.ledger is not None
    program = node.ledger.deployment.program
    cache = VaultCache(redis_ns.client, redis_ns.prefix, 60)
    link = TcpProxy.to(node.ws_url, 8900)
    await link.start()
    app = tracker(node, pg_database, redis_ns, link.url(node.ws_url))
    await app.start(metrics=False)
    settings = settings_for("vault_manager", node, pg_database, redis_ns.url, redis_ns.prefix)
    try:
        async with AsyncClient(node.rpc_url, commitment=Confirmed) as client:
            account = await indexed_vault(node, client, redis_ns, cache)
            owner = account.user.key
            async for channel in unsubscribed_vault_manager(settings):
                assert (await get_vault(channel, owner)).source == common_pb2.DATA_SOURCE_CACHE
                link.stall()
                await account.user.send([program.deposit(owner, account.token_account, 9 * USDT)])
                changed = time.monotonic()
                # bound: its memory's second, or the window of the last look before the change
                # plus the look that sees the change and the one after it
                bound = LOCAL_TTL_SECONDS + WINDOW + 2 * EVERY + 0.5
                while True:
                    served = await get_vault(channel, owner)
                    if served.total_balance == 9 * USDT:
                        break
                    assert served.total_balance == 0 and served.source == common_pb2.DATA_SOURCE_CACHE
                    assert time.monotonic() - changed < bound, "a stale entry served beyond the bound"
                    await asyncio.sleep(0.05)
                assert served.source == common_pb2.DATA_SOURCE_CHAIN  # the key was withdrawn (or ran out)
    finally:
        link.resume()
        await app.stop()
        await link.close()


async def test_redis_down_reads_the_chain(node: Node, pg_database: str, redis_ns: RedisNamespace) -> None:
    link = TcpProxy.to(redis_ns.url, 6379)
    await link.start()
    cache = VaultCache(redis_ns.client, redis_ns.prefix, 60)
    settings = settings_for("vault_manager", node, pg_database, link.url(redis_ns.url), redis_ns.prefix)
    try:
        async with AsyncClient(node.rpc_url, commitment=Confirmed) as client:
            [account] = await users_with_vaults(node, client, 1)
            owner = account.user.key
            await cache.put(vault(owner, 0), 1)
            await cache.vouch(1, 60_000)  # as if an indexer vouched
            async for channel in unsubscribed_vault_manager(settings):
                assert (await get_vault(channel, owner)).source == common_pb2.DATA_SOURCE_CACHE
                await link.cut()
                await asyncio.sleep(LOCAL_TTL_SECONDS + 0.1)
                served = await get_vault(channel, owner)
                assert served.source == common_pb2.DATA_SOURCE_CHAIN and served.owner == str(owner)
    finally:
        await link.close()


async def test_a_vanished_redis_keeps_vault_manager_to_its_connections_and_getvault_reads_the_chain(
        node: Node, pg_database: str, redis_ns: RedisNamespace) -> None:
    """Redis stops answering without closing: every GetVault in flight is answered from the
    chain, within the socket timeout, and vault_manager opens no connection beyond its
    REDIS_MAX_CONNECTIONS (it opened one per call in flight before: tests/services/test_redis_pool.py)."""
    link = TcpProxy.to(redis_ns.url, 6379)
    await link.start()
    cache = VaultCache(redis_ns.client, redis_ns.prefix, 60)
    settings = dataclasses.replace(settings_for("vault_manager", node, pg_database, link.url(redis_ns.url),
                                                redis_ns.prefix), redis_max_connections=2, redis_pool_wait_seconds=0.2)
    try:
        async with AsyncClient(node.rpc_url, commitment=Confirmed) as client:
            accounts = await users_with_vaults(node, client, 3)
            for account in accounts:
                await cache.put(vault(account.user.key, 0), 1)
            await cache.vouch(1, 60_000)
            async for channel in unsubscribed_vault_manager(settings):
                assert (await get_vault(channel, accounts[0].user.key)).source == common_pb2.DATA_SOURCE_CACHE
                link.stall()
                owners = [account.user.key for account in accounts[1:]] * 8
                most_open = 0

                async def watch() -> None:
                    nonlocal most_open
                    while True:
                        most_open = max(most_open, link.open_now())
                        await asyncio.sleep(0.01)

                watcher = asyncio.create_task(watch())
                started = time.monotonic()
                served = await asyncio.gather(*(get_vault(channel, owner) for owner in owners))
                took = time.monotonic() - started
                watcher.cancel()
                # each call waits at most the pool's 0.2 s or a held command's 2 s socket timeout,
                # for its read and again for writing back what the chain answered
                assert took < 2 * 2 + 1.5
                assert [(v.source, v.owner) for v in served] == [(common_pb2.DATA_SOURCE_CHAIN, str(o)) for o in owners]
                assert 1 <= most_open <= 2
    finally:
        link.resume()
        await link.close()


async def test_an_entry_is_served_only_with_the_key_read_in_the_same_round_trip(redis_ns: RedisNamespace) -> None:
    cache = VaultCache(redis_ns.client, redis_ns.prefix, 60)
    owner = Pubkey.new_unique()
    state = vault(owner, 10)
    await cache.put(state, 5)
    assert await cache.get_if_current(owner) is None  # nobody vouches
    await cache.vouch(5, 2_000)
    assert await cache.get_if_current(owner) == (state, 5)
    assert await cache.get_if_current(Pubkey.new_unique()) is None  # vouched, but no entry
    await cache.withdraw_trust()
    assert await cache.get_if_current(owner) is None
    dead = VaultCache(aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1), redis_ns.prefix, 60)
    assert await dead.get_if_current(owner) is None  # Redis down: a miss, never an error


async def test_the_progress_check_vouches_only_while_everything_it_saw_is_processed(
        idle_indexer: Indexer, redis_ns: RedisNamespace) -> None:
    cache = idle_indexer.publisher.cache
    key = cache.current_key()
    now = time.monotonic()
    earlier, latest = progress.Look(now - 1.0, 100, 90, "s90"), progress.Look(now, 110, 105, "s105")

    async def vouched(looks: list[progress.Look | None], cursor: int, recorded: bool = True,
                      signature: str = "s105") -> int | None:
        """`cursor`: the slot of the published cursor, at transaction `signature`."""
        await redis_ns.client.set(key, 1)  # a key left by an earlier look: withdrawn unless vouched again
        assert await progress.vouch(idle_indexer, looks, (cursor, signature), recorded, 5.0) == \
            (await redis_ns.client.exists(key) == 1)
        value = await redis_ns.client.get(key)
        return None if value is None else int(value)

    assert await vouched([latest, earlier], 105) == 110  # caught up now: this look's slot
    assert 4_000 < await redis_ns.client.pttl(key) <= 5_000
    assert await vouched([latest, earlier], 95) == 100  # behind by less than a look: the previous one's
    assert 3_000 < await redis_ns.client.pttl(key) <= 4_000  # expiring a window after *that* look began
    assert await vouched([latest, earlier], 89) is None  # known behind: withdrawn at once
    # a batch that ended inside slot 105, at another transaction than the newest one seen: the
    # slot's later transactions may not be written yet, so only the previous look is passed
    assert await vouched([latest, earlier], 105, signature="s104b") == 100
    assert await vouched([latest, earlier], 90, signature="s90x") is None  # likewise at the previous one's slot
    assert await vouched([latest, None], 105, signature="s104b") is None
    assert await vouched([latest, earlier], 106, signature="anything") == 110  # a later slot: all of 105
    assert await vouched([latest, None], 95) is None  # no previous look to go by
    assert await vouched([progress.Look(now, 110, None), None], 10**9) is None  # nothing seen: no claim
    assert not await progress.vouch(idle_indexer, [latest, earlier], None, True, 5.0)  # nothing published yet
    assert await vouched([latest, progress.Look(now - 6.0, 100, 90)], 95) is None  # its window is over
    assert await vouched([latest, earlier], 105, recorded=False) is None  # fenced: no longer the leader
    idle_indexer.publisher.dirty = True  # a cache write was lost: entries may be stale until rebuilt
    assert await vouched([latest, earlier], 105) is None
    idle_indexer.publisher.dirty = False
    owner = str(Pubkey.new_unique())
    gap = Gap(owner=owner, expected=3, seen=5, signature="sig", slot=100, after_slot=90)
    idle_indexer.guard.held[owner] = Held(gap, 100)  # its row and entry stay behind the cursor
    assert await vouched([latest, earlier], 105) is None
    idle_indexer.guard.held.clear()
    assert await vouched([latest, earlier], 105) == 110
