"""GetVault served as vault_manager serves it, from memory, alone in its process: the
services' measurement entry point services/vault_manager/perf_get_vault_server.py (its
docstring says what it runs), started in its own process for bench_grpc_wrapper (bench/
imports nothing from services/)."""

from __future__ import annotations

import subprocess

from solders.pubkey import Pubkey

from bench.probes import spawn_server

MODULE = "services.vault_manager.perf_get_vault_server"


async def spawn(port: int, owner: Pubkey) -> subprocess.Popen[bytes]:
    """Starts the server in its own process and returns once it accepts calls."""
    return await spawn_server(MODULE, port, [str(owner)])
