"""Which chain a service serves (services/common/cluster.py), over real localnets,
PostgreSQL and Redis: a database and a Redis prefix are bound to the first chain a service
starts against, and every service refuses another chain's database or prefix; the
configured genesis hash, programs and mint are checked against the chain before serving.

Reproduces issue 21 finding 4: a second localnet genesis against the same database used to
start fine and serve the first chain's vaults from the database (GetBalance answered a
vault that does not exist on the new chain)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import asyncpg
import grpc
import pytest
from collateral_vault.v1 import balance_tracker_pb2, balance_tracker_pb2_grpc
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.pubkey import Pubkey

from bench.traffic import users_with_vaults
from localnet.node_harness import running_node
from services.common import cluster
from services.common.cluster import ClusterMismatch
from tests.conftest import RedisNamespace
from tests.support.databases import temporary_database
from tests.support.services import balance_tracker, settings_for, wait_for_rows
from vault_client.config import Settings


def _apps() -> dict[str, Callable[[Settings], Any]]:
    from services.balance_tracker.app import BalanceTrackerApp
    from services.cpi_manager.app import CpiManagerApp
    from services.monitor.app import MonitorApp
    from services.vault_manager.app import VaultManagerApp

    return {"vault_manager": VaultManagerApp, "balance_tracker": BalanceTrackerApp, "cpi_manager": CpiManagerApp,
            "monitor": lambda s: MonitorApp(s, run_watcher=False)}


async def _refused(app: Any, *expected: str) -> str:
    with pytest.raises(ClusterMismatch) as refused:
        await app.start(metrics=False)
    assert app.grpc is None  # nothing was served
    message = str(refused.value)
    for part in expected:
        assert part in message, message
    return message


async def test_a_database_and_a_redis_prefix_serve_one_chain(pg_database: str, redis_ns: RedisNamespace) -> None:
    async with running_node() as first:
        first_genesis = first.ledger.genesis_hash  # type: ignore[union-attr]
        settings = settings_for("balance_tracker", first, pg_database, redis_ns.url, redis_ns.prefix)
        async with balance_tracker(settings), AsyncClient(first.rpc_url, commitment=Confirmed) as client, \
                grpc.aio.insecure_channel(f"127.0.0.1:{settings.grpc_port}") as channel:
            [alice] = await users_with_vaults(first, client, 1)
            await wait_for_rows(pg_database, 1)
            stub = balance_tracker_pb2_grpc.BalanceTrackerStub(channel)
            reply = await stub.GetBalance(balance_tracker_pb2.GetBalanceRequest(owner=str(alice.user.key)))
            assert reply.vault.owner == str(alice.user.key)
        conn = await asyncpg.connect(pg_database)
        try:
            binding = await conn.fetchrow("SELECT * FROM chain_binding")
            assert (binding["genesis_hash"], binding["vault_program_id"]) == (
                first_genesis, str(settings.vault_program_id))
            with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="fixed"):
                await conn.execute("UPDATE chain_binding SET genesis_hash = 'x'")
        finally:
            await conn.close()
        # the same chain again (a restart): accepted
        async with balance_tracker(dataclasses.replace(settings, grpc_port=0, metrics_port=0)):
            pass

    async with running_node() as second:  # a fresh localnet: a new genesis
        second_genesis = second.ledger.genesis_hash  # type: ignore[union-attr]
        assert second_genesis != first_genesis
        # every service refuses the first chain's database, naming both chains
        for name, make in _apps().items():
            app = make(settings_for(name, second, pg_database, redis_ns.url, redis_ns.prefix))
            await _refused(app, "indexes another chain", first_genesis, second_genesis)
        # with a database of its own, the Redis prefix still holds the first chain's state
        async with temporary_database() as fresh:
            for name in ("vault_manager", "balance_tracker"):
                app = _apps()[name](settings_for(name, second, fresh, redis_ns.url, redis_ns.prefix))
                await _refused(app, "Redis prefix", first_genesis, second_genesis)
            # its own database and prefix: it starts, and Alice's vault is not on this chain
            settings = settings_for("balance_tracker", second, fresh, redis_ns.url, redis_ns.prefix + "second:")
            async with balance_tracker(settings), \
                    grpc.aio.insecure_channel(f"127.0.0.1:{settings.grpc_port}") as channel:
                stub = balance_tracker_pb2_grpc.BalanceTrackerStub(channel)
                with pytest.raises(grpc.aio.AioRpcError) as missing:
                    await stub.GetBalance(balance_tracker_pb2.GetBalanceRequest(owner=str(alice.user.key)))
                assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_the_configuration_is_checked_against_the_chain(pg_database: str, redis_ns: RedisNamespace) -> None:
    async with running_node() as node:
        base = settings_for("cpi_manager", node, pg_database, redis_ns.url, redis_ns.prefix)
        genesis = node.ledger.genesis_hash  # type: ignore[union-attr]
        other = str(Pubkey.new_unique())
        cases: list[tuple[dict[str, Any], tuple[str, ...]]] = [
            ({"genesis_hash": "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdpKuc147dw2N9d"}, ("GENESIS_HASH=5eykt4", genesis)),
            ({"usdt_mint": Pubkey.from_string(other)}, (f"not USDT_MINT={other}",)),
            ({"position_manager_id": Pubkey.from_string(other)},
             (f"POSITION_MANAGER_ID={other} is not an executable program", "no such account")),
            ({"vault_program_id": node.ledger.deployment.mint},  # type: ignore[union-attr]
             ("VAULT_PROGRAM_ID", "not executable")),
        ]
        for change, expected in cases:
            app = _apps()["cpi_manager"](dataclasses.replace(base, **change))
            await _refused(app, *expected)
        conn = await asyncpg.connect(pg_database)
        try:
            assert await conn.fetchval("SELECT count(*) FROM chain_binding") == 0  # refused before binding
        finally:
            await conn.close()
        # the right genesis hash, configured: accepted
        identity = await _check(dataclasses.replace(base, genesis_hash=genesis))
        assert identity == cluster.ChainIdentity(genesis, str(base.vault_program_id))


async def _check(settings: Settings) -> cluster.ChainIdentity:
    from services.common.chain import ChainClient

    chain = ChainClient.for_settings(settings)
    try:
        return await cluster.check_chain(settings, chain)
    finally:
        await chain.close()


async def test_an_unreachable_node_at_start_is_a_refusal_not_a_guess(pg_database: str,
                                                                     redis_ns: RedisNamespace) -> None:
    from services.common.chain import ChainClient

    async with running_node() as node:
        settings = settings_for("monitor", node, pg_database, redis_ns.url, redis_ns.prefix)
    chain = ChainClient.for_settings(settings)  # the node is gone
    try:
        with pytest.raises(ClusterMismatch, match="did not answer at start"):
            await cluster.check_chain(settings, chain, attempts=2)
    finally:
        await chain.close()
