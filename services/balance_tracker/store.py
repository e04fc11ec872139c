"""The indexer's writes, each batch in one PostgreSQL transaction (a small one in one
statement, see `write_batch`):

1. events inserted with `ON CONFLICT DO NOTHING` (the unique key is (signature,
   instruction index, event index)), returning which were new;
2. vault rows folded from the *new* events only (absolute balances from each event, in
   order; lifetime counters incremented), so replaying a batch changes nothing;
3. one audit_log row per admin action (set_paused, authority changes, ...);
4. the cursor.

A vault event's audit record is its `transactions` row, which is append-only (migration
004: only its commitment may change, and only unconfirmed rows may be rolled back): it
names who (owner, caller program), what (kind, amount, balances after) and when (slot,
block time, indexed_at). Writing the same fact again into audit_log would add a write per
event and no assurance; the `audit_trail` view reads both as one record of every change.
"""

from __future__ import annotations

import io
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import asyncpg
from solders.pubkey import Pubkey

from services.balance_tracker.events import (
    ADMIN_EVENTS,
    ALL_KINDS,
    EXCHANGE_ADMIN_EVENTS,
    AdminEvent,
    Balances,
    EventRow,
)
from vault_client.vault_program import VaultProgram

_EVENT_COLUMN_TYPES = (("owner", "text"), ("signature", "text"), ("instruction_index", "int"),
                       ("event_index", "int"), ("kind", "text"), ("amount", "numeric"), ("counterparty", "text"),
                       ("caller_program", "text"), ("total_balance", "numeric"), ("locked_balance", "numeric"),
                       ("available_balance", "numeric"), ("slot", "bigint"), ("block_time", "timestamptz"),
                       ("commitment", "text"), ("seq", "bigint"), ("program_locked", "numeric"),
                       ("vault_seq", "bigint"), ("op_id", "bigint"), ("details", "jsonb"))


def _event_rows(first: int) -> str:
    """An INSERT's column list and the unnest of one array parameter per column, numbered
    from `first`."""
    columns = ", ".join(name for name, _ in _EVENT_COLUMN_TYPES)
    arrays = ", ".join(f"${first + i}::{kind}[]" for i, (_, kind) in enumerate(_EVENT_COLUMN_TYPES))
    return f"INSERT INTO transactions ({columns}) SELECT * FROM unnest({arrays})"


# Only an event already stored is skipped: a number already taken (`seq`) is an error, never
# a silently dropped event.
_INSERT_EVENTS = _event_rows(1) + """
ON CONFLICT (signature, instruction_index, event_index) DO NOTHING
RETURNING signature, instruction_index, event_index
"""

# The cursor's one rule, wherever it is written: it never moves back.
_CURSOR_NEVER_BACK = """ON CONFLICT (name) DO UPDATE SET slot = GREATEST(indexer_cursor.slot, EXCLUDED.slot),
    signature = CASE WHEN EXCLUDED.slot >= indexer_cursor.slot THEN EXCLUDED.signature
                     ELSE indexer_cursor.signature END,
    updated_at = now()"""


