"""End to end: the system brought up as `make up` does (scripts/up.py: localnet and the five
services as separate processes, TLS and authentication on, the exchange's operator key made
under .local/), the demo scenario run through gRPC only (`vaultctl demo`, with make up's
credentials: the traders' wallets sign their own steps, the matching engine's token drives
the operator's), then chain, PostgreSQL, Redis and
the gateway (HTTPS) checked against each other; a killed service restarted by up.py; and a
second `make up` (a new localnet genesis) against the same database and Redis prefix:
reset, so nothing of the first chain is served. Ctrl-C stops it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import subprocess
import sys
import time

import aiohttp
import asyncpg
import grpc
import redis.asyncio as aioredis
from collateral_vault.v1 import (
    balance_tracker_pb2,
    balance_tracker_pb2_grpc,
    cpi_manager_pb2,
    cpi_manager_pb2_grpc,
    vault_manager_pb2,
    vault_manager_pb2_grpc,
)
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.pubkey import Pubkey

from bench.system_env import start_system, system_env
from localnet.svm import ROOT
from services.common.vault_cache import VaultCache
from tests.conftest import redis_url
from tests.support.grpc_calls import status_of
from vault_client import grpc_tls
from vault_client.config import ClientSecurity
from vault_client.vault_program import Vault, vault_address

USDT = 10**6
PKI = ROOT / ".local" / "pki"


def _client(token: str | None = None) -> ClientSecurity:
    return ClientSecurity(ca_file=str(PKI / "ca.crt"), token_file=str(PKI / f"{token}.token") if token else "",
                          cert="", key="")


def _stop(up: subprocess.Popen[str]) -> str:
    up.send_signal(signal.SIGINT)
    output, _ = up.communicate(timeout=60)
    assert up.returncode == 0, output
    return output


async def test_make_up_demo_agreement_restart_and_a_new_chain(pg_database: str) -> None:
    env = system_env(pg_database, redis_url())
    prefix = env["REDIS_PREFIX"]
    gateway = f"https://127.0.0.1:{env['GATEWAY_PORT']}"
    up, banner = start_system(env)
    trust = ssl.create_default_context(cafile=str(PKI / "ca.crt"))  # the CA make up (re)made
    redis = aioredis.from_url(redis_url())
    try:
        assert any("gRPC over TLS" in line for line in banner)
        demo = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "vaultctl", "demo", "--json"],
                                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
        assert demo.returncode == 0, demo.stderr + demo.stdout
        result = json.loads(demo.stdout.strip().splitlines()[-1])
        rows = result["traders"]
        # alice: +60 PnL, -1 fee, exit, 400 withdrawn; bob: -60, -1 fee, 39 liquidated
        assert {name: row["chain"] for name, row in rows.items()} == {
            "alice": [159 * USDT, 0, 159 * USDT], "bob": [400 * USDT, 0, 400 * USDT]}
        assert all(row["agree"] for row in rows.values())
        outcomes = [step["outcome"] for step in result["steps"]]
        assert len(outcomes) == 9 and outcomes.count("ok") == 8, result["steps"]
        assert [step["name"] for step in result["steps"] if step["outcome"] != "ok"] == [
            "alice tries to unlock her collateral herself"] and "NotOperator" in outcomes
        owners = [row["owner"] for row in rows.values()]

        # chain, PostgreSQL, Redis and the gateway agree for both traders
        cache = VaultCache(redis, prefix, 60)
        conn = await asyncpg.connect(pg_database)
        try:
            async with AsyncClient(env["SOLANA_RPC_URL"], commitment=Confirmed) as rpc, \
                    aiohttp.ClientSession() as http:
                for owner_text in owners:
                    owner = Pubkey.from_string(owner_text)
                    info = (await rpc.get_account_info(vault_address(owner))).value
                    assert info is not None
                    chain = Vault.decode(bytes(info.data))
                    db = await conn.fetchrow("SELECT * FROM vaults WHERE owner = $1", str(owner))
                    assert db is not None and int(db["total_balance"]) == chain.total_balance
                    assert int(db["total_deposited"]) == chain.total_deposited == 500 * USDT
                    for _ in range(50):
                        cached = await cache.get(owner)
                        if cached is not None and cached[0].total_balance == chain.total_balance:
                            break
                        await asyncio.sleep(0.1)
                    assert cached is not None and cached[0].total_balance == chain.total_balance
                    async with http.get(f"{gateway}/vaults/{owner}", ssl=trust) as response:
                        body = await response.json()
                    assert response.status == 200 and body["total_balance"] == str(chain.total_balance)
                kinds = dict(await conn.fetch("SELECT kind, count(*) FROM transactions WHERE owner = ANY($1) "
                                              "GROUP BY kind", owners))
                # the vault's events and the exchange program's, for both traders
                assert (kinds["deposit"], kinds["lock"], kinds["transfer"], kinds["withdraw"]) == (2, 2, 4, 1)
                assert (kinds["grant_set"], kinds["operator_liquidate"], kinds["exit_requested"],
                        kinds["exit_served"]) == (2, 1, 1, 1)
        finally:
            await conn.close()

        # TLS and authentication are on: plaintext is refused, so is an operator RPC without the role
        tracker, cpi = env["BALANCE_TRACKER_ADDR"], env["CPI_MANAGER_ADDR"]
        lock = cpi_manager_pb2.LockRequest(trader=owners[1], amount=1, client_request_id="e2e-1")
        async with grpc.aio.insecure_channel(tracker) as plaintext:
            assert await status_of(balance_tracker_pb2_grpc.BalanceTrackerStub(plaintext).Reconcile(
                balance_tracker_pb2.ReconcileRequest(), timeout=5)) == grpc.StatusCode.UNAVAILABLE
        async with grpc_tls.channel(cpi, _client()) as anonymous, grpc_tls.channel(cpi, _client("gateway")) as gw:
            assert await status_of(cpi_manager_pb2_grpc.CpiManagerStub(anonymous).Lock(lock)) \
                == grpc.StatusCode.UNAUTHENTICATED
            assert await status_of(cpi_manager_pb2_grpc.CpiManagerStub(gw).Lock(lock)) \
                == grpc.StatusCode.PERMISSION_DENIED
        async with grpc_tls.channel(cpi, _client("matching-engine")) as engine:
            assert await status_of(cpi_manager_pb2_grpc.CpiManagerStub(engine).Lock(lock)) == grpc.StatusCode.OK

        # a service that dies is restarted, and says so; the others go on serving
        pid = int(next(line for line in banner if "processes" in line).split("balance_tracker ")[1].split(",")[0])
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        seen: list[str] = []
        while not any("balance_tracker is serving again" in line for line in seen):
            assert time.monotonic() < deadline, "".join(seen)
            assert up.stdout is not None
            seen.append(await asyncio.wait_for(asyncio.to_thread(up.stdout.readline), deadline - time.monotonic()))
        assert any("balance_tracker (pid" in line and "restarting it in" in line for line in seen), seen
        async with grpc_tls.channel(tracker, _client()) as channel:
            reply = await balance_tracker_pb2_grpc.BalanceTrackerStub(channel).GetBalance(
                balance_tracker_pb2.GetBalanceRequest(owner=owners[0]))
            assert reply.vault.total_balance == 159 * USDT
    finally:
        if up.poll() is None:
            output = _stop(up)
            assert "stopped" in output

    # a second make up: a new chain. Its database and Redis prefix held the first chain's
    # state: reset, and nothing of the first chain is served
    up, banner = start_system(env)
    try:
        assert any("reset database" in line for line in banner), banner
        assert any(f"reset Redis prefix {prefix!r}" in line for line in banner), banner
        async with grpc_tls.channel(env["BALANCE_TRACKER_ADDR"], _client()) as tracker_channel, \
                grpc_tls.channel(env["VAULT_MANAGER_ADDR"], _client()) as vault_channel, \
                aiohttp.ClientSession() as http:
            for owner in owners:
                assert await status_of(balance_tracker_pb2_grpc.BalanceTrackerStub(tracker_channel).GetBalance(
                    balance_tracker_pb2.GetBalanceRequest(owner=owner))) == grpc.StatusCode.NOT_FOUND
                assert await status_of(vault_manager_pb2_grpc.VaultManagerStub(vault_channel).GetVault(
                    vault_manager_pb2.GetVaultRequest(owner=owner))) == grpc.StatusCode.NOT_FOUND
                async with http.get(f"{gateway}/vaults/{owner}", ssl=trust) as response:
                    assert response.status == 404
            async with http.get(f"{gateway}/tvl", ssl=trust) as response:
                tvl = await response.json()
            assert response.status == 200 and tvl["total"] == "0"
    finally:
        output = _stop(up)
        keys = [k async for k in redis.scan_iter(match=prefix + "*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
    assert "stopped" in output
