"""The indexer: follows the vault program and position_manager (the exchange program) and
writes their events to PostgreSQL.

* Exactly one active indexer per deployment: it holds a lease in PostgreSQL that expires
  unless renewed (`leadership.py`); another replica waits as hot standby and takes over
  (term + 1) once the lease has expired, terminating the old holder's connections. Every
  batch is fenced by its term inside its own statements, so a leader that comes back after
  losing the lease writes nothing, and a leader that cannot renew stops writing itself.
  The indexer's connections (its own pool) end idle transactions and statements on the
  server's side (`idle_in_transaction_session_timeout`, `statement_timeout`).
* No gaps: it subscribes (logsSubscribe, mentions each program, on one connection, so
  the notifications keep the node's order) first, buffering, then backfills from its cursor
  with getSignaturesForAddress (each program, from the cursor's slot) + getTransaction, then
  drains the buffer. Any disconnect repeats subscribe + backfill. The cursor only moves after
  the events before it are committed (duplicates are dropped by the unique key; a
  transaction that mentions both programs arrives twice and is written once).
* Batches go through a write pipeline (`pipeline.py`): several in flight, their effects
  (vault rows, cursor, cache, pub/sub) in batch order. Each event is numbered (`seq`, global
  and in commit order) before its batch is written, from the highest number stored.
* PostgreSQL unavailable: the batch is retried with backoff until it commits; nothing is
  acknowledged in between. Redis unavailable: indexing goes on; the cache is rebuilt later.
* Commitment below confirmed: rows are stored as `processed` and promoted when their
  signature is confirmed, or deleted (and their vaults re-read from the chain) if the
  signature disappears — a rolled-back fork.
* Each vault's event numbers are checked gap-free before a batch is written (`gaps.py`):
  at a gap the vault's row stays at its last good event, a critical alert is raised, and
  the vault is repaired from the chain (`repair.py`: its transactions read again, else its
  account's state) before it moves on; docs/indexer-gaps.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter as Tally
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import asyncpg
from prometheus_client import Counter, Gauge
from solana.rpc.commitment import Commitment
from solana.rpc.websocket_api import RpcTransactionLogsFilterMentions, SolanaWsClient
from solders.pubkey import Pubkey
from solders.rpc.responses import LogsNotification
from solders.signature import Signature

from services.balance_tracker.events import ADMIN_EVENTS, AdminEvent, EventRow, decode
from services.balance_tracker.indexer import backfill, repair
from services.balance_tracker.indexer.gaps import AdminSequence, Gap, SequenceGuard
from services.balance_tracker.indexer.leadership import LeadershipLost, Lease, new_holder
from services.balance_tracker.indexer.pipeline import DEFAULT_DEPTH, WritePipeline
from services.balance_tracker.indexer.publisher import Publisher
from services.balance_tracker.store import Fenced, last_seq, number, read_cursor, to_seq, unique
from services.common import pools
from vault_client.http_client import HttpClient
from vault_client.rpc_http import SolanaRpc, rpc_client
from vault_client.vault_program import Vault, VaultProgram

logger = logging.getLogger("indexer")
T = TypeVar("T")

EVENTS_INDEXED = Counter("indexer_events_total", "Program events written", ["kind"])
INDEXER_SLOT = Gauge("indexer_cursor_slot", "Slot of the indexer cursor")
INDEXER_LEADER = Gauge("indexer_is_leader", "1 while this replica is the active indexer")
DB_RETRIES = Counter("indexer_db_retries_total", "Batches retried because PostgreSQL failed")
ROLLBACKS = Counter("indexer_rolled_back_events_total", "Events deleted because their slot was rolled back")
GAPS = Counter("indexer_sequence_gaps_total", "Gaps found in a vault's event numbers")
REPAIRS = Counter("indexer_gap_repairs_total", "Vaults repaired after a gap", ["method"])
TRUNCATED = Counter("indexer_truncated_logs_total", "Transactions whose log the node truncated (events lost)")
LOG_TRUNCATED = "Log truncated"  # the line a node logs where it cut a transaction's log
HELD = Gauge("indexer_vaults_held", "Vaults whose row waits at a gap for its repair")


HISTORY_WAIT_SECONDS = 60.0
REPAIR_RETRY_SECONDS = 1.0  # a vault whose repair failed (the node did not answer) is tried again after
REFETCH_ROUNDS = 3  # gaps filled by reading transactions again, per batch, before a state repair
SEEN_SIGNATURES = 10_000  # notifications remembered to drop a transaction's second (one per program followed)


def _as_list(received: Any) -> list[Any]:
    return received if isinstance(received, list) else [received]


@dataclass
class IndexerConfig:
    rpc_url: str
    ws_url: str
    database_url: str
    program: VaultProgram
    commitment: str = "confirmed"
    # position_manager, the exchange program (None: the vault program only)
    exchange_program: Pubkey | None = None
    cursor_name: str = "collateral_vault"
    # The most transactions one batch takes (a backlog: a backfill or a burst). Each batch
    # is one PostgreSQL transaction that also rewrites the vault rows it touches, so larger
    # batches cost less per event (bench/bench_indexer.py); live batches are as small as the
    # rate makes them.
    batch_size: int = 2_000
    # Group commit: a batch is written at once when no earlier batch is in flight; while
    # one is, events gather until it commits or this long has passed.
    batch_wait_seconds: float = 0.005
    write_depth: int = DEFAULT_DEPTH  # batches written concurrently, committed in order
    # catching up (backfill.py): getTransaction round trips in flight, requests per JSON-RPC
    # batch (RPC_MAX_BATCH; 1: each alone), chunks of `batch_size` fetched ahead of the writer.
    # 8 in flight: with 4 the catching-up indexer was busy 77% of the time (py-spy samples at
    # 50,000 vaults, waiting for answers), with 8 91%
    backfill_concurrency: int = 8
    rpc_max_batch: int = 100
    backfill_chunks_ahead: int = 2
    lease_seconds: float = 10.0  # the leadership lease (renewed every fifth of it)


def _spliced(events: list[EventRow], gaps: list[Gap], found: dict[str, list[EventRow]]) -> list[EventRow]:
    """The batch with each vault's refetched events just before the event after its gap."""
    at: dict[int, list[EventRow]] = {}
    for gap in gaps:
        rows = found.get(gap.owner)
        if rows is None:
            continue
        index = next((i for i, e in enumerate(events) if e.signature == gap.signature and gap.seen in (
            e.vault_seq if e.owner == gap.owner else None,
            to_seq(e) if e.counterparty == gap.owner else None)), len(events))
        at.setdefault(index, []).extend(rows)
    out: list[EventRow] = []
    for i, event in enumerate(events):
        out += at.pop(i, [])
        out.append(event)
    for rows in at.values():
        out += rows
    return out


