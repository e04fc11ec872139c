"""`make up`: the whole system on embedded defaults, on one machine.

Starts localnet (programs deployed at genesis; its ledger in a directory of this run, so a
restarted localnet continues the same chain), then the five services, each as its own
process, waits until each reports healthy, prints the endpoints, restarts any process that
exits (with backoff, saying so) and stops everything cleanly on Ctrl-C / SIGTERM.

Security is on: a development CA and credentials are made under `.local/pki/` (kept across
runs): the services serve gRPC over TLS and require a bearer token for the RPCs that change
state (services/common/auth.py); the gateway serves HTTPS and reaches them with its own
token; `vaultctl` finds its token there; `matching-engine.token` is the operator's.

The exchange's operator key (what cpi_manager signs Lock/Release/Settle/Liquidate with) is
`.local/operator-keypair.json`, made once, readable by its owner only: localnet's genesis
makes its public key the exchange's operator (LOCALNET_OPERATOR), cpi_manager signs with it
(OPERATOR_KEY_FILE), and it gets SOL for its transactions' fees.
`UP_SECURITY=off` runs everything in plaintext without authentication (the mesh benchmark).

PostgreSQL and Redis come from DATABASE_URL / REDIS_URL (set by scripts/devservices.py);
when DATABASE_URL names the server's default `postgres` database, a `collateral_vault`
database is created and used instead. Every localnet run is a new chain: a database or a
Redis prefix bound to an earlier development chain is reset first (services/common/cluster.py
would refuse it); one bound to a production chain is never touched.

Every port can be overridden: LOCALNET_RPC_PORT, LOCALNET_WS_PORT, <SERVICE>_GRPC_PORT,
<SERVICE>_METRICS_PORT, GATEWAY_PORT. Logs go to .local/logs/<name>.log.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
import grpc
import redis.asyncio as aioredis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.pubkey import Pubkey

from scripts.dev_pki import DevPki, Principal
from services.common.cluster import IDENTITY_KEY
from services.cpi_manager.signer import KeyFileSigner
from vault_client import event_loop, grpc_tls, redact
from vault_client.config import (
    APPLICATION_DATABASE,
    DEFAULT_AUDIT_SPOOL_DIR,
    DEFAULT_DATABASE_URL,
    DEFAULT_REDIS_PREFIX,
    DEFAULT_REDIS_URL,
    GATEWAY_PORT,
    SERVICE_PORTS,
    ClientSecurity,
    application_database_url,
)
from vault_client.keyfile import write_key_file

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / ".local"
LOGS = LOCAL / "logs"
PKI = LOCAL / "pki"
OPERATOR_KEY = LOCAL / "operator-keypair.json"
SERVICES = [(name, grpc_port, metrics_port) for name, (grpc_port, metrics_port) in SERVICE_PORTS.items()]
RESTART_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)  # a process that keeps dying is restarted less often
STABLE_SECONDS = 60.0  # up this long: its next death starts the delays afresh


def port(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def secured() -> bool:
    return os.environ.get("UP_SECURITY", "on").strip().lower() not in ("off", "0", "false", "no")


@dataclass
class Child:
    name: str
    module: str
    env: dict[str, str]
    ready: Callable[[Child], Awaitable[None]]
    process: subprocess.Popen[bytes] | None = None
    log: Path = LOGS
    restarts: int = 0
    started: float = 0.0
    restart_at: float | None = None

    def spawn(self) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log = LOGS / f"{self.name}.log"
        with self.log.open("ab") as out:
            self.process = subprocess.Popen([sys.executable, "-m", self.module], cwd=ROOT, env=self.env,
                                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.started = time.monotonic()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def exited(self) -> int | None:
        return self.process.poll() if self.process is not None else None


async def database_url() -> str:
    url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    target = application_database_url(url)
    if target != url:
        conn = await asyncpg.connect(url)
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", APPLICATION_DATABASE):
                await conn.execute(f'CREATE DATABASE "{APPLICATION_DATABASE}"')
        finally:
            await conn.close()
    return target


def credentials() -> tuple[dict[str, str], dict[str, str]]:
    """(the services' security settings, the gateway's) with the development CA."""
    pki = DevPki(PKI)
    cert, key = pki.server("services", hosts=("localhost", "127.0.0.1"))
    tokens = {name: pki.token(name) for name in ("gateway", "vaultctl", "matching-engine")}
    auth = pki.principals("auth.toml", [
        Principal("gateway", ["submitter"], token=tokens["gateway"]),
        Principal("vaultctl", ["submitter", "operator", "admin"], token=tokens["vaultctl"]),
        Principal("matching-engine", ["operator", "submitter"], token=tokens["matching-engine"])])
    services = {"GRPC_TLS_CERT": str(cert), "GRPC_TLS_KEY": str(key), "GRPC_AUTH_FILE": str(auth)}
    gateway = {"GRPC_CA_FILE": str(pki.ca_cert), "GRPC_TOKEN_FILE": str(tokens["gateway"]),
               "GATEWAY_TLS_CERT": str(cert), "GATEWAY_TLS_KEY": str(key)}
    return services, gateway


def operator_key() -> str:
    """The exchange operator's public key, its key file made on first use (mode 0600)."""
    if not OPERATOR_KEY.exists():
        write_key_file(OPERATOR_KEY)
    return str(KeyFileSigner(str(OPERATOR_KEY)).public_key)


