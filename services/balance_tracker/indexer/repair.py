"""Repairing a vault's event sequence from the chain (docs/indexer-gaps.md).

Two ways, in this order:

1. `refetch`: the vault's transactions between its last good event and the one after the
   gap (getSignaturesForAddress on the vault's address, then getTransaction) are read
   again; when they hold every missing number, those events are indexed like any other
   (a notification the stream lost, a node that answered with a short log once).
2. `read_state` + `write_state`: otherwise (the events are not in any log the node
   serves, e.g. a log cut at its size limit) the vault account itself, at a slot the node
   reports, becomes the vault row: balances, lifetime counters and its event number; the
   events at or below that slot are then in the row and later ones follow it. A `repair`
   entry in audit_log records what was replaced by what.

Each gap raises a critical alert (`raise_gap_alert`), deduplicated by vault and numbers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from solana.rpc.commitment import Commitment
from solders.pubkey import Pubkey

from services.balance_tracker.events import EventRow, decode
from services.balance_tracker.indexer.gaps import AdminGap, Gap
from services.balance_tracker.store import Fence, Fenced, to_seq
from vault_client.rpc_http import SolanaRpc
from vault_client.vault_program import Vault, VaultProgram

MAX_SIGNATURE_PAGES = 10  # how far back (1000 signatures a page) a refetch looks for a gap's events


async def raise_alert(conn: asyncpg.Connection | asyncpg.Pool, kind: str, message: str, key: str, owner: str,
                      details: dict[str, Any]) -> bool:
    """A critical alert in the monitor's table (deduplicated by `key`); True if new."""
    inserted = await conn.fetchval(
        "INSERT INTO alerts (kind, severity, owner, message, dedupe_key, details) "
        "VALUES ($1, 'critical', $2, $3, $4, $5::jsonb) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
        kind, owner, message, key, json.dumps(details))
    return inserted is not None


async def raise_gap_alert(pool: asyncpg.Pool, gap: Gap) -> bool:
    return await raise_alert(
        pool, "sequence_gap",
        f"vault {gap.owner}: event {gap.seen} follows {gap.expected - 1} (expected {gap.expected}) in {gap.signature}; "
        "its row is held at the last good event until repaired from the chain", gap.key, gap.owner,
        {"expected": gap.expected, "seen": gap.seen, "signature": gap.signature, "slot": gap.slot})


async def raise_admin_gap_alert(pool: asyncpg.Pool, gap: AdminGap) -> bool:
    return await raise_alert(
        pool, "admin_sequence_gap",
        f"vault authority: admin event {gap.seen} ({gap.name}) follows {gap.expected - 1} (expected {gap.expected}) "
        f"in {gap.signature}: an admin action is missing from the index", gap.key, "",
        {"expected": gap.expected, "seen": gap.seen, "signature": gap.signature, "event": gap.name})


def _side_seq(event: EventRow, owner: str) -> int | None:
    if event.balances is None:
        return None
    if event.owner == owner:
        return event.vault_seq
    if event.counterparty == owner and event.counterparty_balances is not None:
        return to_seq(event)
    return None


async def refetch(client: SolanaRpc, program: VaultProgram, exchange: str | None, gap: Gap, commitment: Commitment,
                  row_commitment: str) -> list[EventRow] | None:
    """The events of the vault numbered `gap.expected` .. `gap.seen - 1`, in order, read
    again from the node; None unless every one of them was found."""
    address = program.vault(Pubkey.from_string(gap.owner))
    signatures: list[Any] = []
    before = None
    for _ in range(MAX_SIGNATURE_PAGES):
        page = (await client.get_signatures_for_address(address, before=before, limit=1000,
                                                        commitment=commitment)).value
        signatures.extend(s for s in page if s.err is None and gap.after_slot <= s.slot <= gap.slot)
        if len(page) < 1000 or page[-1].slot < gap.after_slot:
            break
        before = page[-1].signature
    wanted = set(range(gap.expected, gap.seen))
    found: dict[int, EventRow] = {}
    for entry in reversed(signatures):  # oldest first
        tx = (await client.get_transaction(entry.signature, commitment=commitment,
                                           max_supported_transaction_version=0)).value
        if tx is None or tx.transaction.meta is None:
            continue
        block_time = datetime.fromtimestamp(tx.block_time, UTC) if tx.block_time else None
        rows, _ = decode(str(entry.signature), list(tx.transaction.meta.log_messages or []), tx.slot, block_time,
                         row_commitment, str(program.program_id), exchange)
        for row in rows:
            seq = _side_seq(row, gap.owner)
            if seq in wanted:
                found[seq] = row
    if set(found) != wanted:
        return None
    return [found[seq] for seq in sorted(found)]