async def indexer_pool(database_url: str, holder: str, lease_seconds: float = 10.0) -> asyncpg.Pool:
    """The indexer's own connections: named `holder` (a successor terminates them by that
    name), and PostgreSQL ends what a vanished indexer leaves open on them (an idle
    transaction after a lease's length, any statement after 30 s)."""
    return await pools.postgres(database_url, max_size=DEFAULT_DEPTH + 5, server_settings={
        "application_name": holder,
        "idle_in_transaction_session_timeout": str(int(lease_seconds * 1000)),
        "statement_timeout": "30000"})


def _take_ready(queue: asyncio.Queue[_Item | None], items: list[_Item | None], limit: int) -> None:
    """Moves what the queue holds now into `items`, up to `limit` in all."""
    while len(items) < limit and not queue.empty():
        items.append(queue.get_nowait())


@dataclass
class _Item:
    signature: str
    slot: int
    logs: list[str]
    block_time: datetime | None


@dataclass
class Indexer:
    config: IndexerConfig
    pool: asyncpg.Pool  # the indexer's own connections, named by `lease.holder` (see `indexer_pool`)
    publisher: Publisher
    holder: str = field(default_factory=new_holder)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    cursor: tuple[int, str | None] | None = None
    lease: Lease = field(init=False)
    _pipeline: WritePipeline = field(init=False)
    _queue: asyncio.Queue[_Item | None] | None = field(default=None, init=False)  # None in it: start over
    _seq: int = field(default=0, init=False)  # the last event number given
    guard: SequenceGuard = field(default_factory=SequenceGuard)
    admin_sequence: AdminSequence = field(default_factory=AdminSequence)
    _client: SolanaRpc | None = field(default=None, init=False)  # the follower's RPC client
    _write_lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)  # batches vs. repairs

    def __post_init__(self) -> None:
        self.lease = Lease(self.pool, self.config.cursor_name, self.holder, self.config.lease_seconds,
                           self.config.lease_seconds / 5)

    # --- leadership ---------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        return self.lease.valid()

    async def _check_leadership(self) -> None:
        self.lease.check()

    def resubscribe(self) -> None:
        """Makes the follower start over (subscribe + backfill): it made no progress."""
        if self._queue is not None:
            self._queue.put_nowait(None)

    # --- running --------------------------------------------------------------------------

    async def run(self) -> None:
        """Hot standby until this replica holds the lease, then indexes until its term is over
        (then standby again); a cancelled indexer ends its term at once."""
        try:
            while True:
                await self.lease.acquire()
                INDEXER_LEADER.set(1)
                try:
                    await self._lead()
                except LeadershipLost as exc:
                    logger.warning("no longer the active indexer: %s", exc)
                finally:
                    INDEXER_LEADER.set(0)
                    self.ready.clear()
        finally:
            await self.lease.release()

    async def _lead(self) -> None:
        keeper = asyncio.create_task(self.lease.keep())
        follower = asyncio.create_task(self._follow_until_lost())
        tasks = [keeper, follower, asyncio.create_task(self._promote_loop()), asyncio.create_task(self._cache_loop()),
                 asyncio.create_task(self._repair_loop())]
        try:
            done, _ = await asyncio.wait({keeper, follower}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # LeadershipLost
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _follow_until_lost(self) -> None:
        delay = 0.2
        while True:
            try:
                await self._follow()
            except (asyncio.CancelledError, LeadershipLost):
                raise
            except Fenced as exc:
                raise LeadershipLost(str(exc)) from exc
            except Exception as exc:
                logger.warning("indexer stream interrupted (%s); resubscribing and backfilling", exc)
                self.ready.clear()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _follow(self) -> None:
        commitment = Commitment(self.config.commitment)
        queue: asyncio.Queue[_Item | None] = asyncio.Queue()
        self._queue = queue
        async with SolanaWsClient(self.config.ws_url) as ws, rpc_client(self.config.rpc_url,
                                                                          commitment=commitment) as client:
            for followed in self._programs():
                await ws.logs_subscribe(filter_=RpcTransactionLogsFilterMentions(followed), commitment=commitment)
            seen: OrderedDict[str, None] = OrderedDict()  # recent signatures: one notification per program

            async def listen() -> None:
                while True:
                    for note in _as_list(await ws.recv()):
                        if not isinstance(note, LogsNotification) or note.result.value.err is not None:
                            continue
                        value = note.result.value
                        signature = str(value.signature)
                        if signature in seen:
                            continue
                        seen[signature] = None
                        if len(seen) > SEEN_SIGNATURES:
                            seen.popitem(last=False)
                        await queue.put(_Item(signature, note.result.context.slot, list(value.logs),
                                              datetime.now(UTC)))

            listener = asyncio.create_task(listen())
            self._pipeline = WritePipeline(self.pool, self.config.program, self.config.cursor_name,
                                           depth=self.config.write_depth,
                                           retry=lambda attempt: self._retry("write batch", attempt),
                                           on_commit=self._committed, before_write=self._check_leadership,
                                           fence=(self.config.cursor_name, self.lease.term))
            # numbering goes on from what is committed (nothing after a failed batch is)
            self._seq = await self._retry("read the last event number", lambda: last_seq(self.pool))
            self.publisher.last_seq = self._seq
            # so does the sequence check (it ran ahead of batches that are now abandoned)
            self.guard.reset()
            self.admin_sequence = AdminSequence(await self._retry("read the last admin event number",
                                                                  self._last_admin_seq))
            self._client = client
            try:
                await self._backfill(client)
                await self._pipeline.drain()
                self.ready.set()
                while True:
                    if listener.done():
                        listener.result()  # re-raise the connection error
                    if queue.empty():
                        await self._pipeline.drain()  # idle: surface a failed batch now
                    items = await self._take(queue, listener)
                    await self._write(items)
            finally:
                self._client = None
                listener.cancel()
                self._pipeline.cancel()

    async def _take(self, queue: asyncio.Queue[_Item | None], listener: asyncio.Task[None]) -> list[_Item]:
        get = asyncio.ensure_future(queue.get())
        try:
            done, _ = await asyncio.wait({get, listener}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not get.done():
                get.cancel()
        if get not in done:
            listener.result()
            return []
        items = [get.result()]
        _take_ready(queue, items, self.config.batch_size)
        if len(items) < self.config.batch_size and self._pipeline.in_flight:
            await self._pipeline.settle(self.config.batch_wait_seconds)
            _take_ready(queue, items, self.config.batch_size)
        if None in items:
            raise RuntimeError("no progress while the chain has newer events: starting over")
        return items  # type: ignore[return-value]

    # --- backfill -------------------------------------------------------------------------

    def _programs(self) -> list[Pubkey]:
        programs = [self.config.program.program_id]
        if self.config.exchange_program is not None:
            programs.append(self.config.exchange_program)
        return programs

    async def _backfill(self, client: SolanaRpc) -> None:
        """Everything from the cursor's slot on, through `backfill.py`'s pipeline."""
        self.cursor = await self._retry("read cursor", lambda: read_cursor(self.pool, self.config.cursor_name))
        await self.publisher.resume(self._published_cursor())
        history = await self._history_commitment(client)
        http = HttpClient(self.config.rpc_url, timeout=30)
        try:
            await backfill.backfill(
                http, self._programs(), self.cursor[0] if self.cursor else 0, str(history), self._write, _Item,
                batch_size=self.config.batch_size, max_batch=self.config.rpc_max_batch,
                in_flight=self.config.backfill_concurrency, ahead=self.config.backfill_chunks_ahead,
                listed=lambda n: logger.info("backfilling %d transactions from the cursor %s", n, self.cursor))
        finally:
            await http.close()

    async def _history_commitment(self, client: SolanaRpc) -> Commitment:
        """The commitment the backfill reads history at. getSignaturesForAddress and
        getTransaction serve `confirmed` history at the least, so an indexer following at
        `processed` backfills at `confirmed`, once everything processed before its
        subscription is confirmed: nothing falls between the backfill and the stream."""
        if self.config.commitment != "processed":
            return Commitment(self.config.commitment)
        subscribed = (await client.get_slot(Commitment("processed"))).value
        deadline = time.monotonic() + HISTORY_WAIT_SECONDS
        while (await client.get_slot(Commitment("confirmed"))).value < subscribed:
            if time.monotonic() > deadline:
                raise RuntimeError(f"slot {subscribed} not confirmed after {HISTORY_WAIT_SECONDS} s")
            await asyncio.sleep(0.05)
        return Commitment("confirmed")

    # --- writing --------------------------------------------------------------------------

    async def _write(self, items: list[_Item]) -> None:
        if not items:
            return
        commitment = "processed" if self.config.commitment == "processed" else "confirmed"
        events: list[EventRow] = []
        admin: list[AdminEvent] = []
        program = str(self.config.program.program_id)
        exchange = str(self.config.exchange_program) if self.config.exchange_program else None
        for item in items:
            rows, admins = decode(item.signature, item.logs, item.slot, item.block_time, commitment, program,
                                  exchange)
            events += rows
            admin += admins
            if LOG_TRUNCATED in item.logs:
                await self._truncated(item, rows)
        async with self._write_lock:
            events = await self._check_sequences(unique(events), admin, commitment)
            self._seq = number(events, self._seq)  # in batch order, which is commit order
            # the batch's newest slot and its last transaction there (items come in the node's
            # order): an idle indexer's cursor is then the newest transaction itself
            last = max(reversed(items), key=lambda i: i.slot)
            await self._pipeline.submit(events, admin, (last.slot, last.signature))

    async def _truncated(self, item: _Item, rows: list[EventRow]) -> None:
        """A transaction whose log the node cut at its size limit: the events after the cut
        are not in it. Each vault they belong to is held at its next event by the sequence
        check (and repaired), and reconciliation compares it with the chain; this makes the
        loss visible at once."""
        TRUNCATED.inc()
        owners = sorted({row.owner for row in rows})
        logger.error("transaction %s: its log was truncated; events after the cut are missing (vaults seen: %s)",
                     item.signature, ", ".join(owners) or "none")
        await self._retry("raise an alert", partial(
            repair.raise_alert, self.pool, "log_truncated",
            f"transaction {item.signature}: the node cut its log at the size limit, so the program events after "
            "the cut are missing from the index; each vault it touched is repaired from the chain at its next "
            "event (sequence check) and checked by reconciliation", f"log_truncated:{item.signature}", "",
            {"signature": item.signature, "slot": item.slot, "owners_seen": owners}))

    # --- event numbers (gaps.py, repair.py) -----------------------------------------------

    async def _last_admin_seq(self) -> int | None:
        value = await self.pool.fetchval("SELECT max((details ->> 'seq')::bigint) FROM audit_log "
                                         "WHERE owner = '' AND action = ANY($1::text[]) AND details ? 'seq'",
                                         sorted(ADMIN_EVENTS))
        return None if value is None else int(value)

    async def _check_sequences(self, events: list[EventRow], admin: list[AdminEvent], commitment: str
                               ) -> list[EventRow]:
        """Marks which events move vault rows; at a gap, alerts and repairs (see the module's
        docstring). Returns the batch, with the events a refetch found in their place."""
        for admin_gap in self.admin_sequence.check(admin):
            GAPS.inc()
            logger.error("admin event sequence gap: expected %d, saw %d in %s", admin_gap.expected,
                         admin_gap.seen, admin_gap.signature)
            await self._retry("raise an alert", partial(repair.raise_admin_gap_alert, self.pool, admin_gap))
        gaps: list[Gap] = []
        for _ in range(REFETCH_ROUNDS):
            snapshot = self.guard.snapshot(events)
            await self._load_sequences(events)
            gaps = self.guard.check(events)
            for gap in gaps:
                GAPS.inc()
                logger.error("vault %s: event sequence gap, expected %d, saw %d in %s", gap.owner, gap.expected,
                             gap.seen, gap.signature)
                await self._retry("raise an alert", partial(repair.raise_gap_alert, self.pool, gap))
            found = {gap.owner: rows for gap in gaps if (rows := await self._refetch(gap, commitment))}
            if not found:
                break
            self.guard.restore(snapshot)  # checked again with the missing events in their place
            events = unique(_spliced(events, gaps, found))
            for gap in gaps:
                if gap.owner in found:
                    REPAIRS.labels("refetch").inc()
                    await self._retry("record a repair", partial(repair.record_refetch, self.pool, gap,
                                                                     found[gap.owner]))
        if any(gap.owner in self.guard.held for gap in gaps):  # (one that failed before: `_repair_loop`)
            await self._repair_held()
        HELD.set(len(self.guard.held))
        return events

    async def _load_sequences(self, events: list[EventRow]) -> None:
        owners = self.guard.unknown(events)
        if not owners:
            return
        if self.guard.spilled:  # a forgotten vault's row may be in a batch in flight
            await self._pipeline.drain()
        rows = await self._retry("read vault event numbers", lambda: self.pool.fetch(
            "SELECT owner, event_seq, last_slot FROM vaults WHERE owner = ANY($1::text[])", sorted(owners)))
        self.guard.load({r["owner"]: (r["event_seq"], int(r["last_slot"])) for r in rows})

    async def _refetch(self, gap: Gap, commitment: str) -> list[EventRow] | None:
        if self._client is None:
            return None
        try:
            history = Commitment("confirmed" if self.config.commitment == "processed" else self.config.commitment)
            return await repair.refetch(self._client, self.config.program,
                                        str(self.config.exchange_program) if self.config.exchange_program else None,
                                        gap, history, commitment)
        except Exception as exc:  # the node failed: the state repair follows
            logger.warning("vault %s: reading its transactions again failed: %s", gap.owner, exc)
            return None

    async def _repair_held(self, client: SolanaRpc | None = None) -> None:
        """Sets each held vault's row from the chain's state (after the batches in flight,
        which may touch it, have committed); a vault the node does not answer for stays
        held and is tried again (`_repair_loop`)."""
        client = client or self._client
        if client is None:
            return
        await self._pipeline.drain()
        commitment = Commitment(self.config.commitment)
        for owner, held in list(self.guard.held.items()):
            try:
                state = await repair.read_state(client, self.config.program, owner, commitment)
            except Exception as exc:
                logger.warning("vault %s: reading its state for a repair failed: %s", owner, exc)
                continue
            if state.slot < held.max_slot:  # a node behind what was indexed: later
                continue
            await self._retry("repair a vault", partial(repair.write_state, self.pool, self.config.program,
                                                             held.gap, state, (self.config.cursor_name,
                                                                               self.lease.term)))
            self.guard.repaired(owner, state.vault.event_seq if state.vault else None, state.slot)
            REPAIRS.labels("chain_state").inc()
            await self.publisher.cache.invalidate(Pubkey.from_string(owner))
            logger.warning("vault %s repaired from the chain's state at slot %d (event %s)", owner, state.slot,
                           state.vault.event_seq if state.vault else "none: closed")

    async def _repair_loop(self) -> None:
        """Tries again the repairs that failed, while the follower runs."""
        async with rpc_client(self.config.rpc_url) as client:
            while True:
                await asyncio.sleep(REPAIR_RETRY_SECONDS)
                if not self.guard.held or not self.ready.is_set():
                    continue
                try:
                    async with self._write_lock:
                        await self._repair_held(client)
                        HELD.set(len(self.guard.held))
                except (asyncio.CancelledError, LeadershipLost, Fenced):
                    raise
                except Exception as exc:
                    logger.warning("repair pass failed: %s", exc)

    async def _committed(self, result: tuple[list[EventRow], list[Any]], cursor: tuple[int, str] | None) -> None:
        """After each batch commits, in order: the cursor, metrics, Redis cache and pub/sub."""
        new, rows = result
        if cursor is not None:
            self.cursor = (max(self.cursor[0] if self.cursor else 0, cursor[0]), cursor[1])
            INDEXER_SLOT.set(self.cursor[0])
        for kind, count in Tally(event.kind for event in new).items():  # not a label lookup per event
            EVENTS_INDEXED.labels(kind).inc(count)
        await self.publisher.publish(new, rows, self._published_cursor())

    def _published_cursor(self) -> tuple[int, str] | None:
        """The cursor as the publisher records it (with the signature it compares)."""
        return (self.cursor[0], self.cursor[1]) if self.cursor and self.cursor[1] else None

    def all_published(self) -> bool:
        """Whether every batch committed so far has its Redis writes done: following (not
        between a resubscription and the end of its backfill, which rebuilds a cache its
        predecessor left short), no batch between its commit and its `_committed`, no cache
        write lost, and the published mark at the cursor."""
        pipeline: WritePipeline | None = getattr(self, "_pipeline", None)  # none before the first follow
        cursor, published = self._published_cursor(), self.publisher.published
        return (self.ready.is_set() and pipeline is not None and pipeline.settled and not self.publisher.dirty
                and cursor is not None and published is not None
                and (published[0] > cursor[0] or published == cursor))

    async def _retry(self, what: str, action: Callable[[], Awaitable[T]]) -> T:
        delay = 0.1
        while True:
            try:
                return await action()
            except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
                    asyncpg.CannotConnectNowError, asyncpg.exceptions.ConnectionDoesNotExistError) as exc:
                DB_RETRIES.inc()
                logger.warning("PostgreSQL unavailable during %s (%s); retrying in %.1f s", what, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    # --- background -----------------------------------------------------------------------

    async def _cache_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self.publisher.dirty:
                try:
                    await self.publisher.rebuild(self.pool, self._published_cursor())
                except (OSError, asyncpg.PostgresError):
                    pass

    async def _promote_loop(self) -> None:
        """Moves the finalized watermark (events at or below it are final: no row is
        rewritten); for `processed` indexing, confirms or rolls back rows by their signature
        status."""
        async with rpc_client(self.config.rpc_url) as client:
            while True:
                await asyncio.sleep(1.0)
                try:
                    finalized = (await client.get_slot(Commitment("finalized"))).value
                    await self.pool.execute("UPDATE indexer_cursor SET finalized_slot = GREATEST(finalized_slot, $2) "
                                            "WHERE name = $1", self.config.cursor_name, finalized)
                    if self.config.commitment == "processed":
                        await self.settle_processed(client, finalized)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    logger.warning("promotion pass failed: %s", exc)

    async def settle_processed(self, client: SolanaRpc, finalized_slot: int, rollback_after_slots: int = 64
                               ) -> int:
        """Returns how many events were rolled back."""
        rows = await self.pool.fetch("SELECT DISTINCT signature, slot FROM transactions "
                                     "WHERE commitment = 'processed' ORDER BY slot LIMIT 256")
        if not rows:
            return 0
        statuses = (await client.get_signature_statuses([Signature.from_string(r["signature"]) for r in rows])).value
        current = (await client.get_slot(Commitment("processed"))).value
        rolled = 0
        promoted: list[tuple[str, str]] = []
        for row, status in zip(rows, statuses, strict=True):
            if status is not None and status.err is None and status.confirmation_status is not None:
                level = str(status.confirmation_status).rsplit(".", 1)[-1].lower()
                if level in ("confirmed", "finalized"):
                    promoted.append((row["signature"], level))
            elif current - row["slot"] > rollback_after_slots:
                rolled += await self._roll_back(client, row["signature"])
        if promoted:  # one statement for the whole pass, not one per signature
            await self.pool.execute(
                "UPDATE transactions AS t SET commitment = u.level "
                "FROM unnest($1::text[], $2::text[]) AS u(sig, level) "
                "WHERE t.signature = u.sig AND t.commitment = 'processed'",
                [sig for sig, _ in promoted], [level for _, level in promoted])
        return rolled

    async def _roll_back(self, client: SolanaRpc, signature: str) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            deleted = await conn.fetch("DELETE FROM transactions WHERE signature = $1 AND commitment = 'processed' "
                                       "RETURNING owner, counterparty", signature)
            owners = {r["owner"] for r in deleted} | {r["counterparty"] for r in deleted if r["counterparty"]}
            await conn.execute("INSERT INTO audit_log (owner, actor, action, signature, details) "
                               "VALUES ('', 'indexer', 'rollback', $1, $2::jsonb)", signature,
                               '{"reason": "signature no longer known to the cluster"}')
        ROLLBACKS.inc(len(deleted))
        for owner in owners:
            await self.resync_vault(client, Pubkey.from_string(owner))
        logger.warning("rolled back %d events of %s", len(deleted), signature)
        return len(deleted)

    async def resync_vault(self, client: SolanaRpc, owner: Pubkey) -> None:
        """Sets a vault row from the chain (after a rollback)."""
        account = (await client.get_account_info(self.config.program.vault(owner))).value
        if account is None:
            await self.pool.execute("UPDATE vaults SET closed_at = now(), total_balance = 0, locked_balance = 0, "
                                    "available_balance = 0 WHERE owner = $1", str(owner))
            return
        vault = Vault.decode(bytes(account.data))
        await self.pool.execute(
            "UPDATE vaults SET total_balance = $2, locked_balance = $3, available_balance = $4, "
            "total_deposited = $5, total_withdrawn = $6, event_seq = $7, updated_at = now() WHERE owner = $1",
            str(owner), vault.total_balance, vault.locked_balance, vault.available_balance, vault.total_deposited,
            vault.total_withdrawn, vault.event_seq)
        await self.publisher.cache.invalidate(owner)
