"""Client CPU per JSON-RPC call against localnet (a separate process on loopback), for the
transports the services could use: solana-py's AsyncClient as it comes (over httpx), aiohttp's
client (before), the services' own HTTP/1.1
client (`vault_client/http_client.py`), the services' typed client over it (the
chain client's `client`: `vault_client/rpc_http.py`'s `RpcClient`, solders' typed
request and response), and the chain client's status lookup (the same, through the
coalescer). Then the same lookups made 32
at a time, where the coalescer gathers them into shared round trips.

getSignatureStatuses of one unknown signature: the smallest call on the submission path
(what it answers does not change what the client spends). Each measure is 3,000 calls in a
row; the transports take turns, three passes, the median pass counts.

`python -m services.common.perf_rpc_client RPC_URL USDT_MINT` measures against the node at
RPC_URL (the chain client's program is the vault program over USDT_MINT) and prints the
result as JSON; bench/bench_rpc_client.py starts localnet and runs it in a process of its own."""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from solana.rpc.async_api import AsyncClient
from solders.pubkey import Pubkey
from solders.signature import Signature

from services.common.chain import ChainClient
from vault_client import event_loop
from vault_client.http_client import HttpClient
from vault_client.readings import cpu_seconds
from vault_client.vault_program import VaultProgram

CALLS = 3_000
PASSES = 3
CONCURRENT = 32
WARM_UP = 200


async def _cpu_us_per_call(call: Callable[[], Awaitable[Any]], calls: int, concurrency: int = 1) -> float:
    import os

    for _ in range(WARM_UP):
        await call()
    before = cpu_seconds(os.getpid())

    async def worker() -> None:
        for _ in range(calls // concurrency):
            await call()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return round((cpu_seconds(os.getpid()) - before) * 1e6 / calls, 1)


async def measure(url: str, mint: Pubkey) -> dict[str, Any]:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "getSignatureStatuses",
                       "params": [[str(Signature.default())]]}).encode()
    chain = ChainClient(url, VaultProgram(mint), "bench", "processed")
    http = HttpClient(url)
    try:
        async with aiohttp.ClientSession() as session, AsyncClient(url) as plain:
            async def via_aiohttp() -> Any:
                async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
                    return json.loads(await response.text())

            async def via_http_client() -> Any:
                return json.loads((await http.post(body)).body)

            async def via_solana_py() -> Any:
                return await plain.get_signature_statuses([Signature.default()])

            async def via_typed_client() -> Any:
                return await chain.client.get_signature_statuses([Signature.default()])

            async def via_chain_client() -> Any:
                return await chain.status(Signature.default())

            transports = {"solana_py": via_solana_py, "aiohttp": via_aiohttp, "http_client": via_http_client,
                          "typed_client": via_typed_client, "chain_client": via_chain_client}
            passes: dict[str, list[float]] = {name: [] for name in transports}
            for _ in range(PASSES):
                for name, call in transports.items():
                    passes[name].append(await _cpu_us_per_call(call, CALLS))
            trips_before = chain.http.requests
            concurrent = await _cpu_us_per_call(via_chain_client, CALLS, CONCURRENT)
            concurrent_trips = chain.http.requests - trips_before
    finally:
        await chain.close()
        await http.close()
    return {
        "method": "getSignatureStatuses", "calls": CALLS, "passes": PASSES,
        "client_cpu_us_per_call": {name: statistics.median(values) for name, values in passes.items()},
        "client_cpu_us_per_call_passes": passes,
        "chain_client_concurrent": {
            "in_flight": CONCURRENT, "client_cpu_us_per_call": concurrent,
            # the warm-up calls go one at a time: count only the measured ones
            "round_trips_per_call": round((concurrent_trips - WARM_UP) / CALLS, 3)},
    }


if __name__ == "__main__":
    print(json.dumps(event_loop.run(measure(sys.argv[1], Pubkey.from_string(sys.argv[2])))))
