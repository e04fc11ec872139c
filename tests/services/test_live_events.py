"""StreamEvents against localnet, PostgreSQL and Redis over real gRPC: subscribers never share
a resource with the indexer's publishing, limits refuse clearly, a resume after a restart or
a Redis outage loses and duplicates nothing, a gap in the feed is filled from the database, a
slow consumer is cut without stalling others, and a vanished client's stream is dropped."""

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
from collateral_vault.v1 import balance_tracker_pb2, balance_tracker_pb2_grpc
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.pubkey import Pubkey

from bench.traffic import Account, users_with_vaults
from localnet.node import Node
from localnet.node_harness import running_node
from services.balance_tracker.app import BalanceTrackerApp
from tests.conftest import RedisNamespace
from tests.support.proxy import TcpProxy
from tests.support.services import settings_for
from vault_client.config import Settings, events_channel

USDT = 10**6
Stream = Any  # grpc.aio.UnaryStreamCall


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    async with running_node() as n:
        yield n


def conf(node: Node, database: str, redis: RedisNamespace, **changes: Any) -> Settings:
    return dataclasses.replace(settings_for("balance_tracker", node, database, redis.url, redis.prefix), **changes)


async def started(settings: Settings, **options: Any) -> BalanceTrackerApp:
    app = BalanceTrackerApp(settings, snapshot_seconds=3600.0, reconcile_seconds=3600.0, **options)
    await app.start(metrics=False)
    assert app.fanout is not None
    deadline = time.monotonic() + 10
    while not app.fanout.ready:
        assert time.monotonic() < deadline, "the live event feed did not start"
        await asyncio.sleep(0.02)
    return app


def stub(channel: grpc.aio.Channel) -> balance_tracker_pb2_grpc.BalanceTrackerStub:
    return balance_tracker_pb2_grpc.BalanceTrackerStub(channel)


def open_stream(channel: grpc.aio.Channel, owner: str = "", since: str = "") -> Stream:
    return stub(channel).StreamEvents(balance_tracker_pb2.StreamEventsRequest(owner=owner, since=since))


async def take(stream: Stream, count: int, kind: int | None = None, timeout: float = 15.0
               ) -> list[balance_tracker_pb2.VaultEvent]:
    """The next `count` events (of `kind`) the stream sends."""
    out: list[balance_tracker_pb2.VaultEvent] = []
    while len(out) < count:
        reply = await asyncio.wait_for(stream.read(), timeout)
        assert reply is not grpc.aio.EOF
        if kind is None or reply.event.kind == kind:
            out.append(reply.event)
    return out


async def nothing_more(stream: Stream, seconds: float = 0.5) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(stream.read(), seconds)


async def deposits(node: Node, account: Account, amounts: list[int]) -> None:
    assert node.ledger is not None
    program = node.ledger.deployment.program
    for amount in amounts:
        await account.user.send([program.deposit(account.user.key, account.token_account, amount)])


async def subscribed(app: BalanceTrackerApp, count: int) -> None:
    assert app.fanout is not None
    deadline = time.monotonic() + 10
    while app.fanout.subscribers != count:
        assert time.monotonic() < deadline, f"{app.fanout.subscribers} subscribers, not {count}"
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)  # each is listening (its replay, if any, done)


DEPOSIT = balance_tracker_pb2.EVENT_KIND_DEPOSIT


async def test_more_idle_streams_than_a_redis_pool_holds_do_not_stop_publishing(
        node: Node, pg_database: str, redis_ns: RedisNamespace) -> None:
    """Reproduces issue 21's second finding: each StreamEvents held a connection of the Redis
    pool (100) the indexer publishes through; 100 idle streams and new events were lost."""
    settings = conf(node, pg_database, redis_ns)
    app = await started(settings)
    try:
        async with AsyncClient(node.rpc_url, commitment=Confirmed) as client, \
                grpc.aio.insecure_channel(f"127.0.0.1:{settings.grpc_port}") as channel:
            [alice] = await users_with_vaults(node, client, 1)
            idle = [open_stream(channel, str(Pubkey.new_unique())) for _ in range(110)]
            everything = open_stream(channel)
            await subscribed(app, 111)
            await deposits(node, alice, [4 * USDT])
            [seen] = await take(everything, 1, DEPOSIT)
            assert seen.owner == str(alice.user.key) and seen.amount == 4 * USDT and seen.seq > 0
            late = open_stream(channel, str(alice.user.key))  # a client arriving after them all
            await subscribed(app, 112)
            await deposits(node, alice, [5 * USDT])
            assert [e.amount for e in await take(late, 1, DEPOSIT)] == [5 * USDT]
            for stream in [*idle, everything, late]:
                stream.cancel()
    finally:
        await app.stop()