# The CTEs that fold a batch into its vault rows and move the cursor ($1-$13 the vault
# columns, $14-$16 the cursor, $17-$18 the fence). Each column travels as one
# comma-separated text parameter, split by PostgreSQL: the driver's per-element array
# encoding (and its binary NUMERIC through Decimal) costs more client CPU than the whole row
# update. Exact for the u64 range; '-' stands for NULL. The fence (migration 007) runs once
# per statement, before any vault row or the cursor is written: a batch of a term that is
# over fails as a whole, its events with it.
_VAULT_WRITES = """
fence AS MATERIALIZED (
    SELECT indexer_fence($17, $18) AS term
), u AS (
    SELECT o, a, t, tb::numeric AS tb, lb::numeric AS lb, ab::numeric AS ab, d::numeric AS d, w::numeric AS w,
           NULLIF(c, '-')::timestamptz AS c, NULLIF(x, '-')::timestamptz AS x, s::bigint AS s, e,
           NULLIF(q, '-')::bigint AS q
    FROM unnest(string_to_array($1, ','), string_to_array($2, ','), string_to_array($3, ','),
                string_to_array($4, ','), string_to_array($5, ','), string_to_array($6, ','),
                string_to_array($7, ','), string_to_array($8, ','), string_to_array($9, ','),
                string_to_array($10, ','), string_to_array($11, ','), string_to_array($12, ','),
                string_to_array($13, ','))
         AS u(o, a, t, tb, lb, ab, d, w, c, x, s, e, q)
    WHERE (SELECT term FROM fence) IS NOT NULL
), updated AS (
    -- existing vaults (the common case) are updated in place; `c` (created_at) is set
    -- exactly when the batch (re)initialized the vault: its lifetime counters restart
    UPDATE vaults AS v SET
        total_balance = u.tb, locked_balance = u.lb, available_balance = u.ab,
        total_deposited = CASE WHEN u.c IS NOT NULL THEN u.d ELSE v.total_deposited + u.d END,
        total_withdrawn = CASE WHEN u.c IS NOT NULL THEN u.w ELSE v.total_withdrawn + u.w END,
        created_at = COALESCE(u.c, v.created_at),
        closed_at = CASE WHEN u.c IS NOT NULL THEN u.x ELSE COALESCE(u.x, v.closed_at) END,
        last_slot = GREATEST(v.last_slot, u.s), last_event_id = u.e, updated_at = now(),
        event_seq = COALESCE(u.q, v.event_seq)
    FROM u WHERE v.owner = u.o
    RETURNING v.owner, v.address, v.token_account, v.total_balance::text, v.locked_balance::text,
              v.available_balance::text, v.total_deposited::text, v.total_withdrawn::text, v.created_at, v.closed_at,
              v.last_slot
), inserted AS (
    -- new vaults; the indexer is the only writer, so a conflict here is an error (retried)
    INSERT INTO vaults (owner, address, token_account, total_balance, locked_balance, available_balance,
                        total_deposited, total_withdrawn, created_at, closed_at, last_slot, last_event_id,
                        event_seq)
    SELECT o, a, t, tb, lb, ab, d, w, c, x, s, e, q FROM u WHERE o NOT IN (SELECT owner FROM updated)
    RETURNING owner, address, token_account, total_balance::text, locked_balance::text,
              available_balance::text, total_deposited::text, total_withdrawn::text, created_at, closed_at, last_slot
), moved AS (
    -- the cursor, in the same round trip ($14 NULL: no cursor)
    INSERT INTO indexer_cursor (name, slot, signature, updated_at)
    SELECT $14, $15, $16, now() WHERE $14::text IS NOT NULL AND (SELECT term FROM fence) IS NOT NULL
    """ + _CURSOR_NEVER_BACK + """
)"""


_VAULT_ROWS = """
SELECT * FROM updated UNION ALL SELECT * FROM inserted
"""

_UPSERT_VAULTS = "WITH" + _VAULT_WRITES + _VAULT_ROWS

# A small batch with nothing else in flight, in one statement (one round trip, one commit):
# its events, vault rows and cursor. The events are inserted without ON CONFLICT, so a
# replay of a stored event aborts the whole statement (as a COPY does) and the batch goes
# the transactional way, which inserts only the new events.
_WRITE_AT_ONCE = "WITH events AS (\n" + _event_rows(19) + "\n)," + _VAULT_WRITES + _VAULT_ROWS

_MOVE_CURSOR = """
INSERT INTO indexer_cursor (name, slot, signature, updated_at) SELECT $1, $2, $3, now()
WHERE indexer_fence($4, $5) IS NOT NULL
""" + _CURSOR_NEVER_BACK

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
    last: EventRow | None = None  # the latest event that changed the vault
    seq: int | None = None  # the vault's number of that event (vaults.event_seq)
    # (vault, token account) as its VaultInitialized event states them, when the batch has it
    addresses: tuple[str, str] | None = None

    @property
    def event_id(self) -> str:
        return self.last.event_id if self.last else ""


