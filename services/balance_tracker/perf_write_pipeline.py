"""balance_tracker's write path, measured for bench/bench_indexer.py (which runs this in a
process of its own on a database made for the run; bench/ imports nothing from services/):

* Ingest: the indexer's real write path (`WritePipeline` over `write_batch`: events by
  COPY, vault rows, cursor, the lease term's fence, one transaction per batch, up to three
  batches in flight) for N
  synthetic program events in batches of the indexer's default size, as many owners as a
  batch holds events (so every event of a batch updates a different vault row: the worst
  case), against one raw `COPY` of the same event rows into the same emptied table (the
  faster of binary and text COPY), in the same run; five rounds, the median ratio counts.
  Target: at least 0.5 x COPY.
* Small batches: the live indexer's usual batch (one event, nothing else in flight) written
  in one statement (`write_batch`'s way for it) against the transactional way (BEGIN,
  INSERT, UPSERT, COMMIT; forced by passing a previous batch to wait for), interleaved in
  passes on one connection; CPU per batch of this process (the client) and of the
  connection's PostgreSQL backend (read from /proc: PostgreSQL on this machine).

`python -m services.balance_tracker.perf_write_pipeline ingest|small-batches DATABASE_URL`
(an empty database: migrated here) prints the result as JSON."""

from __future__ import annotations

import asyncio
import io
import json
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from services.balance_tracker.events import Balances, EventRow
from services.balance_tracker.indexer.follower import IndexerConfig
from services.balance_tracker.indexer.pipeline import DEFAULT_DEPTH, WritePipeline
from services.balance_tracker.store import EVENT_COLUMNS, copy_text, event_records, write_batch
from services.common.migrations import migrate
from vault_client.config import DEFAULT_USDT_MINT, Settings
from vault_client.readings import cpu_seconds
from vault_client.vault_program import VaultProgram

EVENTS = 50_000
BATCH = IndexerConfig.batch_size  # the indexer's own most events per batch
OWNERS = BATCH
TARGET_RATIO = 0.5
ROUNDS = 5
SMALL_BATCHES = 1_000  # per path and pass
SMALL_PASSES = 3


FENCE = ("bench", 1)  # every batch checks this lease term (migration 007), as the indexer's do
SMALL_FENCE = ("small", 1)


async def _lease(pool: asyncpg.Pool, fence: tuple[str, int]) -> None:
    await pool.execute("INSERT INTO indexer_lease (name, holder, term, expires_at) VALUES ($1, 'bench', $2, "
                       "now() + interval '1 day')", *fence)


def synthetic_events() -> list[EventRow]:
    rng = random.Random(1)
    owners = [str(Keypair().pubkey()) for _ in range(OWNERS)]
    totals = dict.fromkeys(owners, 0)
    now = datetime.now(UTC)
    events = []
    for n in range(EVENTS):
        owner = owners[n % OWNERS]
        amount = rng.randint(1, 10**9)
        totals[owner] += amount
        events.append(EventRow(owner=owner, signature=f"sig{n:08d}" + "x" * 76, instruction_index=0, event_index=0,
                               kind="deposit", amount=amount, slot=1_000 + n // 100, block_time=now,
                               commitment="confirmed", balances=Balances(totals[owner], 0, totals[owner]), seq=n + 1))
    return events


async def _timed_rounds(pool: asyncpg.Pool, events: list[EventRow], program: Any) -> dict[str, float]:
    """One round of the three measurements, each into emptied tables."""

    async def empty() -> None:
        await pool.execute("TRUNCATE transactions, vaults, indexer_cursor")
        try:  # each measurement starts with no dirty buffers to write back (needs pg_checkpoint)
            await pool.execute("CHECKPOINT")
        except asyncpg.InsufficientPrivilegeError:
            pass

    await empty()
    started = time.perf_counter()
    pipeline = WritePipeline(pool, program, "bench", fence=FENCE)  # fenced by a lease term, as the indexer writes
    for i in range(0, len(events), BATCH):
        chunk = events[i:i + BATCH]
        await pipeline.submit(chunk, [], (chunk[-1].slot, chunk[-1].signature))
    await pipeline.drain()
    indexer_s = time.perf_counter() - started

    await empty()  # the same batches COPYed alone (no vault or cursor writes, one at a time)
    async with pool.acquire() as conn:
        started = time.perf_counter()
        for i in range(0, len(events), BATCH):
            async with conn.transaction():
                await conn.copy_to_table("transactions", columns=EVENT_COLUMNS, format="text",
                                         source=io.BytesIO(copy_text(events[i:i + BATCH])))
        batched_copy_s = time.perf_counter() - started

    # the ceiling: one raw COPY of the same rows, the faster of the driver's binary COPY and
    # the text COPY the indexer uses (each into an emptied table, data prepared beforehand)
    rows, text = event_records(events), copy_text(events)
    await empty()
    async with pool.acquire() as conn:
        started = time.perf_counter()
        await conn.copy_records_to_table("transactions", columns=EVENT_COLUMNS, records=rows)
        binary_s = time.perf_counter() - started
    await empty()
    async with pool.acquire() as conn:
        started = time.perf_counter()
        await conn.copy_to_table("transactions", columns=EVENT_COLUMNS, format="text", source=io.BytesIO(text))
        text_s = time.perf_counter() - started
    return {"indexer": len(events) / indexer_s, "batched_copy": len(events) / batched_copy_s,
            "copy_binary": len(events) / binary_s, "copy_text": len(events) / text_s,
            "copy": len(events) / min(binary_s, text_s)}


