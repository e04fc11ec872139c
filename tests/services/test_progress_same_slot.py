"""The indexer's progress look with its cursor in the slot of the newest program transaction
(issue 25, `progress.py`): one rule (`progress.processed`) says whether everything up to that
transaction is processed, for the lag watermark (`caught_up_slot`) and, once also published,
for the Redis cache's trust (`{prefix}indexer:current`). Real PostgreSQL, Redis and localnet.

* the rule, and which looks need the database, case by case (pure);
* which signatures count as stored (events, admin actions; nothing else);
* a transaction found stored counts for the cache only while every committed batch is
  published (`Indexer.all_published`): following, no batch between commit and cache writes,
  nothing lost, the published mark at the cursor;
* a batch that ends inside a slot records no caught-up watermark for that slot and is not
  vouched for, until the rest of the slot is written;
* idle with the cursor at another transaction of the newest one's slot, written after it (a
  position_manager grant after a deposit; two deposits caught up by one backfill batch, whose
  cursor names the first): caught up and vouched for, look after look.

The scenarios that need batches to end where the test says drive a real Indexer object that
holds the lease: its progress watch runs as in the service, and each batch goes through its
write pipeline (commit, then cursor, cache entries and published mark); only its follower (the
subscription that would choose the batches) does not run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import asyncpg
import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.instruction import Instruction
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from bench.traffic import USDT, Account, users_with_vaults
from localnet.node import Node
from localnet.node_harness import running_node
from services.balance_tracker.events import AdminEvent, Balances, EventRow, decode
from services.balance_tracker.indexer import progress
from services.balance_tracker.indexer.follower import Indexer, IndexerConfig, indexer_pool
from services.balance_tracker.indexer.leadership import new_holder
from services.balance_tracker.indexer.pipeline import WritePipeline
from services.balance_tracker.indexer.publisher import Publisher
from services.balance_tracker.store import last_seq, number, read_cursor, stored_signatures, write_batch
from services.common.vault_cache import VaultCache
from tests.conftest import RedisNamespace
from tests.support.services import balance_tracker, settings_for, wait_for_rows
from vault_client.config import Settings
from vault_client.rpc_http import rpc_client
from vault_client.vault_program import VaultProgram

CURSOR = "collateral_vault"
EVERY = 0.1  # the watch's interval in these tests (the service's is 5 s)
LOOKS = 10  # looks a negative claim waits through


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    async with running_node() as n:
        yield n


# --- the rule ------------------------------------------------------------------------------


def test_the_rule_case_by_case() -> None:
    newest = (105, "n")
    assert progress.processed(newest, (106, "x"), stored=False)  # a later slot: all of 105
    assert progress.processed(newest, (105, "n"), stored=False)  # that very transaction
    assert progress.processed(newest, (105, "x"), stored=True)  # the same slot, and it is written
    assert not progress.processed(newest, (105, "x"), stored=False)  # a batch may end inside the slot
    assert not progress.processed(newest, (105, None), stored=False)
    assert not progress.processed(newest, (104, "x"), stored=True)  # an earlier slot is never enough
    assert not progress.processed(newest, None, stored=True)  # nothing committed


def test_only_a_look_in_the_cursor_slot_at_another_transaction_needs_the_database() -> None:
    def look(slot: int | None, signature: str = "") -> progress.Look:
        return progress.Look(0.0, 200, slot, signature)

    cursor = (105, "c")
    assert progress.needs_lookup([look(105, "n"), look(105, "n")], cursor) == ["n"]  # asked once
    assert progress.needs_lookup([look(105, "n"), look(100, "m")], cursor) == ["n"]
    assert progress.needs_lookup([look(105, "p"), look(105, "n")], cursor) == ["n", "p"]  # one query for both
    assert progress.needs_lookup([look(105, "c"), look(106, "n")], cursor) == []  # the cursor's own; not yet
    assert progress.needs_lookup([look(None), None], cursor) == []
    assert progress.needs_lookup([look(105, "n")], None) == []


def test_passed_goes_by_the_published_cursor_and_counts_what_it_is_told_is_written() -> None:
    look = progress.Look(0.0, 200, 105, "n")
    assert progress.passed(look, (106, "x")) and progress.passed(look, (105, "n"))
    assert not progress.passed(look, (105, "x"))
    assert progress.passed(look, (105, "x"), frozenset({"n"}))
    assert not progress.passed(look, (105, "x"), frozenset({"other"}))
    assert not progress.passed(look, (104, "x"), frozenset({"n"}))  # published behind the slot
    assert not progress.passed(look, None, frozenset({"n"}))
    assert not progress.passed(None, (106, "x")) and not progress.passed(progress.Look(0.0, 200, None), (106, "x"))


# --- stored transactions, and when they count for the cache ----------------------------------


def _event(owner: Pubkey, signature: str, seq: int) -> EventRow:
    return EventRow(owner=str(owner), signature=signature, instruction_index=0, event_index=0, kind="deposit",
                    amount=1, slot=100, block_time=datetime.now(UTC), commitment="confirmed",
                    balances=Balances(1, 0, 1), vault_seq=1, seq=seq)


async def test_stored_signatures_are_those_of_committed_events_and_admin_actions(
        migrated_pool: asyncpg.Pool) -> None:
    program = VaultProgram(Pubkey.new_unique())
    admin = AdminEvent("PauseFlagsSet", str(Pubkey.new_unique()), "admin-sig", 0, 0, {"seq": "1"})
    async with migrated_pool.acquire() as conn:
        await write_batch(conn, program, "test", [_event(Pubkey.new_unique(), "event-sig", 1)], [admin],
                          (100, "admin-sig"))
        # an audit entry of another kind (not an indexed admin action) with a signature is no evidence
        await conn.execute("INSERT INTO audit_log (owner, actor, action, signature, details) "
                           "VALUES ('', 'indexer', 'rollback', 'rolled-sig', '{}'::jsonb)")
    assert await stored_signatures(migrated_pool, ["event-sig", "admin-sig", "rolled-sig", "unknown"]) == {
        "event-sig", "admin-sig"}
    assert await stored_signatures(migrated_pool, []) == set()


async def test_a_transaction_found_stored_counts_only_while_everything_committed_is_published(
        idle_indexer: Indexer, redis_ns: RedisNamespace) -> None:
    indexer = idle_indexer
    key = indexer.publisher.cache.current_key()
    look = progress.Look(time.monotonic(), 110, 105, "n")  # the newest transaction, in the cursor's slot
    written = frozenset({"n"})

    async def vouched() -> bool:
        await redis_ns.client.set(key, 1)  # left by an earlier look: withdrawn unless vouched again
        result = await progress.vouch(indexer, [look, None], indexer.publisher.published, True, 5.0, written)
        assert result == (await redis_ns.client.exists(key) == 1)
        return result

    indexer.cursor = indexer.publisher.published = (105, "c")
    assert not indexer.all_published() and not await vouched()  # not following: no pipeline, not ready
    gate = asyncio.Event()

    async def held() -> None:  # the batch's write waits for the test
        await gate.wait()

    pipeline = WritePipeline(indexer.pool, indexer.config.program, "test", before_write=held)
    indexer._pipeline = pipeline  # what the follower sets up before its backfill
    assert not await vouched()  # not ready: a backfill (and the rebuild a predecessor may need) still to come
    indexer.ready.set()
    assert indexer.all_published() and await vouched()
    assert await redis_ns.client.get(key) == b"110"
    assert not await progress.vouch(indexer, [look, None], indexer.publisher.published, True, 5.0)  # no evidence

    # a batch in flight (committed or not: its cache writes may be still to come)
    task = await pipeline.submit([_event(Pubkey.new_unique(), "later", await last_seq(indexer.pool) + 1)], [],
                                 (106, "later"))
    assert not pipeline.settled and not await vouched()
    gate.set()
    await task
    assert pipeline.settled and await vouched()  # on_commit done (none here: nothing to wait for)

    indexer.cursor = (105, "d")  # a batch committed, its cache writes not done
    assert not await vouched()
    indexer.publisher.published = (105, "d")
    assert await vouched()
    indexer.publisher.dirty = True  # a cache write was lost
    assert not await vouched()
    indexer.publisher.dirty = False
    pipeline.cancel()  # a resubscription abandoned the batches in flight, some perhaps committed
    assert not pipeline.settled and not await vouched()


# --- scenarios on localnet -----------------------------------------------------------------


@dataclass
class Leader:
    """A real Indexer holding the lease, whose batches the test chooses (see the module's
    docstring), and its progress watch running."""

    indexer: Indexer
    node: Node
    client: AsyncClient
    pool: asyncpg.Pool  # the test's own connections

    async def write(self, signatures: list[str]) -> None:
        """One batch of these transactions, decoded from the node's logs and numbered after the
        stored events, through the indexer's write pipeline; its cursor is the last one."""
        assert self.node.ledger is not None
        deployment = self.node.ledger.deployment
        events: list[EventRow] = []
        admin: list[AdminEvent] = []
        slot = 0
        for signature in signatures:
            fetched = (await self.client.get_transaction(Signature.from_string(signature), commitment=Confirmed,
                                                         max_supported_transaction_version=0)).value
            assert fetched is not None and fetched.transaction.meta is not None
            rows, admins = decode(signature, list(fetched.transaction.meta.log_messages or []), fetched.slot, None,
                                  "confirmed", str(deployment.program.program_id), str(deployment.pm_id))
            assert rows or admins
            events += rows
            admin += admins
            slot = fetched.slot
        number(events, await last_seq(self.pool))
        await self.indexer._pipeline.submit(events, admin, (slot, signatures[-1]))
        await self.indexer._pipeline.drain()
        assert self.indexer.cursor == (slot, signatures[-1])
        assert self.indexer.publisher.published == self.indexer.cursor and not self.indexer.publisher.dirty

    async def caught_up_slot(self) -> int:
        return int(await self.pool.fetchval("SELECT caught_up_slot FROM indexer_cursor WHERE name = $1", CURSOR))

    async def vouched(self) -> bool:
        return bool(await self.indexer.publisher.redis.exists(self.indexer.publisher.cache.current_key()))