def fold(events: list[EventRow]) -> dict[str, VaultFold]:
    folds: dict[str, VaultFold] = {}

    def touch(owner: str, balances: Balances, event: EventRow) -> VaultFold:
        current = folds.get(owner)
        if current is None:
            current = folds[owner] = VaultFold(owner, balances)
        current.balances = balances
        if event.slot > current.slot:
            current.slot = event.slot
        current.last = event
        return current

    for event in events:
        if event.balances is None:  # position_manager's rows: the vault's own events carry the balances
            continue
        if event.apply_owner:  # not an event the row has already, nor one past a gap (gaps.py)
            state = touch(event.owner, event.balances, event)
            state.seq = event.vault_seq
            if event.kind in ("deposit", "surplus"):
                state.deposited += event.amount
            elif event.kind == "withdraw":
                state.withdrawn += event.amount
            elif event.kind == "vault_initialized":
                state.deposited, state.withdrawn = 0, 0
                state.created_at, state.closed_at = event.block_time or datetime.now(UTC), None
                if event.vault and event.token_account:
                    state.addresses = (event.vault, event.token_account)
            elif event.kind == "vault_closed":
                state.closed_at = event.block_time
        if event.counterparty and event.counterparty_balances is not None and event.apply_counterparty:
            touch(event.counterparty, event.counterparty_balances, event).seq = to_seq(event)
    return folds


def to_seq(event: EventRow) -> int | None:
    """A transfer's receiving vault's event number."""
    value = (event.details or {}).get("to_seq")
    return None if value is None else int(value)


def _column(events: list[EventRow], getter: Any) -> list[Any]:
    return [getter(e) for e in events]


EVENT_COLUMNS = [name for name, _ in _EVENT_COLUMN_TYPES]
EVENT_KINDS = ALL_KINDS
COMMITMENTS = frozenset({"processed", "confirmed", "finalized"})
# COPY pays off for backfills and bursts; a live batch of a few events is faster (fewer
# round trips) through the single INSERT ... ON CONFLICT statement.
COPY_MIN_EVENTS = 64


def unique(events: list[EventRow]) -> list[EventRow]:
    """One row per event key: the live stream and a backfill may both deliver a transaction."""
    by_key = {event.key: event for event in events}  # in first-seen order; duplicates are equal
    return events if len(by_key) == len(events) else list(by_key.values())


def _details(event: EventRow) -> str | None:
    """An event's details as JSON text: keys and numbers or booleans only, so no character
    COPY's text format would have to escape."""
    if event.details is None:
        return None
    text = json.dumps(event.details, separators=(",", ":"), sort_keys=True)
    if any(c in text for c in "\t\n\r\\"):
        raise ValueError(f"unexpected characters in the details of {event.event_id}")
    return text


def event_records(events: list[EventRow]) -> list[tuple[Any, ...]]:
    """The events as records in EVENT_COLUMNS order (for binary COPY or comparison)."""
    return [(e.owner, e.signature, e.instruction_index, e.event_index, e.kind, e.amount, e.counterparty,
             e.caller_program, e.balances.total if e.balances else None, e.balances.locked if e.balances else None,
             e.balances.available if e.balances else None, e.slot, e.block_time, e.commitment, e.seq,
             e.program_locked, e.vault_seq, e.op_id, _details(e)) for e in events]


_NULL = "\\N"


def _plain(value: str | None) -> str:
    """A key, address or signature (base58) for COPY's text format; anything else is refused
    rather than escaped, since program events never carry it."""
    if value is None:
        return _NULL
    if not (value.isascii() and value.isalnum()):
        raise ValueError(f"unexpected characters in {value!r}")
    return value


def _number(value: int | None) -> str:
    return _NULL if value is None else str(int(value))