async def test_limits_and_bad_requests_are_refused_clearly(node: Node, pg_database: str,
                                                           redis_ns: RedisNamespace) -> None:
    settings = conf(node, pg_database, redis_ns, stream_max_subscribers=2, stream_max_per_client=3)
    app = await started(settings, indexer_enabled=False)
    assert app.fanout is not None
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{settings.grpc_port}") as channel:

            async def refused(stream: Stream, code: grpc.StatusCode, fragment: str) -> None:
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await asyncio.wait_for(stream.read(), 10)
                assert info.value.code() == code and fragment in (info.value.details() or ""), info.value.details()

            first, second = open_stream(channel), open_stream(channel)
            await subscribed(app, 2)
            await refused(open_stream(channel), grpc.StatusCode.RESOURCE_EXHAUSTED, "at most 2 subscribers")
            app.fanout.max_subscribers, app.fanout.max_per_client = 10, 2  # now the client's own limit
            await refused(open_stream(channel), grpc.StatusCode.RESOURCE_EXHAUSTED, "at most 2 event streams")
            first.cancel()
            await subscribed(app, 1)
            third = open_stream(channel)  # a closed stream frees its place
            await subscribed(app, 2)
            await refused(open_stream(channel, "not-a-key"), grpc.StatusCode.INVALID_ARGUMENT, "owner")
            await refused(open_stream(channel, since="nope:0:0"), grpc.StatusCode.NOT_FOUND, "unknown event id")
            await refused(open_stream(channel, since="x" * 10_000), grpc.StatusCode.NOT_FOUND, "(10000 characters)")
            for stream in (second, third):
                stream.cancel()
            await subscribed(app, 0)
    finally:
        await app.stop()


async def test_a_resume_across_a_restart_loses_and_duplicates_nothing(node: Node, pg_database: str,
                                                                      redis_ns: RedisNamespace) -> None:
    settings = conf(node, pg_database, redis_ns)
    async with AsyncClient(node.rpc_url, commitment=Confirmed) as client:
        [alice] = await users_with_vaults(node, client, 1)
        owner = str(alice.user.key)
        app = await started(settings)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{settings.grpc_port}") as channel:
                stream = open_stream(channel, owner)
                await subscribed(app, 1)
                await deposits(node, alice, [1 * USDT, 2 * USDT, 3 * USDT])
                first = await take(stream, 3, DEPOSIT)
                assert [e.amount for e in first] == [1 * USDT, 2 * USDT, 3 * USDT]
                stream.cancel()
        finally:
            await app.stop()
        await deposits(node, alice, [4 * USDT, 5 * USDT, 6 * USDT])  # while nothing indexes
        app = await started(settings)  # the same database and Redis: a restarted balance_tracker
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{settings.grpc_port}") as channel:
                resumed = open_stream(channel, owner, since=first[1].id)  # the client saw only two
                replayed = await take(resumed, 4)
                assert [e.amount for e in replayed] == [3 * USDT, 4 * USDT, 5 * USDT, 6 * USDT]
                assert [e.seq for e in replayed] == sorted(e.seq for e in replayed)
                await deposits(node, alice, [7 * USDT])
                assert [e.amount for e in await take(resumed, 1)] == [7 * USDT]
                await nothing_more(resumed)
                resumed.cancel()
        finally:
            await app.stop()


async def test_a_resume_across_a_redis_outage_loses_and_duplicates_nothing(node: Node, pg_database: str,
                                                                           redis_ns: RedisNamespace) -> None:
    link = TcpProxy.to(redis_ns.url, 6379)
    await link.start()
    settings = conf(node, pg_database, redis_ns, redis_url=link.url(redis_ns.url))
    app = await started(settings)
    try:
        async with AsyncClient(node.rpc_url, commitment=Confirmed) as client, \
                grpc.aio.insecure_channel(f"127.0.0.1:{settings.grpc_port}") as channel:
            [alice] = await users_with_vaults(node, client, 1)
            owner = str(alice.user.key)
            stream = open_stream(channel, owner)
            await subscribed(app, 1)
            await deposits(node, alice, [1 * USDT])
            [last] = await take(stream, 1, DEPOSIT)
            await link.cut()
            with pytest.raises(grpc.aio.AioRpcError) as info:  # was INTERNAL
                await take(stream, 1)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE and "since=" in (info.value.details() or "")
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await take(open_stream(channel, owner, since=last.id), 1)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            await deposits(node, alice, [2 * USDT, 3 * USDT])  # indexed, never published
            conn = await asyncpg.connect(pg_database)
            try:
                deadline = time.monotonic() + 15
                while await conn.fetchval("SELECT count(*) FROM transactions WHERE owner = $1 AND kind = 'deposit'",
                                          owner) < 3:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.1)
            finally:
                await conn.close()
            await link.restore()
            assert app.fanout is not None
            deadline = time.monotonic() + 15
            while not app.fanout.ready:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            resumed = open_stream(channel, owner, since=last.id)
            assert [e.amount for e in await take(resumed, 2)] == [2 * USDT, 3 * USDT]
            await deposits(node, alice, [4 * USDT])
            assert [e.amount for e in await take(resumed, 1)] == [4 * USDT]
            await nothing_more(resumed)
            resumed.cancel()
    finally:
        await app.stop()
        await link.close()


