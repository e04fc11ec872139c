"""The whole system's environment as `make up` starts it (scripts/up.py), on private ports, a
given database and a private Redis prefix: for the end-to-end test and the mesh benchmark
(starting and stopping it is bench/environment.py's)."""

from __future__ import annotations

import os
import uuid

from bench.environment import start_system, stop_system
from bench.service_settings import spool_dir
from localnet.node_harness import free_port
from localnet.svm import ROOT

__all__ = ["start_system", "stop_system", "system_env"]


def system_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": database_url, "REDIS_URL": redis_url,
           "REDIS_PREFIX": f"cvtest:{uuid.uuid4().hex[:12]}:", "LOG_LEVEL": "WARNING",
           "AUDIT_SPOOL_DIR": spool_dir(), **extra}
    for name in ("LOCALNET_RPC_PORT", "LOCALNET_WS_PORT", "GATEWAY_PORT"):
        env[name] = str(free_port())
    for service in ("VAULT_MANAGER", "BALANCE_TRACKER", "CPI_MANAGER", "MONITOR"):
        env[f"{service}_GRPC_PORT"], env[f"{service}_METRICS_PORT"] = str(free_port()), str(free_port())
    env["SOLANA_RPC_URL"] = f"http://127.0.0.1:{env['LOCALNET_RPC_PORT']}"
    for service in ("VAULT_MANAGER", "CPI_MANAGER", "MONITOR", "BALANCE_TRACKER"):
        env[f"{service}_ADDR"] = f"127.0.0.1:{env[f'{service}_GRPC_PORT']}"
    return env