def copy_text(events: list[EventRow]) -> bytes:
    """The events in COPY's text format, EVENT_COLUMNS order. The driver's binary encoding
    costs about four times the client CPU (its NUMERIC goes through Decimal); PostgreSQL
    parses this as fast. Every text field is checked, so no escaping is ever needed. A
    transaction's events share their signature and block time objects: each is checked and
    printed once for the run of events that share it."""
    lines = []
    signature, plain_signature = None, ""
    block_time, stamp = None, _NULL
    for e in events:
        b = e.balances
        if e.kind not in EVENT_KINDS or e.commitment not in COMMITMENTS:
            raise ValueError(f"unexpected kind or commitment in {e.event_id}")
        if e.signature is not signature:
            signature, plain_signature = e.signature, _plain(e.signature)
        if e.block_time is not block_time:
            block_time = e.block_time
            stamp = block_time.isoformat() if block_time else _NULL
        lines.append("\t".join((
            _plain(e.owner), plain_signature, str(e.instruction_index), str(e.event_index), e.kind, str(e.amount),
            _plain(e.counterparty), _plain(e.caller_program), _NULL if b is None else str(b.total),
            _NULL if b is None else str(b.locked), _NULL if b is None else str(b.available), str(e.slot),
            stamp, e.commitment, str(e.seq),
            _number(e.program_locked), _number(e.vault_seq), _number(e.op_id), _details(e) or _NULL)))
    lines.append("")
    return "\n".join(lines).encode()


def _event_arrays(events: list[EventRow]) -> list[list[Any]]:
    """The events as one array per column, in _EVENT_COLUMN_TYPES order."""
    return [
        _column(events, lambda e: e.owner), _column(events, lambda e: e.signature),
        _column(events, lambda e: e.instruction_index), _column(events, lambda e: e.event_index),
        _column(events, lambda e: e.kind), _column(events, lambda e: e.amount),
        _column(events, lambda e: e.counterparty), _column(events, lambda e: e.caller_program),
        _column(events, lambda e: e.balances.total if e.balances else None),
        _column(events, lambda e: e.balances.locked if e.balances else None),
        _column(events, lambda e: e.balances.available if e.balances else None), _column(events, lambda e: e.slot),
        _column(events, lambda e: e.block_time), _column(events, lambda e: e.commitment),
        _column(events, lambda e: e.seq), _column(events, lambda e: e.program_locked),
        _column(events, lambda e: e.vault_seq), _column(events, lambda e: e.op_id), _column(events, _details),
    ]


async def _insert_new(conn: asyncpg.Connection, events: list[EventRow]) -> list[EventRow]:
    """INSERT ... ON CONFLICT DO NOTHING: the events that were not there yet."""
    inserted = await conn.fetch(_INSERT_EVENTS, *_event_arrays(events))
    keys = {(r["signature"], r["instruction_index"], r["event_index"]) for r in inserted}
    return [e for e in events if e.key in keys]


def _joined(values: Iterable[str]) -> str:
    """One column as comma-separated text; no value may contain a comma (keys, base58
    addresses, integers, ISO timestamps and event ids never do)."""
    items = list(values)
    text = ",".join(items)
    if text.count(",") != len(items) - 1 or ",," in text or text.startswith(",") or text.endswith(","):
        raise ValueError(f"a value in {items!r} is empty or contains a comma")
    return text


@lru_cache(maxsize=262_144)
def _addresses(program: VaultProgram, owner: str) -> tuple[str, str]:
    """The vault and vault token account addresses of an owner, as text."""
    key = Pubkey.from_string(owner)
    return str(program.vault(key)), str(program.vault_token(key))


def _vault_parameters(program: VaultProgram, new: list[EventRow]) -> list[str] | None:
    """The vault statement's parameters for a batch's new events (None: no vault changed)."""
    folds = list(fold(new).values())
    if not folds:
        return None
    # a vault created in this batch: the addresses its event states (deriving them costs two
    # PDA searches of about 20 µs each, cProfile of a catch-up where every vault is new); else derived
    addresses = [f.addresses or _addresses(program, f.owner) for f in folds]
    return [_joined(f.owner for f in folds), _joined(a[0] for a in addresses), _joined(a[1] for a in addresses),
            _joined(str(f.balances.total) for f in folds), _joined(str(f.balances.locked) for f in folds),
            _joined(str(f.balances.available) for f in folds), _joined(str(f.deposited) for f in folds),
            _joined(str(f.withdrawn) for f in folds),
            _joined(f.created_at.isoformat() if f.created_at else "-" for f in folds),
            _joined(f.closed_at.isoformat() if f.closed_at else "-" for f in folds),
            _joined(str(f.slot) for f in folds), _joined(f.event_id for f in folds),
            _joined("-" if f.seq is None else str(f.seq) for f in folds)]


