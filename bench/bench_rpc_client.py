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
row; the transports take turns, three passes, the median pass counts. The measurement is
the services' own entry point services/common/perf_rpc_client.py (the chain client is
theirs; bench/ imports nothing from services/), run in a process of its own against a
localnet node this starts."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from bench.probes import probe
from localnet.genesis import dev_keypair
from localnet.node_harness import free_port, wait_healthy
from localnet.svm import ROOT
from vault_client import event_loop


def run() -> dict[str, Any]:
    rpc, ws = free_port(), free_port()
    node = subprocess.Popen([sys.executable, "-m", "localnet", "--rpc-port", str(rpc), "--ws-port", str(ws)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{rpc}"

    async def main() -> dict[str, Any]:
        await wait_healthy(url, node)
        return await probe("services.common.perf_rpc_client", url, str(dev_keypair("usdt_mint").pubkey()))

    try:
        return event_loop.run(main())
    finally:
        node.terminate()
        node.wait(timeout=30)