def _settings(node: Node, database: str, redis_ns: RedisNamespace) -> Settings:
    return settings_for("balance_tracker", node, database, redis_ns.url, redis_ns.prefix)


async def _until(check: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not await check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        await asyncio.sleep(EVERY / 2)


async def _indexed_and_published(pool: asyncpg.Pool, redis_ns: RedisNamespace, vaults: int, database: str) -> None:
    """Waits until `vaults` new vaults are indexed and everything committed is in Redis."""
    await wait_for_rows(database, vaults, kind="vault_initialized")

    async def published() -> bool:
        cursor = await read_cursor(pool, CURSOR)
        mark = await redis_ns.client.get(f"{redis_ns.prefix}indexer:published")
        return cursor is not None and mark == f"{cursor[0]}:{cursor[1]}".encode()

    await _until(published, 30, "everything committed is published")


@asynccontextmanager
async def leader(node: Node, database: str, redis_ns: RedisNamespace, vaults: int
                 ) -> AsyncIterator[tuple[Leader, list[Account]]]:
    """`vaults` new vaults, indexed by the service (stopped then), and a Leader that took over."""
    settings = _settings(node, database, redis_ns)
    pool = await asyncpg.create_pool(database, min_size=1, max_size=4)
    client = AsyncClient(node.rpc_url, commitment=Confirmed)
    watch: asyncio.Task[None] | None = None
    own: asyncpg.Pool | None = None
    indexer: Indexer | None = None
    try:
        async with balance_tracker(settings, snapshot_seconds=3600.0, reconcile_seconds=3600.0):
            accounts = await users_with_vaults(node, client, vaults)
            await _indexed_and_published(pool, redis_ns, vaults, database)
        holder = new_holder()
        own = await indexer_pool(database, holder)
        cache = VaultCache(redis_ns.client, redis_ns.prefix, 60)
        config = IndexerConfig(settings.solana_rpc_url, settings.solana_ws_url, database, settings.program,
                               exchange_program=settings.position_manager_id, lease_seconds=120.0)
        indexer = Indexer(config, own, Publisher(redis_ns.client, cache, settings.program, redis_ns.prefix), holder)
        await indexer.lease.acquire()
        # as the follower starts a term: the cursor as committed, what its predecessor published
        indexer.cursor = await read_cursor(own, CURSOR)
        assert indexer.cursor is not None and indexer.cursor[1] is not None
        await indexer.publisher.resume((indexer.cursor[0], indexer.cursor[1]))
        assert not indexer.publisher.dirty
        indexer._pipeline = WritePipeline(own, config.program, CURSOR, on_commit=indexer._committed,
                                          fence=(CURSOR, indexer.lease.term))
        indexer.ready.set()

        async def report(healthy: bool) -> None:
            pass

        watch = asyncio.create_task(progress.watch(indexer, report, stuck_seconds=3600.0, every=EVERY))
        yield Leader(indexer, node, client, pool), accounts
    finally:
        if watch is not None:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
        if indexer is not None:
            await indexer.lease.release()
        if own is not None:
            await own.close()
        await client.close()
        await pool.close()


async def in_one_slot(node: Node, client: AsyncClient, transactions: list[tuple[Account, list[Instruction]]]
                      ) -> tuple[list[str], int]:
    """Each (account, instructions) as a transaction of its own, signed by the account's user,
    all landed in one slot (the node takes them one after the other without yielding to its
    slot clock) in this order. Returns their signatures and that slot, confirmed."""
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    txs = [VersionedTransaction(Message.new_with_blockhash(instructions, a.user.key, blockhash), [a.user.keypair])
           for a, instructions in transactions]
    signatures = [await node.send(tx, skip_preflight=False) for tx in txs]
    statuses = (await client.get_signature_statuses([Signature.from_string(s) for s in signatures])).value
    slots = {status.slot for status in statuses if status is not None}
    assert len(slots) == 1 and None not in statuses and all(s.err is None for s in statuses if s), statuses
    for signature in signatures:
        await client.confirm_transaction(Signature.from_string(signature), Confirmed, sleep_seconds=0.02)
    return signatures, slots.pop()


def _deposit(node: Node, account: Account, amount: int) -> tuple[Account, list[Instruction]]:
    assert node.ledger is not None
    return account, [node.ledger.deployment.program.deposit(account.user.key, account.token_account, amount)]


async def _stays(check: object, what: str) -> None:
    """`check` holds at each of LOOKS looks."""
    for _ in range(LOOKS):
        await asyncio.sleep(EVERY)
        assert await check(), what  # type: ignore[operator]


async def test_a_batch_that_ends_inside_a_slot_is_not_caught_up_with_that_slot(
        node: Node, pg_database: str, redis_ns: RedisNamespace) -> None:
    """Two deposits in one slot; a batch holds only the first (the cursor names the slot): no
    watermark for that slot and no trust, look after look, until the second is written."""
    async with leader(node, pg_database, redis_ns, 2) as (lead, accounts):
        (first, second), slot = await in_one_slot(node, lead.client, [_deposit(node, a, 3 * USDT) for a in accounts])
        await lead.write([first])
        assert (await lead.indexer.pool.fetchval("SELECT slot FROM indexer_cursor WHERE name = $1", CURSOR)) == slot

        async def behind() -> bool:
            return await lead.caught_up_slot() < slot and not await lead.vouched()

        await _stays(behind, "caught up (or vouched for) with a slot whose later transaction is not written")
        await lead.write([second])

        async def caught_up() -> bool:
            return await lead.caught_up_slot() >= slot and await lead.vouched()

        await _until(caught_up, 5, "caught up once the rest of the slot is written")


async def test_idle_with_a_grant_written_after_the_deposit_of_its_slot(
        node: Node, pg_database: str, redis_ns: RedisNamespace) -> None:
    """A deposit, then a grant (position_manager only: the vault program's history does not list
    it) in one slot, written as two batches: the cursor names the grant, the newest vault
    transaction is the deposit. Idle, the indexer is caught up and vouches, look after look."""
    assert node.ledger is not None
    exchange = node.ledger.deployment.exchange
    async with leader(node, pg_database, redis_ns, 1) as (lead, [account]):
        grant = exchange.grant(account.user.key, 5 * USDT, int(time.time()) + 3600)
        (deposit, granted), slot = await in_one_slot(node, lead.client, [_deposit(node, account, 4 * USDT),
                                                                        (account, [grant])])
        async with rpc_client(node.rpc_url) as rpc:  # what a look sees: the deposit, not the grant
            assert await progress.newest_program_transaction(rpc, lead.indexer) == (slot, deposit)
        await lead.write([deposit])
        await lead.write([granted])

        async def caught_up() -> bool:
            return await lead.caught_up_slot() >= slot and await lead.vouched()

        await _until(caught_up, 5, "caught up and vouched for while idle")
        await _stays(caught_up, "the trust or the watermark lapsed while idle")


async def test_idle_after_a_backfill_batch_that_holds_two_deposits_of_one_slot(
        node: Node, pg_database: str, redis_ns: RedisNamespace) -> None:
    """The service itself: two deposits land in one slot while it is stopped; started, its
    backfill writes them in one batch, whose cursor names the slot's last transaction (the
    newest, so an idle look needs no lookup of the slot's other transactions). Idle then, it is
    caught up and vouches for the cache."""
    def settings() -> Settings:  # each start its own ports (a stopped service's metrics port may linger)
        return replace(_settings(node, pg_database, redis_ns), indexer_stuck_seconds=1.0)  # a look every 0.25 s

    pool = await asyncpg.create_pool(pg_database, min_size=1, max_size=2)
    try:
        async with AsyncClient(node.rpc_url, commitment=Confirmed) as client:
            async with balance_tracker(settings(), snapshot_seconds=3600.0, reconcile_seconds=3600.0):
                accounts = await users_with_vaults(node, client, 2)
                await _indexed_and_published(pool, redis_ns, 2, pg_database)
            (first, second), slot = await in_one_slot(node, client, [_deposit(node, a, 2 * USDT) for a in accounts])
            async with balance_tracker(settings(), snapshot_seconds=3600.0, reconcile_seconds=3600.0):
                await wait_for_rows(pg_database, 4)
                cursor = await read_cursor(pool, CURSOR)
                assert cursor == (slot, second), (cursor, first, second)
                key = f"{redis_ns.prefix}indexer:current"

                async def caught_up() -> bool:
                    row = await pool.fetchval("SELECT caught_up_slot FROM indexer_cursor WHERE name = $1", CURSOR)
                    return int(row) >= slot and bool(await redis_ns.client.exists(key))

                await _until(caught_up, 10, "caught up and vouched for while idle")
                await _stays(caught_up, "the trust or the watermark lapsed while idle")
    finally:
        await pool.close()
