"""Exactly one active indexer: a second replica waits as hot standby and takes over when the
first goes away. And rows indexed at `processed` are promoted or rolled back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.signature import Signature

from localnet.node import Node
from services.balance_tracker.app import BalanceTrackerApp
from tests.conftest import RedisNamespace
from tests.support.localnet_node import running_node
from tests.support.services import GENESIS_OWNERS, settings_for, wait_for_rows
from tests.support.traffic import burst, users_with_vaults


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
            assert first.indexer._leader is not None and second.indexer._leader is None  # hot standby
            await first.stop()
            await burst(program, client, accounts, 20, seed=11)
            assert await wait_for_rows(pg_database, 53, timeout=30) == 53
            assert second.indexer._leader is not None
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
                    "total_balance, locked_balance, available_balance, slot, block_time, commitment) "
                    "VALUES ($1, $2, 0, 0, 'deposit', 5, 5, 0, 5, 1, $3, 'processed')",
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