def synthetic(seq: int, prev: int, owner: str) -> dict[str, Any]:
    return {"id": f"{'s' * 80}{seq:08d}:0:0", "seq": seq, "prev": prev, "kind": "deposit", "owner": owner,
            "counterparty": "", "amount": seq, "slot": seq, "signature": f"{'s' * 80}{seq:08d}", "block_time": 0,
            "total_balance": seq, "locked_balance": 0, "available_balance": seq, "caller_program": ""}


async def test_a_slow_consumer_is_cut_without_stalling_others(node: Node, pg_database: str,
                                                              redis_ns: RedisNamespace) -> None:
    settings = conf(node, pg_database, redis_ns, stream_queue_size=500)
    app = await started(settings, indexer_enabled=False)
    owner = str(Pubkey.new_unique())
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{settings.grpc_port}") as channel, \
                grpc.aio.insecure_channel(f"127.0.0.1:{settings.grpc_port}", options=[
                    ("grpc.use_local_subchannel_pool", 1), ("grpc.http2.bdp_probe", 0)]) as slow_channel:
            slow = open_stream(slow_channel)  # never reads until the end
            fast = open_stream(channel, owner)
            await subscribed(app, 2)
            total = 6_000  # the slow client's own buffers (64 KiB window, sockets) hold a part

            async def publish() -> None:  # steady: 25 events every 10 ms, which the reader keeps up with
                for start in range(1, total + 1, 25):
                    pipe = redis_ns.client.pipeline(transaction=False)
                    for seq in range(start, min(start + 25, total + 1)):
                        pipe.publish(events_channel(redis_ns.prefix), json.dumps(synthetic(seq, seq - 1, owner)))
                    await pipe.execute()
                    await asyncio.sleep(0.01)

            publishing = asyncio.create_task(publish())
            received = await take(fast, total, timeout=20)
            await publishing
            assert [e.seq for e in received] == list(range(1, total + 1))  # every one, in order
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await take(slow, total, timeout=20)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "fell 500 events behind" in (info.value.details() or "")
            await subscribed(app, 1)
            fast.cancel()
    finally:
        await app.stop()


async def test_a_gap_in_the_feed_is_filled_from_the_database(node: Node, pg_database: str,
                                                             redis_ns: RedisNamespace) -> None:
    settings = conf(node, pg_database, redis_ns)
    app = await started(settings, indexer_enabled=False)
    owner = str(Pubkey.new_unique())
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{settings.grpc_port}") as channel:
            stream = open_stream(channel, owner)
            await subscribed(app, 1)
            conn = await asyncpg.connect(pg_database)
            try:  # three events committed whose publications were lost
                for seq in (1, 2, 3):
                    event = synthetic(seq, seq - 1, owner)
                    await conn.execute(
                        "INSERT INTO transactions (owner, signature, instruction_index, event_index, kind, amount, "
                        "total_balance, locked_balance, available_balance, slot, block_time, seq) "
                        "VALUES ($1, $2, 0, 0, 'deposit', $3, $3, 0, $3, $4, $5, $4)", owner, event["signature"],
                        seq, seq, datetime.now(UTC))
            finally:
                await conn.close()
            await redis_ns.client.publish(events_channel(redis_ns.prefix), json.dumps(synthetic(4, 3, owner)))
            await redis_ns.client.publish(events_channel(redis_ns.prefix), json.dumps(synthetic(2, 1, owner)))  # late
            await redis_ns.client.publish(events_channel(redis_ns.prefix), json.dumps(synthetic(5, 4, owner)))
            assert [e.seq for e in await take(stream, 5)] == [1, 2, 3, 4, 5]
            await nothing_more(stream)
            stream.cancel()
    finally:
        await app.stop()


async def test_the_stream_of_a_client_that_vanished_is_dropped(node: Node, pg_database: str,
                                                               redis_ns: RedisNamespace) -> None:
    """No server keepalive: a stream held for a client gone without closing stayed forever."""
    settings = conf(node, pg_database, redis_ns, grpc_keepalive_seconds=1.0, grpc_keepalive_timeout_seconds=1.0)
    app = await started(settings, indexer_enabled=False)
    link = TcpProxy("127.0.0.1", settings.grpc_port)
    await link.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{link.port}") as channel:
            stream = open_stream(channel)
            await subscribed(app, 1)
            link.stall()
            started_at = time.monotonic()
            await subscribed(app, 0)
            assert time.monotonic() - started_at < 10
            stream.cancel()
    finally:
        link.resume()
        await link.close()
        await app.stop()
