"""Indexer ingest and event latency.

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
* Latency: a deposit sent through localnet's RPC until its event arrives on the Redis
  pub/sub channel, with the indexer following at `processed` and at `confirmed`
  (confirmed waits for the next 400 ms slot, as on a cluster). The first WARMUP deposits
  (first use of every code path and prepared statement) are sent and received but not
  counted.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import random
import statistics
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.models import TxOpts
from solders.keypair import Keypair
from solders.message import Message
from solders.transaction import VersionedTransaction

from bench.environment import redis_url, temporary_database
from bench.service_settings import settings_for
from bench.stats import cpu_seconds, pct
from bench.traffic import users_with_vaults
from localnet.node_harness import running_node
from services.balance_tracker.app import BalanceTrackerApp
from services.balance_tracker.events import Balances, EventRow
from services.balance_tracker.indexer.follower import IndexerConfig
from services.balance_tracker.indexer.pipeline import DEFAULT_DEPTH, WritePipeline
from services.balance_tracker.store import EVENT_COLUMNS, copy_text, event_records, write_batch
from services.common.migrations import migrate
from vault_client.config import DEFAULT_SOLANA_RPC_URL, events_channel

EVENTS = 50_000
BATCH = IndexerConfig.batch_size  # the indexer's own most events per batch
OWNERS = BATCH
LATENCY_DEPOSITS = 100
WARMUP = 5
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


async def ingest() -> dict[str, Any]:
    events = synthetic_events()
    program = settings_for("bench", _FakeNode(), "", "", "").program  # type: ignore[arg-type]
    async with temporary_database("cvbench") as url:
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


async def small_batches() -> dict[str, Any]:
    program = settings_for("bench", _FakeNode(), "", "", "").program  # type: ignore[arg-type]
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

    async with temporary_database("cvbench") as url:
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


class _FakeNode:
    rpc_url = DEFAULT_SOLANA_RPC_URL
    ws_url = "ws://127.0.0.1:8900"



async def latency(commitment: str) -> dict[str, Any]:
    async with running_node(slot_ms=400) as node, temporary_database("cvbench") as db, \
            AsyncClient(node.rpc_url, commitment=Confirmed) as client:
        prefix = f"cvbench:{time.time_ns()}:"
        settings = settings_for("balance_tracker", node, db, redis_url(), prefix)
        object.__setattr__(settings, "commitment", commitment)
        app = BalanceTrackerApp(settings, snapshot_seconds=3600, reconcile_seconds=3600)
        await app.start(metrics=False)
        redis = aioredis.from_url(redis_url())
        pubsub = redis.pubsub()
        try:
            [account] = await users_with_vaults(node, client, 1, usdt=100_000)
            await pubsub.subscribe(events_channel(prefix))
            assert node.ledger is not None
            program = node.ledger.deployment.program
            sent_at: dict[str, float] = {}
            received: dict[str, float] = {}

            async def receive() -> None:
                while len(received) < WARMUP + LATENCY_DEPOSITS:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    data = json.loads(message["data"]) if message else []
                    for event in data if isinstance(data, list) else [data]:  # a batch's events: an array
                        if event["kind"] == "deposit":
                            received.setdefault(event["signature"], time.perf_counter())

            receiver = asyncio.create_task(receive())
            blockhash = (await client.get_latest_blockhash()).value.blockhash
            for n in range(WARMUP + LATENCY_DEPOSITS):
                tx = VersionedTransaction(Message.new_with_blockhash(
                    [program.deposit(account.user.key, account.token_account, 1_000 + n)], account.user.key,
                    blockhash), [account.user.keypair])
                signature = (await client.send_transaction(tx, opts=TxOpts(skip_confirmation=True))).value
                sent_at[str(signature)] = time.perf_counter()
                await asyncio.sleep(0.02)  # 50 deposits/s
            await asyncio.wait_for(receiver, 60)
        finally:
            await pubsub.aclose()
            await redis.aclose()
            await app.stop()
    counted = list(sent_at.items())[WARMUP:]
    lat = [received[s] - t for s, t in counted if s in received]
    return {"commitment": commitment, "deposits": len(lat), "warmup_deposits": WARMUP, "p50_ms": pct(lat, 0.5, 1),
            "p99_ms": pct(lat, 0.99, 1)}


def run() -> dict[str, Any]:
    return {"ingest": asyncio.run(ingest()), "small_batches": asyncio.run(small_batches()),
            "event_to_pubsub_latency": [asyncio.run(latency("processed")), asyncio.run(latency("confirmed"))]}
