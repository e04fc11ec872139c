"""What the services' per-call gRPC wrapper (services/common/observability.py: request id,
status mapping, Prometheus metrics) costs a handler that does nothing, and what GetVault's
whole serving path costs apart from the rest of the system: the echo server bare, wrapped
as the services wrap it (their `ObservingInterceptor`), and wrapped directly at
registration (the same wrapper without an interceptor: what grpc's interceptor step costs);
and GetVault served from memory as vault_manager serves it but alone in its process
(services/vault_manager/perf_get_vault_server.py). Each runs in its own process, driven in turn by h2load (4
calls in flight, one connection, loopback) with the same GetVaultRequest, seven passes
interleaved. Reports each server's median rate and CPU per call (from /proc), the wrapped
÷ bare and direct ÷ bare ratios and GetVault ÷ bare echo (the mesh benchmark's ratio,
without the system around it). Then, without sockets (services/vault_manager/perf_handler_path.py,
in a process of its own), how much of each server's CPU per call is its own Python apart
from gRPC: interceptor step, handler, wrapper, request parse and answer serialization. The
servers and the in-process timing are the services' measurement entry points (bench/
imports nothing from services/: bench/probes.py runs them)."""

from __future__ import annotations

import subprocess
from statistics import median_low
from typing import Any

from collateral_vault.v1 import vault_manager_pb2
from solders.pubkey import Pubkey

from bench import echo_server, get_vault_server, h2load
from bench.echo_server import METHOD
from bench.probes import probe
from localnet.node_harness import free_port
from vault_client import event_loop
from vault_client.readings import cpu_seconds

CALLS = 10_000
IN_FLIGHT = 4
PASSES = 7
OWNER = Pubkey.new_unique()
MESSAGE = vault_manager_pb2.GetVaultRequest(owner=str(OWNER)).SerializeToString()
GET_VAULT = "/collateral_vault.v1.VaultManager/GetVault"


async def measure() -> dict[str, Any]:
    ports = {"bare": free_port(), "wrapped": free_port(), "direct": free_port(), "get_vault": free_port()}
    methods = {"bare": METHOD, "wrapped": METHOD, "direct": METHOD, "get_vault": GET_VAULT}
    servers: dict[str, subprocess.Popen[bytes]] = {}
    runs: dict[str, list[tuple[int, float]]] = {name: [] for name in ports}
    answer_bytes: dict[str, int] = {}  # per call; a failed gRPC call returns none (tests/bench)
    try:
        for name, port in ports.items():
            servers[name] = (await get_vault_server.spawn(port, OWNER) if name == "get_vault"
                             else await echo_server.spawn(port, observed=name == "wrapped", direct=name == "direct"))
            warm_up = await h2load.unary(port, methods[name], MESSAGE, IN_FLIGHT, 2_000, 60)
            answer_bytes[name] = warm_up["response_bytes"] // 2_000
        if answer_bytes["bare"] != len(h2load.grpc_frame(MESSAGE)) or answer_bytes["get_vault"] <= 5:
            raise RuntimeError(f"unexpected answers in the warm-up: {answer_bytes} bytes per call")
        for _ in range(PASSES):
            for name, port in ports.items():
                before = cpu_seconds(servers[name].pid)
                result = await h2load.unary(port, methods[name], MESSAGE, IN_FLIGHT, CALLS, 60)
                if result["response_bytes"] != CALLS * answer_bytes[name]:
                    raise RuntimeError(f"{name}: some calls failed")
                runs[name].append((result["rps"], (cpu_seconds(servers[name].pid) - before) * 1e6 / CALLS))
    finally:
        for server in servers.values():
            echo_server.stop(server)
    rps = {name: median_low(r for r, _ in passes) for name, passes in runs.items()}
    return {"calls_per_pass": CALLS, "in_flight": IN_FLIGHT, "passes": PASSES,
            **{name: {"median_rps": rps[name], "cpu_us_per_call": round(median_low(c for _, c in passes)),
                      "rps_of_passes": [r for r, _ in passes]} for name, passes in runs.items()},
            "wrapped_over_bare": round(rps["wrapped"] / rps["bare"], 3),
            "direct_over_bare": round(rps["direct"] / rps["bare"], 3),
            "get_vault_over_bare": round(rps["get_vault"] / rps["bare"], 3),
            "in_process": await probe("services.vault_manager.perf_handler_path", str(OWNER))}


def run() -> dict[str, Any]:
    h2load.require()
    return event_loop.run(measure())