async def ingest(url: str) -> dict[str, Any]:
    """The write pipeline against raw COPY on the empty database at `url`."""
    events = synthetic_events()
    program = _program()
    pool = await asyncpg.create_pool(url, min_size=DEFAULT_DEPTH, max_size=DEFAULT_DEPTH)
    assert pool is not None
    await migrate(pool)
    await _lease(pool, FENCE)
    rounds = [await _timed_rounds(pool, events, program) for _ in range(ROUNDS)]
    await pool.close()
    ratios = sorted(r["indexer"] / r["copy"] for r in rounds)
    median = ratios[len(ratios) // 2]
    return {"events": len(events), "batch_size": BATCH, "rounds": ROUNDS,
            "indexer_events_per_s": round(statistics.median(r["indexer"] for r in rounds)),
            "batched_copy_events_per_s": round(statistics.median(r["batched_copy"] for r in rounds)),
            "copy_events_per_s": round(statistics.median(r["copy"] for r in rounds)),
            "copy_binary_events_per_s": round(statistics.median(r["copy_binary"] for r in rounds)),
            "copy_text_events_per_s": round(statistics.median(r["copy_text"] for r in rounds)),
            "ratio": round(median, 3), "ratio_per_round": [round(r["indexer"] / r["copy"], 3) for r in rounds],
            "target_ratio": TARGET_RATIO, "target_met": median >= TARGET_RATIO}


async def small_batches(url: str) -> dict[str, Any]:
    """One-event batches, one statement against a transaction, on the empty database at `url`."""
    program = _program()
    owners = [str(Keypair().pubkey()) for _ in range(20)]
    totals = dict.fromkeys(owners, 0)
    sequence = 0

    async def nothing_to_wait_for() -> None:  # a previous batch to wait for: the transactional way
        return None

    async def timed(conn: asyncpg.Connection, backend: int, after: Any, count: int) -> tuple[float, float]:
        nonlocal sequence
        client, server = cpu_seconds(os.getpid()), cpu_seconds(backend)
        for _ in range(count):
            sequence += 1
            owner = owners[sequence % len(owners)]
            totals[owner] += 5
            event = EventRow(owner=owner, signature=f"small{sequence:08d}", instruction_index=0, event_index=0,
                             kind="deposit", amount=5, slot=sequence, block_time=datetime.now(UTC),
                             commitment="processed", balances=Balances(totals[owner], 0, totals[owner]),
                             seq=sequence)
            await write_batch(conn, program, "small", [event], [], (sequence, event.signature), after, SMALL_FENCE)
        return ((cpu_seconds(os.getpid()) - client) / count * 1e6, (cpu_seconds(backend) - server) / count * 1e6)

    pool = await asyncpg.create_pool(url, min_size=1, max_size=1)
    assert pool is not None
    try:
        await migrate(pool)
        await _lease(pool, SMALL_FENCE)
        async with pool.acquire() as conn:
            backend = await conn.fetchval("SELECT pg_backend_pid()")
            await timed(conn, backend, None, 100)  # first use of each statement
            await timed(conn, backend, nothing_to_wait_for, 100)
            passes = [(await timed(conn, backend, None, SMALL_BATCHES),
                       await timed(conn, backend, nothing_to_wait_for, SMALL_BATCHES))
                      for _ in range(SMALL_PASSES)]
    finally:
        await pool.close()

    def median(values: list[float]) -> float:
        return round(statistics.median(values))

    return {"batches_per_pass": SMALL_BATCHES, "passes": SMALL_PASSES,
            "one_statement": {"client_cpu_us": median([p[0][0] for p in passes]),
                              "postgres_cpu_us": median([p[0][1] for p in passes])},
            "transaction": {"client_cpu_us": median([p[1][0] for p in passes]),
                            "postgres_cpu_us": median([p[1][1] for p in passes])},
            "per_pass": [{"one_statement": [round(a[0]), round(a[1])], "transaction": [round(b[0]), round(b[1])]}
                         for a, b in passes]}


def _program() -> VaultProgram:
    """The vault program a service's settings name (the development USDT mint)."""
    return Settings(service="bench", usdt_mint=Pubkey.from_string(DEFAULT_USDT_MINT)).program


MEASURES = {"ingest": ingest, "small-batches": small_batches}

if __name__ == "__main__":
    print(json.dumps(asyncio.run(MEASURES[sys.argv[1]](sys.argv[2]))))
