"""Indexer ingest and event latency.

* Ingest: the indexer's real write path (`write_batch`: events with ON CONFLICT, vault
  rows, audit log, cursor, in one transaction per batch) for N synthetic program events,
  against a raw `COPY` of the same event rows into the same table, in the same run. Target:
  at least 0.5 x COPY.
* Latency: a deposit sent through localnet's RPC until its event arrives on the Redis
  pub/sub channel, with the indexer following at `processed` and at `confirmed`
  (confirmed waits for the next 400 ms slot, as on a cluster).
"""

from __future__ import annotations

import asyncio
import json
import random
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

from services.balance_tracker.app import BalanceTrackerApp
from services.balance_tracker.events import Balances, EventRow
from services.balance_tracker.store import write_batch
from services.common.migrations import migrate
from tests.conftest import redis_url
from tests.support.databases import temporary_database
from tests.support.localnet_node import running_node
from tests.support.services import settings_for
from tests.support.traffic import users_with_vaults

EVENTS = 50_000
OWNERS = 500
BATCH = 500
LATENCY_DEPOSITS = 100
TARGET_RATIO = 0.5


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
                               commitment="confirmed", balances=Balances(totals[owner], 0, totals[owner])))
    return events


async def ingest() -> dict[str, Any]:
    events = synthetic_events()
    program = settings_for("bench", _FakeNode(), "", "", "").program  # type: ignore[arg-type]
    async with temporary_database("cvbench") as url:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        assert pool is not None
        await migrate(pool)
        started = time.perf_counter()
        async with pool.acquire() as conn:
            for i in range(0, len(events), BATCH):
                chunk = events[i:i + BATCH]
                await write_batch(conn, program, "bench", chunk, [], (chunk[-1].slot, chunk[-1].signature))
        indexed_s = time.perf_counter() - started
        # the event insert alone (same statement, no vault, audit or cursor writes), for the breakdown
        from services.balance_tracker.store import _INSERT_EVENTS

        started = time.perf_counter()
        async with pool.acquire() as conn:
            for i in range(0, len(events), BATCH):
                chunk = events[i:i + BATCH]
                await conn.fetch(
                    _INSERT_EVENTS, [e.owner for e in chunk], [e.signature + "e" for e in chunk],
                    [0] * len(chunk), [0] * len(chunk), [e.kind for e in chunk], [e.amount for e in chunk],
                    [None] * len(chunk), [None] * len(chunk), [e.balances.total for e in chunk if e.balances],
                    [e.balances.locked for e in chunk if e.balances],
                    [e.balances.available for e in chunk if e.balances], [e.slot for e in chunk],
                    [e.block_time for e in chunk], [e.commitment for e in chunk])
        events_only_s = time.perf_counter() - started
        copy_rows = [(e.owner, e.signature + "c", 0, 0, e.kind, e.amount, None, None, e.balances.total,
                      e.balances.locked, e.balances.available, e.slot, e.block_time, e.commitment)
                     for e in events if e.balances]
        async with pool.acquire() as conn:
            started = time.perf_counter()
            await conn.copy_records_to_table("transactions", records=copy_rows, columns=[
                "owner", "signature", "instruction_index", "event_index", "kind", "amount", "counterparty",
                "caller_program", "total_balance", "locked_balance", "available_balance", "slot", "block_time",
                "commitment"])
            copy_s = time.perf_counter() - started
        await pool.close()
    indexer_rate, copy_rate = len(events) / indexed_s, len(events) / copy_s
    return {"events": len(events), "batch_size": BATCH, "indexer_events_per_s": round(indexer_rate),
            "event_insert_only_per_s": round(len(events) / events_only_s),
            "copy_events_per_s": round(copy_rate), "ratio": round(indexer_rate / copy_rate, 3),
            "target_ratio": TARGET_RATIO, "target_met": indexer_rate / copy_rate >= TARGET_RATIO}


class _FakeNode:
    rpc_url = "http://127.0.0.1:8899"
    ws_url = "ws://127.0.0.1:8900"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)


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
            await pubsub.subscribe(f"{prefix}events")
            assert node.ledger is not None
            program = node.ledger.deployment.program
            sent_at: dict[str, float] = {}
            received: dict[str, float] = {}

            async def receive() -> None:
                while len(received) < LATENCY_DEPOSITS:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message and json.loads(message["data"])["kind"] == "deposit":
                        received.setdefault(json.loads(message["data"])["signature"], time.perf_counter())

            receiver = asyncio.create_task(receive())
            blockhash = (await client.get_latest_blockhash()).value.blockhash
            for n in range(LATENCY_DEPOSITS):
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
    lat = [received[s] - t for s, t in sent_at.items() if s in received]
    return {"commitment": commitment, "deposits": len(lat), "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99)}


def run() -> dict[str, Any]:
    return {"ingest": asyncio.run(ingest()),
            "event_to_pubsub_latency": [asyncio.run(latency("processed")), asyncio.run(latency("confirmed"))]}
