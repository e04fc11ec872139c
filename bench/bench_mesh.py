"""Mesh load, with the system in its own processes as `make up` runs it (loopback only,
bounded in count and time):

* GetVault at its highest rate, against a bare grpc.aio echo server (returns its request
  bytes; no interceptors, no work; on the same event loop as the services) measured in the
  same run. Each server is driven by 1, 2, 4, ... 32 concurrent calls (a bounded number of
  calls each; the servers interleaved level by level, in three passes, the median pass of
  each level counting); its highest rate is the best level, and its latency is taken where
  it first reaches 95 % of that rate (more callers past that point only queue: the rate
  stays, the latency grows by Little's law). Two load generators, both with one connection
  and N calls in flight: h2load (bench/h2load.py), a compiled HTTP/2 client that spends a
  few microseconds per call, so the rates are the servers'; and a Python grpc.aio client,
  which spends about as much CPU per call as the servers on the same two cores, so its
  numbers describe client and server together. Targets, on the h2load measurement:
  GetVault's highest rate >= 0.8 x echo's, GetVault's p99 there <= 10 ms. Every call must
  succeed: the echo's answers are its requests byte for byte, and vault_manager's own
  `grpc_server_requests_total{method="GetVault",code="OK"}` must count every call made.
  A control is measured in the same passes, by h2load, exactly as GetVault is: a second
  bare echo, whose ratio to the first (`control.ratio`, 1 if the measurement were exact)
  shows how far two identical servers read apart in that run.
* Deposits end to end: signed deposits submitted through TransactionBuilder's
  SubmitTransaction at 200/s (waiting for `processed`), indexed at `processed`, received on
  the gateway's WebSocket; three rounds of 1,000 per client. Two clients, interleaved round
  by round: bench/h2_unary.py (a minimal HTTP/2 gRPC client spending a fraction of
  grpc.aio's CPU per call, `load_generator_cpu_ms` shows how much; the deposits carry a
  different transaction each, which h2load cannot send) and grpc.aio's own client. Target,
  on the h2_unary rounds: p99 <= 100 ms from submit to WebSocket (the median round's p99;
  every round is reported), every deposit arriving and every submission answered
  `processed` without error; vault_manager's
  `grpc_server_requests_total{method="SubmitTransaction",code="OK"}` must count every call
  of both clients (the lean client decodes no gRPC status). The machines this runs on
  change speed from one second to the next and differ from each other (the same pure-Python
  loop has taken 0.13 to 0.81 s), so single rounds swing; `cpu_probe_s` records that loop's
  time before each phase.
  Each round also records, over its submissions, how many of the machine's cores were busy
  (`machine_cores_busy`, every process: the system, PostgreSQL, Redis, the load generator)
  and the load generator's own CPU per deposit (`load_generator_cpu_ms`).
  `gc_pauses_during_rounds` reads each gRPC service's `python_gc_pause_seconds` before and
  after the rounds, `cpu_ms_per_deposit` each process's CPU time over them (from /proc;
  `main_thread_share_of_cpu`, how much of it its main thread, the event loop's, used),
  and `store_cpu_ms_per_deposit` the same for every PostgreSQL and Redis server process on
  this machine. The load generator freezes its own heap before each phase and round
  (its collector's pauses would be counted as the system's latency).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import grpc
from collateral_vault.v1 import (
    common_pb2,
    transaction_builder_pb2,
    transaction_builder_pb2_grpc,
    vault_manager_pb2,
    vault_manager_pb2_grpc,
)
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair
from solders.message import Message
from solders.transaction import VersionedTransaction

from bench import echo_server, h2load
from bench.echo_server import METHOD
from bench.environment import redis_url
from bench.h2_unary import H2Unary
from bench.stats import machine_busy_seconds, processes_cpu_seconds
from bench.system_env import start_system, stop_system, system_env
from bench.system_run import on_temporary_database
from localnet.faucet import fund
from localnet.genesis import dev_keypair
from localnet.node_harness import free_port
from vault_client import spl_token
from vault_client.heap import freeze_startup_heap
from vault_client.readings import cpu_seconds as process_cpu_seconds
from vault_client.readings import pct
from vault_client.vault_program import VaultProgram

CALLS = 6_000
CONCURRENCY_LEVELS = (1, 2, 4, 8, 16, 32)
KNEE = 0.95
TARGET_RATIO = 0.8  # GetVault's highest rate over the echo's
TARGET_P99_MS = 10  # GetVault's p99 at its knee
DEPOSIT_TARGET_P99_MS = 100  # deposits' median-round p99, submit to WebSocket
GET_VAULT = "/collateral_vault.v1.VaultManager/GetVault"
SUBMIT = "/collateral_vault.v1.TransactionBuilder/SubmitTransaction"
# deposit submitters, the first judged: bench/h2_unary.py, and grpc.aio's client
SUBMITTERS = ("h2_unary", "grpc_aio")
# sends a request; reads its answer as a SubmitTransactionResponse
Submitter = tuple[Callable[[Any], Awaitable[Any]], Callable[[Any], Any]]
PASSES = 3
DEPOSITS = 1_000
DEPOSIT_ROUNDS = 3
DEPOSIT_RATE = 200.0
USERS = 20
# PostgreSQL's and Redis's processes on this machine, by command name (with DATABASE_URL or
# REDIS_URL on another host they read 0 here)
STORE_PROCESSES = {"postgres": "postgresql", "redis-server": "redis"}
TIME_CAP_S = 120
# A Python-driven level stops at its deadline with the calls made so far; h2load cannot stop
# early and still report, so its cap is a failure and is set well above a slow pass (6,000
# calls at 1 in flight took over 10 s once, the machine running at a quarter of its speed).
HAMMER_CAP_S = TIME_CAP_S / 12
H2LOAD_CAP_S = TIME_CAP_S / 3
USDT = 10**6



async def hammer(call: Any, concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []
    remaining = CALLS
    deadline = time.monotonic() + HAMMER_CAP_S

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0 and time.monotonic() < deadline:
            remaining -= 1
            t0 = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - t0)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {"concurrency": concurrency, "calls": len(latencies), "rps": round(len(latencies) / elapsed),
            "p50_ms": pct(latencies, 0.5), "p99_ms": pct(latencies, 0.99)}


async def get_vault_vs_echo(env: dict[str, str], owner: str) -> dict[str, Any]:
    """GetVault against the bare echo, each driven by h2load (the servers' rates: the
    targets) and by a Python grpc.aio client sharing the cores (what a Python caller on
    this machine sees), interleaved level by level in passes."""
    h2load.require()
    echo_port, control_port = free_port(), free_port()
    vault_port = int(env["VAULT_MANAGER_GRPC_PORT"])
    echoes = [await echo_server.spawn(echo_port, env=env)]
    request = vault_manager_pb2.GetVaultRequest(owner=owner)
    message = request.SerializeToString()
    try:
        echoes.append(await echo_server.spawn(control_port, env=env))
        async with grpc.aio.insecure_channel(f"127.0.0.1:{echo_port}") as echo_channel, \
                grpc.aio.insecure_channel(f"127.0.0.1:{vault_port}") as vault_channel:
            # Like any stub, the echo client serializes and parses messages (the GetVault
            # client does too); the server side is the bare echo.
            echo_call = echo_channel.unary_unary(
                METHOD, request_serializer=vault_manager_pb2.GetVaultRequest.SerializeToString,
                response_deserializer=vault_manager_pb2.GetVaultRequest.FromString)
            stub = vault_manager_pb2_grpc.VaultManagerStub(vault_channel)
            await echo_call(request)
            assert (await stub.GetVault(request)).vault.owner == owner
            freeze_startup_heap()  # the load generator's collector pauses are not the servers' latency
            servers: dict[str, Callable[[int], Awaitable[dict[str, Any]]]] = {
                "echo": lambda n: h2load.unary(echo_port, METHOD, message, n, CALLS, H2LOAD_CAP_S),
                "get_vault": lambda n: h2load.unary(vault_port, GET_VAULT, message, n, CALLS, H2LOAD_CAP_S),
                "control": lambda n: h2load.unary(control_port, METHOD, message, n, CALLS, H2LOAD_CAP_S),
                "python_echo": lambda n: hammer(lambda: echo_call(request), n),
                "python_get_vault": lambda n: hammer(lambda: stub.GetVault(request), n),
            }
            ok_before = await ok_calls(env, "GetVault")
            # Interleaved, level by level, in passes: every server sees the same background
            # (the rest of the system runs meanwhile); each level's median pass counts.
            passes: dict[str, list[list[dict[str, Any]]]] = {name: [] for name in servers}
            for _ in range(PASSES):
                levels: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
                for concurrency in CONCURRENCY_LEVELS:
                    for name, drive in servers.items():
                        levels[name].append(await drive(concurrency))
                for name, results in levels.items():
                    passes[name].append(results)
            ok_after = await ok_calls(env, "GetVault")
    finally:
        for echo in echoes:
            echo_server.stop(echo)
    # h2load sees HTTP, not gRPC status: every echo answer must be its request, byte for
    # byte, and the service must count every GetVault it served as OK.
    for name in ("echo", "control"):
        h2_echo_calls = sum(r["calls"] for run in passes[name] for r in run)
        echo_bytes = sum(r["response_bytes"] for run in passes[name] for r in run)
        if echo_bytes != h2_echo_calls * len(h2load.grpc_frame(message)):
            raise RuntimeError(f"{name} answered {echo_bytes} bytes to {h2_echo_calls} calls: some calls failed")
    vault_calls = sum(r["calls"] for name in ("get_vault", "python_get_vault") for run in passes[name] for r in run)
    if ok_after - ok_before != vault_calls:
        raise RuntimeError(f"GetVault: {vault_calls} calls made, {ok_after - ok_before} answered OK")
    out = {name: compare(passes[echo_name], passes[vault_name])
           for name, echo_name, vault_name in (("h2load", "echo", "get_vault"),
                                               ("python_client", "python_echo", "python_get_vault"))}
    # The control: a second bare echo, measured as GetVault is; its ratio to the echo is what
    # the measurement itself reads between two identical servers in this run.
    control = compare(passes["echo"], passes["control"])
    return {"target_ratio": TARGET_RATIO, "target_p99_ms": TARGET_P99_MS, "knee_share": KNEE, **out["h2load"],
            "control": {"peak_rps": control["get_vault"]["peak_rps"], "ratio": control["ratio"],
                        "levels": control["get_vault"]["levels"]},
            "every_call_ok": True, "python_client": out["python_client"]}


def compare(echo_passes: list[list[dict[str, Any]]], vault_passes: list[list[dict[str, Any]]]) -> dict[str, Any]:
    echo_results = [median_pass(level) for level in zip(*echo_passes, strict=True)]
    vault_results = [median_pass(level) for level in zip(*vault_passes, strict=True)]
    echo_knee, vault_knee = knee(echo_results), knee(vault_results)
    echo_peak, vault_peak = max(r["rps"] for r in echo_results), max(r["rps"] for r in vault_results)
    ratio = vault_peak / echo_peak
    return {"echo": {"peak_rps": echo_peak, "knee": echo_knee, "levels": echo_results},
            "get_vault": {"peak_rps": vault_peak, "knee": vault_knee, "levels": vault_results},
            "ratio": round(ratio, 3), "targets_met": ratio >= TARGET_RATIO and vault_knee["p99_ms"] <= TARGET_P99_MS}


async def samples(session: aiohttp.ClientSession, port: str, family_name: str) -> list[Sample]:
    """One metric family's samples, scraped from a service's metrics port."""
    async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
        text = await response.text()
    return [sample for family in text_string_to_metric_families(text) if family.name == family_name
            for sample in family.samples]


async def ok_calls(env: dict[str, str], method: str) -> float:
    """vault_manager's count of `method` calls answered OK."""
    async with aiohttp.ClientSession() as session:
        found = await samples(session, env["VAULT_MANAGER_METRICS_PORT"], "grpc_server_requests")
    return sum(sample.value for sample in found
               if sample.name == "grpc_server_requests_total" and sample.labels.get("method") == method
               and sample.labels.get("code") == "OK")


