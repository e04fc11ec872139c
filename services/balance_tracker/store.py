"""The indexer's writes, each batch in one PostgreSQL transaction:

1. events inserted with `ON CONFLICT DO NOTHING` (the unique key is (signature,
   instruction index, event index)), returning which were new;
2. vault rows folded from the *new* events only (absolute balances from each event, in
   order; lifetime counters incremented), so replaying a batch changes nothing;
3. one audit_log row per new event and admin action;
4. the cursor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from solders.pubkey import Pubkey

from services.balance_tracker.events import AdminEvent, Balances, EventRow
from services.common.vault_program import VaultProgram

_INSERT_EVENTS = """
INSERT INTO transactions (owner, signature, instruction_index, event_index, kind, amount, counterparty,
                          caller_program, total_balance, locked_balance, available_balance, slot, block_time,
                          commitment)
SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::text[], $6::numeric[], $7::text[],
                     $8::text[], $9::numeric[], $10::numeric[], $11::numeric[], $12::bigint[], $13::timestamptz[],
                     $14::text[])
ON CONFLICT DO NOTHING
RETURNING signature, instruction_index, event_index
"""

_UPSERT_VAULTS = """
INSERT INTO vaults AS v (owner, address, token_account, total_balance, locked_balance, available_balance,
                         total_deposited, total_withdrawn, created_at, closed_at, last_slot, last_event_id)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::numeric[], $5::numeric[], $6::numeric[],
                     $7::numeric[], $8::numeric[], $9::timestamptz[], $10::timestamptz[], $11::bigint[], $12::text[])
ON CONFLICT (owner) DO UPDATE SET
    address = EXCLUDED.address,
    token_account = EXCLUDED.token_account,
    total_balance = EXCLUDED.total_balance,
    locked_balance = EXCLUDED.locked_balance,
    available_balance = EXCLUDED.available_balance,
    -- created_at is set exactly when the batch (re)initialized the vault: counters restart
    total_deposited = CASE WHEN EXCLUDED.created_at IS NOT NULL THEN EXCLUDED.total_deposited
                           ELSE v.total_deposited + EXCLUDED.total_deposited END,
    total_withdrawn = CASE WHEN EXCLUDED.created_at IS NOT NULL THEN EXCLUDED.total_withdrawn
                           ELSE v.total_withdrawn + EXCLUDED.total_withdrawn END,
    created_at = COALESCE(EXCLUDED.created_at, v.created_at),
    closed_at = CASE WHEN EXCLUDED.created_at IS NOT NULL THEN EXCLUDED.closed_at
                     ELSE COALESCE(EXCLUDED.closed_at, v.closed_at) END,
    last_slot = GREATEST(v.last_slot, EXCLUDED.last_slot),
    last_event_id = EXCLUDED.last_event_id,
    updated_at = now()
RETURNING *
"""

_INSERT_AUDIT = """
INSERT INTO audit_log (owner, actor, action, signature, details)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[])
ON CONFLICT DO NOTHING
"""


@dataclass
class VaultFold:
    """What a batch's new events do to one vault row."""

    owner: str
    balances: Balances
    deposited: int = 0
    withdrawn: int = 0
    # set exactly when the batch (re)initialized the vault: the upsert then restarts the counters
    created_at: datetime | None = None
    closed_at: datetime | None = None
    slot: int = 0
    event_id: str = ""


def fold(events: list[EventRow]) -> dict[str, VaultFold]:
    folds: dict[str, VaultFold] = {}

    def touch(owner: str, balances: Balances, event: EventRow) -> VaultFold:
        current = folds.get(owner)
        if current is None:
            current = folds[owner] = VaultFold(owner, balances)
        current.balances = balances
        current.slot = max(current.slot, event.slot)
        current.event_id = event.event_id
        return current

    for event in events:
        assert event.balances is not None
        state = touch(event.owner, event.balances, event)
        if event.kind in ("deposit", "surplus"):
            state.deposited += event.amount
        elif event.kind == "withdraw":
            state.withdrawn += event.amount
        elif event.kind == "vault_initialized":
            state.deposited, state.withdrawn = 0, 0
            state.created_at, state.closed_at = event.block_time or datetime.now(UTC), None
        elif event.kind == "vault_closed":
            state.closed_at = event.block_time
        if event.counterparty and event.counterparty_balances is not None:
            touch(event.counterparty, event.counterparty_balances, event)
    return folds


def _column(events: list[EventRow], getter: Any) -> list[Any]:
    return [getter(e) for e in events]


EVENT_COLUMNS = ["owner", "signature", "instruction_index", "event_index", "kind", "amount", "counterparty",
                 "caller_program", "total_balance", "locked_balance", "available_balance", "slot", "block_time",
                 "commitment"]
AUDIT_COLUMNS = ["owner", "actor", "action", "signature", "details"]
# COPY pays off for backfills and bursts; a live batch of a few events is faster (fewer
# round trips) through the single INSERT ... ON CONFLICT statement.
COPY_MIN_EVENTS = 64


