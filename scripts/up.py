"""`make up`: the whole system on embedded defaults, on one machine.

Starts localnet (programs deployed at genesis), then the five services, each as its own
process, waits until each reports healthy, prints the endpoints, and stops everything
cleanly on Ctrl-C / SIGTERM. PostgreSQL and Redis come from DATABASE_URL / REDIS_URL (set
by scripts/devservices.py); when DATABASE_URL names the server's default `postgres`
database, a `collateral_vault` database is created and used instead.

Every port can be overridden: LOCALNET_RPC_PORT, LOCALNET_WS_PORT, <SERVICE>_GRPC_PORT,
<SERVICE>_METRICS_PORT, GATEWAY_PORT. Logs go to .local/logs/<name>.log.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common import event_loop
from services.common.config import APPLICATION_DATABASE, application_database_url

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / ".local" / "logs"
SERVICES = [("vault_manager", 50051, 9101), ("balance_tracker", 50052, 9102), ("cpi_manager", 50053, 9103),
            ("monitor", 50054, 9104)]


def port(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path


async def database_url() -> str:
    url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    target = application_database_url(url)
    if target != url:
        conn = await asyncpg.connect(url)
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", APPLICATION_DATABASE):
                await conn.execute(f'CREATE DATABASE "{APPLICATION_DATABASE}"')
        finally:
            await conn.close()
    return target


def environment(db: str) -> dict[str, str]:
    rpc, ws = port("LOCALNET_RPC_PORT", 8899), port("LOCALNET_WS_PORT", 8900)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": db,
           "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
           "SOLANA_RPC_URL": f"http://127.0.0.1:{rpc}", "SOLANA_WS_URL": f"ws://127.0.0.1:{ws}",
           "LOCALNET_RPC_PORT": str(rpc), "LOCALNET_WS_PORT": str(ws)}
    for name, grpc_port, metrics_port in SERVICES:
        upper = name.upper()
        env[f"{upper}_GRPC_PORT"] = str(port(f"{upper}_GRPC_PORT", grpc_port))
        env[f"{upper}_METRICS_PORT"] = str(port(f"{upper}_METRICS_PORT", metrics_port))
        env[f"{upper}_ADDR"] = f"127.0.0.1:{env[f'{upper}_GRPC_PORT']}"
    env["GATEWAY_PORT"] = str(port("GATEWAY_PORT", 8080))
    return env


def spawn(name: str, module: str, env: dict[str, str]) -> Child:
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, "-m", module], cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    return Child(name, process, log)


async def wait_http(url: str, child: Child, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise RuntimeError(f"{child.name} exited; see {child.log}")
        try:
            async with aiohttp.ClientSession() as session, session.get(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{child.name} did not become healthy at {url}; see {child.log}")


async def wait_grpc(address: str, child: Child, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if child.process.poll() is not None:
                raise RuntimeError(f"{child.name} exited; see {child.log}")
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{child.name} did not report SERVING at {address}; see {child.log}")


def stop(children: list[Child]) -> None:
    for child in reversed(children):
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in reversed(children):
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.process.kill()


async def main() -> int:
    db = await database_url()
    env = environment(db)
    children: list[Child] = []
    stopping = event_loop.stop_requested()
    try:
        children.append(spawn("localnet", "localnet", env))
        await wait_http(f"{env['SOLANA_RPC_URL']}/health", children[-1])
        for name, _, _ in SERVICES:
            children.append(spawn(name, f"services.{name}", env))
            await wait_grpc(env[f"{name.upper()}_ADDR"], children[-1])
        children.append(spawn("gateway", "services.gateway", env))
        await wait_http(f"http://127.0.0.1:{env['GATEWAY_PORT']}/healthz", children[-1])
    except (RuntimeError, OSError) as exc:
        print(f"up: {exc}", file=sys.stderr)
        stop(children)
        return 1
    rows = [("Solana RPC (localnet)", env["SOLANA_RPC_URL"]), ("Solana PubSub", env["SOLANA_WS_URL"])]
    for name, _, _ in SERVICES:
        upper = name.upper()
        rows.append((f"{name} gRPC / metrics", f"{env[f'{upper}_ADDR']}  http://127.0.0.1:"
                     f"{env[f'{upper}_METRICS_PORT']}/metrics"))
    rows += [("gateway (REST, WebSocket)", f"http://127.0.0.1:{env['GATEWAY_PORT']}  (/openapi.json, /ws)"),
             ("PostgreSQL", db), ("Redis", env["REDIS_URL"]), ("logs", str(LOGS))]
    width = max(len(name) for name, _ in rows)
    print("collateral-vault is up", flush=True)
    for name, where in rows:
        print(f"  {name.ljust(width)}  {where}", flush=True)
    print("Try: .venv/bin/vaultctl demo    (Ctrl-C stops everything)", flush=True)
    while not stopping.is_set():
        for child in children:
            if child.process.poll() is not None:
                print(f"up: {child.name} exited with {child.process.returncode}; see {child.log}", file=sys.stderr)
                stopping.set()
        try:
            await asyncio.wait_for(stopping.wait(), 1.0)
        except TimeoutError:
            pass
    print("stopping...", flush=True)
    stop(children)
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
