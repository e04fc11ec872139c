"""The monitor's alert on a queued loosening admin change (issue 23), from indexed events.

The timelock's events (ChangeQueued / ChangeExecuted / ChangeCancelled) come with the
program change of issue 23; until that program is in this tree, this test decodes them
against an IDL fragment it builds (the real IDL plus the three events, field for field as
the program's event contract says), so the path it checks is the real one from there on: a
transaction's log → the indexer's decoder → its batch write (audit_log, real PostgreSQL) →
the monitor's pass → alerts. Only the program is stood in for."""

from __future__ import annotations

import base64
import copy
import json
import struct
from datetime import UTC, datetime
from typing import Any, cast

import asyncpg
from solders.pubkey import Pubkey

from services.balance_tracker.events import AdminEvent, decode
from services.balance_tracker.indexer.gaps import AdminSequence
from services.balance_tracker.store import write_batch
from services.common.chain import ChainClient
from services.monitor.admin_alerts import AdminChangeAlerts
from services.monitor.watcher import Watcher
from vault_client.idl import Idl, discriminator, load_idl
from vault_client.vault_program import VaultProgram

CHANGE_EVENTS: list[dict[str, Any]] = [
    {"name": "ChangeQueued", "fields": [
        {"name": "changeId", "type": "u64"}, {"name": "kind", "type": "u8"}, {"name": "target", "type": "publicKey"},
        {"name": "values", "type": {"array": ["u64", 4]}}, {"name": "eta", "type": "i64"},
        {"name": "admin", "type": "publicKey"}, {"name": "timestamp", "type": "i64"}, {"name": "seq", "type": "u64"}]},
    {"name": "ChangeExecuted", "fields": [
        {"name": "changeId", "type": "u64"}, {"name": "kind", "type": "u8"}, {"name": "target", "type": "publicKey"},
        {"name": "values", "type": {"array": ["u64", 4]}}, {"name": "timestamp", "type": "i64"},
        {"name": "seq", "type": "u64"}]},
    {"name": "ChangeCancelled", "fields": [
        {"name": "changeId", "type": "u64"}, {"name": "kind", "type": "u8"}, {"name": "admin", "type": "publicKey"},
        {"name": "timestamp", "type": "i64"}, {"name": "seq", "type": "u64"}]},
]


def fragment() -> Idl:
    raw: dict[str, Any] = copy.deepcopy(load_idl("collateral_vault").raw)
    raw["events"] = [e for e in raw["events"] if e["name"] not in {c["name"] for c in CHANGE_EVENTS}] + CHANGE_EVENTS
    return Idl(raw)


def queued(change_id: int, kind: int, target: Pubkey, values: list[int], eta: int, admin: Pubkey, seq: int) -> bytes:
    return (discriminator("event", "ChangeQueued") + struct.pack("<QB", change_id, kind) + bytes(target)
            + struct.pack("<4Qq", *values, eta) + bytes(admin) + struct.pack("<qQ", eta - 3600, seq))


def executed(change_id: int, kind: int, target: Pubkey, values: list[int], seq: int) -> bytes:
    return (discriminator("event", "ChangeExecuted") + struct.pack("<QB", change_id, kind) + bytes(target)
            + struct.pack("<4QqQ", *values, 1_800_000_000, seq))


def cancelled(change_id: int, kind: int, admin: Pubkey, seq: int) -> bytes:
    return (discriminator("event", "ChangeCancelled") + struct.pack("<QB", change_id, kind) + bytes(admin)
            + struct.pack("<qQ", 1_800_000_000, seq))


def logs(program: Pubkey, *events: bytes) -> list[str]:
    return [f"Program {program} invoke [1]", *(f"Program data: {base64.b64encode(e).decode()}" for e in events),
            f"Program {program} success"]


