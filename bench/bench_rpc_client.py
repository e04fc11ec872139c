"""Client CPU per JSON-RPC call against localnet (a separate process on loopback), for the
transports the services could use, up to the chain client with 32 calls in flight. The
measurement is the services' own entry point services/common/perf_rpc_client.py (its
docstring has the method; the chain client is theirs and bench/ imports nothing from
services/), run in a process of its own against a localnet node this starts."""

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