def environment(db: str, ledger: Path) -> dict[str, str]:
    rpc, ws = port("LOCALNET_RPC_PORT", 8899), port("LOCALNET_WS_PORT", 8900)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": db, "CV_PROFILE": "development",
           "LOCALNET_OPERATOR": operator_key(), "OPERATOR_KEY_FILE": str(OPERATOR_KEY),
           "REDIS_URL": os.environ.get("REDIS_URL", DEFAULT_REDIS_URL),
           "REDIS_PREFIX": os.environ.get("REDIS_PREFIX", DEFAULT_REDIS_PREFIX),
           "SOLANA_RPC_URL": f"http://127.0.0.1:{rpc}", "SOLANA_WS_URL": f"ws://127.0.0.1:{ws}",
           "LOCALNET_RPC_PORT": str(rpc), "LOCALNET_WS_PORT": str(ws), "LOCALNET_LEDGER": str(ledger)}
    for name, grpc_port, metrics_port in SERVICES:
        upper = name.upper()
        env[f"{upper}_GRPC_PORT"] = str(port(f"{upper}_GRPC_PORT", grpc_port))
        env[f"{upper}_METRICS_PORT"] = str(port(f"{upper}_METRICS_PORT", metrics_port))
        env[f"{upper}_ADDR"] = f"127.0.0.1:{env[f'{upper}_GRPC_PORT']}"
    env["GATEWAY_PORT"] = str(port("GATEWAY_PORT", GATEWAY_PORT))
    return env


async def wait_http(url: str, child: Child, seconds: float = 60, ca: str = "") -> None:
    context = ssl.create_default_context(cafile=ca) if ca else None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if child.exited() is not None:
            raise RuntimeError(f"{child.name} exited; see {child.log}")
        try:
            async with aiohttp.ClientSession() as session, session.get(url, ssl=context or True) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{child.name} did not become healthy at {url}; see {child.log}")


