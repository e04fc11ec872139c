"""The echo server the gRPC benchmarks compare the services with (a grpc.aio server whose one
unary method returns its request bytes; bare, observed by the services' interceptor, or
wrapped directly at registration), started in its own process. Its code is the services'
measurement entry point services/common/perf_echo_server.py (the observed and direct ones
run the services' wrapper, which bench/ may not import); the bare one loads none of the
services' code."""

from __future__ import annotations

import subprocess

from bench.probes import spawn_server, stop

__all__ = ["METHOD", "SERVICE", "spawn", "stop"]

MODULE = "services.common.perf_echo_server"
SERVICE = "bench.Echo"  # perf_echo_server's (tests/services/test_perf_servers.py checks they agree)
METHOD = f"/{SERVICE}/Echo"


async def spawn(port: int, *, observed: bool = False, direct: bool = False, env: dict[str, str] | None = None,
                ready_within: float = 30.0) -> subprocess.Popen[bytes]:
    """Starts the server in its own process and returns once it accepts calls."""
    args = ["--observed"] * observed + ["--direct"] * direct
    return await spawn_server(MODULE, port, args, env, ready_within)
