"""monitor: TVL and health over gRPC, and each alert firing in a scripted scenario, against
localnet, the real indexer, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import asyncpg
import grpc
import pytest
from collateral_vault.v1 import vault_monitor_pb2, vault_monitor_pb2_grpc
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.message import Message
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from bench.traffic import users_with_vaults
from localnet.genesis import dev_keypair
from localnet.node import Node
from localnet.node_harness import running_node
from services.balance_tracker import reconcile
from services.common.chain import ChainClient
from services.monitor.app import MonitorApp
from services.monitor.watcher import WatcherConfig
from tests.conftest import RedisNamespace
from tests.support.services import GENESIS_OWNERS, balance_tracker, settings_for, wait_for_rows

USDT = 10**6


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    async with running_node() as n:
        yield n


async def test_tvl_health_and_every_alert(node: Node, pg_database: str, redis_ns: RedisNamespace) -> None:
    assert node.ledger is not None
    deployment = node.ledger.deployment
    program = deployment.program
    settings = settings_for("monitor", node, pg_database, redis_ns.url, redis_ns.prefix)
    monitor = MonitorApp(settings, WatcherConfig(vault_share=0.5, tvl_share=0.2, window_seconds=3600,
                                                 max_lag_slots=50, interval_seconds=3600), run_watcher=False)
    async with balance_tracker(settings_for("balance_tracker", node, pg_database, redis_ns.url, redis_ns.prefix),
                               reconcile_seconds=3600.0), AsyncClient(node.rpc_url, commitment=Confirmed) as client:
        await monitor.start()
        assert monitor.watcher is not None
        watcher = monitor.watcher
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{settings.grpc_port}") as channel:
                stub = vault_monitor_pb2_grpc.VaultMonitorStub(channel)

                async def kinds() -> list[str]:
                    await watcher.check_once()
                    reply = await stub.ListAlerts(vault_monitor_pb2.ListAlertsRequest())
                    return sorted({a.kind for a in reply.alerts})

                alice, bob = await users_with_vaults(node, client, 2)
                await alice.user.send([program.deposit(alice.user.key, alice.token_account, 100 * USDT)])
                await bob.user.send([program.deposit(bob.user.key, bob.token_account, 900 * USDT)])
                await wait_for_rows(pg_database, 4)
                await asyncio.sleep(0.3)
                tvl = await stub.GetTvl(vault_monitor_pb2.GetTvlRequest())
                # the vaults: the two users' and genesis' fee and insurance vaults (empty)
                # (no chain read: chain_matches is the latest reconciliation's verdict, none ran yet)
                assert (tvl.total, tvl.vault_count, tvl.chain_total, tvl.chain_matches, tvl.reconciled_at) == (
                    1000 * USDT, 2 + len(GENESIS_OWNERS), 0, False, 0)
                assert tvl.slot > 0
                health = await stub.GetVaultHealth(vault_monitor_pb2.GetVaultHealthRequest(owner=str(alice.user.key)))
                assert health.balanced and health.token_account_matches and health.locked_ratio == 0.0
                assert await kinds() == []

                # 1. a withdrawal of 90% of a vault
                await alice.user.send([program.withdraw(alice.user.key, alice.token_account, 90 * USDT)])
                await wait_for_rows(pg_database, 5)
                assert await kinds() == ["large_withdrawal"]

                # 2. the program paused by its admin
                admin = dev_keypair("admin")
                blockhash = (await client.get_latest_blockhash()).value.blockhash
                tx = VersionedTransaction(Message.new_with_blockhash([program.set_paused(admin.pubkey(), 1)],
                                                                     admin.pubkey(), blockhash), [admin])
                await client.confirm_transaction((await client.send_transaction(tx)).value, Confirmed)
                assert "program_paused" in await kinds()

                # 3. a lock by a program not in the authority list (impossible on chain: seen in the data)
                conn = await asyncpg.connect(pg_database)
                try:
                    await conn.execute(
                        "INSERT INTO transactions (owner, signature, instruction_index, event_index, kind, amount, "
                        "caller_program, total_balance, locked_balance, available_balance, slot, block_time, seq) "
                        "VALUES ($1, $2, 0, 0, 'lock', 1, $3, 10, 1, 9, 1, $4, "
                        "(SELECT max(seq) + 1000 FROM transactions))", str(bob.user.key),
                        str(Signature.new_unique()), str(deployment.rogue_pm_id), datetime.now(UTC))
                    assert "unauthorized_caller" in await kinds()

                    # 4. reconciliation finds a corrupted row
                    await conn.execute("UPDATE vaults SET total_balance = total_balance + 7, available_balance = "
                                       "available_balance + 7 WHERE owner = $1", str(bob.user.key))
                    chain = ChainClient(node.rpc_url, program, "test")
                    try:
                        result = await reconcile.run(monitor.watcher.pool, chain)
                    finally:
                        await chain.close()
                    assert result.findings
                    assert "reconciliation_mismatch" in await kinds()
                    tvl = await stub.GetTvl(vault_monitor_pb2.GetTvlRequest())
                    assert not tvl.chain_matches and tvl.reconciled_at > 0

                    # 5. the indexer lagging: the chain as it last saw it far ahead of what it processed
                    await conn.execute("UPDATE indexer_cursor SET chain_slot = GREATEST(slot, caught_up_slot) + 1000")
                finally:
                    await conn.close()
                assert await kinds() == ["indexer_lag", "large_withdrawal", "program_paused",
                                         "reconciliation_mismatch", "unauthorized_caller"]
                # alerts are deduplicated: another pass adds nothing
                before = len((await stub.ListAlerts(vault_monitor_pb2.ListAlertsRequest())).alerts)
                await watcher.check_once()
                assert len((await stub.ListAlerts(vault_monitor_pb2.ListAlertsRequest())).alerts) == before

                async with aiohttp.ClientSession() as session, session.get(
                        f"http://127.0.0.1:{settings.metrics_port}/metrics") as response:
                    text = await response.text()
                assert 'monitor_alerts_total{kind="indexer_lag"}' in text and "vault_tvl{" in text
                assert "indexer_lag_slots" in text

                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await stub.ListAlerts(vault_monitor_pb2.ListAlertsRequest(kind="nope"))
                assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        finally:
            await monitor.stop()


async def test_no_lag_alert_while_idle_and_an_alert_when_the_indexer_goes_silent(
        node: Node, pg_database: str, redis_ns: RedisNamespace) -> None:
    """Issue 25: the lag was the chain's slot minus the slot of the last event, so an idle
    system raised "indexer lag" once no vault changed for the limit's worth of slots. Now it
    is measured against the chain as the indexer last saw it (its watermark, recorded every
    second here, events or not). Idle for three times the limit: no alert. The indexer
    stopped: its watermark goes silent, and that is an alert."""
    limit = 10  # slots: 4 s of localnet's 400 ms slots
    settings = settings_for("monitor", node, pg_database, redis_ns.url, redis_ns.prefix)
    monitor = MonitorApp(settings, WatcherConfig(max_lag_slots=limit, interval_seconds=3600, silent_seconds=3),
                         run_watcher=False)
    tracker = dataclasses.replace(settings_for("balance_tracker", node, pg_database, redis_ns.url, redis_ns.prefix),
                                  indexer_stuck_seconds=4.0)  # the progress watch (and watermark) every second
    async with balance_tracker(tracker, reconcile_seconds=3600.0), AsyncClient(node.rpc_url) as client:
        await monitor.start()
        assert monitor.watcher is not None
        watcher = monitor.watcher
        try:
            conn = await asyncpg.connect(pg_database)
            try:
                for _ in range(200):  # genesis' events indexed and a first watermark recorded
                    if await conn.fetchval("SELECT seen_at IS NOT NULL AND caught_up_slot > 0 FROM indexer_cursor"):
                        break
                    await asyncio.sleep(0.1)
                start = (await client.get_slot()).value
                cursor = await conn.fetchval("SELECT slot FROM indexer_cursor")
                while (await client.get_slot()).value < start + 3 * limit:
                    await watcher.check_once()
                    await asyncio.sleep(0.5)
                assert await conn.fetchval("SELECT slot FROM indexer_cursor") == cursor  # no event meanwhile
                assert await conn.fetchval("SELECT count(*) FROM alerts WHERE kind = 'indexer_lag'") == 0
                assert (await client.get_slot()).value - cursor > limit  # what the old measure alerted on
            finally:
                await conn.close()
        except BaseException:
            await monitor.stop()
            raise
    try:  # the balance_tracker stopped: no watermark any more
        await asyncio.sleep(3.5)
        await watcher.check_once()
        conn = await asyncpg.connect(pg_database)
        try:
            messages = [r["message"] for r in await conn.fetch("SELECT message FROM alerts WHERE kind = 'indexer_lag'")]
        finally:
            await conn.close()
        assert len(messages) == 1 and "has not reported" in messages[0], messages
    finally:
        await monitor.stop()
