"""The matching engine's path through cpi_manager beside SubmitTransaction's, with the
system in its own processes as `make up` runs it (loopback only, bounded in count and time).

* Operator: TRADERS traders, each driven by one caller (one trader's operations apply in
  order anyway), each doing ROUNDS x (Lock 2 USDT, then Settle 1 USDT of it to the next
  trader's vault): every call signed with the operator key by cpi_manager, submitted,
  waited for at `processed`, recorded for its client_request_id, and answered with the
  traders' balances read from the chain.
* SubmitTransaction: the same number of callers submitting trader-signed deposits (built
  and signed here, waited for at `processed`), the same number of calls.

Both report calls per second and p50/p99 latency (per RPC for the operator). The whole
machine runs the load generator, localnet, the services, PostgreSQL and Redis on its two
cores, so the numbers describe this machine, not a cluster."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from collateral_vault.v1 import (
    common_pb2,
    cpi_manager_pb2,
    cpi_manager_pb2_grpc,
    transaction_builder_pb2,
    transaction_builder_pb2_grpc,
)
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair
from solders.message import Message
from solders.transaction import VersionedTransaction

from bench.environment import redis_url
from bench.system_env import start_system, stop_system, system_env
from bench.system_run import on_temporary_database
from localnet.faucet import fund
from localnet.genesis import dev_keypair
from vault_client import spl_token
from vault_client.heap import freeze_startup_heap
from vault_client.readings import pct
from vault_client.vault_program import ExchangeProgram, VaultProgram

TRADERS = 16
ROUNDS = 10
TIME_CAP_S = 120
USDT = 10**6
pb = cpi_manager_pb2


async def _traders(rpc_url: str, count: int) -> list[Keypair]:
    """Traders with a vault, 1,000 USDT deposited and a grant of 1,000 (one transaction each)."""
    program = VaultProgram(dev_keypair("usdt_mint").pubkey())
    exchange = ExchangeProgram(program)
    keys = [Keypair() for _ in range(count)]
    async with AsyncClient(rpc_url, commitment=Confirmed) as client:
        async def one(key: Keypair) -> None:
            await client.confirm_transaction((await client.request_airdrop(key.pubkey(), 10**9)).value, Confirmed)
            token_account, _ = await fund(rpc_url, key.pubkey(), 2_000 * USDT)
            blockhash = (await client.get_latest_blockhash()).value.blockhash
            instructions = [program.initialize_vault(key.pubkey()),
                            program.deposit(key.pubkey(), token_account, 1_000 * USDT),
                            exchange.grant(key.pubkey(), 1_000 * USDT, int(time.time()) + 86_400)]
            tx = VersionedTransaction(Message.new_with_blockhash(instructions, key.pubkey(), blockhash), [key])
            await client.confirm_transaction((await client.send_transaction(tx)).value, Confirmed)

        await asyncio.gather(*(one(k) for k in keys))
    return keys


Caller = Callable[[], Awaitable[dict[str, list[float]]]]


async def _drive(callers: list[Caller]) -> tuple[dict[str, list[float]], float]:
    started = time.perf_counter()
    results = await asyncio.wait_for(asyncio.gather(*(c() for c in callers)), TIME_CAP_S)
    elapsed = time.perf_counter() - started
    merged: dict[str, list[float]] = {}
    for result in results:
        for name, values in result.items():
            merged.setdefault(name, []).extend(values)
    return merged, elapsed


def _report(latencies: dict[str, list[float]], elapsed: float) -> dict[str, Any]:
    calls = sum(len(v) for v in latencies.values())
    out: dict[str, Any] = {"calls": calls, "seconds": round(elapsed, 2), "calls_per_second": round(calls / elapsed, 1)}
    for name, values in latencies.items():
        out[name] = {"calls": len(values), "p50_ms": pct(values, 0.5), "p99_ms": pct(values, 0.99)}
    everything = [v for values in latencies.values() for v in values]
    out["all"] = {"p50_ms": pct(everything, 0.5), "p99_ms": pct(everything, 0.99)}
    return out


async def operator_path(engine: cpi_manager_pb2_grpc.CpiManagerStub, traders: list[Keypair]) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    owners = [str(t.pubkey()) for t in traders]

    def caller(i: int) -> Caller:
        async def run() -> dict[str, list[float]]:
            lock: list[float] = []
            settle: list[float] = []
            for n in range(ROUNDS):
                t0 = time.perf_counter()
                await engine.Lock(pb.LockRequest(trader=owners[i], amount=2 * USDT,
                                                 client_request_id=f"{tag}-l-{i}-{n}",
                                                 commitment=common_pb2.COMMITMENT_PROCESSED), timeout=30)
                t1 = time.perf_counter()
                await engine.Settle(pb.SettleRequest(client_request_id=f"{tag}-s-{i}-{n}",
                                                     commitment=common_pb2.COMMITMENT_PROCESSED, pairs=[
                                                         pb.SettlementPair(payer=owners[i],
                                                                           receiver=owners[(i + 1) % len(owners)],
                                                                           amount=1 * USDT)]), timeout=30)
                t2 = time.perf_counter()
                lock.append(t1 - t0)
                settle.append(t2 - t1)
            return {"lock": lock, "settle": settle}
        return run

    latencies, elapsed = await _drive([caller(i) for i in range(len(traders))])
    return _report(latencies, elapsed)


async def submit_path(builder: transaction_builder_pb2_grpc.TransactionBuilderStub, rpc_url: str,
                      traders: list[Keypair]) -> dict[str, Any]:
    program = VaultProgram(dev_keypair("usdt_mint").pubkey())
    async with AsyncClient(rpc_url, commitment=Confirmed) as client:
        blockhash = (await client.get_latest_blockhash()).value.blockhash
    signed: list[list[str]] = []
    for key in traders:
        token_account = spl_token.associated_token_address(key.pubkey(), program.mint)
        signed.append([base64.b64encode(bytes(VersionedTransaction(Message.new_with_blockhash(
            [program.deposit(key.pubkey(), token_account, 1 + n)], key.pubkey(), blockhash), [key]))).decode()
            for n in range(2 * ROUNDS)])

    def caller(i: int) -> Caller:
        async def run() -> dict[str, list[float]]:
            out: list[float] = []
            for tx in signed[i]:
                t0 = time.perf_counter()
                reply = await builder.SubmitTransaction(transaction_builder_pb2.SubmitTransactionRequest(
                    signed_transaction_base64=tx, wait_for=common_pb2.COMMITMENT_PROCESSED), timeout=30)
                if reply.status.error:
                    raise RuntimeError(f"a deposit failed: {reply.status.error}")
                out.append(time.perf_counter() - t0)
            return {"submit_transaction": out}
        return run

    latencies, elapsed = await _drive([caller(i) for i in range(len(traders))])
    return _report(latencies, elapsed)


async def system(database_url: str) -> dict[str, Any]:
    env = system_env(database_url, redis_url(), UP_SECURITY="off")  # plaintext: no TLS cost in either path
    up, _ = start_system(env)
    try:
        traders = await _traders(env["SOLANA_RPC_URL"], TRADERS)
        async with grpc.aio.insecure_channel(env["CPI_MANAGER_ADDR"]) as cpi_channel, \
                grpc.aio.insecure_channel(env["VAULT_MANAGER_ADDR"]) as vm_channel:
            engine = cpi_manager_pb2_grpc.CpiManagerStub(cpi_channel)
            builder = transaction_builder_pb2_grpc.TransactionBuilderStub(vm_channel)
            freeze_startup_heap()
            operator = await operator_path(engine, traders)
            submit = await submit_path(builder, env["SOLANA_RPC_URL"], traders)
        return {"callers": TRADERS, "rounds": ROUNDS, "commitment": "processed",
                "operator": operator, "submit_transaction": submit,
                "operator_vs_submit": round(operator["calls_per_second"] / submit["calls_per_second"], 2),
                "note": ("operator: Lock + Settle (1 pair) per round per trader, signed by cpi_manager with the "
                         "operator key (key file); submit: trader-signed deposits through SubmitTransaction; "
                         "load generator, localnet, services, PostgreSQL and Redis share the machine's cores")}
    finally:
        stop_system(up)


def run() -> dict[str, Any]:
    return on_temporary_database(system)