async def wait_grpc(address: str, child: Child, security: ClientSecurity, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    async with grpc_tls.channel(address, security) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if child.exited() is not None:
                raise RuntimeError(f"{child.name} exited with {child.exited()}; see {child.log}")
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{child.name} did not report SERVING at {address}; see {child.log}")


async def reset_for_chain(db: str, redis_url: str, prefix: str, genesis: str, spool: Path) -> list[str]:
    """Resets the database and the Redis prefix when they hold an earlier development chain's
    state; returns what was reset. A production binding is refused, never reset. With the
    database reset, audit entries the earlier chain's processes left in the spool (PostgreSQL
    was down when they stopped) are set aside, kept for inspection: delivered, they would
    record that chain's transactions in the new chain's database."""
    done: list[str] = []
    conn = await asyncpg.connect(db)
    try:
        bound = None
        if await conn.fetchval("SELECT to_regclass('public.chain_binding') IS NOT NULL"):
            bound = await conn.fetchrow("SELECT genesis_hash, profile FROM chain_binding")
        if bound is not None and bound["profile"] != "development":
            raise RuntimeError(f"the database {redact.url(db, keep_path=True)} is bound to a {bound['profile']} "
                               "chain: make up will not reset it; point DATABASE_URL elsewhere")
        stale = bound is not None and bound["genesis_hash"] != genesis
        if bound is None and await conn.fetchval("SELECT to_regclass('public.vaults') IS NOT NULL"):
            stale = bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM vaults) OR EXISTS "
                                             "(SELECT 1 FROM transactions)"))  # from before chain bindings
        if stale:
            await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
            done.append(f"database {redact.url(db, keep_path=True)}")
            if spool.is_dir() and any(spool.iterdir()):
                aside = spool.with_name(f"{spool.name}.earlier-chain-{int(time.time())}")
                spool.rename(aside)
                done.append(f"audit spool (its entries set aside in {aside})")
    finally:
        await conn.close()
    redis = aioredis.from_url(redis_url)
    try:
        identity = await redis.get(prefix + IDENTITY_KEY)
        data = json.loads(identity) if identity else None
        if data is not None and data.get("profile") != "development":
            raise RuntimeError(f"the Redis prefix {prefix!r} is bound to a {data.get('profile')} chain: make up will "
                               "not reset it; set REDIS_PREFIX")
        pattern = "".join(f"\\{c}" if c in "*?[]\\" else c for c in prefix) + "*"
        keys = [key async for key in redis.scan_iter(match=pattern, count=1000)]
        if keys and (data is None or data.get("genesis_hash") != genesis):
            for start in range(0, len(keys), 1000):
                await redis.delete(*keys[start:start + 1000])
            done.append(f"Redis prefix {prefix!r} ({len(keys)} keys)")
    finally:
        await redis.aclose()
    return done


def stop(children: list[Child]) -> None:
    for child in reversed(children):
        if child.exited() is None and child.process is not None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in reversed(children):
        if child.process is None:
            continue
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.process.kill()


async def watch(children: list[Child], stopping: asyncio.Event) -> None:
    """Restarts any child that exits, with backoff, and says so."""
    back: set[asyncio.Task[None]] = set()

    async def healthy_again(child: Child) -> None:
        try:
            await child.ready(child)
            print(f"up: {child.name} is serving again (pid {child.pid})", flush=True)
        except RuntimeError as exc:
            print(f"up: {exc}", file=sys.stderr, flush=True)

    while not stopping.is_set():
        now = time.monotonic()
        for child in children:
            code = child.exited()
            if code is not None and child.restart_at is None:
                if now - child.started > STABLE_SECONDS:
                    child.restarts = 0
                delay = RESTART_DELAYS[min(child.restarts, len(RESTART_DELAYS) - 1)]
                child.restart_at = now + delay
                print(f"up: {child.name} (pid {child.pid}) exited with {code}; restarting it in {delay:g} s "
                      f"(see {child.log})", file=sys.stderr, flush=True)
            elif child.restart_at is not None and now >= child.restart_at:
                child.restart_at = None
                child.restarts += 1
                child.spawn()
                print(f"up: {child.name} restarted (pid {child.pid}, restart {child.restarts})", flush=True)
                task = asyncio.create_task(healthy_again(child))
                back.add(task)
                task.add_done_callback(back.discard)
        try:
            await asyncio.wait_for(stopping.wait(), 0.5)
        except TimeoutError:
            pass
    for task in back:
        task.cancel()


