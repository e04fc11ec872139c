"""The indexer checks each vault's event numbers (issue 23, docs/indexer-gaps.md): a removed
event in the middle of a vault's sequence makes it stop at the gap for that vault, alert,
and repair the vault from the chain. Real transactions on localnet, the real indexer
(balance_tracker), PostgreSQL and Redis; the node's answers pass through an RPC proxy
(real HTTP over loopback) that removes one event from one transaction's log and, for a
while, refuses the repair's reads of the vault."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed

from localnet.node import Node
from services.common.vault_program import Vault
from tests.conftest import RedisNamespace
from tests.support.localnet_node import running_node
from tests.support.rpc_proxy import RpcProxy
from tests.support.services import balance_tracker, settings_for
from tests.support.traffic import USDT, Account, users_with_vaults


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    async with running_node() as n:
        yield n


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.1)


def strip_events(signature: str, times: int) -> Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]:
    """getTransaction of `signature` answered without its `Program data:` lines, the first
    `times` times (-1: always)."""
    left = [times]

    def rewrite(request: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        if request.get("method") != "getTransaction" or request["params"][0] != signature or left[0] == 0:
            return answer
        left[0] -= 1
        meta = (answer.get("result") or {}).get("meta") or {}
        meta["logMessages"] = [line for line in meta.get("logMessages") or [] if not line.startswith("Program data:")]
        return answer

    return rewrite


async def chain_vault(client: AsyncClient, node: Node, account: Account) -> Vault:
    assert node.ledger is not None
    info = (await client.get_account_info(node.ledger.deployment.program.vault(account.user.key))).value
    assert info is not None
    return Vault.decode(bytes(info.data))


def row_state(row: asyncpg.Record) -> tuple[int, ...]:
    return (int(row["total_balance"]), int(row["locked_balance"]), int(row["available_balance"]),
            int(row["total_deposited"]), int(row["total_withdrawn"]), int(row["event_seq"]))


def vault_state(vault: Vault) -> tuple[int, ...]:
    return (vault.total_balance, vault.locked_balance, vault.available_balance, vault.total_deposited,
            vault.total_withdrawn, vault.event_seq)


@pytest.mark.parametrize("lost", ["in_every_answer", "once"])
async def test_a_removed_event_stops_the_vault_at_the_gap_alerts_and_is_repaired_from_the_chain(
        node: Node, pg_database: str, redis_ns: RedisNamespace, lost: str) -> None:
    assert node.ledger is not None
    program = node.ledger.deployment.program
    async with AsyncClient(node.rpc_url, commitment=Confirmed) as client:
        alice, bob = await users_with_vaults(node, client, 2)
        signatures = []
        for amount in (10, 20, 30, 40):  # alice's events 2..5 (1: VaultInitialized)
            signatures.append(str(await alice.user.send([program.deposit(alice.user.key, alice.token_account,
                                                                         amount * USDT)])))
        await bob.user.send([program.deposit(bob.user.key, bob.token_account, 7 * USDT)])
        removed, after_gap = signatures[1], signatures[2]  # event 3 is removed: event 4 follows event 2
        alice_vault = str(program.vault(alice.user.key))
        blocked = [True]

        def refuse(request: dict[str, Any]) -> bool:  # the repair's reads of alice's vault, while blocked
            return blocked[0] and request.get("method") in ("getSignaturesForAddress", "getAccountInfo") and \
                (request.get("params") or [None])[0] == alice_vault

        proxy = RpcProxy(node.rpc_url, refuse=refuse, rewrite=strip_events(removed, -1 if lost != "once" else 1))
        settings = settings_for("balance_tracker", node, pg_database, redis_ns.url, redis_ns.prefix)
        object.__setattr__(settings, "solana_rpc_url", proxy.url)
        if lost == "once":
            blocked[0] = False  # the transaction read again holds the event: no state repair needed
        conn = await asyncpg.connect(pg_database)
        try:
            async with proxy.running(), balance_tracker(settings, reconcile_seconds=3600.0):
                owner = str(alice.user.key)

                async def alert() -> asyncpg.Record | None:
                    return await conn.fetchrow("SELECT * FROM alerts WHERE kind = 'sequence_gap' AND owner = $1",
                                               owner)

                found = await eventually(alert)
                assert found is not None and found["severity"] == "critical"
                details = found["details"] if isinstance(found["details"], dict) else __import__("json").loads(
                    found["details"])
                assert (details["expected"], details["seen"], details["signature"]) == (3, 4, after_gap)
                assert "expected 3" in found["message"] and owner in found["message"]

                async def bob_indexed() -> bool:
                    row = await conn.fetchrow("SELECT total_balance FROM vaults WHERE owner = $1", str(bob.user.key))
                    return row is not None and int(row["total_balance"]) == 7 * USDT

                assert await eventually(bob_indexed), "the other vaults go on"
                if lost != "once":
                    # stopped at the gap: alice's row is at her event 2 (10 USDT), not past it
                    row = await conn.fetchrow("SELECT * FROM vaults WHERE owner = $1", owner)
                    assert row_state(row) == (10 * USDT, 0, 10 * USDT, 10 * USDT, 0, 2)
                    stored = await conn.fetch("SELECT vault_seq FROM transactions WHERE owner = $1 ORDER BY vault_seq",
                                              owner)
                    assert [r["vault_seq"] for r in stored] == [1, 2, 4, 5], "events past the gap are kept"
                    await asyncio.sleep(1.5)  # repairs are tried again meanwhile, and fail
                    row = await conn.fetchrow("SELECT * FROM vaults WHERE owner = $1", owner)
                    assert row_state(row)[-1] == 2 and proxy.refused > 0
                    blocked[0] = False  # the node answers again: the repair goes through

                chain = vault_state(await chain_vault(client, node, alice))
                assert chain == (100 * USDT, 0, 100 * USDT, 100 * USDT, 0, 5)

                async def repaired() -> bool:
                    row = await conn.fetchrow("SELECT * FROM vaults WHERE owner = $1", owner)
                    return row_state(row) == chain

                assert await eventually(repaired), "after the repair the row equals the chain"
                audit = await conn.fetch("SELECT details->>'method' AS method FROM audit_log WHERE owner = $1 "
                                         "AND action = 'repair'", owner)
                assert [a["method"] for a in audit] == ["chain_state" if lost != "once" else "refetch"]
                seqs = [r["vault_seq"] for r in await conn.fetch(
                    "SELECT vault_seq FROM transactions WHERE owner = $1 ORDER BY vault_seq", owner)]
                assert seqs == ([1, 2, 4, 5] if lost != "once" else [1, 2, 3, 4, 5])

                # and the vault goes on from there, live
                await alice.user.send([program.withdraw(alice.user.key, alice.token_account, 5 * USDT)])
                chain = vault_state(await chain_vault(client, node, alice))

                async def followed() -> bool:
                    row = await conn.fetchrow("SELECT * FROM vaults WHERE owner = $1", owner)
                    return row_state(row) == chain

                assert await eventually(followed)
                assert await conn.fetchval("SELECT count(*) FROM alerts WHERE kind = 'sequence_gap'") == 1
        finally:
            await conn.close()
