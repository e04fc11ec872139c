"""The indexer's batch writes against PostgreSQL: the COPY fast path, the ON CONFLICT
fallback on replays, duplicates inside one batch, and mixed batches — vault rows must be
folded from each event exactly once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from services.balance_tracker.events import AdminEvent, Balances, EventRow
from services.balance_tracker.indexer.publisher import cache_entry, vault_from_row
from services.balance_tracker.store import (
    COPY_MIN_EVENTS,
    EVENT_COLUMNS,
    _write_at_once,
    copy_text,
    event_records,
    write_batch,
)
from services.common import vault_cache
from vault_client.vault_program import VaultProgram, vault_bump, vault_pda

PROGRAM = VaultProgram(Pubkey.new_unique())


@pytest.fixture
async def conn(migrated_pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    async with migrated_pool.acquire() as connection:
        yield connection


def deposit(owner: str, n: int, amount: int, total: int) -> EventRow:
    return EventRow(owner=owner, signature=f"sig{n}", instruction_index=0, event_index=0, kind="deposit",
                    amount=amount, slot=10 + n, block_time=datetime.now(UTC), commitment="confirmed",
                    balances=Balances(total, 0, total), seq=n + 1)


async def vault(conn: asyncpg.Connection, owner: str) -> tuple[int, int]:
    row = await conn.fetchrow("SELECT total_balance, total_deposited FROM vaults WHERE owner = $1", owner)
    assert row is not None
    return int(row["total_balance"]), int(row["total_deposited"])


async def test_copy_path_replay_duplicates_and_mixed_batches(conn: asyncpg.Connection) -> None:
    owner = str(Keypair().pubkey())
    first = [deposit(owner, 1, 5, 5), deposit(owner, 2, 7, 12)]
    new, _ = await write_batch(conn, PROGRAM, "t", first, [], (12, "sig2"))
    assert len(new) == 2 and await vault(conn, owner) == (12, 12)

    new, _ = await write_batch(conn, PROGRAM, "t", first, [], (12, "sig2"))  # a replay: the fallback path
    assert new == [] and await vault(conn, owner) == (12, 12)

    third = deposit(owner, 3, 1, 13)
    new, _ = await write_batch(conn, PROGRAM, "t", [third, third], [], (13, "sig3"))  # one event delivered twice
    assert len(new) == 1 and await vault(conn, owner) == (13, 13)

    mixed = [*first, deposit(owner, 4, 2, 15)]  # old and new together
    new, _ = await write_batch(conn, PROGRAM, "t", mixed, [], (14, "sig4"))
    assert [e.signature for e in new] == ["sig4"] and await vault(conn, owner) == (15, 15)

    assert await conn.fetchval("SELECT count(*) FROM transactions") == 4
    assert await conn.fetchval("SELECT count(*) FROM audit_trail WHERE owner = $1", owner) == 4
    assert await conn.fetchval("SELECT slot FROM indexer_cursor WHERE name = 't'") == 14


async def test_large_batches_take_the_copy_path_and_replay_cleanly(conn: asyncpg.Connection) -> None:
    owner = str(Keypair().pubkey())
    batch = [deposit(owner, n, 1, n + 1) for n in range(COPY_MIN_EVENTS + 10)]
    new, _ = await write_batch(conn, PROGRAM, "t", batch, [], (99, "x"))
    assert len(new) == len(batch) and await vault(conn, owner) == (len(batch), len(batch))
    new, _ = await write_batch(conn, PROGRAM, "t", [*batch, batch[0]], [], (99, "x"))  # replay + a duplicate
    assert new == [] and await vault(conn, owner) == (len(batch), len(batch))
    assert await conn.fetchval("SELECT count(*) FROM audit_trail WHERE owner = $1", owner) == len(batch)


async def test_events_are_an_append_only_audit_record(conn: asyncpg.Connection) -> None:
    owner = str(Keypair().pubkey())
    await write_batch(conn, PROGRAM, "t", [deposit(owner, 1, 5, 5), deposit(owner, 2, 7, 12)], [], (12, "sig2"))
    # no second copy in audit_log; the audit trail shows who, what and when for each event
    assert await conn.fetchval("SELECT count(*) FROM audit_log") == 0
    trail = await conn.fetch("SELECT actor, action, signature, details, created_at, source FROM audit_trail "
                             "WHERE owner = $1 ORDER BY signature", owner)
    assert [(r["actor"], r["action"], r["signature"], r["source"]) for r in trail] == [
        (owner, "deposit", "sig1", "program_event"), (owner, "deposit", "sig2", "program_event")]
    assert '"amount": "7"' in trail[1]["details"] and trail[1]["created_at"] is not None

    # history cannot be rewritten: every column but the commitment is fixed once indexed
    columns = [r["column_name"] for r in await conn.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'transactions'")]
    assert len(columns) == 20 and "commitment" in columns and "seq" in columns and "details" in columns
    await conn.execute("INSERT INTO transactions (owner, signature, instruction_index, event_index, kind, amount, "
                       "counterparty, caller_program, total_balance, locked_balance, available_balance, slot, "
                       "block_time, seq, program_locked, vault_seq, op_id, details) VALUES ('o', 'full', 0, 0, "
                       "'transfer', 1, 'c', 'p', 1, 0, 1, 5, now(), 999, 0, 3, 4, '{}')")
    for column in columns:
        if column != "commitment":  # NULL differs from every stored value of the full row
            with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="append-only"):
                await conn.execute(f"UPDATE transactions SET {column} = NULL WHERE signature = 'full'")
    await conn.execute("UPDATE transactions SET commitment = 'finalized' WHERE signature = 'full'")
    await conn.execute("DELETE FROM transactions WHERE signature = 'full' AND commitment = 'processed'")  # no-op
    for statement in ("UPDATE transactions SET amount = amount + 1",
                      "UPDATE transactions SET owner = 'someone else'",
                      "UPDATE transactions SET total_balance = 0, commitment = 'finalized'",
                      "UPDATE transactions SET seq = seq + 1000",
                      "DELETE FROM transactions WHERE signature = 'sig1'"):
        with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="append-only"):
            await conn.execute(statement)
    assert await conn.fetchval("SELECT sum(amount) FROM transactions") == 13  # 5 + 7 + the full row's 1

    # what may change: the commitment label, and unconfirmed rows may be rolled back
    await conn.execute("UPDATE transactions SET commitment = 'finalized' WHERE signature = 'sig1'")
    await conn.execute("UPDATE transactions SET commitment = 'processed' WHERE signature = 'sig2'")
    assert await conn.execute("DELETE FROM transactions WHERE signature = 'sig2'") == "DELETE 1"
    assert await conn.fetchval("SELECT count(*) FROM transactions") == 2


async def test_an_event_is_unique_by_its_id_and_the_ledger_keeps_only_indexes_a_query_reads(
        conn: asyncpg.Connection) -> None:
    """Migration 255: the event's id (signature, instruction, event) is the primary key, so the
    same event under another owner is still refused; every index is one a query reads by
    (each costs the catch-up a write per event)."""
    indexes = {r["indexname"]: r["indexdef"].split(" USING btree ")[1] for r in await conn.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'transactions'")}
    assert indexes == {
        "transactions_pkey": "(signature, instruction_index, event_index)",  # replays, fanout's lookup
        "transactions_seq": "(seq)",  # the live feed, the monitor's feed
        "transactions_owner_seq": "(owner, seq)",  # history, the feed per owner, reconciliation's owners
        "transactions_counterparty_seq": "(counterparty, seq) WHERE (counterparty IS NOT NULL)",
        "transactions_unsettled": "(slot) WHERE (commitment = 'processed'::text)",  # promotion
        "transactions_exchange_kinds": indexes["transactions_exchange_kinds"],  # the monitor's liquidations
        "transactions_withdrawals": "(block_time) WHERE (kind = 'withdraw'::text)",  # withdrawal window
    }
    owner = str(Keypair().pubkey())
    await write_batch(conn, PROGRAM, "t", [deposit(owner, 1, 5, 5)], [], (11, "sig1"))
    with pytest.raises(asyncpg.UniqueViolationError, match="transactions_pkey"):
        await conn.execute("INSERT INTO transactions (owner, signature, instruction_index, event_index, kind, slot, "
                           "seq) VALUES ('someone else', 'sig1', 0, 0, 'deposit', 11, 99)")


async def test_admin_actions_go_to_the_audit_log_once(conn: asyncpg.Connection) -> None:
    admin = Keypair().pubkey()
    paused = AdminEvent(name="program_paused", actor=str(admin), signature="sigA", instruction_index=0,
                        event_index=0, details={"flags": 3})
    await write_batch(conn, PROGRAM, "t", [], [paused], (20, "sigA"))
    await write_batch(conn, PROGRAM, "t", [], [paused], (20, "sigA"))  # a replay adds nothing
    rows = await conn.fetch("SELECT actor, action, source FROM audit_trail")
    assert [(r["actor"], r["action"], r["source"]) for r in rows] == [(str(admin), "program_paused", "audit_log")]
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await conn.execute("DELETE FROM audit_log")


def event(owner: str, n: int, kind: str, amount: int, total: int) -> EventRow:
    return EventRow(owner=owner, signature=f"sig{n}", instruction_index=0, event_index=0, kind=kind,
                    amount=amount, slot=10 + n, block_time=datetime.now(UTC), commitment="confirmed",
                    balances=Balances(total, 0, total), seq=n + 1)


async def counters(conn: asyncpg.Connection, owner: str) -> tuple[int, int, int, bool]:
    row = await conn.fetchrow("SELECT total_balance, total_deposited, total_withdrawn, closed_at IS NOT NULL AS closed "
                              "FROM vaults WHERE owner = $1", owner)
    assert row is not None
    return int(row["total_balance"]), int(row["total_deposited"]), int(row["total_withdrawn"]), row["closed"]


async def test_vault_rows_follow_open_close_and_reopen_across_and_within_batches(conn: asyncpg.Connection) -> None:
    owner = str(Keypair().pubkey())
    _, rows = await write_batch(conn, PROGRAM, "t", [event(owner, 1, "vault_initialized", 0, 0),
                                                     event(owner, 2, "deposit", 50, 50)], [], None)
    assert len(rows) == 1 and rows[0]["total_deposited"] == "50"  # a new vault is inserted
    await write_batch(conn, PROGRAM, "t", [event(owner, 3, "withdraw", 50, 0)], [], None)
    assert await counters(conn, owner) == (0, 50, 50, False)  # an existing one is updated
    await write_batch(conn, PROGRAM, "t", [event(owner, 4, "vault_closed", 0, 0)], [], None)
    assert await counters(conn, owner) == (0, 50, 50, True)
    # reopened in one batch with a deposit: the lifetime counters restart from the new vault
    _, rows = await write_batch(conn, PROGRAM, "t", [event(owner, 5, "vault_initialized", 0, 0),
                                                     event(owner, 6, "deposit", 7, 7)], [], None)
    assert await counters(conn, owner) == (7, 7, 0, False)
    assert rows[0]["owner"] == owner and rows[0]["closed_at"] is None
    assert rows[0]["token_account"] == str(PROGRAM.vault_token(Pubkey.from_string(owner)))


async def test_the_copy_path_stores_every_field_exactly(conn: asyncpg.Connection) -> None:
    owner, other, caller = (str(Keypair().pubkey()) for _ in range(3))
    top = 2**64 - 1  # the whole u64 range survives the text COPY
    batch = [deposit(owner, n, 1, n + 1) for n in range(COPY_MIN_EVENTS)]
    batch.append(EventRow(owner=owner, signature="sigT", instruction_index=2, event_index=3, kind="transfer",
                          amount=top, slot=99, block_time=None, commitment="processed",
                          balances=Balances(top, 1, top - 1), counterparty=other, caller_program=caller,
                          counterparty_balances=Balances(5, 0, 5), seq=1_000))
    new, _ = await write_batch(conn, PROGRAM, "t", batch, [], None)
    assert len(new) == len(batch)
    stored = {r["signature"]: r for r in await conn.fetch(f"SELECT {', '.join(EVENT_COLUMNS)} FROM transactions")}
    for expected in event_records(batch):
        row = stored[expected[1]]
        assert tuple(int(v) if isinstance(v, Decimal) else v for v in row.values()) == expected


@pytest.mark.parametrize("owner", ["tab\there", "back\\slash", "new\nline", "", "ünïcode"])
def test_copy_text_refuses_fields_it_would_have_to_escape(owner: str) -> None:
    with pytest.raises(ValueError):
        copy_text([deposit(owner, 1, 1, 1)])


def test_copy_text_of_a_batch_is_each_event_s_line_in_turn() -> None:
    """copy_text checks and prints a signature or block time once for the run of events that
    share it (a transaction's): the batch's text is still each event's own line, whatever the
    runs (shared objects, equal but distinct ones, none), and a bad signature is refused
    wherever it stands."""
    shared = datetime.now(UTC)
    events = [deposit("a", 1, 1, 1), deposit("b", 2, 2, 2), deposit("c", 3, 3, 3), deposit("d", 4, 4, 4),
              deposit("e", 5, 5, 5)]
    events[1].signature, events[1].block_time = events[0].signature, events[0].block_time
    events[2].signature, events[2].block_time = "".join(events[0].signature), None
    events[3].block_time = datetime.fromtimestamp(shared.timestamp(), UTC)
    events[4].block_time = None
    assert copy_text(events) == b"".join(copy_text([e]) for e in events)
    events[3].signature = "bad sig"
    with pytest.raises(ValueError):
        copy_text(events)


async def test_finality_is_a_watermark_not_a_rewrite(conn: asyncpg.Connection) -> None:
    owner = str(Keypair().pubkey())
    events = [deposit(owner, 1, 5, 5), deposit(owner, 2, 7, 12), deposit(owner, 3, 1, 13)]
    events[2].commitment = "processed"  # not yet confirmed: never final by slot alone
    await write_batch(conn, PROGRAM, "t", events, [], (13, "sig3"))
    await conn.execute("UPDATE indexer_cursor SET finalized_slot = 13 WHERE name = 't'")  # slots 11 and 12 final

    async def trail() -> dict[str, str]:
        rows = await conn.fetch("SELECT signature, details ->> 'commitment' AS c FROM audit_trail WHERE owner = $1",
                                owner)
        return {r["signature"]: r["c"] for r in rows}

    assert await trail() == {"sig1": "finalized", "sig2": "finalized", "sig3": "processed"}
    rows = await conn.fetch("SELECT signature, commitment FROM transactions")
    stored = {r["signature"]: r["commitment"] for r in rows}
    assert stored == {"sig1": "confirmed", "sig2": "confirmed", "sig3": "processed"}  # rows untouched
    # the cursor's own upsert keeps the watermark
    await write_batch(conn, PROGRAM, "t", [deposit(owner, 4, 1, 14)], [], (14, "sig4"))
    assert await conn.fetchval("SELECT finalized_slot FROM indexer_cursor WHERE name = 't'") == 13


def batches_for(owners: list[str], tag: str) -> list[list[EventRow]]:
    """One history, written as small batches: opens, deposits, a transfer between vaults
    (u64 extremes, no block time, `processed`), a withdrawal, a close and a reopen, with a
    replay and a batch mixing stored and new events."""
    a, b = owners

    def ev(owner: str, n: int, kind: str, amount: int, total: int, **extra: object) -> EventRow:
        row = EventRow(owner=owner, signature=f"{tag}{n}", instruction_index=0, event_index=0, kind=kind,
                       amount=amount, slot=100 + n, block_time=datetime(2026, 1, 1, tzinfo=UTC),
                       commitment="confirmed", balances=Balances(total, 0, total), seq=100 * ord(tag[0]) + n)
        for name, value in extra.items():
            setattr(row, name, value)
        return row

    top = 2**64 - 1
    opened = [ev(a, 1, "vault_initialized", 0, 0), ev(b, 2, "vault_initialized", 0, 0)]
    deposits = [ev(a, 3, "deposit", top - 5, top - 5), ev(b, 4, "deposit", 9, 9)]
    transfer = ev(a, 5, "transfer", 4, top - 9, counterparty=b, caller_program=b, counterparty_balances=Balances(
        13, 0, 13), block_time=None, commitment="processed")
    later = [ev(a, 6, "withdraw", 1, top - 10), ev(b, 7, "vault_closed", 0, 0)]
    return [opened, deposits, [transfer], deposits, [*later, transfer], [ev(b, 8, "vault_initialized", 0, 0)]]


async def stored_state(conn: asyncpg.Connection, owners: list[str], tag: str, cursor: str) -> list[object]:
    names = {owner: f"owner{i}" for i, owner in enumerate(owners)}

    def plain(value: object) -> object:
        text = str(value)
        for owner, name in names.items():
            text = text.replace(owner, name)
        return text.replace(tag, "sig")

    columns = ", ".join(c for c in EVENT_COLUMNS if c != "seq")  # the two histories are numbered apart
    events = await conn.fetch(f"SELECT {columns} FROM transactions WHERE owner = ANY($1) ORDER BY slot, signature",
                              owners)
    vaults = await conn.fetch("SELECT owner, total_balance, locked_balance, available_balance, total_deposited, "
                              "total_withdrawn, created_at, closed_at, last_slot, last_event_id FROM vaults "
                              "WHERE owner = ANY($1) ORDER BY owner", owners)
    moved = await conn.fetchrow("SELECT slot, signature FROM indexer_cursor WHERE name = $1", cursor)
    return [[tuple(plain(v) for v in r.values()) for r in events],
            sorted(tuple(plain(v) for v in r.values()) for r in vaults), plain(tuple(moved or ()))]


async def test_small_batches_in_one_statement_store_what_the_transaction_stores(conn: asyncpg.Connection) -> None:
    statements: list[str] = []
    conn.add_query_logger(lambda record: statements.append(record.query))
    at_once, in_transaction = [str(Keypair().pubkey()) for _ in range(2)], [str(Keypair().pubkey()) for _ in range(2)]

    async def nothing_in_flight() -> None:  # passing `after` forces the transactional path
        return None

    # prepare both paths' statements first (asyncpg's first use of a statement on a connection
    # also introspects its types: more queries, once)
    warm = str(Keypair().pubkey())
    await write_batch(conn, PROGRAM, "w", [deposit(warm, 90, 1, 1)], [], (1, "sig90"))
    await write_batch(conn, PROGRAM, "w", [deposit(warm, 91, 1, 2)], [], (2, "sig91"), nothing_in_flight)
    await asyncio.sleep(0.01)
    results = []
    for batch_a, batch_b in zip(batches_for(at_once, "A"), batches_for(in_transaction, "B"), strict=True):
        statements.clear()
        new_a, rows_a = await write_batch(conn, PROGRAM, "a", batch_a, [], (batch_a[-1].slot, batch_a[-1].signature))
        await asyncio.sleep(0.01)  # asyncpg calls query loggers soon after, not during, the query
        one_statement = len(statements) == 1
        new_b, rows_b = await write_batch(conn, PROGRAM, "b", batch_b, [], (batch_b[-1].slot, batch_b[-1].signature),
                                          nothing_in_flight)
        await asyncio.sleep(0.01)
        assert [e.signature[1:] for e in new_a] == [e.signature[1:] for e in new_b]
        assert len(rows_a) == len(rows_b)
        results.append(one_statement)
    # every batch of new events took one statement; the replay and the mixed batch fell through
    assert results == [True, True, True, False, False, True]
    assert await stored_state(conn, at_once, "A", "a") == await stored_state(conn, in_transaction, "B", "b")


async def test_a_batch_with_any_stored_event_writes_nothing_in_one_statement(conn: asyncpg.Connection) -> None:
    owner = str(Keypair().pubkey())
    await write_batch(conn, PROGRAM, "t", [deposit(owner, 1, 5, 5)], [], (11, "sig1"))
    mixed = [deposit(owner, 1, 5, 5), deposit(owner, 2, 7, 12)]
    assert await _write_at_once(conn, PROGRAM, "t", mixed, (12, "sig2"), None) is None
    assert await conn.fetchval("SELECT count(*) FROM transactions WHERE owner = $1", owner) == 1
    assert await vault(conn, owner) == (5, 5)
    assert await conn.fetchval("SELECT slot FROM indexer_cursor WHERE name = 't'") == 11
    new, _ = await write_batch(conn, PROGRAM, "t", mixed, [], (12, "sig2"))  # the transaction takes the new one
    assert [e.signature for e in new] == ["sig2"] and await vault(conn, owner) == (12, 12)


async def test_a_batch_of_a_term_that_is_over_writes_nothing(conn: asyncpg.Connection) -> None:
    """Fencing (migration 007): each write path checks the term inside its own statements."""
    from services.balance_tracker.events import AdminEvent
    from services.balance_tracker.store import Fenced

    owner = str(Keypair().pubkey())
    with pytest.raises(Fenced):  # no lease at all
        await write_batch(conn, PROGRAM, "t", [deposit(owner, 1, 5, 5)], [], (11, "sig1"), fence=("t", 1))
    await conn.execute("INSERT INTO indexer_lease (name, holder, term, expires_at) VALUES ('t', 'me', 1, now())")
    await write_batch(conn, PROGRAM, "t", [deposit(owner, 1, 5, 5)], [], (11, "sig1"), fence=("t", 1))
    await conn.execute("UPDATE indexer_lease SET term = 2")  # another replica took over
    admin = AdminEvent("PauseFlagsSet", "admin", "sig9", 0, 0, {"flags": "1"})
    large = [deposit(owner, n, 1, 5 + n) for n in range(2, COPY_MIN_EVENTS + 3)]
    for events, extra in (([deposit(owner, 2, 1, 6)], []),  # one statement
                          (large, []),  # COPY in a transaction
                          ([], [admin])):  # only the cursor and an audit row
        with pytest.raises(Fenced):
            await write_batch(conn, PROGRAM, "t", events, extra, (50, "sigX"), fence=("t", 1))
    assert await conn.fetchval("SELECT count(*) FROM transactions") == 1
    assert await conn.fetchval("SELECT count(*) FROM audit_log") == 0
    assert await conn.fetchval("SELECT slot FROM indexer_cursor WHERE name = 't'") == 11
    assert await vault(conn, owner) == (5, 5)
    new, _ = await write_batch(conn, PROGRAM, "t", large, [], (60, "sigY"), fence=("t", 2))  # the new term writes
    assert len(new) == len(large)


async def test_a_vault_created_in_the_batch_takes_the_addresses_its_event_states(conn: asyncpg.Connection) -> None:
    """Catch-up (issue 25 item 6): a new vault's address and token account come from its
    VaultInitialized event instead of two PDA searches; a vault whose creation is not in the
    batch still has them derived."""
    created, known = Keypair().pubkey(), Keypair().pubkey()
    opened = EventRow(owner=str(created), signature="sigA", instruction_index=0, event_index=0,
                      kind="vault_initialized", amount=0, slot=5, block_time=datetime.now(UTC),
                      commitment="confirmed", balances=Balances(0, 0, 0), vault=str(PROGRAM.vault(created)),
                      token_account=str(PROGRAM.vault_token(created)), vault_seq=1, seq=1)
    await write_batch(conn, PROGRAM, "t", [opened, deposit(str(known), 1, 5, 5)], [], None)
    rows = {r["owner"]: (r["address"], r["token_account"]) for r in await conn.fetch(
        "SELECT owner, address, token_account FROM vaults")}
    assert rows == {str(v): (str(PROGRAM.vault(v)), str(PROGRAM.vault_token(v))) for v in (created, known)}


async def test_the_rows_a_batch_returns_give_each_vault_its_pda_bump(conn: asyncpg.Connection) -> None:
    """Catch-up (issue 25 item 6): the publisher takes a cached vault's bump from the row's
    address (`vault_bump`, hashing only) instead of a PDA search per row; the rows a batch
    returns carry that address, in the one-statement and in the transactional (COPY) way,
    and the bump is the one the search finds."""
    small = [Keypair().pubkey() for _ in range(3)]
    large = [Keypair().pubkey() for _ in range(COPY_MIN_EVENTS)]
    for first, owners in ((1, small), (100, large)):
        events = [deposit(str(owner), first + i, 5, 5) for i, owner in enumerate(owners)]
        events.append(EventRow(owner=str(owners[0]), signature="sigInit", instruction_index=first, event_index=0,
                               kind="vault_initialized", amount=0, slot=3, block_time=datetime.now(UTC),
                               commitment="confirmed", balances=Balances(0, 0, 0), vault_seq=1,
                               seq=first + len(owners) + 1))  # one row with a creation time
        _, rows = await write_batch(conn, PROGRAM, "t", events, [], None)
        assert len(rows) == len(owners) and any(row["created_at"] for row in rows)
        for row in rows:
            owner = Pubkey.from_string(row["owner"])
            address, bump = vault_pda(owner, PROGRAM.program_id)
            assert row["address"] == str(address)
            vault = vault_from_row(row, PROGRAM)
            assert vault.bump == bump
            # the publisher's cache entry, built from the row's text: what encoding the Vault gives
            entry = cache_entry(row, PROGRAM)
            assert json.loads(entry) == json.loads(vault_cache.encode(vault, int(row["last_slot"])))
            assert vault_cache.decode(entry) == (vault, int(row["last_slot"]))


def test_vault_bump_is_the_pda_search_s_bump_and_falls_back_to_it_for_another_address() -> None:
    for _ in range(200):
        owner = Keypair().pubkey()
        address, bump = vault_pda(owner, PROGRAM.program_id)
        assert vault_bump(owner, address, PROGRAM.program_id) == bump
        # not this owner's vault (another owner's, or any key): the search's answer, not a guess
        assert vault_bump(owner, PROGRAM.vault(Keypair().pubkey()), PROGRAM.program_id) == bump
        assert vault_bump(owner, Pubkey.new_unique(), PROGRAM.program_id) == bump
