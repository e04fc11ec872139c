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

The measurements are balance_tracker's own entry points (bench/ imports nothing from
services/), each run in a process of its own: services/balance_tracker/perf_write_pipeline.py
(ingest, small batches: on a database made for the run) and perf_event_latency.py (latency:
balance_tracker in its process with the deposits' sender and the pub/sub receiver, as here
before; this process runs the node and opens the depositor's vault once it is up).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed

from bench.environment import redis_url, temporary_database
from bench.probes import probe, probe_after
from bench.service_settings import spool_dir
from bench.traffic import users_with_vaults
from localnet.node_harness import free_port, running_node
from vault_client.config import DEFAULT_USDT_MINT
from vault_client.keyfile import write_key_file


async def _write_pipeline(measure: str) -> dict[str, Any]:
    async with temporary_database("cvbench") as url:
        return await probe("services.balance_tracker.perf_write_pipeline", measure, url)


async def latency(commitment: str) -> dict[str, Any]:
    async with running_node(slot_ms=400) as node, temporary_database("cvbench") as db, \
            AsyncClient(node.rpc_url, commitment=Confirmed) as client:
        keys = tempfile.TemporaryDirectory(prefix="cvbench-key-")
        env = {"SOLANA_RPC_URL": node.rpc_url, "SOLANA_WS_URL": node.ws_url, "SOLANA_COMMITMENT": commitment,
               "DATABASE_URL": db, "REDIS_URL": redis_url(), "REDIS_PREFIX": f"cvbench:{time.time_ns()}:",
               "USDT_MINT": DEFAULT_USDT_MINT, "GRPC_HOST": "127.0.0.1", "BALANCE_TRACKER_GRPC_PORT": str(free_port()),
               "BALANCE_TRACKER_METRICS_PORT": str(free_port()), "SHUTDOWN_GRACE_SECONDS": "1.0",
               "AUDIT_SPOOL_DIR": spool_dir()}

        async def depositor() -> str:
            [account] = await users_with_vaults(node, client, 1, usdt=100_000)
            key_file = Path(keys.name) / "depositor.json"
            write_key_file(key_file, account.user.keypair)
            return json.dumps({"key_file": str(key_file), "token_account": str(account.token_account)})

        with keys:
            return await probe_after("services.balance_tracker.perf_event_latency", depositor, env)


def run() -> dict[str, Any]:
    return {"ingest": asyncio.run(_write_pipeline("ingest")),
            "small_batches": asyncio.run(_write_pipeline("small-batches")),
            "event_to_pubsub_latency": [asyncio.run(latency("processed")), asyncio.run(latency("confirmed"))]}