def unique(events: list[EventRow]) -> list[EventRow]:
    """One row per event key: the live stream and a backfill may both deliver a transaction."""
    seen: set[tuple[str, int, int]] = set()
    out = []
    for event in events:
        if event.key not in seen:
            seen.add(event.key)
            out.append(event)
    return out


def _audit_row(e: EventRow) -> tuple[str, str, str, str, str]:
    return (e.owner, e.caller_program or e.owner, e.kind, e.signature,
            json.dumps({"event_id": e.event_id, "amount": str(e.amount), "slot": e.slot,
                        "counterparty": e.counterparty}))


async def _copy_new(conn: asyncpg.Connection, events: list[EventRow]) -> bool:
    """The fast path: COPY the events and their audit rows, assuming all are new. Any
    duplicate rolls the savepoint back and returns False (then ON CONFLICT sorts it out)."""
    try:
        async with conn.transaction():  # a savepoint inside the batch's transaction
            await conn.copy_records_to_table("transactions", columns=EVENT_COLUMNS, records=[
                (e.owner, e.signature, e.instruction_index, e.event_index, e.kind, e.amount, e.counterparty,
                 e.caller_program, e.balances.total if e.balances else None,
                 e.balances.locked if e.balances else None, e.balances.available if e.balances else None, e.slot,
                 e.block_time, e.commitment) for e in events])
            await conn.copy_records_to_table("audit_log", columns=AUDIT_COLUMNS,
                                             records=[_audit_row(e) for e in events])
        return True
    except asyncpg.UniqueViolationError:
        return False


async def write_batch(conn: asyncpg.Connection, program: VaultProgram, cursor_name: str, events: list[EventRow],
                      admin: list[AdminEvent], cursor: tuple[int, str] | None) -> tuple[list[EventRow], list[Any]]:
    """Writes one batch; returns the newly inserted events and the vault rows they changed."""
    events = unique(events)
    async with conn.transaction():
        new: list[EventRow] = []
        copied = len(events) >= COPY_MIN_EVENTS and await _copy_new(conn, events)
        if copied:
            new = events
        elif events:
            inserted = await conn.fetch(
                _INSERT_EVENTS,
                _column(events, lambda e: e.owner), _column(events, lambda e: e.signature),
                _column(events, lambda e: e.instruction_index), _column(events, lambda e: e.event_index),
                _column(events, lambda e: e.kind), _column(events, lambda e: e.amount),
                _column(events, lambda e: e.counterparty), _column(events, lambda e: e.caller_program),
                _column(events, lambda e: e.balances.total), _column(events, lambda e: e.balances.locked),
                _column(events, lambda e: e.balances.available), _column(events, lambda e: e.slot),
                _column(events, lambda e: e.block_time), _column(events, lambda e: e.commitment),
            )
            keys = {(r["signature"], r["instruction_index"], r["event_index"]) for r in inserted}
            new = [e for e in events if e.key in keys]
        folds = list(fold(new).values())
        rows: list[Any] = []
        if folds:
            owners = [Pubkey.from_string(f.owner) for f in folds]
            rows = await conn.fetch(
                _UPSERT_VAULTS, [f.owner for f in folds], [str(program.vault(o)) for o in owners],
                [str(program.vault_token(o)) for o in owners], [f.balances.total for f in folds],
                [f.balances.locked for f in folds], [f.balances.available for f in folds],
                [f.deposited for f in folds], [f.withdrawn for f in folds], [f.created_at for f in folds],
                [f.closed_at for f in folds], [f.slot for f in folds], [f.event_id for f in folds])
        audit = [] if copied else [_audit_row(e) for e in new]
        audit += [("", a.actor, a.name, a.signature,
                   json.dumps({**a.details, "event_id": f"{a.signature}:{a.instruction_index}:{a.event_index}"}))
                  for a in admin]
        if audit:
            await conn.execute(_INSERT_AUDIT, *(list(column) for column in zip(*audit, strict=True)))
        if cursor is not None:
            await conn.execute(
                "INSERT INTO indexer_cursor (name, slot, signature, updated_at) VALUES ($1, $2, $3, now()) "
                "ON CONFLICT (name) DO UPDATE SET slot = GREATEST(indexer_cursor.slot, EXCLUDED.slot), "
                "signature = CASE WHEN EXCLUDED.slot >= indexer_cursor.slot THEN EXCLUDED.signature "
                "ELSE indexer_cursor.signature END, updated_at = now()",
                cursor_name, cursor[0], cursor[1])
        return new, rows


async def read_cursor(conn: asyncpg.Connection | asyncpg.Pool, name: str) -> tuple[int, str | None] | None:
    row = await conn.fetchrow("SELECT slot, signature FROM indexer_cursor WHERE name = $1", name)
    return (row["slot"], row["signature"]) if row else None