GC_SERVICES = ("VAULT_MANAGER", "BALANCE_TRACKER", "CPI_MANAGER", "MONITOR")


async def gc_pauses(env: dict[str, str]) -> dict[str, dict[float, float]]:
    """Per service, the cumulative buckets of `python_gc_pause_seconds` ({le: count})."""
    out: dict[str, dict[float, float]] = {}
    async with aiohttp.ClientSession() as session:
        for service in GC_SERVICES:
            buckets: dict[float, float] = {}
            for sample in await samples(session, env[f"{service}_METRICS_PORT"], "python_gc_pause_seconds"):
                if sample.name.endswith("_bucket"):
                    le = float(sample.labels["le"])
                    buckets[le] = buckets.get(le, 0.0) + sample.value
            out[service.lower()] = buckets
    return out


def pause_report(before: dict[str, dict[float, float]], after: dict[str, dict[float, float]]) -> dict[str, Any]:
    """Collector pauses between two scrapes: how many, how many over 10 ms, and the bucket
    bound the longest one stayed under."""
    report = {}
    for service, buckets in after.items():
        delta = {le: count - before.get(service, {}).get(le, 0.0) for le, count in sorted(buckets.items())}
        total = delta.get(float("inf"), 0.0)
        longest = next((le for le, count in delta.items() if count >= total), float("inf"))
        report[service] = {"pauses": int(total), "over_10ms": int(total - delta.get(0.01, 0.0)),
                           "longest_under_ms": None if not total or longest == float("inf") else longest * 1000}
    return report


