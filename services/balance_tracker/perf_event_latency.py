"""Event latency, measured for bench/bench_indexer.py: a deposit sent through the node's RPC
until its event arrives on the Redis pub/sub channel, with balance_tracker (its indexer, the
writes, the publish) running in this process, following at the settings' commitment
(`SOLANA_COMMITMENT`: `processed`, or `confirmed`, which waits for the next 400 ms slot, as
on a cluster). The first WARMUP deposits (first use of every code path and prepared
statement) are sent and received but not counted.

`python -m services.balance_tracker.perf_event_latency` with balance_tracker's settings in
the environment (the node, an empty database, Redis and a private prefix): it starts
balance_tracker, prints `{"ready": true}`, then reads one JSON line on standard input, the
depositor `{"key_file": ..., "token_account": ...}` (a keypair file whose vault the
benchmark opened meanwhile, as it did while the service ran in its own process), sends the
deposits at 50 a second and prints the result as JSON. bench/ imports nothing from services/:
the benchmark starts the node, makes the database and the depositor, and runs this."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.models import TxOpts
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from services.balance_tracker.app import BalanceTrackerApp
from vault_client.config import Settings, events_channel
from vault_client.keyfile import read_key_file
from vault_client.readings import pct

LATENCY_DEPOSITS = 100
WARMUP = 5
READY = {"ready": True}


async def _depositor() -> dict[str, str]:
    """The benchmark's answer to READY: one JSON line on standard input."""
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if not line:
        raise SystemExit("perf_event_latency: standard input closed before the depositor was given")
    answer = json.loads(line)
    if not isinstance(answer, dict):
        raise SystemExit(f"perf_event_latency: expected a JSON object, got {line[:200]!r}")
    return answer


async def latency(settings: Settings) -> dict[str, Any]:
    commitment = settings.commitment
    async with AsyncClient(settings.solana_rpc_url, commitment=Confirmed) as client:
        prefix = settings.redis_prefix
        app = BalanceTrackerApp(settings, snapshot_seconds=3600, reconcile_seconds=3600)
        await app.start(metrics=False)
        redis = aioredis.from_url(settings.redis_url)
        pubsub = redis.pubsub()
        try:
            print(json.dumps(READY), flush=True)
            given = await _depositor()
            keypair = read_key_file(Path(given["key_file"]))
            token_account = Pubkey.from_string(given["token_account"])
            await pubsub.subscribe(events_channel(prefix))
            program = settings.program
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
                    [program.deposit(keypair.pubkey(), token_account, 1_000 + n)], keypair.pubkey(),
                    blockhash), [keypair])
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


if __name__ == "__main__":
    print(json.dumps(asyncio.run(latency(Settings.for_service("balance_tracker")))))
