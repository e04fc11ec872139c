"""balance_tracker against localnet, PostgreSQL and Redis: the indexer under load, under a
SIGKILL, with PostgreSQL or Redis unreachable; the gRPC API; reconciliation."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator

import asyncpg
import grpc
import pytest
from collateral_vault.v1 import balance_tracker_pb2, balance_tracker_pb2_grpc, common_pb2
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed

from bench.traffic import Account, burst, users_with_vaults
from localnet.node import Node
from localnet.node_harness import running_node
from services.common.vault_cache import VaultCache
from tests.conftest import RedisNamespace
from tests.support.proxy import TcpProxy
from tests.support.services import GENESIS_OWNERS, balance_tracker, settings_for, wait_for_rows

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    """A chain per test: a new indexer backfills the program's whole history."""
    async with running_node() as n:
        yield n


async def assert_agree(node: Node, database_url: str, cache: VaultCache | None, accounts: list[Account]) -> None:
    """DB rows, Redis cache and chain agree exactly for every account."""
    assert node.ledger is not None
    program = node.ledger.deployment.program
    conn = await asyncpg.connect(database_url)
    try:
        async with AsyncClient(node.rpc_url, commitment=Confirmed) as client:
            for account in accounts:
                info = (await client.get_account_info(program.vault(account.user.key))).value
                assert info is not None
                from vault_client.vault_program import Vault

                chain = Vault.decode(bytes(info.data))
                assert chain.total_balance == account.total
                row = await conn.fetchrow("SELECT * FROM vaults WHERE owner = $1", str(account.user.key))
                assert row is not None
                assert (int(row["total_balance"]), int(row["locked_balance"]), int(row["available_balance"]),
                        int(row["total_deposited"]), int(row["total_withdrawn"])) == (
                    chain.total_balance, chain.locked_balance, chain.available_balance, chain.total_deposited,
                    chain.total_withdrawn)
                if cache is not None:
                    cached = await cache.get(account.user.key)
                    assert cached is not None and cached[0].total_balance == chain.total_balance
                    assert cached[0].total_deposited == chain.total_deposited
        duplicates = await conn.fetchval(
            "SELECT count(*) - count(DISTINCT (signature, instruction_index, event_index)) FROM transactions")
        assert duplicates == 0
    finally:
        await conn.close()


async def test_thousand_operations_across_fifty_users(node: Node, pg_database: str, redis_ns: RedisNamespace
                                                      ) -> None:
    assert node.ledger is not None
    program = node.ledger.deployment.program
    settings = settings_for("balance_tracker", node, pg_database, redis_ns.url, redis_ns.prefix)
    async with balance_tracker(settings), AsyncClient(node.rpc_url, commitment=Confirmed) as client:
        accounts = await users_with_vaults(node, client, 50)
        sent = await burst(program, client, accounts, 1_000)
        assert sent == 1_000
        count = await wait_for_rows(pg_database, 1_000, kind=None, timeout=90)
        count = await wait_for_rows(pg_database, 1_050, timeout=90)  # + 50 vault_initialized
        assert count == 1_050
        await asyncio.sleep(0.3)
        await assert_agree(node, pg_database, VaultCache(redis_ns.client, redis_ns.prefix, 60), accounts)


async def test_an_indexer_at_processed_backfills_history_written_before_it_started(
        node: Node, pg_database: str, redis_ns: RedisNamespace) -> None:
    """getTransaction serves no history below `confirmed`: the backfill of an indexer that
    follows at `processed` reads at `confirmed` and still misses nothing."""
    assert node.ledger is not None
    program = node.ledger.deployment.program
    settings = settings_for("balance_tracker", node, pg_database, redis_ns.url, redis_ns.prefix)
    object.__setattr__(settings, "commitment", "processed")
    async with AsyncClient(node.rpc_url, commitment=Confirmed) as client:
        accounts = await users_with_vaults(node, client, 3)
        assert await burst(program, client, accounts, 30) == 30  # the last ones are only processed
        async with balance_tracker(settings):
            assert await wait_for_rows(pg_database, 33, timeout=30) == 33  # + 3 vault_initialized
            assert await burst(program, client, accounts, 9, seed=8) == 9  # the live stream follows
            assert await wait_for_rows(pg_database, 42, timeout=30) == 42
            await asyncio.sleep(0.3)
            await assert_agree(node, pg_database, VaultCache(redis_ns.client, redis_ns.prefix, 60), accounts)


