"""End to end: the system brought up as `make up` does (scripts/up.py: localnet and the five
services as separate processes), the demo scenario run through gRPC only (`vaultctl demo`),
then chain, PostgreSQL, Redis and the gateway checked against each other; Ctrl-C stops it."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys

import aiohttp
import asyncpg
import redis.asyncio as aioredis
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.pubkey import Pubkey

from localnet.svm import ROOT
from services.common.vault_cache import VaultCache
from services.common.vault_program import Vault, vault_address
from tests.conftest import redis_url
from tests.support.system import start_system, system_env

USDT = 10**6


async def test_make_up_demo_and_agreement(pg_database: str) -> None:
    env = system_env(pg_database, redis_url())
    prefix = env["REDIS_PREFIX"]
    up, _ = start_system(env)
    try:
        demo = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "vaultctl", "demo", "--json"],
                                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
        assert demo.returncode == 0, demo.stderr + demo.stdout
        rows = json.loads(demo.stdout.strip().splitlines()[-1])
        assert {name: row["chain"] for name, row in rows.items()} == {
            "alice": [350 * USDT, 0, 350 * USDT], "bob": [550 * USDT, 0, 550 * USDT]}
        assert all(row["agree"] for row in rows.values())

        # chain, PostgreSQL, Redis and the gateway agree for both traders
        redis = aioredis.from_url(redis_url())
        cache = VaultCache(redis, prefix, 60)
        conn = await asyncpg.connect(pg_database)
        try:
            async with AsyncClient(env["SOLANA_RPC_URL"], commitment=Confirmed) as rpc, \
                    aiohttp.ClientSession() as http:
                for row in rows.values():
                    owner = Pubkey.from_string(row["owner"])
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
                    async with http.get(f"http://127.0.0.1:{env['GATEWAY_PORT']}/vaults/{owner}") as response:
                        body = await response.json()
                    assert response.status == 200 and body["total_balance"] == str(chain.total_balance)
                events = await conn.fetchval("SELECT count(*) FROM transactions")
                # per trader: init, deposit, lock, unlock; then one settlement and one withdrawal
                assert events == 2 * 4 + 1 + 1
        finally:
            await conn.close()
            keys = [k async for k in redis.scan_iter(match=prefix + "*")]
            if keys:
                await redis.delete(*keys)
            await redis.aclose()
    finally:
        up.send_signal(signal.SIGINT)
        output, _ = up.communicate(timeout=60)
    assert up.returncode == 0 and "stopped" in output