async def main() -> int:
    db = await database_url()
    LOCAL.mkdir(exist_ok=True)
    ledger = Path(tempfile.mkdtemp(prefix="localnet-ledger-", dir=LOCAL))  # this run's chain, kept over restarts
    env = environment(db, ledger)
    client = ClientSecurity(ca_file="", token_file="", cert="", key="")
    scheme = "http"
    if secured():
        services, gateway = credentials()
        env.update(services)
        gateway_env = {**env, **gateway}
        client = ClientSecurity(ca_file=gateway["GRPC_CA_FILE"], token_file="", cert="", key="")
        scheme = "https"
    else:
        gateway_env = dict(env)
    children: list[Child] = []
    stopping = event_loop.stop_requested()
    gateway_url = f"{scheme}://127.0.0.1:{env['GATEWAY_PORT']}"

    def grpc_ready(address: str) -> Callable[[Child], Awaitable[None]]:
        return lambda child: wait_grpc(address, child, client)

    try:
        localnet = Child("localnet", "localnet", env, lambda c: wait_http(f"{env['SOLANA_RPC_URL']}/health", c))
        children.append(localnet)
        localnet.spawn()
        await localnet.ready(localnet)
        async with AsyncClient(env["SOLANA_RPC_URL"]) as rpc:
            genesis = str((await rpc.get_genesis_hash()).value)
            funded = (await rpc.request_airdrop(Pubkey.from_string(env["LOCALNET_OPERATOR"]), 100 * 10**9)).value
            await rpc.confirm_transaction(funded, Confirmed)  # the operator pays its transactions' fees
        spool = Path(env.get("AUDIT_SPOOL_DIR") or DEFAULT_AUDIT_SPOOL_DIR)
        for what in await reset_for_chain(db, env["REDIS_URL"], env["REDIS_PREFIX"], genesis, spool):
            print(f"up: reset {what}: it held an earlier localnet's state", flush=True)
        for name, _, _ in SERVICES:
            child = Child(name, f"services.{name}", env, grpc_ready(env[f"{name.upper()}_ADDR"]))
            children.append(child)
            child.spawn()
            await child.ready(child)
        gateway_child = Child("gateway", "services.gateway", gateway_env,
                              lambda c: wait_http(f"{gateway_url}/healthz", c, ca=client.ca_file))
        children.append(gateway_child)
        gateway_child.spawn()
        await gateway_child.ready(gateway_child)
    except (RuntimeError, OSError) as exc:
        print(f"up: {exc}", file=sys.stderr)
        stop(children)
        shutil.rmtree(ledger, ignore_errors=True)
        return 1
    rows = [("Solana RPC (localnet)", env["SOLANA_RPC_URL"]), ("Solana PubSub", env["SOLANA_WS_URL"]),
            ("genesis hash", genesis)]
    for name, _, _ in SERVICES:
        upper = name.upper()
        rows.append((f"{name} gRPC / metrics", f"{env[f'{upper}_ADDR']}  http://127.0.0.1:"
                     f"{env[f'{upper}_METRICS_PORT']}/metrics"))
    rows += [("gateway (REST, WebSocket)", f"{gateway_url}  (/openapi.json, /ws)"),
             ("PostgreSQL", redact.url(db, keep_path=True)),
             ("Redis", f"{redact.url(env['REDIS_URL'], keep_path=True)}  prefix {env['REDIS_PREFIX']}"),
             ("logs", str(LOGS))]
    if secured():
        rows += [("security", f"gRPC over TLS, tokens for state-changing RPCs; CA {PKI / 'ca.crt'}"),
                 ("credentials", f"{PKI}/{{gateway,vaultctl,matching-engine}}.token")]
    else:
        rows.append(("security", "OFF (UP_SECURITY=off): plaintext, no authentication"))
    rows.append(("exchange operator", f"{env['LOCALNET_OPERATOR']} (key {OPERATOR_KEY}, signs cpi_manager's "
                                      "operator RPCs)"))
    rows.append(("processes", ", ".join(f"{c.name} {c.pid}" for c in children)
                 + "; one that exits is restarted (with backoff)"))
    width = max(len(name) for name, _ in rows)
    print("collateral-vault is up", flush=True)
    for name, where in rows:
        print(f"  {name.ljust(width)}  {where}", flush=True)
    print("Try: .venv/bin/vaultctl demo    (Ctrl-C stops everything)", flush=True)
    await watch(children, stopping)
    print("stopping...", flush=True)
    stop(children)
    shutil.rmtree(ledger, ignore_errors=True)
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
