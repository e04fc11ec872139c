"""What the services' per-call gRPC wrapper (services/common/observability.py: request id,
status mapping, Prometheus metrics) costs a handler that does nothing: the echo server bare
and wrapped, in their own processes, driven in turn by h2load (4 calls in flight, one
connection, loopback), seven passes interleaved. Reports each server's median rate and CPU
per call (from /proc), and the wrapped ÷ bare ratio of rates."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import grpc

from bench import h2load
from bench.echo_server import METHOD
from bench.stats import cpu_seconds
from localnet.svm import ROOT
from services.common import event_loop
from tests.support.localnet_node import free_port

CALLS = 10_000
IN_FLIGHT = 4
PASSES = 7
MESSAGE = b"\x0a\x20" + b"k" * 32


async def _ready(port: int) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        await asyncio.wait_for(channel.channel_ready(), 30)


async def measure() -> dict[str, Any]:
    ports = {"bare": free_port(), "wrapped": free_port()}
    servers = {name: subprocess.Popen([sys.executable, "-m", "bench.echo_server", str(port)]
                                      + (["--observed"] if name == "wrapped" else []), cwd=ROOT)
               for name, port in ports.items()}
    runs: dict[str, list[tuple[int, float]]] = {name: [] for name in ports}
    try:
        for port in ports.values():
            await _ready(port)
            await h2load.unary(port, METHOD, MESSAGE, IN_FLIGHT, 2_000, 60)  # warm-up
        for _ in range(PASSES):
            for name, port in ports.items():
                before = cpu_seconds(servers[name].pid)
                result = await h2load.unary(port, METHOD, MESSAGE, IN_FLIGHT, CALLS, 60)
                if result["response_bytes"] != CALLS * len(h2load.grpc_frame(MESSAGE)):
                    raise RuntimeError(f"{name}: some calls failed")
                runs[name].append((result["rps"], (cpu_seconds(servers[name].pid) - before) * 1e6 / CALLS))
    finally:
        for server in servers.values():
            server.terminate()
            server.wait(timeout=10)
    median = {name: sorted(r)[len(r) // 2] for name, r in runs.items()}
    return {"calls_per_pass": CALLS, "in_flight": IN_FLIGHT, "passes": PASSES,
            **{name: {"median_rps": median[name][0], "cpu_us_per_call": round(sorted(c for _, c in r)[len(r) // 2]),
                      "rps_of_passes": [rps for rps, _ in r]} for name, r in runs.items()},
            "wrapped_over_bare": round(median["wrapped"][0] / median["bare"][0], 3)}


def run() -> dict[str, Any]:
    h2load.require()
    return event_loop.run(measure())
