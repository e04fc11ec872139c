"""The indexer publishes a batch's events as a few messages, not one per event (issue 25 item
6, services/balance_tracker/indexer/publisher.py), and writes its vault cache entries in one
script per chunk of vaults. Real PostgreSQL, Redis and (end to end) localnet with the real
indexer and StreamEvents over gRPC:

* a subscriber sees every event once, in order, each batch split over several messages;
* a batch message that is lost (Redis down while it was published) is a gap the live feed
  fills from PostgreSQL: the subscriber still sees every event once, in order;
* the many-vault cache write keeps the one-vault rule: an older slot never overwrites a
  newer one."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import grpc
import pytest
import redis.asyncio as aioredis
from collateral_vault.v1 import balance_tracker_pb2
from redis.exceptions import ResponseError
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.pubkey import Pubkey

from bench.traffic import burst, users_with_vaults
from localnet.node import Node
from localnet.node_harness import running_node
from services.balance_tracker import fanout as fanout_module
from services.balance_tracker.events import Balances, EventRow
from services.balance_tracker.fanout import EventFanout
from services.balance_tracker.indexer import publisher as publisher_module
from services.balance_tracker.indexer.publisher import Publisher
from services.balance_tracker.store import last_seq, write_batch
from services.common import vault_cache
from services.common.errors import ServiceError
from services.common.vault_cache import VaultCache, encode, queue_put_encoded
from tests.conftest import RedisNamespace
from tests.services.test_live_events import conf, nothing_more, open_stream, started, subscribed, take
from tests.support.proxy import TcpProxy
from vault_client.config import events_channel
from vault_client.vault_program import Vault, VaultProgram


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    async with running_node() as n:
        yield n


async def raw_messages(redis_url: str, channel: str, into: list[Any], ready: asyncio.Event) -> None:
    """Every message published on `channel`, parsed, into `into` (a plain Redis subscriber)."""
    client = aioredis.from_url(redis_url)
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe(channel)
        ready.set()
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None:
                into.append(json.loads(message["data"]))
    finally:
        await pubsub.aclose()
        await client.aclose()


async def test_the_indexer_publishes_batches_and_a_subscriber_sees_every_event_once_in_order(
        node: Node, pg_database: str, redis_ns: RedisNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publisher_module, "PUBLISH_CHUNK", 3)  # a burst's batch goes out as several messages
    settings = conf(node, pg_database, redis_ns)
    app = await started(settings)
    messages: list[Any] = []
    listening = asyncio.Event()
    listener = asyncio.create_task(raw_messages(redis_ns.url, events_channel(redis_ns.prefix), messages, listening))
    try:
        await asyncio.wait_for(listening.wait(), 10)
        assert app.indexer is not None
        await asyncio.wait_for(app.indexer.ready.wait(), 60)  # the genesis' events are behind us
        baseline = await last_seq(app.indexer.pool)
        async with AsyncClient(node.rpc_url, commitment=Confirmed) as client, \
                grpc.aio.insecure_channel(f"127.0.0.1:{settings.grpc_port}") as channel:
            everything = open_stream(channel)
            await subscribed(app, 1)
            accounts = await users_with_vaults(node, client, 4)
            assert node.ledger is not None
            await burst(node.ledger.deployment.program, client, accounts, 40)
            stored = [seq for seq in await settled_numbers(pg_database) if seq > baseline]
            received: list[balance_tracker_pb2.VaultEvent] = []
            while len(received) < len(stored):
                received += [e for e in await take(everything, 1, timeout=30) if e.seq > baseline]
            assert [e.seq for e in received] == stored  # every event once, in commit order
            assert len({e.id for e in received}) == len(stored)
            await nothing_more(everything)
            everything.cancel()
        assert all(isinstance(message, list) for message in messages)
        published = [event for message in messages for event in message if event["seq"] > baseline]
        assert any(len(message) > 1 for message in messages)  # batches, not one message per event
        assert max(len(message) for message in messages) <= 3
        assert [e["seq"] for e in published] == stored
        assert [e["prev"] for e in published] == [baseline, *stored[:-1]]  # each names the one before it
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        await app.stop()


async def settled_numbers(database_url: str) -> list[int]:
    """The stored events' numbers once the indexer has stopped adding any (for a second)."""
    conn = await asyncpg.connect(database_url)
    try:
        last: list[int] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            numbers = [int(r["seq"]) for r in await conn.fetch("SELECT seq FROM transactions ORDER BY seq")]
            if numbers and numbers == last:
                return numbers
            last = numbers
            await asyncio.sleep(1.0)
        raise AssertionError("the indexer did not settle")
    finally:
        await conn.close()


async def until_ready(feed: EventFanout, what: str = "the live event feed did not start") -> None:
    deadline = time.monotonic() + 10
    while not feed.ready:
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


