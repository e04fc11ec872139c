"""The timelock's alerts end to end (issue 23): the real program on localnet, the real
indexer (balance_tracker) writing PostgreSQL, the monitor's admin-change pass and its
ListAlerts over gRPC. Nothing is stood in for.

The admin (localnet's development key) raises the withdrawal limits and sets a timelock
delay of one hour (each queued and executed in one transaction: genesis' delay is 0), then
queues the authorization of a program (a loosening change, now pending for an hour) and
cancels it. Each queued change raises a critical `admin_change_queued` alert naming its
kind, target, eta and id; each executed or cancelled one an info `admin_change_resolved`;
and the authority's admin events stay gap-free (WithdrawLimitsSet is one of them)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator

import grpc
import pytest
from collateral_vault.v1 import vault_monitor_pb2, vault_monitor_pb2_grpc
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed

from localnet.genesis import dev_keypair
from localnet.node import Node
from localnet.node_harness import RpcUser, running_node
from services.common.chain import ChainClient
from services.monitor.app import MonitorApp
from services.monitor.watcher import WatcherConfig
from tests.conftest import RedisNamespace
from tests.support.services import balance_tracker, settings_for
from vault_client.vault_program import Authority, WithdrawLimits

HOUR = 3600
CHANGE = re.compile(r"^admin change (\d+) ")


def change_id(alert: vault_monitor_pb2.Alert) -> int:
    found = CHANGE.match(alert.message)
    assert found, alert.message
    return int(found.group(1))


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    async with running_node() as n:
        yield n


async def test_queued_executed_and_cancelled_changes_raise_their_alerts(node: Node, pg_database: str,
                                                                         redis_ns: RedisNamespace) -> None:
    assert node.ledger is not None
    deployment = node.ledger.deployment
    program, rogue = deployment.program, deployment.rogue_pm_id
    settings = settings_for("monitor", node, pg_database, redis_ns.url, redis_ns.prefix)
    monitor = MonitorApp(settings, WatcherConfig(interval_seconds=3600), run_watcher=False)
    chain = ChainClient(node.rpc_url, program, "test")
    async with balance_tracker(settings_for("balance_tracker", node, pg_database, redis_ns.url, redis_ns.prefix),
                               reconcile_seconds=3600.0), AsyncClient(node.rpc_url, commitment=Confirmed) as client:
        await monitor.start()
        assert monitor.admin_changes is not None
        changes = monitor.admin_changes
        admin = RpcUser(client, dev_keypair("admin"))
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{settings.grpc_port}") as channel:
                stub = vault_monitor_pb2_grpc.VaultMonitorStub(channel)

                async def authority() -> Authority:
                    found = await chain.authority()
                    assert found is not None
                    return found

                first = (await authority()).next_change_id + 1

                async def alerts(kind: str, count: int) -> list[vault_monitor_pb2.Alert]:
                    """The `kind` alerts of this test's changes over gRPC, once there are `count`
                    (the indexer and the monitor's pass run until then); genesis' own change
                    (authorizing position_manager) has a lower id."""
                    deadline = time.monotonic() + 60
                    while True:
                        await changes.check_once()
                        reply = await stub.ListAlerts(vault_monitor_pb2.ListAlertsRequest(kind=kind))
                        found = [a for a in reply.alerts if change_id(a) >= first]
                        if len(found) >= count or time.monotonic() > deadline:
                            return sorted(found, key=lambda a: a.id)
                        await asyncio.sleep(0.1)

                # 1. queued and executed in one transaction (delay 0): both alerts
                raised = WithdrawLimits(2_000, 1_000, 500_000 * 10**6, 2_000 * 10**6)
                await admin.send([program.set_withdraw_limits(admin.key, raised), program.execute_change(first)])
                await admin.send([program.set_timelock_delay(admin.key, HOUR), program.execute_change(first + 1)])
                assert (await authority()).timelock_delay == HOUR
                queued = await alerts("admin_change_queued", 2)
                resolved = await alerts("admin_change_resolved", 2)
                assert [a.severity for a in queued] == ["critical", "critical"]
                assert [a.severity for a in resolved] == ["info", "info"]
                assert f"admin change {first} queued: RaiseWithdrawLimits" in queued[0].message
                assert "['2000', '1000', '500000000000', '2000000000']" in queued[0].message
                assert f"admin change {first + 1} queued: SetDelay" in queued[1].message
                assert f"admin change {first} executed: RaiseWithdrawLimits" in resolved[0].message
                assert f"admin change {first + 1} executed: SetDelay" in resolved[1].message

                # 2. a loosening change now waits an hour: the alert says what, for whom, when
                await admin.send([program.add_authorized_program(admin.key, rogue)])
                [pending] = (await authority()).pending_changes
                assert (pending.change_id, pending.kind, pending.target) == (first + 2, 0, rogue)
                queued = await alerts("admin_change_queued", 3)
                alert = queued[-1]
                assert alert.severity == "critical" and alert.owner == ""
                when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(pending.eta))
                for part in (f"admin change {first + 2} queued", "AuthorizeProgram", str(rogue), when,
                             str(admin.key)):
                    assert part in alert.message, (part, alert.message)
                assert len(await alerts("admin_change_resolved", 2)) == 2, "not resolved yet"

                # 3. cancelled: resolved, and the program was never authorized
                await admin.send([program.cancel_change(admin.key, first + 2)])
                resolved = await alerts("admin_change_resolved", 3)
                assert f"admin change {first + 2} cancelled: AuthorizeProgram by {admin.key}" in resolved[-1].message
                state = await authority()
                assert state.pending_changes == () and rogue not in state.programs

                # nothing raised twice, and the authority's events are gap-free (the indexer
                # knows WithdrawLimitsSet carries the authority's number too)
                await changes.check_once()
                every = (await stub.ListAlerts(vault_monitor_pb2.ListAlertsRequest())).alerts
                assert sorted(a.kind for a in every) == ["admin_change_queued"] * 4 + ["admin_change_resolved"] * 4, \
                    [a.message for a in every]
        finally:
            await monitor.stop()
            await chain.close()
