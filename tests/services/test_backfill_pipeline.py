"""The backfill's pipeline (services/balance_tracker/indexer/backfill.py, issue 25 item 6) writes
exactly what a sequential backfill writes: the same events with the same numbers, the same
vault rows, the same cursor, although the node answers getTransaction slowly for some
transactions (concurrent round trips come back out of order) and answers each JSON-RPC
batch in reverse order. Real transactions on localnet, the real indexer, PostgreSQL and
Redis; the node's answers pass through an RPC proxy (real HTTP over loopback)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Commitment, Confirmed

from bench.environment import temporary_database
from bench.traffic import burst, users_with_vaults
from localnet.node import Node
from localnet.node_harness import running_node
from services.balance_tracker.indexer.backfill import BackfillError
from services.balance_tracker.indexer.follower import Indexer, IndexerConfig, indexer_pool
from services.balance_tracker.indexer.leadership import new_holder
from services.balance_tracker.indexer.pipeline import WritePipeline
from services.balance_tracker.indexer.publisher import Publisher
from services.common import pools
from services.common.migrations import migrate
from services.common.vault_cache import VaultCache
from tests.conftest import RedisNamespace
from tests.support.rpc_proxy import RpcProxy
from vault_client.rpc_http import SolanaRpc, rpc_client
from vault_client.vault_program import POSITION_MANAGER_ID

EVENTS = ("SELECT signature, instruction_index, event_index, kind, owner, amount, counterparty, total_balance, "
          "locked_balance, available_balance, slot, block_time, seq FROM transactions ORDER BY seq")
VAULTS = ("SELECT owner, total_balance, locked_balance, available_balance, total_deposited, total_withdrawn, "
          "event_seq, last_slot FROM vaults ORDER BY owner")


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    async with running_node() as n:
        yield n


async def backfilled(node: Node, rpc_url: str, redis_ns: RedisNamespace, **options: Any
                     ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], Any]:
    """A new indexer on its own empty database until it has backfilled; its events, vault
    rows and cursor."""
    async with fresh_indexer(node, rpc_url, redis_ns, **options) as (indexer, pool):
        task = asyncio.create_task(indexer.run())
        try:
            await asyncio.wait_for(indexer.ready.wait(), 120)
            events = [tuple(r) for r in await pool.fetch(EVENTS)]
            vaults = [tuple(r) for r in await pool.fetch(VAULTS)]
            cursor = tuple(await pool.fetchrow("SELECT slot, signature FROM indexer_cursor WHERE name = $1",
                                               indexer.config.cursor_name) or ())
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    return events, vaults, cursor


@asynccontextmanager
async def fresh_indexer(node: Node, rpc_url: str, redis_ns: RedisNamespace, **options: Any
                        ) -> AsyncIterator[tuple[Indexer, asyncpg.Pool]]:
    """An indexer (not started) on its own empty, migrated database, and a pool to it."""
    assert node.ledger is not None
    async with temporary_database() as url:
        pool = await pools.postgres(url)
        await migrate(pool)
        holder = new_holder()
        own = await indexer_pool(url, holder)
        publisher = Publisher(redis_ns.client, VaultCache(redis_ns.client, redis_ns.prefix, 30),
                              node.ledger.deployment.program, redis_ns.prefix)
        config = IndexerConfig(rpc_url, node.ws_url, url, node.ledger.deployment.program,
                               exchange_program=POSITION_MANAGER_ID, **options)
        try:
            yield Indexer(config, own, publisher, holder), pool
        finally:
            await own.close()
            await pool.close()


async def test_a_pipelined_backfill_through_a_slow_out_of_order_node_writes_what_a_sequential_one_does(
        node: Node, redis_ns: RedisNamespace) -> None:
    assert node.ledger is not None
    async with AsyncClient(node.rpc_url, commitment=Confirmed) as client:
        accounts = await users_with_vaults(node, client, 6)
        await burst(node.ledger.deployment.program, client, accounts, 60)
        history = (await client.get_signatures_for_address(node.ledger.deployment.program.program_id,
                                                           limit=1000, commitment=Confirmed)).value
    slow = {str(s.signature) for s in history[::3]}  # every third transaction is served late

    def delay(request: dict[str, Any]) -> float:
        return 0.3 if request.get("method") == "getTransaction" and request["params"][0] in slow else 0.0

    # one at a time, straight to the node: the reference
    sequential = await backfilled(node, node.rpc_url, redis_ns, batch_size=7, rpc_max_batch=1,
                                  backfill_concurrency=1, backfill_chunks_ahead=1)
    proxy = RpcProxy(node.rpc_url, delay=delay, reverse_batches=True)
    async with proxy.running():
        pipelined = await backfilled(node, proxy.url, redis_ns, batch_size=7, rpc_max_batch=3,
                                     backfill_concurrency=4, backfill_chunks_ahead=3)
    assert len(sequential[0]) >= 60 + 6  # every deposit/withdrawal and vault creation
    assert pipelined == sequential
    assert proxy.calls["getTransaction"] >= len(history)


async def test_a_transaction_the_node_does_not_return_stops_the_backfill_and_writes_nothing_after_it(
        node: Node, redis_ns: RedisNamespace) -> None:
    """A null getTransaction answer in the middle of a chunk: nothing of that chunk or later
    is written (the indexer starts over from its cursor), earlier chunks stay."""
    assert node.ledger is not None
    async with AsyncClient(node.rpc_url, commitment=Confirmed) as client:
        accounts = await users_with_vaults(node, client, 3)
        await burst(node.ledger.deployment.program, client, accounts, 20)
        history = (await client.get_signatures_for_address(node.ledger.deployment.program.program_id,
                                                           limit=1000, commitment=Confirmed)).value
    missing = str(history[len(history) // 2].signature)  # newest first: one in the middle

    def lose(request: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        if request.get("method") == "getTransaction" and request["params"][0] == missing:
            return {**answer, "result": None}
        return answer

    proxy = RpcProxy(node.rpc_url, rewrite=lose)
    async with proxy.running(), fresh_indexer(node, proxy.url, redis_ns, batch_size=4, rpc_max_batch=3,
                                              backfill_concurrency=3) as (indexer, pool):
        await indexer.lease.acquire()
        try:
            async with indexer_follower(indexer) as client_:
                with pytest.raises(BackfillError, match=missing):
                    await indexer._backfill(client_)
                await indexer._pipeline.drain()
            slot_of_missing = next(s.slot for s in history if str(s.signature) == missing)
            written = await pool.fetch("SELECT DISTINCT signature, slot FROM transactions")
            assert written  # the chunks before it
            assert missing not in {r["signature"] for r in written}
            assert max(r["slot"] for r in written) <= slot_of_missing
            cursor = await pool.fetchrow("SELECT slot FROM indexer_cursor WHERE name = $1",
                                         indexer.config.cursor_name)
            assert cursor is not None and cursor["slot"] <= slot_of_missing
        finally:
            await indexer.lease.release()


def indexer_follower(indexer: Indexer) -> Any:  # an async context manager
    """What `Indexer._follow` sets up before its backfill (its RPC client and write
    pipeline), without the subscription."""
    @asynccontextmanager
    async def follower() -> AsyncIterator[SolanaRpc]:
        async with rpc_client(indexer.config.rpc_url, commitment=Commitment(indexer.config.commitment)) as client:
            indexer._pipeline = WritePipeline(indexer.pool, indexer.config.program, indexer.config.cursor_name,
                                              on_commit=indexer._committed,
                                              fence=(indexer.config.cursor_name, indexer.lease.term))
            indexer._client = client
            try:
                yield client
            finally:
                indexer._client = None
                indexer._pipeline.cancel()

    return follower()