async def started_feed(migrated_pool: asyncpg.Pool, redis_ns: RedisNamespace) -> EventFanout:
    """A live event feed on the test's Redis namespace, subscribed (stopped again if it is not)."""
    feed = EventFanout(redis_ns.url, redis_ns.prefix, migrated_pool)
    feed.start()
    try:
        await until_ready(feed)
    except BaseException:
        await feed.stop()
        raise
    return feed


def deposit(owner: Pubkey, n: int) -> EventRow:
    """The n-th deposit of `owner` (its vault's event n + 1), a vault event as decoded."""
    return EventRow(owner=str(owner), signature=f"{'b' * 80}{n:08d}", instruction_index=0, event_index=0,
                    kind="deposit", amount=n, slot=100 + n, block_time=datetime.now(UTC), commitment="confirmed",
                    balances=Balances(n, 0, n), vault_seq=n + 1)


def numbered_deposits(owner: Pubkey, count: int) -> list[EventRow]:
    """`owner`'s deposits 1..count, each with its ledger sequence number (deposit n is event n)."""
    events = [deposit(owner, n) for n in range(1, count + 1)]
    for seq, event in enumerate(events, 1):
        event.seq = seq
    return events


def as_published(events: list[EventRow]) -> list[Any]:
    """The events as the publisher sends them, each naming the one before it."""
    return [publisher_module.event_json(e, e.seq - 1) for e in events]


async def test_a_lost_batch_message_is_a_gap_the_feed_fills_from_the_database(
        migrated_pool: asyncpg.Pool, redis_ns: RedisNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publisher_module, "PUBLISH_CHUNK", 2)
    program = VaultProgram(Pubkey.new_unique())
    owner = Pubkey.new_unique()
    link = TcpProxy.to(redis_ns.url, 6379)  # the publisher's way to Redis
    await link.start()
    through = aioredis.from_url(link.url(redis_ns.url), socket_connect_timeout=1, socket_timeout=2)
    publisher = Publisher(through, VaultCache(through, redis_ns.prefix, 30), program, redis_ns.prefix)
    feed = await started_feed(migrated_pool, redis_ns)
    try:
        subscription = feed.admit(None, "test")
        subscription.listen()
        events = numbered_deposits(owner, 12)
        for number, batch in enumerate((events[:4], events[4:9], events[9:])):  # the second's messages are lost
            async with migrated_pool.acquire() as conn:
                new, rows = await write_batch(conn, program, "test", batch, [], None)
            assert new == batch
            if number == 1:
                await link.cut()
            await publisher.publish(new, rows)
            if number == 1:
                assert publisher.dirty  # the publication failed: the cache will be rebuilt
                await link.restore()
        received: list[balance_tracker_pb2.VaultEvent] = []
        stream = subscription.events()
        while len(received) < len(events):
            received.append(await asyncio.wait_for(anext(stream), 15))
        assert [e.seq for e in received] == list(range(1, 13))  # once each, in order: 5-9 from PostgreSQL
        assert [e.id for e in received] == [e.event_id for e in events]
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(anext(stream), 0.5)  # nothing twice
        subscription.close()
    finally:
        await feed.stop()
        await through.aclose()
        await link.close()


def vault(owner: Pubkey, total: int) -> Vault:
    return Vault(owner=owner, token_account=Pubkey.new_unique(), total_balance=total, locked_balance=0,
                 available_balance=total, total_deposited=total, total_withdrawn=0, created_at=0, bump=255)


def queue_vaults(cache: VaultCache, pipe: Any, entries: list[tuple[Vault, int]]) -> None:
    """The publisher's cache write (`queue_put_encoded`) for these vaults at these slots."""
    queue_put_encoded(cache, pipe, [(str(v.owner), encode(v, slot), slot) for v, slot in entries])


async def test_many_vaults_in_one_script_keep_the_set_if_newer_rule(redis_ns: RedisNamespace,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vault_cache, "PUT_MANY_CHUNK", 2)  # three scripts for five vaults
    cache = VaultCache(redis_ns.client, redis_ns.prefix, 30)
    owners = [Pubkey.new_unique() for _ in range(5)]
    assert await cache.put(vault(owners[0], 7), 50)  # newer than the batch: stays
    assert await cache.put(vault(owners[1], 7), 5)  # older: replaced
    assert await cache.put(vault(owners[2], 7), 10)  # the same slot: replaced, as put() does
    pipe = redis_ns.client.pipeline(transaction=False)
    queue_vaults(cache, pipe, [(vault(owner, 1), 10) for owner in owners])
    assert await pipe.execute() == [1, 2, 1]  # vaults written per script (2, 2 and 1 in each)
    expected = [(7, 50), (1, 10), (1, 10), (1, 10), (1, 10)]
    for owner, (total, slot) in zip(owners, expected, strict=True):
        got = await cache.get(owner)
        assert got is not None and (got[0].total_balance, got[1]) == (total, slot)
        ttl = await redis_ns.client.ttl(cache.key(owner))
        assert 0 < ttl <= 30
    pipe = redis_ns.client.pipeline(transaction=False)
    queue_vaults(cache, pipe, [])
    assert await pipe.execute() == []  # no vault: no command


