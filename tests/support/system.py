"""The whole system started as `make up` starts it (scripts/up.py), on private ports, a
given database and a private Redis prefix: for the end-to-end test and the mesh benchmark."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

from localnet.svm import ROOT
from tests.support.localnet_node import free_port
from tests.support.services import spool_dir


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


def start_system(env: dict[str, str], seconds: float = 120) -> tuple[subprocess.Popen[str], list[str]]:
    """Starts scripts/up.py and waits for its banner; returns the process and the banner."""
    up = subprocess.Popen([sys.executable, "-m", "scripts.up"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    assert up.stdout is not None
    banner: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = up.stdout.readline()
        banner.append(line)
        if "Try:" in line or up.poll() is not None or not line:
            break
    if not any("is up" in line for line in banner):
        up.kill()
        raise RuntimeError("the system did not start:\n" + "".join(banner))
    return up, banner


def stop_system(up: subprocess.Popen[str]) -> str:
    """Stops scripts/up.py as Ctrl-C does; returns what it printed since."""
    up.send_signal(signal.SIGINT)
    output, _ = up.communicate(timeout=60)
    return output
