"""Exactly one active indexer: a second replica waits as hot standby and takes over when the
first goes away. And rows indexed at `processed` are promoted or rolled back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.signature import Signature

from bench.traffic import burst, users_with_vaults
from localnet.node import Node
from localnet.node_harness import running_node
from services.balance_tracker.app import BalanceTrackerApp
from tests.conftest import RedisNamespace
from tests.services.test_balance_tracker import assert_agree
from tests.support.proxy import TcpProxy
from tests.support.services import GENESIS_OWNERS, settings_for, wait_for_rows


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    async with running_node() as n:
        yield n


async def test_standby_takes_over(node: Node, pg_database: str, redis_ns: RedisNamespace) -> None:
    assert node.ledger is not None
    program = node.ledger.deployment.program
    first = BalanceTrackerApp(settings_for("balance_tracker", node, pg_database, redis_ns.url, redis_ns.prefix))
    second = BalanceTrackerApp(settings_for("balance_tracker", node, pg_database, redis_ns.url, redis_ns.prefix))
    await first.start(metrics=False)
    await asyncio.sleep(0.5)
    await second.start(metrics=False)
    try:
        async with AsyncClient(node.rpc_url, commitment=Confirmed) as client:
            accounts = await users_with_vaults(node, client, 3)
            await burst(program, client, accounts, 30)
            assert await wait_for_rows(pg_database, 33) == 33
            assert first.indexer is not None and second.indexer is not None
            assert first.indexer.is_leader and not second.indexer.is_leader  # hot standby
            await first.stop()
            await burst(program, client, accounts, 20, seed=11)
            assert await wait_for_rows(pg_database, 53, timeout=30) == 53
            assert second.indexer.is_leader
    finally:
        await second.stop()


async def test_processed_rows_are_promoted_or_rolled_back(node: Node, pg_database: str,
                                                          redis_ns: RedisNamespace) -> None:
    settings = settings_for("balance_tracker", node, pg_database, redis_ns.url, redis_ns.prefix)
    app = BalanceTrackerApp(settings)
    await app.start(metrics=False)
    try:
        async with AsyncClient(node.rpc_url, commitment=Confirmed) as client:
            [account] = await users_with_vaults(node, client, 1)
            assert await wait_for_rows(pg_database, 1) == 1
            conn = await asyncpg.connect(pg_database)
            try:
                real = await conn.fetchval("SELECT signature FROM transactions WHERE owner <> ALL($1)",
                                           GENESIS_OWNERS)
                await conn.execute("UPDATE transactions SET commitment = 'processed'")
                # an event of a transaction the cluster has never confirmed (a dropped fork)
                ghost = str(Signature.new_unique())
                await conn.execute(
                    "INSERT INTO transactions (owner, signature, instruction_index, event_index, kind, amount, "
                    "total_balance, locked_balance, available_balance, slot, block_time, commitment, seq) "
                    "VALUES ($1, $2, 0, 0, 'deposit', 5, 5, 0, 5, 1, $3, 'processed', "
                    "(SELECT max(seq) + 1000000 FROM transactions))",
                    str(account.user.key), ghost, datetime.now(UTC))
                assert app.indexer is not None
                slot = (await client.get_slot()).value
                while (await client.get_slot()).value - 1 <= 64:
                    await asyncio.sleep(0.1)
                rolled = await app.indexer.settle_processed(client, slot)
                assert rolled == 1
                rows = await conn.fetch("SELECT signature, commitment FROM transactions WHERE owner <> ALL($1)",
                                        GENESIS_OWNERS)
                assert [(r["signature"], r["commitment"]) for r in rows] in (
                    [(real, "confirmed")], [(real, "finalized")])
                assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE action = 'rollback'") == 1
            finally:
                await conn.close()
    finally:
        await app.stop()


async def test_a_leader_that_vanishes_without_closing_is_replaced_within_the_bound(
        node: Node, pg_database: str, redis_ns: RedisNamespace) -> None:
    """Reproduces issue 21's third finding: the leader's PostgreSQL link stops forwarding
    without closing (power loss, a partition). Before, PostgreSQL kept the vanished session's
    advisory lock (until TCP keepalive, hours) and the standby never took over. Now the lease
    expires, the standby takes over within the stated bound, nothing is lost or doubled, and
    the old leader, once its link is back, is fenced off and steps down."""
    assert node.ledger is not None
    program = node.ledger.deployment.program
    link = TcpProxy.to(pg_database, 5432)
    await link.start()
    leader = BalanceTrackerApp(settings_for("balance_tracker", node, link.url(pg_database), redis_ns.url,
                                            redis_ns.prefix))
    standby = BalanceTrackerApp(settings_for("balance_tracker", node, pg_database, redis_ns.url, redis_ns.prefix))
    await leader.start(metrics=False)
    await asyncio.sleep(0.5)
    await standby.start(metrics=False)
    try:
        async with AsyncClient(node.rpc_url, commitment=Confirmed) as client:
            accounts = await users_with_vaults(node, client, 3)
            await burst(program, client, accounts, 20)
            assert await wait_for_rows(pg_database, 23) == 23
            link.stall()
            stalled = time.monotonic()
            await burst(program, client, accounts, 20, seed=11)
            assert await wait_for_rows(pg_database, 43, timeout=30) == 43  # followed again, by the standby
            caught_up = time.monotonic() - stalled
            assert caught_up <= 30, caught_up

            from services.balance_tracker.store import Fenced, write_batch

            assert leader.indexer is not None and standby.indexer is not None
            assert standby.indexer.is_leader and not leader.indexer.is_leader  # its term lapsed on its own
            old_term, new_term = leader.indexer.lease.term, standby.indexer.lease.term
            assert new_term == old_term + 1, (old_term, new_term)
            link.resume()
            for _ in range(100):  # back online, the old leader learns its term is over
                if leader.indexer.lease.term != old_term:
                    break
                await asyncio.sleep(0.1)
            assert not leader.indexer.is_leader and standby.indexer.is_leader
            conn = await asyncpg.connect(pg_database)
            try:  # a write of the old term, as the old leader would make it, is refused
                [stray] = (await conn.fetch("SELECT owner, signature FROM transactions LIMIT 1"))
                from services.balance_tracker.events import Balances, EventRow

                event = EventRow(owner=stray["owner"], signature="stale" + stray["signature"][5:], instruction_index=0,
                                 event_index=0, kind="deposit", amount=1, slot=1, block_time=None,
                                 commitment="confirmed", balances=Balances(1, 0, 1), seq=10**9)
                with pytest.raises(Fenced):
                    await write_batch(conn, program, "collateral_vault", [event], [], (1, "stale"),
                                      fence=("collateral_vault", old_term))
            finally:
                await conn.close()
            await burst(program, client, accounts, 10, seed=12)
            assert await wait_for_rows(pg_database, 53, timeout=30) == 53
            await asyncio.sleep(0.3)
            await assert_agree(node, pg_database, None, accounts)
    finally:
        link.resume()
        await standby.stop()
        await leader.stop()
        await link.close()


async def test_a_leader_that_makes_no_progress_is_unhealthy_until_it_does(
        node: Node, pg_database: str, redis_ns: RedisNamespace) -> None:
    """Issue 21 (low): balance_tracker stayed SERVING while its indexer was stuck. Here the
    indexer's subscription stalls (its peer vanishes without closing): no notification, no
    error, the chain moves on. Health goes NOT_SERVING (liveness fails), the indexer
    resubscribes, and health returns once it has caught up."""
    import dataclasses

    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    assert node.ledger is not None
    program = node.ledger.deployment.program
    link = TcpProxy.to(node.ws_url, 8900)
    await link.start()
    settings = dataclasses.replace(settings_for("balance_tracker", node, pg_database, redis_ns.url, redis_ns.prefix),
                                   solana_ws_url=link.url(node.ws_url), indexer_stuck_seconds=2.0)
    app = BalanceTrackerApp(settings)
    await app.start(metrics=False)

    async def status(channel: grpc.aio.Channel) -> int:
        return int((await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())).status)

    async def until_status(channel: grpc.aio.Channel, wanted: int, seconds: float) -> float:
        started = time.monotonic()
        while await status(channel) != wanted:
            assert time.monotonic() - started < seconds, f"health not {wanted} after {seconds} s"
            await asyncio.sleep(0.1)
        return time.monotonic() - started

    try:
        async with AsyncClient(node.rpc_url, commitment=Confirmed) as client, \
                grpc.aio.insecure_channel(f"127.0.0.1:{settings.grpc_port}") as channel:
            accounts = await users_with_vaults(node, client, 2)
            await burst(program, client, accounts, 6)
            assert await wait_for_rows(pg_database, 8) == 8
            assert await status(channel) == health_pb2.HealthCheckResponse.SERVING
            link.stall()
            await burst(program, client, accounts, 6, seed=4)
            await until_status(channel, health_pb2.HealthCheckResponse.NOT_SERVING, 10)
            assert await wait_for_rows(pg_database, 14, timeout=0.5) == 8  # nothing indexed meanwhile
            link.resume()
            assert await wait_for_rows(pg_database, 14, timeout=30) == 14
            await until_status(channel, health_pb2.HealthCheckResponse.SERVING, 10)
    finally:
        link.resume()
        await app.stop()
        await link.close()