def system_processes(root: int) -> dict[str, int]:
    """The processes `make up` started under `root`, by name (localnet, vault_manager, ...)."""
    found: dict[str, int] = {}
    for task in os.listdir(f"/proc/{root}/task"):
        with open(f"/proc/{root}/task/{task}/children") as children:
            for pid in map(int, children.read().split()):
                with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                    args = cmdline.read().decode(errors="replace").split("\0")
                module = args[args.index("-m") + 1] if "-m" in args else args[0]
                found[module.rsplit(".", 1)[-1]] = pid
    return found


def cpu_seconds(pids: dict[str, int], main_thread: bool = False) -> dict[str, float]:
    """User + system CPU time each process (or only its main thread) has used so far."""
    return {name: process_cpu_seconds(pid, pid if main_thread else None) for name, pid in pids.items()}


def cpu_report(before: dict[str, float], after: dict[str, float], deposits: int) -> dict[str, float]:
    """Milliseconds of CPU per deposit, by process (or group of processes), over the whole
    rounds: drains included, and whatever those processes do in the background meanwhile."""
    used = {name: round((after[name] - before[name]) * 1000 / deposits, 2) for name in after}
    return {**used, "total": round(sum(used.values()), 2)}


def cpu_probe() -> float:
    """Seconds this machine takes for a fixed pure-Python loop now (0.13 to 0.81 s seen on these hosts)."""
    started, total = time.perf_counter(), 0
    for i in range(5_000_000):
        total += i
    return round(time.perf_counter() - started, 3)


