"""What the services' per-call gRPC wrapper (services/common/observability.py: request id,
status mapping, Prometheus metrics) costs a handler that does nothing: the echo server bare
and wrapped, in their own processes, driven in turn by h2load (4 calls in flight, one
connection, loopback), seven passes interleaved. Reports each server's median rate and CPU
per call (from /proc), and the wrapped ÷ bare ratio of rates."""

from __future__ import annotations

import subprocess
from statistics import median_low
from typing import Any

from bench import echo_server, h2load
from bench.echo_server import METHOD
from bench.stats import cpu_seconds
from services.common import event_loop
from tests.support.localnet_node import free_port

CALLS = 10_000
IN_FLIGHT = 4
PASSES = 7
MESSAGE = b"\x0a\x20" + b"k" * 32


async def measure() -> dict[str, Any]:
    ports = {"bare": free_port(), "wrapped": free_port()}
    servers: dict[str, subprocess.Popen[bytes]] = {}
    runs: dict[str, list[tuple[int, float]]] = {name: [] for name in ports}
    try:
        for name, port in ports.items():
            servers[name] = await echo_server.spawn(port, observed=name == "wrapped")
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
            echo_server.stop(server)
    rps = {name: median_low(r for r, _ in passes) for name, passes in runs.items()}
    return {"calls_per_pass": CALLS, "in_flight": IN_FLIGHT, "passes": PASSES,
            **{name: {"median_rps": rps[name], "cpu_us_per_call": round(median_low(c for _, c in passes)),
                      "rps_of_passes": [r for r, _ in passes]} for name, passes in runs.items()},
            "wrapped_over_bare": round(rps["wrapped"] / rps["bare"], 3)}


def run() -> dict[str, Any]:
    h2load.require()
    return event_loop.run(measure())
