"""localnet throughput and latency: SPL Token transfers sent with sendTransaction over
HTTP to a `python -m localnet` process (400 ms slots, as a validator), then confirmed; and
in the same run the same transfers sent to LiteSVM in-process, the ceiling.

Bounded: N transfers, a fixed number in flight, a wall-clock cap; loopback only."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from typing import Any

from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.models import TxOpts
from solders.keypair import Keypair
from solders.message import Message
from solders.transaction import VersionedTransaction

from localnet import genesis
from localnet.faucet import fund
from localnet.node_harness import free_port, wait_healthy
from localnet.svm import ROOT, Chain
from vault_client import spl_token
from vault_client.readings import pct

TRANSFERS = 2_000
IN_FLIGHT = 32
TIME_CAP_S = 120



def build(payer: Keypair, source: Any, dest: Any, blockhash: Any, n: int) -> list[VersionedTransaction]:
    return [VersionedTransaction(Message.new_with_blockhash(
        [spl_token.transfer(source, dest, payer.pubkey(), i + 1)], payer.pubkey(), blockhash), [payer])
        for i in range(n)]


async def over_http(url: str) -> dict[str, Any]:
    payer, receiver = Keypair(), Keypair()
    async with AsyncClient(url, commitment=Confirmed) as client:
        sig = (await client.request_airdrop(payer.pubkey(), 100 * 10**9)).value
        await client.confirm_transaction(sig, Confirmed)
        source, _ = await fund(url, payer.pubkey(), 10**12)
        dest, _ = await fund(url, receiver.pubkey(), 1)
        blockhash = (await client.get_latest_blockhash()).value.blockhash
        txs = build(payer, source, dest, blockhash, TRANSFERS)
        opts = TxOpts(skip_preflight=False, skip_confirmation=True)
        send_latency: list[float] = []
        queue = list(txs)
        deadline = time.monotonic() + TIME_CAP_S

        async def sender() -> None:
            while queue and time.monotonic() < deadline:
                tx = queue.pop()
                started = time.perf_counter()
                await client.send_transaction(tx, opts=opts)
                send_latency.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(IN_FLIGHT)))
        sent_s = time.perf_counter() - started
        # confirmation latency, one at a time, as a wallet would wait
        confirm_latency = []
        for tx in build(payer, source, dest, (await client.get_latest_blockhash()).value.blockhash, 20):
            t0 = time.perf_counter()
            signature = (await client.send_transaction(tx, opts=opts)).value
            await client.confirm_transaction(signature, Confirmed, sleep_seconds=0.01)
            confirm_latency.append(time.perf_counter() - t0)
    return {"transfers": len(send_latency), "send_tps": round(len(send_latency) / sent_s, 1),
            "send_p50_ms": pct(send_latency, 0.5), "send_p99_ms": pct(send_latency, 0.99),
            "confirmed_p50_ms": pct(confirm_latency, 0.5), "confirmed_p99_ms": pct(confirm_latency, 0.99)}


def in_process() -> dict[str, Any]:
    chain = Chain(blockhash_check=False)
    deployment = genesis.create_dev(chain)
    payer, receiver = chain.wallet(100 * 10**9), Keypair()
    source = chain.create_ata(payer, payer.pubkey(), deployment.mint)
    dest = chain.create_ata(payer, receiver.pubkey(), deployment.mint)
    chain.mint_to(payer, deployment.mint, source, deployment.faucet, 10**12)
    txs = build(payer, source, dest, chain.svm.latest_blockhash(), TRANSFERS)
    latency = []
    started = time.perf_counter()
    for tx in txs:
        t0 = time.perf_counter()
        chain.svm.send_transaction(tx)
        latency.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    return {"transfers": len(txs), "tps": round(len(txs) / elapsed, 1), "p50_ms": pct(latency, 0.5),
            "p99_ms": pct(latency, 0.99)}


def run() -> dict[str, Any]:
    rpc, ws = free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "localnet", "--rpc-port", str(rpc), "--ws-port", str(ws)],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{rpc}"
        asyncio.run(wait_healthy(url, proc, seconds=30))
        http = asyncio.run(over_http(url))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    ceiling = in_process()
    return {"slot_ms": 400, "in_flight": IN_FLIGHT, "http": http, "litesvm_in_process": ceiling,
            "ratio_http_to_in_process": round(http["send_tps"] / ceiling["tps"], 3),
            "note": "send = sendTransaction with preflight until the signature returns (processed); "
                    "confirmed waits for the next slot, so it is bounded below by the slot time"}