def median_pass(level: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    """A level's median pass by rate (one lucky or unlucky pass sets neither the peak nor
    the knee), with every pass's rate alongside."""
    ordered = sorted(level, key=lambda r: r["rps"])
    return {**ordered[len(ordered) // 2], "rps_of_passes": [r["rps"] for r in level]}


def knee(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The fewest concurrent callers at which a server reaches KNEE x its highest rate."""
    peak = max(r["rps"] for r in results)
    return next(r for r in results if r["rps"] >= KNEE * peak)


async def deposits_end_to_end(env: dict[str, str], processes: dict[str, int]) -> dict[str, Any]:
    """DEPOSIT_ROUNDS rounds per submitter, the two interleaved round by round (the same
    background for both); the target is judged on the h2_unary rounds."""
    rpc = f"http://127.0.0.1:{env['LOCALNET_RPC_PORT']}"
    vault_port = int(env["VAULT_MANAGER_GRPC_PORT"])
    program = VaultProgram(dev_keypair("usdt_mint").pubkey())
    users = [Keypair() for _ in range(USERS)]
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in SUBMITTERS}
    async with AsyncClient(rpc, commitment=Confirmed) as client, \
            grpc.aio.insecure_channel(f"127.0.0.1:{vault_port}") as channel:
        builder = transaction_builder_pb2_grpc.TransactionBuilderStub(channel)
        lean = await H2Unary.connect("127.0.0.1", vault_port, SUBMIT)
        submitters: dict[str, Submitter] = {
            "h2_unary": (lambda request: lean.call(request.SerializeToString()),
                         transaction_builder_pb2.SubmitTransactionResponse.FromString),
            "grpc_aio": (builder.SubmitTransaction, lambda response: response),
        }
        for user in users:
            await client.confirm_transaction((await client.request_airdrop(user.pubkey(), 10**9)).value, Confirmed)
            await fund(rpc, user.pubkey(), 100_000 * USDT)
            blockhash = (await client.get_latest_blockhash()).value.blockhash
            init = VersionedTransaction(Message.new_with_blockhash([program.initialize_vault(user.pubkey())],
                                                                   user.pubkey(), blockhash), [user])
            await client.confirm_transaction((await client.send_transaction(init)).value, Confirmed)
        received: dict[str, float] = {}
        gateway = f"ws://127.0.0.1:{env['GATEWAY_PORT']}/ws"
        async with aiohttp.ClientSession() as session:
            sockets = [await session.ws_connect(f"{gateway}?owner={u.pubkey()}") for u in users]

            async def listen(ws: aiohttp.ClientWebSocketResponse) -> None:
                async for message in ws:
                    data = json.loads(message.data)
                    if data.get("type") == "event" and data["event"]["kind"] == "deposit":
                        received.setdefault(data["event"]["signature"], time.perf_counter())

            listeners = [asyncio.create_task(listen(ws)) for ws in sockets]
            await asyncio.sleep(0.5)
            pauses_before = await gc_pauses(env)
            ok_before = await ok_calls(env, "SubmitTransaction")
            stores_before = processes_cpu_seconds(STORE_PROCESSES)
            cpu_before, window_started = cpu_seconds(processes), time.perf_counter()
            main_before = cpu_seconds(processes, main_thread=True)
            batch = 0
            for _ in range(DEPOSIT_ROUNDS):
                for name, submitter in submitters.items():
                    blockhash = (await client.get_latest_blockhash()).value.blockhash
                    signed = []
                    for n in range(DEPOSITS):  # signed before the clock starts
                        user = users[n % USERS]
                        source = spl_token.associated_token_address(user.pubkey(), program.mint)
                        amount = 1_000 + batch * DEPOSITS + n  # a new signature every round
                        tx = VersionedTransaction(Message.new_with_blockhash(
                            [program.deposit(user.pubkey(), source, amount)], user.pubkey(), blockhash), [user])
                        signed.append((str(tx.signatures[0]), transaction_builder_pb2.SubmitTransactionRequest(
                            signed_transaction_base64=base64_of(tx), wait_for=common_pb2.COMMITMENT_PROCESSED)))
                    batch += 1
                    probe = cpu_probe()
                    # the load generator's own collector pauses are not the system's latency
                    freeze_startup_heap()
                    rounds[name].append({"cpu_probe_s": probe, **await _deposit_burst(submitter, signed, received)})
                    await asyncio.sleep(1.0)  # the system drains between rounds
            cpu_after, window = cpu_seconds(processes), time.perf_counter() - window_started
            main_after = cpu_seconds(processes, main_thread=True)
            stores_after = processes_cpu_seconds(STORE_PROCESSES)
            ok_after = await ok_calls(env, "SubmitTransaction")
            collector = pause_report(pauses_before, await gc_pauses(env))
            for task in listeners:
                task.cancel()
            for ws in sockets:
                await ws.close()
        lean.close()
    submitted = DEPOSITS * DEPOSIT_ROUNDS * len(submitters)
    if ok_after - ok_before != submitted:  # the lean client reads no gRPC status: the server's count is the proof
        raise RuntimeError(f"SubmitTransaction: {submitted} calls made, {ok_after - ok_before} answered OK")
    judged, python_client = (_verdict(rounds[name]) for name in SUBMITTERS)
    return {"deposits_per_round": DEPOSITS, "offered_rate": DEPOSIT_RATE, "client": SUBMITTERS[0], **judged,
            "target_p99_ms": DEPOSIT_TARGET_P99_MS, "python_client": python_client,
            "every_call_ok": True, "gc_pauses_during_rounds": collector,
            "cpu_ms_per_deposit": cpu_report(cpu_before, cpu_after, submitted),
            # the event loop's thread; the rest is gRPC's, the metrics server's and the like
            "main_thread_share_of_cpu": {
                name: round((main_after[name] - main_before[name]) / used, 2)
                for name in processes if (used := cpu_after[name] - cpu_before[name]) > 0},
            "store_cpu_ms_per_deposit": cpu_report(stores_before, stores_after, submitted),
            "cores_busy_during_rounds": round((sum(cpu_after.values()) - sum(cpu_before.values())) / window, 2)}


def _verdict(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    p99s = sorted(r["p99_ms"] for r in rounds)
    median_p99 = p99s[len(p99s) // 2]
    return {"rounds": rounds, "median_p99_ms": median_p99,
            "target_met": all(r["delivered"] == DEPOSITS and not r["failed"] for r in rounds)
            and median_p99 <= DEPOSIT_TARGET_P99_MS}


async def _deposit_burst(submitter: Submitter,
                         signed: list[tuple[str, transaction_builder_pb2.SubmitTransactionRequest]],
                         received: dict[str, float]) -> dict[str, Any]:
    """Submits the signed deposits at DEPOSIT_RATE (each call started by a timer at its
    moment, no task per call); submit -> WebSocket latency of each, how many submissions
    failed or did not reach `processed`, and over the submissions how many of the machine's
    cores were busy (every process) and the load generator's own CPU per deposit (part of
    that load, on the same cores)."""
    send, parse = submitter
    loop = asyncio.get_running_loop()
    submitted: dict[str, float] = {}
    calls: list[Awaitable[Any]] = []

    def fire(signature: str, request: transaction_builder_pb2.SubmitTransactionRequest) -> None:
        submitted[signature] = time.perf_counter()
        calls.append(send(request))

    interval = 1.0 / DEPOSIT_RATE
    busy_before, own_before = machine_busy_seconds(), process_cpu_seconds(os.getpid())
    start, clock = time.perf_counter(), loop.time() + interval
    for i, (signature, request) in enumerate(signed):
        loop.call_at(clock + i * interval, fire, signature, request)
    await asyncio.sleep(max(0.0, clock + len(signed) * interval - loop.time()))
    while len(calls) < len(signed):  # the last timers may fire a moment late
        await asyncio.sleep(interval)
    answers = await asyncio.gather(*calls, return_exceptions=True)
    elapsed = time.perf_counter() - start
    busy, own = machine_busy_seconds() - busy_before, process_cpu_seconds(os.getpid()) - own_before
    failed = sum(1 for answer in answers if isinstance(answer, BaseException) or not _landed(parse(answer)))
    deadline = time.monotonic() + 30
    while any(s not in received for s in submitted) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    latencies = [received[s] - t for s, t in submitted.items() if s in received]
    return {"achieved_rate": round(len(signed) / elapsed, 1), "delivered": len(latencies), "failed": failed,
            "p50_ms": pct(latencies, 0.5), "p99_ms": pct(latencies, 0.99),
            "machine_cores_busy": round(busy / elapsed, 2), "load_generator_cpu_ms": round(own * 1000 / len(signed), 2)}


def _landed(response: transaction_builder_pb2.SubmitTransactionResponse) -> bool:
    return not response.status.error and response.status.commitment >= common_pb2.COMMITMENT_PROCESSED


def base64_of(tx: VersionedTransaction) -> str:
    return base64.b64encode(bytes(tx)).decode()


async def system(database_url: str) -> dict[str, Any]:
    # plaintext without authentication, as before make up had TLS: the load generators
    # (h2load, h2_unary) speak plaintext HTTP/2, and the numbers stay comparable
    env = system_env(database_url, redis_url(), SOLANA_COMMITMENT="processed", UP_SECURITY="off",
                     GATEWAY_WS_MAX_PER_CLIENT=str(USERS))
    up, _ = start_system(env)
    try:
        owner = Keypair()
        rpc = f"http://127.0.0.1:{env['LOCALNET_RPC_PORT']}"
        async with AsyncClient(rpc, commitment=Confirmed) as client:
            await client.confirm_transaction((await client.request_airdrop(owner.pubkey(), 10**9)).value, Confirmed)
            program = VaultProgram(dev_keypair("usdt_mint").pubkey())
            blockhash = (await client.get_latest_blockhash()).value.blockhash
            tx = VersionedTransaction(Message.new_with_blockhash([program.initialize_vault(owner.pubkey())],
                                                                 owner.pubkey(), blockhash), [owner])
            await client.confirm_transaction((await client.send_transaction(tx)).value, Confirmed)
        probe = cpu_probe()
        return {"machine_cores": os.cpu_count(), "cpu_probe_s": probe,
                "get_vault_vs_echo": await get_vault_vs_echo(env, str(owner.pubkey())),
                "deposits_end_to_end": await deposits_end_to_end(env, system_processes(up.pid)),
                "note": "services at SOLANA_COMMITMENT=processed; client, services and localnet share the cores"}
    finally:
        stop_system(up)


def run() -> dict[str, Any]:
    return on_temporary_database(system)
