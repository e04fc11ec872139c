"""The indexer checks each vault's event numbers (issue 23, docs/indexer-gaps.md): a removed
event in the middle of a vault's sequence makes it stop at the gap for that vault, alert,
and repair the vault from the chain. Real transactions on localnet, the real indexer
(balance_tracker), PostgreSQL and Redis; the node's answers pass through an RPC proxy
(real HTTP over loopback) that removes one event from one transaction's log and, for a
while, refuses the repair's reads of the vault."""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.account import Account as SolAccount
from solders.address_lookup_table_account import AddressLookupTableAccount
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from bench.traffic import USDT, Account, users_with_vaults
from localnet import genesis
from localnet.node import Node
from localnet.node_harness import running_node
from localnet.vault_env import LOOKUP_TABLE_PROGRAM
from tests.conftest import RedisNamespace
from tests.support.rpc_proxy import RpcProxy
from tests.support.services import balance_tracker, fund_operator, settings_for
from vault_client import spl_token
from vault_client.vault_program import MAX_SETTLE_PAIRS, SettlePair, Vault


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


async def test_the_largest_settlement_is_indexed_event_by_event_without_a_gap(
        node: Node, pg_database: str, redis_ns: RedisNamespace) -> None:
    """A settlement of MAX_SETTLE_PAIRS pairs, each with its own payer and receiver and a
    surplus on both vaults (the most vault events a settlement emits), sent to localnet in a
    v0 transaction (its accounts through a lookup table, as tests/program/test_settle_batch.py
    does), goes through the indexer: every event stored, every vault row equal to the chain,
    no gap alerted."""
    assert node.ledger is not None
    deployment = node.ledger.deployment
    program, exchange = deployment.program, deployment.exchange
    operator = genesis.dev_keypair("operator")
    settings = settings_for("balance_tracker", node, pg_database, redis_ns.url, redis_ns.prefix)
    async with AsyncClient(node.rpc_url, commitment=Confirmed) as client, \
            balance_tracker(settings, reconcile_seconds=3600.0):
        await fund_operator(client)
        payers = await users_with_vaults(node, client, MAX_SETTLE_PAIRS, usdt=200)
        receivers = await users_with_vaults(node, client, MAX_SETTLE_PAIRS, usdt=0)
        [donor] = await users_with_vaults(node, client, 1, usdt=100)
        expires = int(time.time()) + 86_400

        async def prepare(payer: Account, receiver: Account) -> None:
            await payer.user.send([program.deposit(payer.user.key, payer.token_account, 100 * USDT),
                                   exchange.grant(payer.user.key, 100 * USDT, expires)])
            for owner in (payer.user.key, receiver.user.key):  # a surplus on both vaults
                await donor.user.send([spl_token.transfer(donor.token_account, program.vault_token(owner),
                                                          donor.user.key, 1)])

        for payer, receiver in zip(payers, receivers, strict=True):
            await prepare(payer, receiver)
        locks = [exchange.lock(operator.pubkey(), p.user.key, 50 * USDT, 1) for p in payers]
        for lock in locks:
            await send_signed(client, [lock], operator)
        settle = exchange.settle(operator.pubkey(), [SettlePair(p.user.key, r.user.key, 50 * USDT, 2)
                                                     for p, r in zip(payers, receivers, strict=True)])
        signature = await send_v0(node, client, settle, operator, static={program.program_id})
        logs = (await client.get_transaction(Signature.from_string(signature), commitment=Confirmed,
                                             max_supported_transaction_version=0)).value
        assert logs is not None and logs.transaction.meta is not None
        assert "Log truncated" not in (logs.transaction.meta.log_messages or [])

        conn = await asyncpg.connect(pg_database)
        try:
            async def settled() -> list[asyncpg.Record]:
                rows = await conn.fetch("SELECT kind FROM transactions WHERE signature = $1", signature)
                return rows if len(rows) >= 4 * MAX_SETTLE_PAIRS else []

            rows = await eventually(settled)
            kinds = sorted(r["kind"] for r in rows)
            assert kinds == sorted(["surplus"] * 2 * MAX_SETTLE_PAIRS + ["transfer", "operator_settle"]
                                   * MAX_SETTLE_PAIRS), kinds
            for account in payers + receivers:
                chain = vault_state(await chain_vault(client, node, account))

                async def agrees(owner: str = str(account.user.key), expected: tuple[int, ...] = chain) -> bool:
                    row = await conn.fetchrow("SELECT * FROM vaults WHERE owner = $1", owner)
                    return row is not None and row_state(row) == expected

                assert await eventually(agrees), str(account.user.key)
            assert await conn.fetchval("SELECT count(*) FROM alerts WHERE kind LIKE '%sequence_gap'") == 0
        finally:
            await conn.close()


