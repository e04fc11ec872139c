"""Issue 25 item 1: answers over every vault come from PostgreSQL.

* ListVaults pages by a keyset over the indexed vault rows, with signed page tokens (a
  forged, foreign or expired one is INVALID_ARGUMENT) and the slot each page is valid at;
* the TVL (`vault_totals`) follows every write of vault rows in the same transaction (the
  indexer's batches, a rollback's resync, deletes), and its migration backfills it;
* neither ListVaults nor the gateway's /tvl reads the chain wide: an RPC proxy in front of
  the node counts getProgramAccounts, which stays 0.

Real PostgreSQL, Redis, localnet and gRPC/HTTP over sockets; nothing is mocked."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import grpc
import pytest
from collateral_vault.v1 import (
    common_pb2,
    transaction_builder_pb2,
    transaction_builder_pb2_grpc,
    vault_manager_pb2,
    vault_manager_pb2_grpc,
)
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from bench.traffic import users_with_vaults
from localnet.node import Node
from localnet.node_harness import free_port, running_node
from services.balance_tracker.events import Balances, EventRow
from services.balance_tracker.store import write_batch
from services.common import page_tokens, vault_rows
from services.common.errors import ServiceError
from services.common.migrations import migrate
from services.common.page_tokens import PageTokens
from services.gateway.app import Gateway, GatewayConfig
from tests.conftest import RedisNamespace
from tests.support.databases import migrated_before
from tests.support.rpc_proxy import RpcProxy
from tests.support.services import (
    GENESIS_OWNERS,
    balance_tracker,
    monitor,
    settings_for,
    sign,
    vault_manager,
    wait_for_rows,
)
from vault_client.config import Settings
from vault_client.vault_program import VaultProgram

USDT = 10**6
PROGRAM = VaultProgram(Pubkey.new_unique())


# --- page tokens ---------------------------------------------------------------------------

def refused(tokens: PageTokens, token: str, fragment: str, now: float | None = None) -> None:
    with pytest.raises(ServiceError) as info:
        tokens.read(token, now)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT and fragment in info.value.message, info.value.message


def test_page_tokens_cannot_be_forged_reused_elsewhere_or_kept_forever() -> None:
    key = b"k" * 32
    tokens = PageTokens(key, "ListVaults", ttl_seconds=60)
    token = tokens.issue(["Abc"], now=1_000)
    assert tokens.read(token, now=1_030) == ["Abc"]
    body, tag = token.split(".")
    forged_body = page_tokens._b64(page_tokens._unb64(body).replace(b"Abc", b"Abd"))
    refused(tokens, f"{forged_body}.{tag}", "not a token this service issued", now=1_030)  # altered position
    refused(tokens, f"{body}.{tag[:-2]}AA", "not a token this service issued", now=1_030)  # altered tag
    refused(PageTokens(b"x" * 32, "ListVaults", 60), token, "not a token this service issued", now=1_030)
    refused(PageTokens(key, "GetHistory", 60), token, "another listing", now=1_030)
    refused(tokens, token, "expired", now=1_061)
    refused(tokens, tokens.issue(["Abc"], now=2_000), "expired", now=1_000)  # issued in the future
    for junk in ("", "x", "a.b.c", "%%%.%%%", "e30.AAAA", "A" * 600 + ".A"):
        refused(tokens, junk, "not a token this service issued")


def test_page_token_keys_come_from_a_file_of_at_least_32_bytes(tmp_path: Path) -> None:
    short, good = tmp_path / "short", tmp_path / "good"
    short.write_bytes(b"too short\n")
    good.write_bytes(b"0123456789abcdef0123456789abcdef\n")
    with pytest.raises(ValueError, match="at least 32"):
        page_tokens.read_key(str(short))
    assert page_tokens.read_key(str(good)) == b"0123456789abcdef0123456789abcdef"
    assert page_tokens.read_key("") != page_tokens.read_key("")  # no file: a random key per process


# --- vault_totals ----------------------------------------------------------------------------

def event(owner: str, n: int, kind: str, amount: int, balances: Balances) -> EventRow:
    return EventRow(owner=owner, signature=f"sig{n}", instruction_index=0, event_index=0, kind=kind, amount=amount,
                    slot=100 + n, block_time=datetime.now(UTC), commitment="confirmed", balances=balances, seq=n)


async def totals_match_rows(conn: asyncpg.Connection | asyncpg.Pool) -> tuple[int, int, int, int, int]:
    """The maintained totals, after checking they equal the sums over the open vault rows."""
    summed = await conn.fetchrow(
        "SELECT COALESCE(sum(total_balance), 0)::text AS t, COALESCE(sum(locked_balance), 0)::text AS l, "
        "COALESCE(sum(available_balance), 0)::text AS a, count(*) AS n FROM vaults WHERE closed_at IS NULL")
    kept = await vault_rows.totals(conn)
    assert (kept.total, kept.locked, kept.available, kept.vault_count) == (
        int(summed["t"]), int(summed["l"]), int(summed["a"]), summed["n"])
    return kept.total, kept.locked, kept.available, kept.vault_count, kept.slot


async def test_tvl_follows_every_write_of_vault_rows(migrated_pool: asyncpg.Pool) -> None:
    a, b = str(Keypair().pubkey()), str(Keypair().pubkey())
    async with migrated_pool.acquire() as conn:
        assert await totals_match_rows(conn) == (0, 0, 0, 0, 0)
        batch = [event(a, 1, "vault_initialized", 0, Balances(0, 0, 0)),
                 event(a, 2, "deposit", 50, Balances(50, 0, 50)),
                 event(b, 3, "vault_initialized", 0, Balances(0, 0, 0)),
                 event(b, 4, "deposit", 7, Balances(7, 0, 7))]
        await write_batch(conn, PROGRAM, "collateral_vault", batch, [], (104, "sig4"))
        assert await totals_match_rows(conn) == (57, 0, 57, 2, 104)
        # a replay changes nothing; a lock moves balance between parts
        await write_batch(conn, PROGRAM, "collateral_vault", batch, [], (104, "sig4"))
        await write_batch(conn, PROGRAM, "collateral_vault", [event(a, 5, "lock", 20, Balances(50, 20, 30))], [],
                          (105, "sig5"))
        assert await totals_match_rows(conn) == (57, 20, 37, 2, 105)
        # a batch that fails (a balance the row's CHECK refuses) leaves the totals as they were
        with pytest.raises(asyncpg.CheckViolationError):
            await write_batch(conn, PROGRAM, "collateral_vault",
                              [event(b, 6, "deposit", 1, Balances(9, 0, 8))], [], (106, "sig6"))
        assert await totals_match_rows(conn) == (57, 20, 37, 2, 105)
        # withdraw everything and close: the vault leaves the count
        await write_batch(conn, PROGRAM, "collateral_vault", [event(b, 7, "withdraw", 7, Balances(0, 0, 0)),
                                                              event(b, 8, "vault_closed", 0, Balances(0, 0, 0))],
                          [], (108, "sig8"))
        assert await totals_match_rows(conn) == (50, 20, 30, 1, 108)
        # reopened
        await write_batch(conn, PROGRAM, "collateral_vault", [event(b, 9, "vault_initialized", 0, Balances(0, 0, 0)),
                                                              event(b, 10, "deposit", 3, Balances(3, 0, 3))],
                          [], (110, "sig10"))
        assert await totals_match_rows(conn) == (53, 20, 33, 2, 110)
        # the indexer's resync after a rollback (a plain UPDATE), a delete, a truncate
        await conn.execute("UPDATE vaults SET total_balance = 40, locked_balance = 10, available_balance = 30 "
                           "WHERE owner = $1", a)
        assert (await totals_match_rows(conn))[:4] == (43, 10, 33, 2)
        await conn.execute("DELETE FROM vaults WHERE owner = $1", b)
        assert (await totals_match_rows(conn))[:4] == (40, 10, 30, 1)
        await conn.execute("TRUNCATE vaults")
        assert (await totals_match_rows(conn))[:4] == (0, 0, 0, 0)


async def test_the_migration_backfills_the_totals_from_existing_vault_rows(pg_database: str) -> None:
    async with migrated_before(pg_database, 251) as pool:
        await pool.execute(
            "INSERT INTO vaults (owner, address, token_account, total_balance, locked_balance, available_balance, "
            "last_slot, closed_at) SELECT 'o' || i, 'a' || i, 't' || i, i * 10, i, i * 9, i, "
            "CASE WHEN i % 5 = 0 THEN now() END FROM generate_series(1, 100) AS i")
        await migrate(pool)
        # the open vaults: i not a multiple of 5 (80 of them)
        assert await totals_match_rows(pool) == (10 * (5050 - 1050), 5050 - 1050, 9 * (5050 - 1050), 80, 100)


async def test_pages_follow_the_address_keyset_and_say_their_slot(migrated_pool: asyncpg.Pool) -> None:
    await migrated_pool.execute(
        "INSERT INTO vaults (owner, address, token_account, total_balance, available_balance, last_slot, closed_at) "
        "SELECT 'o' || i, 'a' || lpad(i::text, 3, '0'), 't' || i, i, i, i, CASE WHEN i % 4 = 0 THEN now() END "
        "FROM generate_series(1, 30) AS i")
    await migrated_pool.execute("INSERT INTO indexer_cursor (name, slot) VALUES ('collateral_vault', 77)")
    seen: list[str] = []
    after = ""
    while True:
        vaults, more, slot = await vault_rows.page(migrated_pool, after, 7)
        assert slot == 77 and len(vaults) <= 7
        seen += [v.address for v in vaults]
        if not more:
            break
        after = vaults[-1].address
    assert seen == sorted(f"a{i:03d}" for i in range(1, 31) if i % 4)  # open vaults only, each once, in order
    # the plan is a range read of the partial index, never a scan and sort of every vault (the
    # table is tiny here, so the planner is told sequential scans cost too much, as at scale)
    async with migrated_pool.acquire() as conn:
        await conn.execute("SET enable_seqscan = off")
        plan = "\n".join(r[0] for r in await conn.fetch(
            "EXPLAIN SELECT address FROM vaults WHERE closed_at IS NULL AND address > 'a010' ORDER BY address "
            "LIMIT 8"))
    assert "vaults_open_by_address" in plan and "Sort" not in plan, plan


# --- over the services ------------------------------------------------------------------------

@pytest.fixture
async def node() -> AsyncIterator[Node]:
    async with running_node() as n:
        yield n


async def test_list_vaults_and_tvl_never_scan_the_chain(node: Node, pg_database: str, redis_ns: RedisNamespace,
                                                        tmp_path: Path) -> None:
    key_file = tmp_path / "page-token.key"
    key_file.write_bytes(b"0123456789abcdef0123456789abcdef")
    async with RpcProxy(node.rpc_url).running() as proxy, AsyncClient(node.rpc_url, commitment=Confirmed) as client:
        def conf(name: str) -> Settings:
            s = settings_for(name, node, pg_database, redis_ns.url, redis_ns.prefix)
            return dataclasses.replace(s, solana_rpc_url=proxy.url, page_token_key_file=str(key_file))

        vm, bt, mon = conf("vault_manager"), conf("balance_tracker"), conf("monitor")
        config = GatewayConfig(host="127.0.0.1", port=free_port(), vault_manager=f"127.0.0.1:{vm.grpc_port}",
                               balance_tracker=f"127.0.0.1:{bt.grpc_port}", monitor=f"127.0.0.1:{mon.grpc_port}",
                               rate_per_second=10_000, burst=10_000)
        async with balance_tracker(bt, reconcile_seconds=3600.0), vault_manager(vm) as running, \
                monitor(mon), grpc.aio.insecure_channel(running.target) as channel:
            gateway = Gateway(config)
            await gateway.start()
            try:
                accounts = await users_with_vaults(node, client, 5)
                program = node.ledger.deployment.program  # type: ignore[union-attr]
                for i, account in enumerate(accounts):
                    await account.user.send([program.deposit(account.user.key, account.token_account,
                                                             (i + 1) * USDT)])
                await wait_for_rows(pg_database, 10)
                expected = sorted(str(program.vault(Pubkey.from_string(o)))
                                  for o in [str(a.user.key) for a in accounts] + GENESIS_OWNERS)
                stub = vault_manager_pb2_grpc.VaultManagerStub(channel)
                for _ in range(100):  # the indexer commits the last vault rows right after the events
                    tvl = await call_tvl(config.port)
                    if int(tvl["total"]) == 15 * USDT:
                        break
                    await asyncio.sleep(0.05)
                before = proxy.calls["getProgramAccounts"]

                seen: list[str] = []
                token = ""
                while True:
                    page = await stub.ListVaults(vault_manager_pb2.ListVaultsRequest(page_size=2, page_token=token))
                    assert len(page.vaults) <= 2 and page.slot > 0
                    assert all(v.source == 3 and v.slot <= page.slot for v in page.vaults)  # DATA_SOURCE_DATABASE
                    seen += [v.address for v in page.vaults]
                    token = page.next_page_token
                    if not token:
                        break
                assert seen == expected
                balances = {v.owner: v.total_balance for v in
                            (await stub.ListVaults(vault_manager_pb2.ListVaultsRequest(page_size=500))).vaults}
                assert balances[str(accounts[2].user.key)] == 3 * USDT

                tvl = await call_tvl(config.port)
                assert (tvl["total"], tvl["vault_count"], tvl["chain_total"]) == (str(15 * USDT), 7, "0")
                assert int(tvl["slot"]) >= max(page.slot, 1)
                assert tvl["chain_matches"] is False and tvl["reconciled_at"] == "0"  # no reconciliation ran yet
                assert proxy.calls["getProgramAccounts"] == before == 0

                # a forged, foreign or stale token: INVALID_ARGUMENT, nothing listed
                first = await stub.ListVaults(vault_manager_pb2.ListVaultsRequest(page_size=2))
                body, tag = first.next_page_token.split(".")
                stale = PageTokens(key_file.read_bytes(), "ListVaults", 3600).issue([seen[1]], now=1_000_000)
                foreign = PageTokens(b"y" * 32, "ListVaults", 3600).issue([seen[1]])
                for bad, fragment in ((f"{body}.{'A' * len(tag)}", "not a token"), (foreign, "not a token"),
                                      (stale, "expired"), (seen[1], "not a token")):
                    with pytest.raises(grpc.aio.AioRpcError) as info:
                        await stub.ListVaults(vault_manager_pb2.ListVaultsRequest(page_size=2, page_token=bad))
                    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                    assert fragment in (info.value.details() or "")
            finally:
                await gateway.stop()


async def call_tvl(port: int) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/tvl") as response:
        assert response.status == 200
        answer: dict[str, Any] = await response.json()
        return answer


async def test_get_vault_and_submissions_go_on_while_a_client_walks_every_vault(
        node: Node, pg_database: str, redis_ns: RedisNamespace) -> None:
    """Issue 25: a ListVaults walk re-read every vault from the chain per page, and GetVault
    stalled up to 3.4 s and deposits over 2 s while one client paged. Now each page is one
    indexed read: with 20,000 vault rows walked in pages of 500, over and over, GetVault (from
    memory and from the chain) and a deposit's build and submission complete while the walk
    is in progress, between its pages (asserted by the order things finish in, no timing)."""
    settings = settings_for("vault_manager", node, pg_database, redis_ns.url, redis_ns.prefix)
    async with vault_manager(settings) as running, grpc.aio.insecure_channel(running.target) as channel, \
            AsyncClient(node.rpc_url, commitment=Confirmed) as client:
        conn = await asyncpg.connect(pg_database)
        try:
            await conn.execute(
                "INSERT INTO vaults (owner, address, token_account, total_balance, available_balance, last_slot) "
                "SELECT 'o' || i, 'a' || lpad(i::text, 6, '0'), 't' || i, i, i, i FROM generate_series(1, 20000) i")
        finally:
            await conn.close()
        [account] = await users_with_vaults(node, client, 1)
        owner = str(account.user.key)
        stub = vault_manager_pb2_grpc.VaultManagerStub(channel)
        builder = transaction_builder_pb2_grpc.TransactionBuilderStub(channel)
        log: list[str] = []  # what finished, in order
        done = asyncio.Event()

        async def walk() -> None:
            while not done.is_set():
                token = ""
                while True:
                    page = await stub.ListVaults(vault_manager_pb2.ListVaultsRequest(page_size=500, page_token=token))
                    log.append("page")
                    token = page.next_page_token
                    if not token:
                        break
                log.append("walked")

        walker = asyncio.create_task(walk())
        try:
            while log.count("page") < 3:
                await asyncio.sleep(0.01)
            for n in range(20):
                reply = await stub.GetVault(vault_manager_pb2.GetVaultRequest(owner=owner, fresh=n % 2 == 0))
                assert reply.vault.owner == owner
                log.append("get_vault")
            built = await builder.BuildDeposit(transaction_builder_pb2.BuildDepositRequest(owner=owner,
                                                                                         amount=USDT))
            result = await builder.SubmitTransaction(transaction_builder_pb2.SubmitTransactionRequest(
                signed_transaction_base64=sign(built.transaction.transaction_base64, account.user.keypair),
                wait_for=common_pb2.COMMITMENT_CONFIRMED))
            assert result.status.error == "" and result.status.commitment >= common_pb2.COMMITMENT_CONFIRMED
            log.append("submitted")
            pages_before = log.count("page")
            while log.count("page") < pages_before + 3:  # and the walk goes on after them
                await asyncio.sleep(0.01)
        finally:
            done.set()
            await walker
        first, last = log.index("get_vault"), log.index("submitted")
        assert "page" in log[:first] and "page" in log[last:]
        # between GetVault answers, pages were answered too: each waited for no walk to end
        assert "page" in log[first:last]
        assert (await stub.GetVault(vault_manager_pb2.GetVaultRequest(owner=owner, fresh=True))).vault.total_balance \
            == USDT  # the deposit landed
