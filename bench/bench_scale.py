"""The system at N vaults (issue 25 item 7), as `make up` runs it, measured through the public
gRPC API (so it holds whichever way a service answers):

1. population: N vaults opened and funded by real signed transactions, several vaults per
   transaction, straight to localnet (bench/populate.py); then until the indexer has every
   vault row;
2. alone: ALONE_WALKS full ListVaults walks (pages of 500: the slowest walk's time and
   every page's latency), GetTvl and GetVault latency (LATENCY_CALLS calls each, one at a
   time), one reconciliation;
3. under load: for at least LOAD_SECONDS and until RECONCILIATIONS reconciliation runs
   (BalanceTracker Reconcile, one after the other; the slowest one's time is reported) have
   finished, at the same time: ListVaults walks in a loop, GetTvl in a loop, GetVault
   at GET_VAULT_RATE calls a second on a fixed schedule (random vaults; each call timed from
   when it was due, so a stall counts for every call it delays) and deposit callers
   (owner-signed deposits through SubmitTransaction, waited for at `processed`); GetVault
   and GetTvl are called and timed
   from a process that does nothing else (bench/scale_readers.py), so the load generator's
   own loop (pages to parse, deposits to sign) adds nothing to their latencies; a control
   probe calls a lone GetVault server (from memory, no other work) on the same schedule, so
   the report tells what the loaded machine does to any such server apart from what
   vault_manager adds; GetVault,
   GetTvl and deposit p50/p99, the reconciliation's time, vaults checked, findings
   (mismatches reported under deposit load) and unverified differences are reported, and
   per process the CPU it used and the time it waited for a core (bench/cpu_shares.py);
4. the balance-snapshot pass (balance_tracker's `snapshots.take` on the database, timed by
   its entry point services/balance_tracker/perf_snapshots.py): time and rows written;
5. catching up: a second balance_tracker (its own empty database) indexes the chain's whole
   history from nothing; its events per second, from its first stored event to its last
   (and the CPU it used per event over them), against the node's serve rate for the same
   transactions: getTransaction for each of them from this process, one request per call,
   8 in flight (the indexer's backfill before issue 25 item 6; it now sends JSON-RPC
   batches), the answers read but not parsed; in the `json` encoding (`indexer_over_node`,
   comparable with the results before item 6) and in `base64`, the one the indexer now asks
   for, which localnet serves faster (`indexer_over_node_base64`); and what an event cost
   each process over the catch-up (`cpu_us_per_event`: the indexer, localnet, PostgreSQL,
   Redis; `balance_tracker` sums both trackers, the first one idle); no rate with fewer
   than MIN_RATE_EVENTS events after the first batch.

The machine runs the load generator, localnet, the five services, PostgreSQL and Redis on
its cores: the numbers describe this machine, not a cluster. `python -m bench.bench_scale
--vaults N` writes bench/results/scale-<N>.json; `make bench` runs DEFAULT_VAULTS."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import grpc
from collateral_vault.v1 import (
    balance_tracker_pb2,
    balance_tracker_pb2_grpc,
    common_pb2,
    transaction_builder_pb2,
    transaction_builder_pb2_grpc,
    vault_manager_pb2,
    vault_manager_pb2_grpc,
    vault_monitor_pb2,
    vault_monitor_pb2_grpc,
)
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from bench import cpu_shares, get_vault_server, probes, scale_report, service_metrics
from bench.environment import (
    ROOT,
    drop_redis_prefix,
    redis_url,
    start_system,
    stop_system,
    temporary_database,
    unused_port,
)
from bench.populate import Population, populate
from bench.scale_readers import GET_VAULT_RATE, Readers
from localnet.genesis import dev_keypair
from vault_client import event_loop
from vault_client.http_client import HttpClient
from vault_client.readings import pct
from vault_client.vault_program import VaultProgram

DEFAULT_VAULTS = 2_000
PAGE_SIZE = 500
LATENCY_CALLS = 3_000  # GetTvl and GetVault calls alone, each: a p99 of 300 was decided by 3 calls
ALONE_WALKS = 3  # full ListVaults walks alone: the pages of all three give the page p99
LOAD_SECONDS = 30.0
RECONCILIATIONS = 3  # reconciliation runs during the load, one after the other
LOAD_CAP_SECONDS = 900.0
# GetVault under load: calls on a schedule (open loop). Two callers each calling as soon as
# the previous call answered (the method until 2026-12-06) made the probe itself one of the
# loads, 560-700 calls a second (about a third of a core in the probe and as much in
# vault_manager), and timed only the calls it managed to send. The rate: GET_VAULT_RATE
# (bench/scale_readers.py).
# The control (under_load.get_vault_control): GetVault at the same rate from a lone server
# answering one owner from memory (services/vault_manager/perf_get_vault_server.py), with no
# other work, timed the same way. Its tail is what the loaded machine does to any such server.
CONTROL = "get_vault_control"
DEPOSIT_CALLERS = 4
DEPOSITOR_LAMPORTS = 1_000_000_000  # 1 SOL to each depositing owner before the load: fees for 200,000 deposits
GENESIS_VAULTS = 2  # the exchange's fee and insurance-fund vaults
BACKFILL_IN_FLIGHT = 8  # the node's serve rate: getTransaction one per call, this many in flight
# A catch-up rate needs this many events after the indexer's first committed batch (its
# batches are 2,000 transactions' worth at most): over fewer it times the tail of one batch
MIN_RATE_EVENTS = 10_000
RESULTS = Path(__file__).resolve().parent / "results"


def _env(database_url: str) -> dict[str, str]:
    spool = tempfile.mkdtemp(prefix="cvbench-spool-")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": database_url, "REDIS_URL": redis_url(),
           "REDIS_PREFIX": f"cvbench:{uuid.uuid4().hex[:12]}:", "LOG_LEVEL": "WARNING", "AUDIT_SPOOL_DIR": spool,
           "UP_SECURITY": "off", "SNAPSHOT_INTERVAL_SECONDS": "86400", "RECONCILE_INTERVAL_SECONDS": "86400"}
    for name in ("LOCALNET_RPC_PORT", "LOCALNET_WS_PORT", "GATEWAY_PORT"):
        env[name] = str(unused_port())
    for service in ("VAULT_MANAGER", "BALANCE_TRACKER", "CPI_MANAGER", "MONITOR"):
        env[f"{service}_GRPC_PORT"], env[f"{service}_METRICS_PORT"] = str(unused_port()), str(unused_port())
        env[f"{service}_ADDR"] = f"127.0.0.1:{env[f'{service}_GRPC_PORT']}"
    env["SOLANA_RPC_URL"] = f"http://127.0.0.1:{env['LOCALNET_RPC_PORT']}"
    env["SOLANA_WS_URL"] = f"ws://127.0.0.1:{env['LOCALNET_WS_PORT']}"
    return env


def _ms(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"calls": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    return {"calls": len(values), "p50_ms": pct(values, 0.5), "p99_ms": pct(values, 0.99),
            "max_ms": round(max(values) * 1000, 2) if values else 0.0}


def _lag(lags: list[float]) -> dict[str, Any]:
    return {"looks": len(lags), "later_than_0.05_s": sum(1 for t in lags if t > 0.05),
            "max_ms": round(max(lags) * 1e3, 1) if lags else None}


async def _until(check: Callable[[], Awaitable[bool]], seconds: float, what: str) -> float:
    started = time.perf_counter()
    while not await check():
        if time.perf_counter() - started > seconds:
            raise RuntimeError(f"{what} did not happen within {seconds:.0f} s")
        await asyncio.sleep(0.2)
    return time.perf_counter() - started


async def _count(database_url: str, query: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval(query))
    finally:
        await conn.close()


async def list_walk(stub: vault_manager_pb2_grpc.VaultManagerStub, pages: list[float] | None = None
                    ) -> dict[str, Any]:
    """Every page of ListVaults, one after the other (each page's latency into `pages`)."""
    pages = [] if pages is None else pages
    seen, token = 0, ""
    started = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        page = await stub.ListVaults(vault_manager_pb2.ListVaultsRequest(page_size=PAGE_SIZE, page_token=token),
                                     timeout=600)
        pages.append(time.perf_counter() - t0)
        seen += len(page.vaults)
        token = page.next_page_token
        if not token:
            break
    return {"seconds": round(time.perf_counter() - started, 3), "vaults": seen, "page": _ms(pages)}


async def walks_alone(stub: vault_manager_pb2_grpc.VaultManagerStub) -> dict[str, Any]:
    """ALONE_WALKS full walks one after the other: the slowest walk's time, each walk's, and
    the latency of every page of all of them."""
    pages: list[float] = []
    walks = [await list_walk(stub, pages) for _ in range(ALONE_WALKS)]
    return {"seconds": max(w["seconds"] for w in walks), "walks_seconds": [w["seconds"] for w in walks],
            "vaults": walks[-1]["vaults"], "page": _ms(pages)}


async def _timed(call: Callable[[], Awaitable[Any]], count: int) -> list[float]:
    out = []
    for _ in range(count):
        t0 = time.perf_counter()
        await call()
        out.append(time.perf_counter() - t0)
    return out


class _Deposits:
    """Owner-signed deposits (one owner per caller, each owner's in order, distinct amounts),
    signed just before they are sent, with a blockhash renewed every few seconds."""

    def __init__(self, client: AsyncClient, program: VaultProgram, population: Population) -> None:
        self.client = client
        self.program = program
        self.population = population
        self._blockhash: tuple[Any, float] | None = None

    async def signed(self, caller: int, n: int) -> str:
        if self._blockhash is None or time.monotonic() - self._blockhash[1] > 5.0:
            self._blockhash = ((await self.client.get_latest_blockhash(Confirmed)).value.blockhash, time.monotonic())
        owner = self.population.owners[caller]
        account = self.population.token_account(owner, self.program)
        message = Message.new_with_blockhash([self.program.deposit(owner.pubkey(), account, 1 + n)], owner.pubkey(),
                                             self._blockhash[0])
        return base64.b64encode(bytes(VersionedTransaction(message, [owner]))).decode()


async def _fund(client: AsyncClient, payers: list[Any], lamports: int = DEPOSITOR_LAMPORTS) -> None:
    """An airdrop to each depositing owner, confirmed: a population owner's 0.01 SOL pays for
    about a thousand deposits' fees, fewer than a long load phase makes at 100,000 vaults."""
    signatures = [(await client.request_airdrop(payer, lamports)).value for payer in payers]
    for signature in signatures:
        await client.confirm_transaction(signature, Confirmed, sleep_seconds=0.1)


async def under_load(env: dict[str, str], program: VaultProgram, population: Population, walk: bool = True
                     ) -> dict[str, Any]:
    async with grpc.aio.insecure_channel(env["VAULT_MANAGER_ADDR"]) as vm, \
            grpc.aio.insecure_channel(env["BALANCE_TRACKER_ADDR"]) as bt, \
            AsyncClient(env["SOLANA_RPC_URL"], commitment=Confirmed) as client:
        manager = vault_manager_pb2_grpc.VaultManagerStub(vm)
        tracker = balance_tracker_pb2_grpc.BalanceTrackerStub(bt)
        builder = transaction_builder_pb2_grpc.TransactionBuilderStub(vm)
        done = asyncio.Event()
        latencies: dict[str, list[float]] = {"get_vault": [], "get_tvl": [], "deposit": [], "list_page": []}
        walks: list[float] = []
        owners = [str(k.pubkey()) for k in population.owners]

        async def walker() -> None:
            while not done.is_set():
                walk = await list_walk(manager, latencies["list_page"])
                walks.append(walk["seconds"])

        async def depositor(caller: int) -> None:
            n = 0
            while not done.is_set():
                tx = await deposits.signed(caller, n)
                n += 1
                t0 = time.perf_counter()
                reply = await builder.SubmitTransaction(transaction_builder_pb2.SubmitTransactionRequest(
                    signed_transaction_base64=tx, wait_for=common_pb2.COMMITMENT_PROCESSED), timeout=60)
                if reply.status.error:
                    raise RuntimeError(f"a deposit failed: {reply.status.error}")
                latencies["deposit"].append(time.perf_counter() - t0)

        deposits = _Deposits(client, program, population)
        await _fund(client, [k.pubkey() for k in population.owners[:DEPOSIT_CALLERS]])
        # GetVault and GetTvl, each called and measured from a process that does only that; and
        # the control: GetVault on the same schedule from a lone server answering from memory
        control_owner, control_port = Pubkey.new_unique(), unused_port()
        control = await get_vault_server.spawn(control_port, control_owner)
        readers = {"get_vault": Readers("get_vault", env["VAULT_MANAGER_ADDR"], env["MONITOR_ADDR"], owners,
                                        rate=GET_VAULT_RATE),
                   "get_tvl": Readers("get_tvl", env["VAULT_MANAGER_ADDR"], env["MONITOR_ADDR"], owners),
                   CONTROL: Readers("get_vault", f"127.0.0.1:{control_port}", env["MONITOR_ADDR"],
                                    [str(control_owner)], rate=GET_VAULT_RATE)}
        try:
            for each in readers.values():
                await each.start()
        except BaseException:
            for each in readers.values():
                await each.close()
            probes.stop(control)
            raise
        started = time.perf_counter()
        usage = cpu_shares.reading(os.getpid())
        tasks = [*([asyncio.create_task(walker())] if walk else []),
                 *(asyncio.create_task(depositor(i)) for i in range(min(DEPOSIT_CALLERS, len(owners))))]
        try:
            await asyncio.sleep(1.0)  # every load is going before the reconciliation starts
            runs = []
            for _ in range(RECONCILIATIONS):  # back to back: the load lasts long enough for a stable p99
                t0 = time.perf_counter()
                run = await tracker.Reconcile(balance_tracker_pb2.ReconcileRequest(), timeout=LOAD_CAP_SECONDS)
                runs.append((time.perf_counter() - t0, run))
            remaining = LOAD_SECONDS - (time.perf_counter() - started)
            await asyncio.wait_for(_wait_walk(walks if walk else [0.0], tasks, remaining), LOAD_CAP_SECONDS)
        finally:
            done.set()
            cpu = cpu_shares.diff(usage, cpu_shares.reading(os.getpid()), time.perf_counter() - started)
            try:
                stopped = await asyncio.gather(*(each.stop() for each in readers.values()), return_exceptions=True)
                for name, result in zip(readers, stopped, strict=True):
                    if isinstance(result, BaseException):
                        raise result
                    if name == CONTROL:  # its calls are GetVault's too: kept apart under its own name
                        result = {key.replace("get_vault", CONTROL, 1): value for key, value in result.items()}
                    latencies.update(result)
            finally:
                probes.stop(control)
                await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        return {"seconds": round(time.perf_counter() - started, 2),
                "get_vault": _ms(latencies["get_vault"]), "get_tvl": _ms(latencies["get_tvl"]),
                # the same schedule against a lone server answering from memory: what the
                # machine under this load gives any such server, apart from vault_manager
                CONTROL: _ms(latencies.get(CONTROL, [])),
                # how late each probe's own event loop woke a look every 10 ms: a stall there
                # delays the calls it times without the service having been slow
                "probe_loop_lag": {name: _lag(latencies.get(f"{name}_probe_lag", []))
                                   for name in ("get_vault", "get_tvl", CONTROL)},
                "deposit": _ms(latencies["deposit"]), "list_page": _ms(latencies["list_page"]),
                "list_walks": {"completed": len(walks), "median_seconds": round(statistics.median(walks), 3)
                               if walks else None, "max_seconds": round(max(walks), 3) if walks else None},
                # the slowest run's time; findings of all runs
                "reconciliation": {"seconds": round(max(t for t, _ in runs), 2),
                                   "runs_seconds": [round(t, 2) for t, _ in runs],
                                   "vaults_checked": min(r.vaults_checked for _, r in runs),
                                   "mismatches": sum(len(r.findings) for _, r in runs),
                                   "findings": sorted({f.field for _, r in runs for f in r.findings})},
                "cpu": cpu}


async def _wait_walk(walks: list[float], tasks: list[asyncio.Task[None]], remaining: float) -> None:
    """At least the load's time, and one ListVaults walk completed."""
    await asyncio.sleep(max(0.0, remaining))
    while not walks and not any(t.done() for t in tasks):
        await asyncio.sleep(0.2)


async def snapshot_pass(database_url: str) -> dict[str, Any]:
    """One balance-snapshot pass over the system's database, timed by balance_tracker's own
    entry point (services/balance_tracker/perf_snapshots.py) in a process of its own."""
    return await probes.probe("services.balance_tracker.perf_snapshots", database_url, "--pass")


async def node_serve_rate(rpc_url: str, signatures: list[str], encoding: str = "json") -> dict[str, Any]:
    """getTransaction for each signature in `encoding`, one per call, BACKFILL_IN_FLIGHT at a
    time (answers read, not parsed)."""
    http = HttpClient(rpc_url, timeout=60)
    queue = list(reversed(signatures))

    async def worker() -> None:
        while queue:
            signature = queue.pop()
            body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "getTransaction", "params": [
                signature, {"encoding": encoding, "maxSupportedTransactionVersion": 0, "commitment": "confirmed"}]})
            response = await http.post(body.encode())
            if response.status != 200 or b'"result":null' in response.body:
                raise RuntimeError(f"getTransaction {signature}: {response.body[:200]!r}")

    t0 = time.perf_counter()
    try:
        await asyncio.gather(*(worker() for _ in range(BACKFILL_IN_FLIGHT)))
    finally:
        await http.close()
    seconds = time.perf_counter() - t0
    return {"transactions": len(signatures), "seconds": round(seconds, 2),
            "transactions_per_second": round(len(signatures) / seconds, 1)}


