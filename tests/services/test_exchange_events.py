"""Downstream of the exchange program (issue 22): the indexer follows position_manager as
well as the vault program, balance_tracker's history and live stream carry grants, exits and
the operator's actions, and the monitor alerts on a liquidation, an exit requested, an exit
the trader served himself and an operator operation the chain refused. Real services over
gRPC, localnet, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import grpc
import pytest
from collateral_vault.v1 import (
    balance_tracker_pb2,
    balance_tracker_pb2_grpc,
    cpi_manager_pb2,
    cpi_manager_pb2_grpc,
    transaction_builder_pb2,
    transaction_builder_pb2_grpc,
    vault_monitor_pb2,
    vault_monitor_pb2_grpc,
)
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed

from bench.traffic import Account, users_with_vaults
from localnet.node import Node
from localnet.node_harness import running_node
from services.monitor.app import MonitorApp
from services.monitor.watcher import WatcherConfig
from tests.conftest import RedisNamespace
from tests.support.services import balance_tracker, cpi_manager, fund_operator, settings_for, sign, vault_manager
from vault_client.config import Settings

USDT = 10**6
pb = cpi_manager_pb2
bt = balance_tracker_pb2


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    async with running_node() as n:
        yield n


async def test_exchange_events_reach_history_stream_and_alerts(node: Node, pg_database: str,
                                                               redis_ns: RedisNamespace) -> None:
    def conf(name: str) -> Settings:
        return settings_for(name, node, pg_database, redis_ns.url, redis_ns.prefix)

    tracker_settings, monitor_settings = conf("balance_tracker"), conf("monitor")
    monitor = MonitorApp(monitor_settings, WatcherConfig(interval_seconds=3600), run_watcher=False)
    async with balance_tracker(tracker_settings, reconcile_seconds=3600.0), \
            vault_manager(conf("vault_manager")) as vm, cpi_manager(conf("cpi_manager")) as cm, \
            grpc.aio.insecure_channel(vm.target) as vm_channel, grpc.aio.insecure_channel(cm.target) as cm_channel, \
            grpc.aio.insecure_channel(f"127.0.0.1:{tracker_settings.grpc_port}") as bt_channel, \
            AsyncClient(node.rpc_url, commitment=Confirmed) as client:
        await fund_operator(client)
        builder = transaction_builder_pb2_grpc.TransactionBuilderStub(vm_channel)
        cpi = cpi_manager_pb2_grpc.CpiManagerStub(cm_channel)
        tracker = balance_tracker_pb2_grpc.BalanceTrackerStub(bt_channel)
        alice_account, bob_account = await users_with_vaults(node, client, 2)
        alice, bob = str(alice_account.user.key), str(bob_account.user.key)
        stream = tracker.StreamEvents(bt.StreamEventsRequest(owner=alice))
        live: list[bt.VaultEvent] = []

        async def collect() -> None:
            async for message in stream:
                live.append(message.event)

        collecting = asyncio.create_task(collect())

        async def wallet(account: Account, unsigned: Awaitable[Any]) -> None:
            reply = await builder.SubmitTransaction(transaction_builder_pb2.SubmitTransactionRequest(
                signed_transaction_base64=sign((await unsigned).transaction.transaction_base64, account.user.keypair)))
            assert reply.status.error == ""

        expires = int(time.time()) + 86_400
        for account, owner in ((alice_account, alice), (bob_account, bob)):
            await wallet(account, builder.BuildDeposit(transaction_builder_pb2.BuildDepositRequest(
                owner=owner, amount=100 * USDT)))
            await wallet(account, cpi.BuildGrant(pb.BuildGrantRequest(trader=owner, max_locked=80 * USDT,
                                                                      expires_at=expires)))
        await cpi.Lock(pb.LockRequest(trader=alice, amount=50 * USDT, client_request_id="l-a"))
        await cpi.Lock(pb.LockRequest(trader=bob, amount=20 * USDT, client_request_id="l-b"))
        await cpi.Settle(pb.SettleRequest(client_request_id="s-1", pairs=[
            pb.SettlementPair(payer=alice, receiver=bob, amount=10 * USDT)]))
        await cpi.Liquidate(pb.LiquidateRequest(trader=bob, amount=20 * USDT, client_request_id="liq-b"))
        with pytest.raises(grpc.aio.AioRpcError):  # refused on chain: above the grant
            await cpi.Lock(pb.LockRequest(trader=alice, amount=80 * USDT, client_request_id="l-a-2"))
        await wallet(alice_account, cpi.BuildRequestExit(pb.BuildRequestExitRequest(trader=alice)))
        grant = await cpi.GetGrant(pb.GetGrantRequest(trader=alice))
        while (await client.get_slot()).value <= grant.exit_deadline_slot:  # the operator does not answer
            await asyncio.sleep(0.05)
        await wallet(alice_account, cpi.BuildExit(pb.BuildExitRequest(trader=alice)))

        expected = ["deposit", "grant_set", "lock", "operator_lock", "transfer", "operator_settle", "exit_requested",
                    "unlock", "exit_served"]
        history: list[bt.VaultEvent] = []
        for _ in range(200):
            history = list((await tracker.GetHistory(bt.GetHistoryRequest(owner=alice, page_size=100))).events)
            if {bt.EventKind.Name(e.kind) for e in history} >= {"EVENT_KIND_" + k.upper() for k in expected}:
                break
            await asyncio.sleep(0.05)
        by_kind = {bt.EventKind.Name(e.kind).removeprefix("EVENT_KIND_").lower(): e for e in history}
        assert set(expected) <= set(by_kind), sorted(by_kind)
        assert by_kind["grant_set"].amount == 80 * USDT and by_kind["grant_set"].expires_at == expires
        assert (by_kind["operator_lock"].op_id, by_kind["operator_lock"].program_locked) == (1, 50 * USDT)
        assert by_kind["lock"].program_locked == 50 * USDT and by_kind["lock"].vault_seq > 0
        assert by_kind["operator_settle"].counterparty == bob and by_kind["operator_settle"].op_id == 2
        assert by_kind["exit_requested"].exit_deadline_slot == grant.exit_deadline_slot
        assert (by_kind["exit_served"].amount, by_kind["exit_served"].by_operator) == (40 * USDT, False)
        assert by_kind["unlock"].locked_balance == 0
        since_subscribed = {e.id for e in history if e.owner == alice and e.kind != bt.EVENT_KIND_VAULT_INITIALIZED}
        for _ in range(100):  # the live stream carried the same events
            if {e.id for e in live} >= since_subscribed:
                break
            await asyncio.sleep(0.05)
        assert {e.id for e in live} >= since_subscribed
        collecting.cancel()
        stream.cancel()

        await monitor.start()
        try:
            assert monitor.watcher is not None
            await monitor.watcher.check_once()
            async with grpc.aio.insecure_channel(f"127.0.0.1:{monitor_settings.grpc_port}") as channel:
                alerts = (await vault_monitor_pb2_grpc.VaultMonitorStub(channel).ListAlerts(
                    vault_monitor_pb2.ListAlertsRequest())).alerts
        finally:
            await monitor.stop()
        found = {a.kind: a for a in alerts}
        assert {"liquidation", "exit_requested", "exit_served_by_trader", "operator_refused"} <= set(found)
        assert found["liquidation"].owner == bob and found["exit_served_by_trader"].owner == alice
        assert "GrantExceeded" in found["operator_refused"].message
