"""The indexer's write pipeline against PostgreSQL: batches overlap, yet vault rows, the
cursor and the commit callbacks follow batch order; batches sharing events never overlap;
and nothing after a failed batch is committed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from services.balance_tracker.events import Balances, EventRow
from services.balance_tracker.indexer.pipeline import WritePipeline
from services.balance_tracker.store import COPY_MIN_EVENTS
from vault_client.vault_program import VaultProgram

PROGRAM = VaultProgram(Pubkey.new_unique())


@pytest.fixture
def pool(migrated_pool: asyncpg.Pool) -> asyncpg.Pool:
    return migrated_pool


def deposit(owner: str, n: int, amount: int, total: int, *, available: int | None = None) -> EventRow:
    return EventRow(owner=owner, signature=f"sig{n}", instruction_index=0, event_index=0, kind="deposit",
                    amount=amount, slot=100 + n, block_time=datetime.now(UTC), commitment="confirmed",
                    balances=Balances(total, 0, total if available is None else available), seq=n + 1)


def batches_for(owners: list[str], count: int, size: int) -> list[list[EventRow]]:
    """`count` batches of `size` deposits of 1 each, round robin over the owners."""
    totals = dict.fromkeys(owners, 0)
    out, n = [], 0
    for _ in range(count):
        batch = []
        for _ in range(size):
            owner = owners[n % len(owners)]
            totals[owner] += 1
            batch.append(deposit(owner, n, 1, totals[owner]))
            n += 1
        out.append(batch)
    return out


async def test_overlapping_batches_commit_their_effects_in_order(pool: asyncpg.Pool) -> None:
    owners = [str(Keypair().pubkey()) for _ in range(7)]
    batches = batches_for(owners, 12, COPY_MIN_EVENTS + 6)  # the COPY path, every batch touches every vault
    committed: list[tuple[int, str] | None] = []

    async def on_commit(result: Any, cursor: tuple[int, str] | None) -> None:
        await asyncio.sleep(0.001)  # a slow publisher must not let a later batch overtake
        committed.append(cursor)

    pipeline = WritePipeline(pool, PROGRAM, "t", depth=3, on_commit=on_commit)
    cursors = [(batch[-1].slot, batch[-1].signature) for batch in batches]
    for batch, cursor in zip(batches, cursors, strict=True):
        await pipeline.submit(batch, [], cursor)
    await pipeline.drain()

    assert committed == cursors
    events = [e for batch in batches for e in batch]
    assert await pool.fetchval("SELECT count(*) FROM transactions") == len(events)
    for owner in owners:
        mine = [e for e in events if e.owner == owner]
        row = await pool.fetchrow("SELECT total_balance, total_deposited, last_event_id FROM vaults WHERE owner = $1",
                                  owner)
        assert row is not None
        assert (int(row["total_balance"]), int(row["total_deposited"])) == (len(mine), len(mine))
        assert row["last_event_id"] == mine[-1].event_id
    assert await pool.fetchval("SELECT slot FROM indexer_cursor WHERE name = 't'") == cursors[-1][0]


async def test_batches_sharing_events_do_not_overlap_and_count_once(pool: asyncpg.Pool) -> None:
    owner = str(Keypair().pubkey())
    first = [deposit(owner, n, 1, n + 1) for n in range(COPY_MIN_EVENTS)]
    # the live stream redelivers the tail of a backfill: the second batch repeats 10 events
    second = first[-10:] + [deposit(owner, n, 1, n + 1) for n in range(COPY_MIN_EVENTS, COPY_MIN_EVENTS + 70)]
    pipeline = WritePipeline(pool, PROGRAM, "t", depth=3)
    one = await pipeline.submit(first, [], None)
    two = await pipeline.submit(second, [], None)
    assert one.done()  # the second batch waited for the first instead of blocking inside PostgreSQL
    await asyncio.wait_for(pipeline.drain(), 30)
    new_one, _ = one.result()
    new_two, _ = two.result()
    assert len(new_one) == COPY_MIN_EVENTS and len(new_two) == 70
    total = COPY_MIN_EVENTS + 70
    assert await pool.fetchval("SELECT count(*) FROM transactions") == total
    row = await pool.fetchrow("SELECT total_balance, total_deposited FROM vaults WHERE owner = $1", owner)
    assert row is not None and (int(row["total_balance"]), int(row["total_deposited"])) == (total, total)


async def test_nothing_after_a_failed_batch_is_committed(pool: asyncpg.Pool) -> None:
    owners = [str(Keypair().pubkey()) for _ in range(3)]
    good_before, bad, good_after = batches_for(owners, 3, COPY_MIN_EVENTS)
    # balances that break the vaults table's CHECK (total = locked + available): PostgreSQL
    # refuses the batch in its second phase, after later batches have inserted their events
    broken = bad[-1]
    bad[-1] = deposit(broken.owner, 10_000, 1, broken.balances.total if broken.balances else 0, available=0)
    pipeline = WritePipeline(pool, PROGRAM, "t", depth=3)
    await pipeline.submit(good_before, [], (1, "a"))
    await pipeline.submit(bad, [], (2, "b"))
    later = await pipeline.submit(good_after, [], (3, "c"))
    with pytest.raises(asyncpg.CheckViolationError):
        await pipeline.drain()
    await asyncio.gather(later, return_exceptions=True)
    assert later.done() and (later.cancelled() or later.exception() is not None)
    signatures = {r["signature"] for r in await pool.fetch("SELECT signature FROM transactions")}
    assert signatures == {e.signature for e in good_before}
    assert await pool.fetchval("SELECT slot FROM indexer_cursor WHERE name = 't'") == 1


async def test_settle_waits_for_the_oldest_batch_at_most_the_timeout_and_never_raises(pool: asyncpg.Pool) -> None:
    owners = [str(Keypair().pubkey()) for _ in range(2)]
    release = asyncio.Event()

    async def slow_commit(result: Any, cursor: tuple[int, str] | None) -> None:
        await release.wait()

    pipeline = WritePipeline(pool, PROGRAM, "t", depth=3, on_commit=slow_commit)
    await asyncio.wait_for(pipeline.settle(5), 0.5)  # nothing in flight: at once
    first, second = batches_for(owners, 2, 3)
    await pipeline.submit(first, [], (1, "a"))
    await pipeline.submit(second, [], (2, "b"))
    assert pipeline.in_flight == 2
    started = asyncio.get_running_loop().time()
    await pipeline.settle(0.05)  # the oldest is held in its commit callback: the timeout ends it
    assert asyncio.get_running_loop().time() - started >= 0.04 and pipeline.in_flight == 2
    release.set()
    await asyncio.wait_for(pipeline.settle(5), 5)
    await pipeline.drain()
    assert pipeline.in_flight == 0

    # a failed batch: settle returns quietly, the failure surfaces at drain
    bad_owner = str(Keypair().pubkey())
    failing = WritePipeline(pool, PROGRAM, "t", depth=3)
    await failing.submit([deposit(bad_owner, 500, 1, 1, available=0)], [], (3, "c"))
    await asyncio.wait_for(failing.settle(5), 5)
    with pytest.raises(asyncpg.CheckViolationError):
        await failing.drain()