async def test_api_history_snapshots_stream_and_reconcile(node: Node, pg_database: str,
                                                          redis_ns: RedisNamespace) -> None:
    assert node.ledger is not None
    program = node.ledger.deployment.program
    settings = settings_for("balance_tracker", node, pg_database, redis_ns.url, redis_ns.prefix)
    async with balance_tracker(settings, snapshot_seconds=3600.0, reconcile_seconds=3600.0), \
            AsyncClient(node.rpc_url, commitment=Confirmed) as client, \
            grpc.aio.insecure_channel(f"127.0.0.1:{settings.grpc_port}") as channel:
        stub = balance_tracker_pb2_grpc.BalanceTrackerStub(channel)
        [account] = await users_with_vaults(node, client, 1)
        owner = str(account.user.key)
        stream = stub.StreamEvents(balance_tracker_pb2.StreamEventsRequest(owner=owner))
        await wait_for_rows(pg_database, 1)
        await asyncio.sleep(0.2)  # the stream's subscription is in place
        await burst(program, client, [account], 12)
        kinds: set[int] = set()
        while not kinds & {balance_tracker_pb2.EVENT_KIND_DEPOSIT, balance_tracker_pb2.EVENT_KIND_WITHDRAW}:
            streamed = await asyncio.wait_for(stream.read(), 10)
            assert streamed.event.owner == owner  # the stream carries this owner's events only
            kinds.add(streamed.event.kind)
        stream.cancel()
        await wait_for_rows(pg_database, 13)
        await asyncio.sleep(0.2)

        balance = await stub.GetBalance(balance_tracker_pb2.GetBalanceRequest(owner=owner))
        assert balance.vault.total_balance == account.total and balance.indexed_slot > 0
        assert balance.vault.source == common_pb2.DATA_SOURCE_CACHE

        pages, token = [], ""
        while True:
            page = await stub.GetHistory(balance_tracker_pb2.GetHistoryRequest(owner=owner, page_size=5,
                                                                               page_token=token))
            pages.append(page)
            token = page.next_page_token
            if not token:
                break
        events = [e for p in pages for e in p.events]
        assert len(events) == 13 and len({e.id for e in events}) == 13
        assert [e.slot for e in events] == sorted((e.slot for e in events), reverse=True)
        deposits = await stub.GetHistory(balance_tracker_pb2.GetHistoryRequest(
            owner=owner, kinds=[balance_tracker_pb2.EVENT_KIND_DEPOSIT], page_size=100))
        assert {e.kind for e in deposits.events} == {balance_tracker_pb2.EVENT_KIND_DEPOSIT}

        from services.balance_tracker import snapshots

        pool = await asyncpg.create_pool(pg_database)
        assert pool is not None
        try:
            assert await snapshots.take(pool) == 1 + len(GENESIS_OWNERS)  # and genesis' fee and insurance vaults
        finally:
            await pool.close()
        snaps = await stub.GetSnapshots(balance_tracker_pb2.GetSnapshotsRequest(owner=owner))
        assert [s.total_balance for s in snaps.snapshots] == [account.total]

        clean = await stub.Reconcile(balance_tracker_pb2.ReconcileRequest())
        assert clean.findings == [] and clean.vaults_checked >= 1
        conn = await asyncpg.connect(pg_database)
        try:  # corrupt the row (keeping the table's own CHECK satisfied)
            await conn.execute("UPDATE vaults SET total_balance = total_balance + 1, "
                               "available_balance = available_balance + 1 WHERE owner = $1", owner)
        finally:
            await conn.close()
        report = await stub.Reconcile(balance_tracker_pb2.ReconcileRequest())
        fields = {(f.owner, f.field) for f in report.findings}
        assert (owner, "total_balance") in fields and (owner, "available_balance") in fields
        bad = next(f for f in report.findings if f.field == "total_balance")
        assert int(bad.database_value) == int(bad.chain_value) + 1

        for request, code in ((balance_tracker_pb2.GetBalanceRequest(owner="nope"), grpc.StatusCode.INVALID_ARGUMENT),
                              (balance_tracker_pb2.GetBalanceRequest(owner=str(program.program_id)),
                               grpc.StatusCode.NOT_FOUND)):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.GetBalance(request)
            assert info.value.code() == code
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.GetHistory(balance_tracker_pb2.GetHistoryRequest(owner=owner, page_token="garbage"))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def _indexer_process(node: Node, database_url: str, redis_url: str, prefix: str) -> subprocess.Popen[bytes]:
    from localnet.node_harness import free_port

    env = {**os.environ, "PYTHONPATH": ROOT, "SOLANA_RPC_URL": node.rpc_url, "SOLANA_WS_URL": node.ws_url,
           "DATABASE_URL": database_url, "REDIS_URL": redis_url, "REDIS_PREFIX": prefix,
           "BALANCE_TRACKER_GRPC_PORT": str(free_port()), "BALANCE_TRACKER_METRICS_PORT": str(free_port()),
           "LOG_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, "-m", "services.balance_tracker"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def test_sigkill_mid_burst_loses_and_duplicates_nothing(node: Node, pg_database: str,
                                                              redis_ns: RedisNamespace) -> None:
    assert node.ledger is not None
    program = node.ledger.deployment.program
    async with AsyncClient(node.rpc_url, commitment=Confirmed) as client:
        accounts = await users_with_vaults(node, client, 10)
        proc = _indexer_process(node, pg_database, redis_ns.url, redis_ns.prefix)
        killed = False

        async def kill_midway(sent: int) -> None:
            nonlocal killed
            if sent == 100 and not killed:
                killed = True
                proc.send_signal(signal.SIGKILL)

        try:
            await wait_for_rows(pg_database, 10, timeout=60)  # started and backfilled the vault creations
            await burst(program, client, accounts, 250, seed=3, on_progress=kill_midway)
            proc.wait(timeout=10)
            assert killed
            proc = _indexer_process(node, pg_database, redis_ns.url, redis_ns.prefix)
            count = await wait_for_rows(pg_database, 260, timeout=90)
            assert count == 260
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)
        await assert_agree(node, pg_database, None, accounts)