async def catch_up(env: dict[str, str], database_url: str) -> dict[str, Any]:
    """A second balance_tracker indexing the whole history from nothing, against the node."""
    events = await _settled_count(database_url)
    conn = await asyncpg.connect(database_url)
    try:
        signatures = [r["signature"] for r in await conn.fetch("SELECT DISTINCT signature FROM transactions")]
    finally:
        await conn.close()
    serve = await node_serve_rate(env["SOLANA_RPC_URL"], signatures)
    serve_base64 = await node_serve_rate(env["SOLANA_RPC_URL"], signatures, "base64")
    async with temporary_database("cvbench") as fresh:
        other = {**env, "DATABASE_URL": fresh, "REDIS_PREFIX": f"cvbench:{uuid.uuid4().hex[:12]}:",
                 "BALANCE_TRACKER_GRPC_PORT": str(unused_port()), "BALANCE_TRACKER_METRICS_PORT": str(unused_port())}
        process = subprocess.Popen([sys.executable, "-m", "services.balance_tracker"], cwd=ROOT, env=other,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            count = "SELECT count(*) FROM transactions"
            first = 0.0

            async def started() -> bool:
                try:
                    return await _count(fresh, count) > 0
                except (OSError, asyncpg.PostgresError):
                    return False  # its tables are not made yet

            await _until(started, 120, "the second indexer's first event")
            first = time.perf_counter()
            first_cpu = _cpu_seconds(process.pid)
            usage = cpu_shares.reading(os.getpid())
            start_count = await _count(fresh, count)

            async def finished() -> bool:
                return await _count(fresh, count) >= events

            await _until(finished, LOAD_CAP_SECONDS, "the second indexer's catch-up")
            seconds = time.perf_counter() - first
            cpu = _cpu_seconds(process.pid) - first_cpu
            shares = cpu_shares.diff(usage, cpu_shares.reading(os.getpid()), seconds)
        finally:
            process.terminate()
            process.wait(30)
            await drop_redis_prefix(other["REDIS_URL"], other["REDIS_PREFIX"])
    per_tx = events / max(1, len(signatures))
    node_events = serve["transactions_per_second"] * per_tx
    node_events_base64 = serve_base64["transactions_per_second"] * per_tx
    # from its first committed batch to its last: a history of a few batches gives no rate
    rate = (events - start_count) / seconds if seconds and events - start_count >= MIN_RATE_EVENTS else None
    return {"events": events, "events_after_first_batch": events - start_count,
            "indexer_events_per_second": round(rate, 1) if rate else None,
            # the CPU it spent over the same events: what the rate costs, whatever else ran
            "indexer_cpu_us_per_event": round(cpu / (events - start_count) * 1e6, 1) if rate else None,
            "node_get_transaction": serve, "node_events_per_second": round(node_events, 1),
            "indexer_over_node": round(rate / node_events, 2) if rate and node_events else None,
            "node_get_transaction_base64": serve_base64, "node_events_per_second_base64": round(node_events_base64, 1),
            "indexer_over_node_base64": round(rate / node_events_base64, 2) if rate and node_events_base64 else None,
            # every process's CPU per event over the same events (the first balance_tracker
            # and the other services idle): what an event costs the node and PostgreSQL too
            "cpu_us_per_event": {name: round(p["cpu_s"] / (events - start_count) * 1e6, 1)
                                 for name, p in shares["processes"].items() if p["cpu_s"] >= 0.01} if rate else None,
            "cores_busy_share": shares["busy_share"]}


def _cpu_seconds(pid: int) -> float:
    """The CPU time (user + system) process `pid` has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _settled_count(database_url: str) -> int:
    """The event count once the running indexer has written everything (unchanged for 2 s)."""
    last = -1
    while True:
        now = await _count(database_url, "SELECT count(*) FROM transactions")
        if now == last:
            return now
        last = now
        await asyncio.sleep(2.0)


async def measure(database_url: str, vaults: int, walk: bool = True) -> dict[str, Any]:
    """Every measure at `vaults`; without `walk`, no ListVaults walk (alone or under load)."""
    env = _env(database_url)
    up, _ = start_system(env)
    try:
        program = VaultProgram(dev_keypair("usdt_mint").pubkey())
        population = await populate(env["SOLANA_RPC_URL"], vaults, program)
        rows = "SELECT count(*) FROM vaults WHERE closed_at IS NULL AND total_balance > 0"
        indexed = await _until(lambda: _has(database_url, rows, vaults), LOAD_CAP_SECONDS, "indexing the vaults")
        async with grpc.aio.insecure_channel(env["VAULT_MANAGER_ADDR"]) as vm, \
                grpc.aio.insecure_channel(env["MONITOR_ADDR"]) as mon:
            manager = vault_manager_pb2_grpc.VaultManagerStub(vm)
            monitor = vault_monitor_pb2_grpc.VaultMonitorStub(mon)
            walked = await walks_alone(manager) if walk else None
            tvl = await _timed(lambda: monitor.GetTvl(vault_monitor_pb2.GetTvlRequest(), timeout=600),
                               LATENCY_CALLS)
            owner = str(population.owners[0].pubkey())
            get_vault = await _timed(lambda: manager.GetVault(vault_manager_pb2.GetVaultRequest(owner=owner),
                                                              timeout=60), LATENCY_CALLS)
        metrics_before = await service_metrics.read(env["VAULT_MANAGER_METRICS_PORT"])
        loaded = await under_load(env, program, population, walk)
        loaded["vault_manager"] = service_metrics.diff(
            metrics_before, await service_metrics.read(env["VAULT_MANAGER_METRICS_PORT"]))
        async with grpc.aio.insecure_channel(env["BALANCE_TRACKER_ADDR"]) as bt:
            t0 = time.perf_counter()
            alone = await balance_tracker_pb2_grpc.BalanceTrackerStub(bt).Reconcile(
                balance_tracker_pb2.ReconcileRequest(), timeout=LOAD_CAP_SECONDS)
            reconciliation = {"seconds": round(time.perf_counter() - t0, 2), "vaults_checked": alone.vaults_checked,
                              "mismatches": len(alone.findings)}
        snapshot = await snapshot_pass(database_url)
        caught_up = await catch_up(env, database_url)
    finally:
        stop_system(up)
        await drop_redis_prefix(env["REDIS_URL"], env["REDIS_PREFIX"])
    return {"vaults": vaults, "population": {**population.report(), "indexed_after_seconds": round(indexed, 2)},
            "alone": {"list_walk": walked, "get_tvl": _ms(tvl), "get_vault": _ms(get_vault),
                      "reconciliation": reconciliation},
            "under_load": loaded, "snapshot_pass": snapshot, "catch_up": caught_up,
            "note": ("through the public gRPC API of the system as make up runs it (plaintext); load generator, "
                     "localnet, services, PostgreSQL and Redis share the machine's cores")}


async def _has(database_url: str, query: str, at_least: int) -> bool:
    return await _count(database_url, query) >= at_least


def run_at(vaults: int, walk: bool = True) -> dict[str, Any]:
    """The measurement at `vaults`, also written to bench/results/scale-<vaults>.json."""
    async def main() -> dict[str, Any]:
        async with temporary_database("cvbench") as db:
            return await measure(db, vaults, walk)

    result = event_loop.run(main())
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"scale-{vaults}.json").write_text(json.dumps(result, indent=2) + "\n")
    scale_report.update_readme()
    return result


def run() -> dict[str, Any]:
    return run_at(DEFAULT_VAULTS)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--vaults", type=int, default=DEFAULT_VAULTS, help="vaults to populate (default %(default)s)")
    parser.add_argument("--no-list-walk", action="store_true",
                        help="no ListVaults walk (for sizes where one walk would take too long)")
    args = parser.parse_args(argv)
    if args.vaults < DEPOSIT_CALLERS:
        parser.error(f"--vaults must be at least {DEPOSIT_CALLERS}")
    os.environ.setdefault("CV_PROFILE", "development")
    print(json.dumps(run_at(args.vaults, not args.no_list_walk), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