async def test_a_corrupt_cache_entry_fails_the_script_like_a_single_put(redis_ns: RedisNamespace) -> None:
    """A value that is not the cache's JSON is an error (as it is for `put`), reported to the
    caller (the publisher marks the cache for a rebuild); what the script wrote before stays."""
    cache = VaultCache(redis_ns.client, redis_ns.prefix, 30)
    first, broken = Pubkey.new_unique(), Pubkey.new_unique()
    await redis_ns.client.set(cache.key(broken), "not json")
    pipe = redis_ns.client.pipeline(transaction=False)
    queue_vaults(cache, pipe, [(vault(first, 3), 9), (vault(broken, 3), 9)])
    with pytest.raises(ResponseError):
        await pipe.execute()
    written = await cache.get(first)
    assert written is not None and written[1] == 9
    assert await redis_ns.client.get(cache.key(broken)) == b"not json"


def test_the_published_event_keeps_its_fields() -> None:
    """A batch message is a JSON array of the same event objects a single message was."""
    event = dataclasses.replace(deposit(Pubkey.new_unique(), 3), seq=9)
    [published] = json.loads(json.dumps([publisher_module.event_json(event, 8)]))
    assert published["seq"] == 9 and published["prev"] == 8 and published["id"] == event.event_id
    assert published["total_balance"] == 3 and published["vault_seq"] == 4


async def test_with_nobody_listening_the_feed_only_moves_its_position(
        migrated_pool: asyncpg.Pool, redis_ns: RedisNamespace) -> None:
    """A catch-up publishes every event of the history; a feed without subscribers reads only
    their numbers (no event is built, no gap fetched), and a subscriber that comes later
    receives what follows, once."""
    owner = Pubkey.new_unique()
    feed = await started_feed(migrated_pool, redis_ns)
    channel = events_channel(redis_ns.prefix)
    try:
        events = numbered_deposits(owner, 7)
        payload = as_published(events)
        await redis_ns.client.publish(channel, json.dumps(payload[2:4]))  # 1 and 2 never arrive: not fetched
        await redis_ns.client.publish(channel, json.dumps([]))
        deadline = time.monotonic() + 10
        while feed.position_now() != 4:
            assert time.monotonic() < deadline, f"the feed is at {feed.position}"
            await asyncio.sleep(0.02)
        subscription = feed.admit(None, "test")
        assert subscription.listen() == 4
        await redis_ns.client.publish(channel, json.dumps(payload[4:]))
        stream = subscription.events()
        assert [(await asyncio.wait_for(anext(stream), 10)).seq for _ in range(3)] == [5, 6, 7]
        subscription.close()
    finally:
        await feed.stop()


async def test_a_published_message_holds_the_values_json_dumps_gave_them(redis_ns: RedisNamespace) -> None:
    """The batch message is serialized by pydantic_core (compact JSON, issue 25 item 6): a
    subscriber parsing it gets exactly the values json.dumps of the same events gave, for
    every field of every kind of row (u64 extremes, details with numbers and booleans, an
    exchange row without balances)."""
    top = 2 ** 64 - 1
    owner, other = str(Pubkey.new_unique()), str(Pubkey.new_unique())
    base: dict[str, Any] = dict(signature="c" * 88, instruction_index=3, event_index=1, slot=top,
                                block_time=datetime.now(UTC), commitment="confirmed")
    events = [
        EventRow(owner=owner, kind="deposit", amount=top, balances=Balances(top, 0, top), vault_seq=top, **base),
        EventRow(owner=owner, kind="transfer", amount=5, balances=Balances(7, 2, 5), counterparty=other,
                 caller_program=other, counterparty_balances=Balances(9, 0, 9), program_locked=top, vault_seq=3,
                 details={"to_seq": top}, **base),
        EventRow(owner=owner, kind="exit_served", amount=0, balances=None, caller_program=other,
                 details={"by_operator": True}, **base),
        EventRow(owner=owner, kind="operator_lock", amount=1, balances=None, caller_program=other, op_id=top,
                 program_locked=0, **base),
        EventRow(owner=owner, kind="vault_initialized", amount=0, balances=Balances(0, 0, 0), block_time=None,
                 **{k: v for k, v in base.items() if k != "block_time"}),  # no block time: 0
    ]
    for seq, event in enumerate(events, 40):
        event.seq = seq
    publisher = Publisher(redis_ns.client, VaultCache(redis_ns.client, redis_ns.prefix, 30),
                          VaultProgram(Pubkey.new_unique()), redis_ns.prefix)
    publisher.last_seq = 39
    messages: list[Any] = []
    listening = asyncio.Event()
    listener = asyncio.create_task(raw_messages(redis_ns.url, publisher.channel(), messages, listening))
    try:
        await asyncio.wait_for(listening.wait(), 10)
        await publisher.publish(events, [])
        deadline = time.monotonic() + 10
        while not messages:
            assert time.monotonic() < deadline, "nothing was published"
            await asyncio.sleep(0.02)
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
    expected = json.loads(json.dumps([publisher_module.event_json(e, prev) for e, prev in
                                      zip(events, [39, *(e.seq for e in events[:-1])], strict=True)]))
    assert messages == [expected]