@dataclass(frozen=True)
class ChainState:
    slot: int
    vault: Vault | None  # None: no vault account (closed)


async def read_state(client: SolanaRpc, program: VaultProgram, owner: str, commitment: Commitment) -> ChainState:
    answer = await client.get_account_info(program.vault(Pubkey.from_string(owner)), commitment=commitment)
    account = answer.value
    if account is None or account.owner != program.program_id or not account.data:
        return ChainState(answer.context.slot, None)
    return ChainState(answer.context.slot, Vault.decode(bytes(account.data)))


_UPSERT_REPAIRED = """
INSERT INTO vaults AS v (owner, address, token_account, total_balance, locked_balance, available_balance,
                         total_deposited, total_withdrawn, created_at, closed_at, last_slot, event_seq, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, now())
ON CONFLICT (owner) DO UPDATE SET token_account = EXCLUDED.token_account,
    total_balance = EXCLUDED.total_balance, locked_balance = EXCLUDED.locked_balance,
    available_balance = EXCLUDED.available_balance, total_deposited = EXCLUDED.total_deposited,
    total_withdrawn = EXCLUDED.total_withdrawn, created_at = COALESCE(EXCLUDED.created_at, v.created_at),
    closed_at = EXCLUDED.closed_at, last_slot = GREATEST(v.last_slot, EXCLUDED.last_slot),
    event_seq = EXCLUDED.event_seq, updated_at = now()
"""


async def write_state(pool: asyncpg.Pool, program: VaultProgram, gap: Gap, state: ChainState,
                      fence: Fence | None) -> None:
    """The vault row set from the chain's state, with its `repair` audit entry, in one
    transaction fenced by the indexer's term."""
    try:
        await _write_state(pool, program, gap, state, fence)
    except asyncpg.ObjectNotInPrerequisiteStateError as exc:
        if exc.detail == "fenced":
            raise Fenced(exc.message) from exc
        raise


async def _write_state(pool: asyncpg.Pool, program: VaultProgram, gap: Gap, state: ChainState,
                       fence: Fence | None) -> None:
    owner = Pubkey.from_string(gap.owner)
    vault = state.vault
    async with pool.acquire() as conn, conn.transaction():
        if fence is not None:
            await conn.fetchval("SELECT indexer_fence($1, $2)", *fence)
        previous = await conn.fetchrow("SELECT total_balance::text, locked_balance::text, available_balance::text, "
                                       "total_deposited::text, total_withdrawn::text, event_seq FROM vaults "
                                       "WHERE owner = $1", gap.owner)
        if vault is None:
            await conn.execute("UPDATE vaults SET total_balance = 0, locked_balance = 0, available_balance = 0, "
                               "closed_at = COALESCE(closed_at, now()), event_seq = NULL, "
                               "last_slot = GREATEST(last_slot, $2), updated_at = now() WHERE owner = $1",
                               gap.owner, state.slot)
        else:
            await conn.execute(
                _UPSERT_REPAIRED, gap.owner, str(program.vault(owner)),
                str(vault.token_account), vault.total_balance, vault.locked_balance, vault.available_balance,
                vault.total_deposited, vault.total_withdrawn, datetime.fromtimestamp(vault.created_at, UTC), None,
                state.slot, vault.event_seq)
        await conn.execute(
            "INSERT INTO audit_log (owner, actor, action, signature, details) VALUES ($1, 'indexer', 'repair', $2, "
            "$3::jsonb)", gap.owner, gap.signature, json.dumps({
                "method": "chain_state", "expected": gap.expected, "seen": gap.seen, "slot": state.slot,
                "before": dict(previous) if previous else None,
                "after": None if vault is None else {
                    "total_balance": str(vault.total_balance), "locked_balance": str(vault.locked_balance),
                    "available_balance": str(vault.available_balance),
                    "total_deposited": str(vault.total_deposited), "total_withdrawn": str(vault.total_withdrawn),
                    "event_seq": vault.event_seq}}))


async def record_refetch(pool: asyncpg.Pool, gap: Gap, events: list[EventRow]) -> None:
    """The `repair` audit entry of a gap filled by reading its transactions again."""
    await pool.execute(
        "INSERT INTO audit_log (owner, actor, action, signature, details) VALUES ($1, 'indexer', 'repair', $2, "
        "$3::jsonb)", gap.owner, gap.signature, json.dumps({
            "method": "refetch", "expected": gap.expected, "seen": gap.seen,
            "events": [e.event_id for e in events]}))