async def test_a_queued_loosening_change_raises_a_critical_alert_and_its_outcome_an_info_one(
        migrated_pool: asyncpg.Pool) -> None:
    idl = fragment()
    program = VaultProgram(Pubkey.new_unique())
    admin, rogue, new_admin = Pubkey.new_unique(), Pubkey.new_unique(), Pubkey.new_unique()
    eta = int(datetime(2026, 12, 7, 12, 30, tzinfo=UTC).timestamp())
    transactions = [
        ("sig-q1", logs(program.program_id, queued(7, 0, rogue, [0, 0, 0, 0], eta, admin, 5))),
        ("sig-q2", logs(program.program_id, queued(8, 1, new_admin, [0, 0, 0, 0], eta, admin, 6))),
        ("sig-x", logs(program.program_id, executed(7, 0, rogue, [0, 0, 0, 0], 7),
                       cancelled(8, 1, admin, 8))),
    ]
    admin_events: list[AdminEvent] = []
    for signature, lines in transactions:
        rows, admins = decode(signature, lines, 100, None, "confirmed", str(program.program_id), idl=idl)
        assert rows == []
        admin_events += admins
    assert [a.name for a in admin_events] == ["ChangeQueued", "ChangeQueued", "ChangeExecuted", "ChangeCancelled"]
    assert admin_events[0].details["values"] == ["0", "0", "0", "0"] and admin_events[0].actor == str(admin)
    assert AdminSequence(4).check(admin_events) == [], "numbered 5..8 after 4: no gap"

    async with migrated_pool.acquire() as conn:
        await write_batch(conn, program, "collateral_vault", [], admin_events, None)
        await write_batch(conn, program, "collateral_vault", [], admin_events, None)  # a replay adds nothing
    assert await migrated_pool.fetchval("SELECT count(*) FROM audit_log WHERE action LIKE 'Change%'") == 4

    watcher = Watcher(migrated_pool, cast(ChainClient, None))  # raise_alert reads no chain
    monitor = AdminChangeAlerts(migrated_pool, watcher.raise_alert)
    assert await monitor.check_once() == 4
    alerts = {(r["dedupe_key"]): r for r in await migrated_pool.fetch("SELECT * FROM alerts")}
    q = alerts["admin_change_queued:7"]
    assert (q["kind"], q["severity"]) == ("admin_change_queued", "critical")
    for part in ("AuthorizeProgram", str(rogue), "2026-12-07 12:30:00 UTC", "change 7"):
        assert part in q["message"], (part, q["message"])
    details: dict[str, Any] = json.loads(q["details"]) if isinstance(q["details"], str) else q["details"]
    assert details["signature"] == "sig-q1" and details["change_id"] == "7"
    assert "AdminTransfer" in alerts["admin_change_queued:8"]["message"]
    assert str(new_admin) in alerts["admin_change_queued:8"]["message"]
    resolved = alerts["admin_change_resolved:7"], alerts["admin_change_resolved:8"]
    assert [r["severity"] for r in resolved] == ["info", "info"]
    assert "executed" in resolved[0]["message"] and "cancelled" in resolved[1]["message"]

    # a monitor started again reads from the start: nothing is raised twice
    assert await AdminChangeAlerts(migrated_pool, watcher.raise_alert).check_once() == 4
    assert await migrated_pool.fetchval("SELECT count(*) FROM alerts") == 4
    assert await monitor.check_once() == 0


async def test_an_unknown_kind_and_a_bad_eta_still_alert_with_what_is_known(migrated_pool: asyncpg.Pool) -> None:
    program = VaultProgram(Pubkey.new_unique())
    target, admin = Pubkey.new_unique(), Pubkey.new_unique()
    [event] = decode("sig", logs(program.program_id, queued(9, 42, target, [1, 2, 3, 4], 2**62, admin, 1)), 5, None,
                     "confirmed", str(program.program_id), idl=fragment())[1]
    async with migrated_pool.acquire() as conn:
        await write_batch(conn, program, "collateral_vault", [], [event], None)
    watcher = Watcher(migrated_pool, cast(ChainClient, None))
    await AdminChangeAlerts(migrated_pool, watcher.raise_alert).check_once()
    message = await migrated_pool.fetchval("SELECT message FROM alerts WHERE dedupe_key = 'admin_change_queued:9'")
    assert "kind 42" in message and "not a time" in message and "['1', '2', '3', '4']" in message


def test_the_admin_sequence_alerts_on_a_gap_and_skips_replays() -> None:
    def event(name: str, seq: int) -> AdminEvent:
        return AdminEvent(name, "", f"s{seq}", 0, 0, {"seq": str(seq)})

    sequence = AdminSequence()
    assert sequence.check([event("AuthorityInitialized", 1), event("ProgramAuthorized", 2)]) == []
    assert sequence.check([event("ProgramAuthorized", 2)]) == [], "a replay"
    [gap] = sequence.check([event("ChangeQueued", 4), event("ChangeExecuted", 5)])
    assert (gap.expected, gap.seen, gap.signature, gap.name) == (3, 4, "s4", "ChangeQueued")
    assert sequence.last == 5
    assert sequence.check([AdminEvent("ConfigChangeProposed", "", "x", 0, 0, {"seq": "99"})]) == [], \
        "position_manager's admin events are not the authority's"
