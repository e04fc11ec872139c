"""What the indexer has got into Redis, not only committed (`Publisher.published`),
which the cache's trust (`progress.py`) never runs ahead of: the cursor moves when a batch
commits, and its cache entries are written after, so a progress check between the two would
have vouched for entries not yet written. Real PostgreSQL and Redis; a TCP proxy cuts Redis.

* a published batch moves the mark (in memory and in Redis); a lost one does not, and marks
  the cache stale;
* a new term trusts what its predecessor published only if the mark reached the committed
  cursor; otherwise (the predecessor stopped between commit and publish) it rebuilds first;
* the rebuild reads the rows page by page, writes every entry and the mark, and leaves the
  cache stale if a write was lost while it ran;
* the progress check vouches by the published mark, not by the cursor."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as aioredis
from solders.pubkey import Pubkey

from services.balance_tracker.indexer import progress
from services.balance_tracker.indexer import publisher as publisher_module
from services.balance_tracker.indexer.follower import Indexer, IndexerConfig
from services.balance_tracker.indexer.publisher import Publisher
from services.balance_tracker.store import last_seq, write_batch
from services.common.vault_cache import VaultCache
from tests.conftest import RedisNamespace
from tests.services.test_batch_publication import deposit
from tests.support.proxy import TcpProxy
from vault_client.vault_program import VaultProgram


@pytest.fixture
async def proxied(redis_ns: RedisNamespace) -> AsyncIterator[tuple[aioredis.Redis, TcpProxy]]:
    """A Redis client whose connection goes through a proxy the test can cut."""
    link = TcpProxy.to(redis_ns.url, 6379)
    await link.start()
    client = aioredis.from_url(link.url(redis_ns.url), socket_connect_timeout=1, socket_timeout=2)
    try:
        yield client, link
    finally:
        await client.aclose()
        await link.close()


def _int(value: bytes | str | None) -> int:
    assert value is not None
    return int(value)


def publisher_for(client: aioredis.Redis, prefix: str, program: VaultProgram) -> Publisher:
    return Publisher(client, VaultCache(client, prefix, 60), program, prefix)


async def committed(pool: asyncpg.Pool, program: VaultProgram, owners: list[Pubkey], n: int) -> list[object]:
    """The vault rows of one committed batch: deposit n of each owner."""
    events = [dataclasses.replace(deposit(owner, n), signature=f"{owner}{n:08d}") for owner in owners]
    first = await last_seq(pool) + 1
    for seq, event in enumerate(events, first):
        event.seq = seq
    async with pool.acquire() as conn:
        _, rows = await write_batch(conn, program, "test", events, [], None)
    return list(rows)


async def test_a_published_batch_moves_the_mark_and_a_lost_one_does_not(
        migrated_pool: asyncpg.Pool, redis_ns: RedisNamespace, proxied: tuple[aioredis.Redis, TcpProxy]) -> None:
    client, link = proxied
    program = VaultProgram(Pubkey.new_unique())
    publisher = publisher_for(client, redis_ns.prefix, program)
    owner = Pubkey.new_unique()
    assert publisher.published is None  # nothing known before a term resumes or publishes
    await publisher.publish([], await committed(migrated_pool, program, [owner], 1), through=(101, "a"))
    assert publisher.published == (101, "a") and not publisher.dirty
    assert await redis_ns.client.get(publisher.published_key()) == b"101:a"
    await link.cut()
    await publisher.publish([], await committed(migrated_pool, program, [owner], 2), through=(102, "b"))
    assert publisher.published == (101, "a")  # committed through 102, but not in Redis
    assert publisher.dirty
    await link.restore()
    assert await redis_ns.client.get(publisher.published_key()) == b"101:a"


async def test_a_new_term_trusts_its_predecessor_only_if_it_published_all_it_committed(
        redis_ns: RedisNamespace) -> None:
    program = VaultProgram(Pubkey.new_unique())
    publisher = publisher_for(redis_ns.client, redis_ns.prefix, program)
    await publisher.resume((10, "a"))  # nothing recorded (a new system, or the first start of this version)
    assert publisher.dirty and publisher.published is None

    publisher = publisher_for(redis_ns.client, redis_ns.prefix, program)
    await redis_ns.client.set(publisher.published_key(), "200:b")
    await publisher.resume((200, "b"))  # the predecessor published through the committed cursor
    assert not publisher.dirty and publisher.published == (200, "b")

    for committed_cursor in ((200, "c"), (250, "d")):  # it committed a batch (in 200, or later) and stopped
        publisher = publisher_for(redis_ns.client, redis_ns.prefix, program)
        await publisher.resume(committed_cursor)
        assert publisher.dirty and publisher.published is None

    publisher = publisher_for(redis_ns.client, redis_ns.prefix, program)
    await publisher.resume(None)  # nothing committed at all: an empty rebuild first
    assert publisher.dirty

    dead = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    publisher = publisher_for(dead, redis_ns.prefix, program)
    await publisher.resume((200, "b"))  # Redis unreadable: not known, so not trusted
    assert publisher.dirty


async def test_the_rebuild_pages_through_every_row_and_stays_stale_if_a_write_was_lost_meanwhile(
        migrated_pool: asyncpg.Pool, redis_ns: RedisNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publisher_module, "REBUILD_ROWS", 2)
    program = VaultProgram(Pubkey.new_unique())
    owners = [Pubkey.new_unique() for _ in range(5)]
    await committed(migrated_pool, program, owners, 1)
    publisher = publisher_for(redis_ns.client, redis_ns.prefix, program)
    await publisher.resume((300, "e"))
    assert publisher.dirty
    assert await publisher.rebuild(migrated_pool, (300, "e"))
    assert not publisher.dirty and publisher.published == (300, "e")
    assert await redis_ns.client.get(publisher.published_key()) == b"300:e"
    for owner in owners:  # 5 rows, 2 a read: all of them
        cached = await publisher.cache.get(owner)
        assert cached is not None and cached[0].total_balance == 1

    # A batch's Redis writes fail while the rebuild runs (it read its rows before that batch
    # committed): the cache is still stale when the rebuild ends.
    real = publisher_module.queue_put_encoded
    calls = 0

    def lost_meanwhile(*args: object, **kwargs: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            publisher._lost()  # what a concurrent publish that Redis refused records
        real(*args, **kwargs)

    monkeypatch.setattr(publisher_module, "queue_put_encoded", lost_meanwhile)
    assert await publisher.rebuild(migrated_pool, (310, "f"))
    assert publisher.dirty and publisher.published == (300, "e")  # rebuilt again by the next pass


async def test_the_progress_check_vouches_by_what_is_published_not_by_the_cursor(
        migrated_pool: asyncpg.Pool, redis_ns: RedisNamespace) -> None:
    program = VaultProgram(Pubkey.new_unique())
    config = IndexerConfig("http://127.0.0.1:1", "ws://127.0.0.1:1", "", program)
    indexer = Indexer(config, migrated_pool, publisher_for(redis_ns.client, redis_ns.prefix, program))
    now = time.monotonic()
    looks: list[progress.Look | None] = [progress.Look(now, 110, 105, "s105"), progress.Look(now - 1.0, 100, 90, "s90")]
    indexer.cursor = (105, "s105")  # committed through the newest transaction seen...
    indexer.publisher.published = (89, "s89")  # ...but its Redis writes are not done
    assert not await progress.vouch(indexer, looks, indexer.publisher.published, True, 5.0)
    assert await redis_ns.client.exists(indexer.publisher.cache.current_key()) == 0
    indexer.publisher.published = (105, "s105")  # they are now
    assert await progress.vouch(indexer, looks, indexer.publisher.published, True, 5.0)
    assert _int(await redis_ns.client.get(indexer.publisher.cache.current_key())) == 110
