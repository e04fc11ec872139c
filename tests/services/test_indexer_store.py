"""The indexer's batch writes against PostgreSQL: the COPY fast path, the ON CONFLICT
fallback on replays, duplicates inside one batch, and mixed batches — vault rows must be
folded from each event exactly once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from services.balance_tracker.events import Balances, EventRow
from services.balance_tracker.store import COPY_MIN_EVENTS, write_batch
from services.common.migrations import migrate
from services.common.vault_program import VaultProgram

PROGRAM = VaultProgram(Pubkey.new_unique())


@pytest.fixture
async def conn(pg_database: str) -> AsyncIterator[asyncpg.Connection]:
    pool = await asyncpg.create_pool(pg_database, min_size=1, max_size=1)
    assert pool is not None
    await migrate(pool)
    await pool.close()
    connection = await asyncpg.connect(pg_database)
    try:
        yield connection
    finally:
        await connection.close()


def deposit(owner: str, n: int, amount: int, total: int) -> EventRow:
    return EventRow(owner=owner, signature=f"sig{n}", instruction_index=0, event_index=0, kind="deposit",
                    amount=amount, slot=10 + n, block_time=datetime.now(UTC), commitment="confirmed",
                    balances=Balances(total, 0, total))


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
    assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE owner = $1", owner) == 4
    assert await conn.fetchval("SELECT slot FROM indexer_cursor WHERE name = 't'") == 14


async def test_large_batches_take_the_copy_path_and_replay_cleanly(conn: asyncpg.Connection) -> None:
    owner = str(Keypair().pubkey())
    batch = [deposit(owner, n, 1, n + 1) for n in range(COPY_MIN_EVENTS + 10)]
    new, _ = await write_batch(conn, PROGRAM, "t", batch, [], (99, "x"))
    assert len(new) == len(batch) and await vault(conn, owner) == (len(batch), len(batch))
    new, _ = await write_batch(conn, PROGRAM, "t", [*batch, batch[0]], [], (99, "x"))  # replay + a duplicate
    assert new == [] and await vault(conn, owner) == (len(batch), len(batch))
    assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE owner = $1", owner) == len(batch)