Fence = tuple[str, int]  # (lease name, term): the batch is written only while `term` is the lease's


class Fenced(Exception):
    """A batch of a term that is over was refused (another replica holds the lease)."""


_NO_FENCE: tuple[None, None] = (None, None)


async def _apply(conn: asyncpg.Connection, cursor_name: str, vaults: list[str] | None, admin: list[AdminEvent],
                 cursor: tuple[int, str] | None, fence: Fence | None) -> list[Any]:
    """Vault rows and the cursor (one round trip), and admin audit rows, for a batch whose
    new events are inserted."""
    rows: list[Any] = []
    fenced = fence or _NO_FENCE
    if vaults is not None:
        rows = await conn.fetch(_UPSERT_VAULTS, *vaults, *((cursor_name, *cursor) if cursor else (None, None, None)),
                                *fenced)
    elif cursor is not None:
        await conn.execute(_MOVE_CURSOR, cursor_name, cursor[0], cursor[1], *fenced)
    audit = [("", a.actor, a.name, a.signature,
              json.dumps({**a.details, "event_id": f"{a.signature}:{a.instruction_index}:{a.event_index}"}))
             for a in admin]
    if audit:
        await conn.execute(_INSERT_AUDIT, *(list(column) for column in zip(*audit, strict=True)))
    return rows


async def write_batch(conn: asyncpg.Connection, program: VaultProgram, cursor_name: str, events: list[EventRow],
                      admin: list[AdminEvent], cursor: tuple[int, str] | None,
                      after: Callable[[], Awaitable[object]] | None = None,
                      fence: Fence | None = None) -> tuple[list[EventRow], list[Any]]:
    """Writes one batch in one transaction; returns the newly inserted events and the vault
    rows they changed. With a `fence`, the batch is refused (`Fenced`, nothing written)
    unless its term is still the lease's, checked inside its own statements.

    `after`, when given, waits for the previous batch's write: this batch inserts its events
    first and waits for `after()` to return before it folds vault rows and moves the cursor, so
    consecutive batches overlap while their effects stay in order (see `pipeline.py`).

    Large batches are COPYed, assuming every event is new. The COPY is the transaction's first
    statement: a duplicate aborts it, and the batch starts over with ON CONFLICT (no
    savepoint round trips on the fast path).

    A small batch with no previous one to wait for and no admin action goes first as one
    statement (`_WRITE_AT_ONCE`: one round trip instead of four); only a replay of stored
    events falls through to the transaction below."""
    if any(e.seq <= 0 for e in events):
        raise ValueError("every event needs its sequence number (seq) before it is written")
    try:
        return await _write_batch(conn, program, cursor_name, unique(events), admin, cursor, after, fence)
    except asyncpg.ObjectNotInPrerequisiteStateError as exc:
        if exc.detail == "fenced":
            raise Fenced(exc.message) from exc
        raise


async def _write_batch(conn: asyncpg.Connection, program: VaultProgram, cursor_name: str, events: list[EventRow],
                       admin: list[AdminEvent], cursor: tuple[int, str] | None,
                       after: Callable[[], Awaitable[object]] | None, fence: Fence | None
                       ) -> tuple[list[EventRow], list[Any]]:
    if after is None and not admin and 0 < len(events) < COPY_MIN_EVENTS:
        rows = await _write_at_once(conn, program, cursor_name, events, cursor, fence)
        if rows is not None:
            return events, rows
    transaction = conn.transaction()
    await transaction.start()
    try:
        new = events
        if len(events) >= COPY_MIN_EVENTS:
            try:
                await conn.copy_to_table("transactions", columns=EVENT_COLUMNS, format="text",
                                         source=io.BytesIO(copy_text(events)))
            except asyncpg.UniqueViolationError:
                await transaction.rollback()
                transaction = conn.transaction()
                await transaction.start()
                new = await _insert_new(conn, events)
        elif events:
            new = await _insert_new(conn, events)
        vaults = _vault_parameters(program, new)  # prepared while the previous batch finishes
        if after is not None:
            await after()
        rows = await _apply(conn, cursor_name, vaults, admin, cursor, fence)
        await transaction.commit()
    except BaseException:
        if not conn.is_closed() and conn.is_in_transaction():
            try:
                await transaction.rollback()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                pass  # the connection is gone; PostgreSQL rolls back on its own
        raise
    return new, rows