async def test_postgres_down_for_ten_seconds_then_redis_down(node: Node, pg_database: str,
                                                             redis_ns: RedisNamespace) -> None:
    assert node.ledger is not None
    program = node.ledger.deployment.program
    pg_proxy = TcpProxy.to(pg_database, 5432)
    redis_proxy = TcpProxy.to(redis_ns.url, 6379)
    await pg_proxy.start()
    await redis_proxy.start()
    proxied_db, proxied_redis = pg_proxy.url(pg_database), redis_proxy.url(redis_ns.url)
    settings = settings_for("balance_tracker", node, proxied_db, proxied_redis, redis_ns.prefix)
    async with balance_tracker(settings), AsyncClient(node.rpc_url, commitment=Confirmed) as client, \
            grpc.aio.insecure_channel(f"127.0.0.1:{settings.grpc_port}") as channel:
        stub = balance_tracker_pb2_grpc.BalanceTrackerStub(channel)
        accounts = await users_with_vaults(node, client, 5)
        await wait_for_rows(pg_database, 5)

        async def outage(sent: int) -> None:
            if sent == 40:
                await pg_proxy.cut()
                asyncio.get_running_loop().call_later(10.0, lambda: asyncio.ensure_future(pg_proxy.restore()))

        await burst(program, client, accounts, 120, seed=5, on_progress=outage)
        assert await wait_for_rows(pg_database, 125, timeout=60) == 125
        await asyncio.sleep(0.5)
        await assert_agree(node, pg_database, VaultCache(redis_ns.client, redis_ns.prefix, 60), accounts)

        # Redis unreachable: balances are still served (from PostgreSQL), and indexing goes on
        await redis_proxy.cut()
        await burst(program, client, accounts[:2], 10, seed=9)
        assert await wait_for_rows(pg_database, 135, timeout=30) == 135
        reply = await stub.GetBalance(balance_tracker_pb2.GetBalanceRequest(owner=str(accounts[0].user.key)))
        assert reply.vault.total_balance == accounts[0].total
        assert reply.vault.source == common_pb2.DATA_SOURCE_DATABASE
        await redis_proxy.restore()
        for _ in range(50):  # the cache is rebuilt from the database once Redis answers
            cached = await VaultCache(redis_ns.client, redis_ns.prefix, 60).get(accounts[0].user.key)
            if cached is not None and cached[0].total_balance == accounts[0].total:
                break
            await asyncio.sleep(0.1)
        await assert_agree(node, pg_database, VaultCache(redis_ns.client, redis_ns.prefix, 60), accounts)
    await pg_proxy.cut()
    await redis_proxy.cut()


async def test_out_of_range_times_and_forged_page_tokens_are_invalid_argument(
        node: Node, pg_database: str, redis_ns: RedisNamespace) -> None:
    """Each of these was INTERNAL (an OverflowError, or a value PostgreSQL refused)."""
    import base64
    import json

    settings = settings_for("balance_tracker", node, pg_database, redis_ns.url, redis_ns.prefix)
    owner = str(node.ledger.deployment.program.program_id)  # type: ignore[union-attr]

    def token(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()

    async with balance_tracker(settings, indexer_enabled=False), \
            grpc.aio.insecure_channel(f"127.0.0.1:{settings.grpc_port}") as channel:
        stub = balance_tracker_pb2_grpc.BalanceTrackerStub(channel)
        history, snapshots = balance_tracker_pb2.GetHistoryRequest, balance_tracker_pb2.GetSnapshotsRequest
        calls = [
            stub.GetHistory(history(owner=owner, from_time=2**62)),
            stub.GetHistory(history(owner=owner, to_time=-2**62)),
            stub.GetSnapshots(snapshots(owner=owner, to_time=2**63 - 1)),
            stub.GetSnapshots(snapshots(owner=owner, from_time=-1)),
            stub.GetHistory(history(owner=owner, page_token=token([2**70, "abc", 0, 0]))),
            stub.GetHistory(history(owner=owner, page_token=token([1, "a\u0000b", 0, 0]))),
            stub.GetHistory(history(owner=owner, page_token=token([1, "abc", 2**40, 0]))),
            stub.GetHistory(history(owner=owner, page_token=base64.urlsafe_b64encode(b'[1e999, "a", 0, 0]').decode())),
            stub.GetHistory(history(owner=owner, page_token=token({"a": 1, "b": 2, "c": 3, "d": 4}))),
        ]
        for call in calls:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await call
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
        assert (await stub.GetHistory(history(owner=owner, from_time=1, to_time=2**31))).events == []