async def test_with_nobody_listening_messages_of_any_shape_move_the_position_as_before(
        migrated_pool: asyncpg.Pool, redis_ns: RedisNamespace) -> None:
    """With nobody listening the feed reads only the events' numbers (issue 25 item 6): a
    batch, a single event, and messages of another shape (a number sent as text, read in
    full as before) all move its position; one that is not JSON is refused with ValueError
    as json.loads refused it (the feed is interrupted and resumes from the database)."""
    with pytest.raises(ValueError):
        fanout_module._numbers(b"not json")
    owner = Pubkey.new_unique()
    feed = await started_feed(migrated_pool, redis_ns)
    channel = events_channel(redis_ns.prefix)

    async def at(position: int) -> None:
        deadline = time.monotonic() + 10
        while feed.position_now() != position or not feed.ready:
            assert time.monotonic() < deadline, f"the feed is at {feed.position}, not {position}"
            await asyncio.sleep(0.02)

    try:
        await at(0)
        events = numbered_deposits(owner, 5)
        payload = as_published(events)
        await redis_ns.client.publish(channel, json.dumps(payload[:2]))
        await at(2)
        await redis_ns.client.publish(channel, json.dumps(payload[2]))  # one event, not in a list
        await at(3)
        await redis_ns.client.publish(channel, json.dumps([{**payload[3], "seq": "4"}]))  # another shape
        await at(4)
        await redis_ns.client.publish(channel, json.dumps(payload[4:]))
        await at(5)
    finally:
        await feed.stop()


async def test_with_nobody_listening_only_the_last_message_is_read_when_someone_comes(
        migrated_pool: asyncpg.Pool, redis_ns: RedisNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    """A catch-up's messages to a feed nobody listens to are not read as they come (their
    numbers cost a tenth of the catching-up indexer's CPU): a subscriber that comes reads the
    last one's number as the position, and receives what follows, once."""
    reads: list[Any] = []
    numbers = fanout_module._numbers

    def counted(raw: bytes | str) -> Any:
        reads.append(raw)
        return numbers(raw)

    monkeypatch.setattr(fanout_module, "_numbers", counted)
    owner = Pubkey.new_unique()
    feed = await started_feed(migrated_pool, redis_ns)
    channel = events_channel(redis_ns.prefix)
    try:
        events = numbered_deposits(owner, 9)
        payload = as_published(events)
        for batch in (payload[0:2], payload[2:4], payload[4:7]):
            await redis_ns.client.publish(channel, json.dumps(batch))
        await redis_ns.client.publish(channel, json.dumps([]))  # an empty batch: the last one still counts
        await asyncio.sleep(1.0)  # delivered (loopback), not read
        assert reads == [] and feed.position == 0
        subscription = feed.admit(None, "test")
        assert subscription.listen() == 7 and len(reads) == 1
        await redis_ns.client.publish(channel, json.dumps(payload[7:]))
        stream = subscription.events()
        assert [(await asyncio.wait_for(anext(stream), 10)).seq for _ in range(2)] == [8, 9]
        subscription.close()
    finally:
        await feed.stop()


async def test_an_unreadable_message_read_when_someone_comes_starts_the_feed_over(
        migrated_pool: asyncpg.Pool, redis_ns: RedisNamespace) -> None:
    """As when it was read as it came: the subscriber's stream ends with UNAVAILABLE saying to
    resume, and the feed is back, its position from the database."""
    feed = await started_feed(migrated_pool, redis_ns)
    channel = events_channel(redis_ns.prefix)
    try:
        await redis_ns.client.publish(channel, b"not json")
        await asyncio.sleep(0.5)
        subscription = feed.admit(None, "test")
        assert subscription.listen() == 0
        await redis_ns.client.publish(channel, json.dumps([]))  # wakes the feed
        with pytest.raises(ServiceError) as cut:
            await asyncio.wait_for(anext(subscription.events()), 10)
        assert cut.value.code == grpc.StatusCode.UNAVAILABLE and "since=" in cut.value.message
        subscription.close()
        await until_ready(feed, "the feed did not start over")
    finally:
        await feed.stop()