async def _write_at_once(conn: asyncpg.Connection, program: VaultProgram, cursor_name: str,
                         events: list[EventRow], cursor: tuple[int, str] | None, fence: Fence | None
                         ) -> list[Any] | None:
    """The batch in one statement: the vault rows it wrote, or None if it wrote nothing
    because a unique key was taken (one of its events is stored already; any other such
    conflict the transactional way then meets and reports)."""
    vaults = _vault_parameters(program, events)
    if vaults is None:
        return None
    moved = (cursor_name, *cursor) if cursor else (None, None, None)
    try:
        rows: list[Any] = await conn.fetch(_WRITE_AT_ONCE, *vaults, *moved, *(fence or _NO_FENCE),
                                           *_event_arrays(events))
    except asyncpg.UniqueViolationError:
        return None
    return rows


async def last_seq(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    """The highest event number stored (0 for none)."""
    return int(await conn.fetchval("SELECT COALESCE(max(seq), 0) FROM transactions"))


def number(events: list[EventRow], after: int) -> int:
    """Gives `events` the numbers after `after`, in order; returns the last number given."""
    for event in events:
        after += 1
        event.seq = after
    return after


# Which of these signatures a committed batch stored: program events (transactions, through its
# unique key's leading column), or admin actions (audit_log, read through its index on action:
# admin actions are few). A transaction with neither (no event of ours) is never stored.
_STORED = """
SELECT signature FROM transactions WHERE signature = ANY($1::text[])
UNION SELECT signature FROM audit_log WHERE action = ANY($2::text[]) AND signature = ANY($1::text[])
"""
_STORED_ACTIONS = sorted(ADMIN_EVENTS | EXCHANGE_ADMIN_EVENTS)


async def stored_signatures(conn: asyncpg.Connection | asyncpg.Pool, signatures: list[str]) -> set[str]:
    """Those of `signatures` whose events (or admin actions) a committed batch wrote. Batches
    commit in the indexer's order, so everything it took before such a transaction is
    committed too."""
    if not signatures:
        return set()
    return {r["signature"] for r in await conn.fetch(_STORED, signatures, _STORED_ACTIONS)}


async def read_cursor(conn: asyncpg.Connection | asyncpg.Pool, name: str) -> tuple[int, str | None] | None:
    row = await conn.fetchrow("SELECT slot, signature FROM indexer_cursor WHERE name = $1", name)
    return (row["slot"], row["signature"]) if row else None


# The indexer's watermark (migration 253): fenced like a batch, and never moving back.
_RECORD_SEEN = """
UPDATE indexer_cursor SET chain_slot = GREATEST(chain_slot, $2), caught_up_slot = GREATEST(caught_up_slot, $3),
                          seen_at = now()
WHERE name = $1 AND indexer_fence($4, $5) IS NOT NULL
"""


async def record_seen(conn: asyncpg.Connection | asyncpg.Pool, cursor_name: str, chain_slot: int,
                      caught_up_slot: int, fence: Fence | None = None) -> None:
    """The chain's slot as the indexer last saw it, and the slot it had then processed every
    program transaction up to (0: not caught up, the stored one stays). Refused (`Fenced`)
    for a term that is over."""
    try:
        await conn.execute(_RECORD_SEEN, cursor_name, chain_slot, caught_up_slot, *(fence or _NO_FENCE))
    except asyncpg.ObjectNotInPrerequisiteStateError as exc:
        if exc.detail == "fenced":
            raise Fenced(exc.message) from exc
        raise
