"""Indexer ingest and event latency, as balance_tracker's own entry points measure them
(bench/ imports nothing from services/), each run in a process of its own:

* Ingest (the indexer's write pipeline against raw COPY of the same rows; target at least
  0.5 x COPY) and small batches (one event in one statement against the transactional way):
  services/balance_tracker/perf_write_pipeline.py, whose docstring has the method, on a
  database made here for each.
* Latency: services/balance_tracker/perf_event_latency.py, a deposit sent through localnet's
  RPC until its event arrives on the Redis pub/sub channel, balance_tracker following at
  `processed` and at `confirmed` in the process that sends and receives, as here before.
  This process runs the node and opens the depositor's vault once balance_tracker is up.
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