async def send_signed(client: AsyncClient, instructions: list[Instruction], payer: Keypair) -> str:
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    tx = VersionedTransaction(Message.new_with_blockhash(instructions, payer.pubkey(), blockhash), [payer])
    signature = (await client.send_transaction(tx)).value
    await client.confirm_transaction(signature, Confirmed, sleep_seconds=0.02)
    return str(signature)


async def send_v0(node: Node, client: AsyncClient, ix: Instruction, payer: Keypair, static: set[Pubkey]) -> str:
    """`ix` in a v0 transaction whose other accounts (but `static`) come from a lookup table
    written into localnet's chain directly (it has no lookup table program history)."""
    keys = list(dict.fromkeys(m.pubkey for m in ix.accounts if m.pubkey != payer.pubkey() and m.pubkey not in static))
    table = Pubkey.new_unique()
    meta = struct.pack("<IQQBB32sH", 1, 2**64 - 1, 0, 0, 1, bytes(payer.pubkey()), 0)
    await node.call(lambda ledger: ledger.svm.set_account(table, SolAccount(
        10**9, meta + b"".join(bytes(k) for k in keys), LOOKUP_TABLE_PROGRAM, False, 0)))
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    message = MessageV0.try_compile(payer.pubkey(), [ix], [AddressLookupTableAccount(table, keys)], blockhash)
    signature = (await client.send_transaction(VersionedTransaction(message, [payer]))).value
    await client.confirm_transaction(signature, Confirmed, sleep_seconds=0.02)
    return str(signature)


async def test_a_truncated_log_is_alerted_at_once_and_the_vault_repaired_at_its_next_event(
        node: Node, pg_database: str, redis_ns: RedisNamespace) -> None:
    """A transaction whose log is over the node's 10,000-byte limit (a wallet's own
    transaction with many deposits: the program cannot bound what other instructions share
    its transaction) loses the events after the cut. Before, the indexer took what was left
    silently. Now it raises a critical `log_truncated` alert naming the transaction, and the
    vault is held at its next event and repaired from the chain."""
    assert node.ledger is not None
    program = node.ledger.deployment.program
    async with AsyncClient(node.rpc_url, commitment=Confirmed) as client:
        [alice] = await users_with_vaults(node, client, 1, usdt=100)
        many = [program.deposit(alice.user.key, alice.token_account, 1 * USDT) for _ in range(24)]
        signature = str(await alice.user.send(many))
        logs = (await client.get_transaction(Signature.from_string(signature), commitment=Confirmed,
                                             max_supported_transaction_version=0)).value
        assert logs is not None and logs.transaction.meta is not None
        assert "Log truncated" in (logs.transaction.meta.log_messages or []), "the log is really cut"
        settings = settings_for("balance_tracker", node, pg_database, redis_ns.url, redis_ns.prefix)
        conn = await asyncpg.connect(pg_database)
        try:
            async with balance_tracker(settings, reconcile_seconds=3600.0):
                async def alert() -> asyncpg.Record | None:
                    return await conn.fetchrow("SELECT * FROM alerts WHERE kind = 'log_truncated'")

                found = await eventually(alert)
                assert found is not None and found["severity"] == "critical" and signature in found["message"]
                await alice.user.send([program.withdraw(alice.user.key, alice.token_account, 1 * USDT)])
                chain = vault_state(await chain_vault(client, node, alice))
                assert chain[0] == 23 * USDT

                async def repaired() -> bool:
                    row = await conn.fetchrow("SELECT * FROM vaults WHERE owner = $1", str(alice.user.key))
                    return row is not None and row_state(row) == chain

                assert await eventually(repaired), "the next event finds the gap; the row is repaired"
                assert await conn.fetchval("SELECT count(*) FROM alerts WHERE kind = 'sequence_gap'") == 1
        finally:
            await conn.close()
