"""One live event feed per process, fanned out to its subscribers (StreamEvents streams).

* The feed is ONE Redis pub/sub connection of its own (`<prefix>events`, on which the
  indexer publishes every event), never a connection of the pool the indexer publishes
  through: however many subscribers there are, the publisher's connections are its own.
* Each subscriber has a bounded queue. A subscriber that falls `queue_size` events behind
  is cut: its stream ends with RESOURCE_EXHAUSTED and a message saying how to resume; no
  other subscriber and not the feed waits for it.
* Subscribers are limited in total and per client (`admit`: RESOURCE_EXHAUSTED).
* A message is one event (a JSON object) or several in order (a JSON array: the indexer
  publishes a batch's events together, publisher.py). Every event carries its global
  number (`seq`, migration 008) and the number of the event published before it (`prev`).
  The feed dispatches events in that order and, when `prev` is beyond the last number it
  dispatched (a publication was lost, e.g. Redis restarted or the indexer's leader
  changed), first fetches the missing events from PostgreSQL. An event at or below the
  last number dispatched is not dispatched again. A lost batch message is such a gap.
* A subscriber that resumes (`since`) reads the events after it from PostgreSQL first
  (`replay`), then `listen`s: it receives every event dispatched after the feed's position
  at that moment, and `replay` again covers what lies between; events it has had are
  dropped. So a resume has no gap and no duplicate.
* The feed interrupted (Redis unreachable, PostgreSQL unreachable for a gap): every stream
  ends with UNAVAILABLE saying to resume with `since`, new ones are refused until the feed
  is back (it reconnects with backoff)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import grpc
import redis.asyncio as aioredis
from collateral_vault.v1 import balance_tracker_pb2
from prometheus_client import Counter, Gauge
from pydantic_core import SchemaValidator, ValidationError, from_json
from pydantic_core import core_schema as cs

from services.balance_tracker.event_messages import EVENT_ROW_COLUMNS, event_message, row_event
from services.balance_tracker.store import last_seq
from services.common.errors import ServiceError, unavailable
from vault_client import event_loop
from vault_client.config import events_channel

logger = logging.getLogger("fanout")
SUBSCRIBERS = Gauge("event_stream_subscribers", "Live event streams open in this process")
CUT = Counter("event_stream_cut_total", "Live event streams ended by the server", ["reason"])
GAP_FILLS = Counter("event_stream_gap_fills_total", "Events the feed fetched from PostgreSQL because their "
                    "publication did not arrive")

PAGE = 500
CUT_GRACE_SECONDS = 1.0  # a cut stream blocked on a client that does not read is ended this long after
FEED_WAIT_SECONDS = 5.0  # the feed checks its Redis connection when nothing arrived for this long

Event = balance_tracker_pb2.VaultEvent

# A message as far as the position needs it: each event's number (`position_now`, the last
# message that came while nobody listened). The parser builds nothing else; a message of
# another shape is read in full instead.
_NUMBERED = cs.typed_dict_schema({"seq": cs.typed_dict_field(cs.int_schema(strict=True))}, extra_behavior="ignore")
_NUMBERS = SchemaValidator(cs.union_schema([cs.list_schema(_NUMBERED), _NUMBERED]))


_EMPTY = (b"[]", "[]")


def _numbers(raw: bytes | str) -> Any:
    """A message with only its events' numbers (`_NUMBERS`), or in full if it has another
    shape. Raises ValueError for a message that is not JSON."""
    try:
        return _NUMBERS.validate_json(raw)
    except ValidationError:
        return from_json(raw)
Abort = Callable[[grpc.StatusCode, str], Awaitable[None]]


def resume_hint(what: str) -> str:
    return f"{what}: open the stream again with since=<the id of the last event you received>"


def exhausted(message: str) -> ServiceError:
    return ServiceError(grpc.StatusCode.RESOURCE_EXHAUSTED, message)


@dataclass(eq=False)
class Subscription:
    """One stream's place in the feed: what it wants, its queue, and how to end it."""

    feed: EventFanout
    owner: str | None
    client: str
    abort: Abort | None  # ends the stream from outside, even while it is blocked sending
    floor: int = 0  # events at or below this number were sent already (by a replay)
    queue: asyncio.Queue[Event | ServiceError] = field(init=False)
    cut_by: ServiceError | None = None
    finished: bool = False
    _aborting: asyncio.Future[None] | None = None

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(self.feed.queue_size + 1)  # + room for the error that ends it

    def listen(self) -> int:
        """Starts receiving live events; returns the feed's position: every event after it
        comes through this subscription (`replay` up to it first)."""
        self.feed.listen(self)
        position = self.feed.position_now()
        self.floor = max(self.floor, position)
        return position

    def offer(self, seq: int, event: Event) -> None:
        if self.cut_by is not None or seq <= self.floor:
            return
        if self.queue.qsize() >= self.feed.queue_size:
            CUT.labels("slow").inc()
            self.cut(exhausted(resume_hint(f"this stream fell {self.feed.queue_size} events behind and was closed")))
            return
        self.queue.put_nowait(event)

    def cut(self, error: ServiceError) -> None:
        """Ends the stream with `error`: at once if it is waiting for events, else as soon as
        it is not blocked sending, and after CUT_GRACE_SECONDS in any case."""
        if self.cut_by is not None or self.finished:
            return
        self.cut_by = error
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(error)
        self.feed.forget(self)
        asyncio.get_running_loop().call_later(CUT_GRACE_SECONDS, self._force)

    def _force(self) -> None:
        if not self.finished and self.abort is not None and self.cut_by is not None:
            self._aborting = asyncio.ensure_future(_quietly(self.abort(self.cut_by.code, self.cut_by.message)))

    async def events(self) -> AsyncIterator[Event]:
        while True:
            item = await self.queue.get()
            if isinstance(item, ServiceError):
                raise item
            yield item

    def close(self) -> None:
        self.finished = True
        self.feed.forget(self)
        self.feed.release(self)


async def _quietly(aborting: Awaitable[None]) -> None:
    with contextlib.suppress(Exception):  # abort() raises AbortError in whoever calls it
        await aborting


class EventFanout:
    def __init__(self, redis_url: str, prefix: str, pool: asyncpg.Pool, *, max_subscribers: int = 10_000,
                 max_per_client: int = 1_000, queue_size: int = 10_000) -> None:
        self.redis_url = redis_url
        self.channel = events_channel(prefix)
        self.pool = pool
        self.max_subscribers = max_subscribers
        self.max_per_client = max_per_client
        self.queue_size = queue_size
        self.position = 0  # the number of the last event dispatched (see position_now)
        self.ready = False  # subscribed to the feed and position known
        self._unread: bytes | str | None = None  # the last message that arrived while nobody listened
        self._broken: Exception | None = None  # that message could not be read: the feed starts over
        self._admitted: set[Subscription] = set()
        self._per_client: dict[str, int] = {}
        self._everything: set[Subscription] = set()
        self._by_owner: dict[str, set[Subscription]] = {}
        self._task: asyncio.Task[None] | None = None

    # --- subscribers ----------------------------------------------------------------

    def admit(self, owner: str | None, client: str, abort: Abort | None = None) -> Subscription:
        """A new stream for `client`, counted against the limits (RESOURCE_EXHAUSTED beyond
        them; UNAVAILABLE while the feed is interrupted)."""
        if not self.ready:
            raise unavailable(resume_hint("the live event feed (Redis) is unavailable; try again shortly"))
        if len(self._admitted) >= self.max_subscribers:
            CUT.labels("limit").inc()
            raise exhausted(f"this server streams to at most {self.max_subscribers} subscribers; try another "
                            "replica or later")
        if self._per_client.get(client, 0) >= self.max_per_client:
            CUT.labels("limit").inc()
            raise exhausted(f"a client may open at most {self.max_per_client} event streams; close one first")
        subscription = Subscription(self, owner, client, abort)
        self._admitted.add(subscription)
        self._per_client[client] = self._per_client.get(client, 0) + 1
        SUBSCRIBERS.set(len(self._admitted))
        return subscription

    def listen(self, subscription: Subscription) -> None:
        if subscription.owner is None:
            self._everything.add(subscription)
        else:
            self._by_owner.setdefault(subscription.owner, set()).add(subscription)

    def forget(self, subscription: Subscription) -> None:
        """No more events for it."""
        self._everything.discard(subscription)
        if subscription.owner is not None and (owned := self._by_owner.get(subscription.owner)) is not None:
            owned.discard(subscription)
            if not owned:
                del self._by_owner[subscription.owner]

    def release(self, subscription: Subscription) -> None:
        """It no longer counts against the limits."""
        if subscription in self._admitted:
            self._admitted.discard(subscription)
            left = self._per_client[subscription.client] - 1
            if left:
                self._per_client[subscription.client] = left
            else:
                del self._per_client[subscription.client]
            SUBSCRIBERS.set(len(self._admitted))

    @property
    def subscribers(self) -> int:
        return len(self._admitted)

    # --- the database ---------------------------------------------------------------

    async def seq_of(self, event_id: str) -> int | None:
        """The number of the event with this id ("<signature>:<instruction>:<event>"), if stored."""
        signature, _, rest = event_id.partition(":")
        instruction, _, index = rest.partition(":")
        if not (instruction.isascii() and instruction.isdigit() and index.isascii() and index.isdigit()
                and 0 < len(signature) <= 88 and signature.isascii() and signature.isalnum()
                and len(instruction) < 10 and len(index) < 10):
            return None
        value = await self.pool.fetchval("SELECT seq FROM transactions WHERE signature = $1 AND "
                                         "instruction_index = $2 AND event_index = $3",
                                         signature, int(instruction), int(index))
        return int(value) if value is not None else None

    async def rows_after(self, after: int, upto: int | None, owner: str | None) -> list[Any]:
        """Up to PAGE stored events numbered after `after` (and at most `upto`), in order, of
        one owner (its own and the transfers it received) or of everyone."""
        bound = "AND seq <= $2" if upto is not None else "AND $2::bigint IS NULL"
        if owner is None:
            return await self.pool.fetch(f"SELECT {EVENT_ROW_COLUMNS} FROM transactions WHERE seq > $1 {bound} "
                                         f"ORDER BY seq LIMIT {PAGE}", after, upto)
        return await self.pool.fetch(
            f"(SELECT {EVENT_ROW_COLUMNS} FROM transactions WHERE owner = $3 AND seq > $1 {bound} "
            f"ORDER BY seq LIMIT {PAGE}) UNION ALL "
            f"(SELECT {EVENT_ROW_COLUMNS} FROM transactions WHERE counterparty = $3 AND seq > $1 {bound} "
            f"ORDER BY seq LIMIT {PAGE}) ORDER BY seq LIMIT {PAGE}", after, upto, owner)

    async def replay(self, after: int, upto: int | None, owner: str | None) -> AsyncIterator[tuple[int, Event]]:
        """The stored events numbered after `after` (up to `upto`), oldest first, paged."""
        while True:
            rows = await self.rows_after(after, upto, owner)
            for row in rows:
                after = int(row["seq"])
                yield after, event_message(row_event(row))
            if len(rows) < PAGE:
                return

    # --- the feed -------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            await event_loop.cancel_and_wait([self._task])
        self._cut_all(unavailable(resume_hint("this server is shutting down")))

    def _cut_all(self, error: ServiceError) -> None:
        self.ready = False
        for subscription in list(self._admitted):
            subscription.cut(error)

    async def _run(self) -> None:
        delay = 0.2
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("live event feed interrupted (%s); reconnecting in %.1f s", exc, delay)
                CUT.labels("feed").inc(len(self._admitted))
                self._cut_all(unavailable(resume_hint(f"the live event feed was interrupted ({type(exc).__name__})")))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            else:
                delay = 0.2

    async def _follow(self) -> None:
        # its own connection: never one of the pool the indexer publishes through
        client = aioredis.from_url(self.redis_url, socket_connect_timeout=2, socket_timeout=FEED_WAIT_SECONDS * 2,
                                   max_connections=1)
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(self.channel)
            # read after subscribing: whatever is published from now on arrives, and what was
            # committed before is at or below this number
            self._unread = None
            self.position = max(self.position, await last_seq(self.pool))
            self.ready = True
            logger.info("live event feed on %s from event %d", self.channel, self.position)
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=FEED_WAIT_SECONDS)
                if self._broken is not None:
                    broken, self._broken = self._broken, None
                    raise broken
                if message is None:
                    await pubsub.ping()  # a Redis that vanished without closing shows here
                    continue
                if message.get("type") != "message":
                    continue
                if not self._everything and not self._by_owner:  # nobody to give them to (a catch-up)
                    if message["data"] not in _EMPTY:  # an empty batch says nothing of the position
                        self._unread = message["data"]  # read only when someone comes (position_now)
                    continue
                data = from_json(message["data"])  # as json.loads reads it (pydantic_core's parser)
                items = data if isinstance(data, list) else [data]
                for item in items:
                    await self._deliver(item)
        finally:
            self.ready = False
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            with contextlib.suppress(Exception):
                await client.aclose()

    def position_now(self) -> int:
        """The feed's position, counting the last message that arrived while nobody listened.
        Only that one is read, and only now: messages come in the order they were published,
        so its last number is the feed's position (one out of order leaves a gap the next
        message fills from the database, as for a lost one). A catch-up publishes every event
        of the history, usually to nobody; reading each message's numbers as it came (an event
        at a time, later only the numbers) was a tenth of the catching-up indexer's CPU
        (py-spy, 50,000 vaults). A message it cannot read starts the feed over, as one read as
        it came did: its streams end with UNAVAILABLE (resume with `since`)."""
        raw, self._unread = self._unread, None
        if raw is not None:
            try:
                data = _numbers(raw)
                items = data if isinstance(data, list) else [data]
                self.position = max([self.position, *(int(item["seq"]) for item in items)])
            except (ValueError, KeyError, TypeError) as exc:
                logger.warning("a live event message could not be read (%s): the feed starts over", exc)
                self._broken = exc
        return self.position

    async def _deliver(self, data: dict[str, Any]) -> None:
        seq, prev = int(data["seq"]), int(data.get("prev") or 0)
        if seq <= self.position:
            return  # dispatched already (fetched from the database when its publication was late)
        if prev > self.position:  # publications were lost: those events come from the database first
            async for number, event in self.replay(self.position, prev, None):
                GAP_FILLS.inc()
                self._offer(number, self._targets(data_owner(event)), event)
            self.position = max(self.position, prev)
        targets = self._targets((data["owner"], data.get("counterparty") or None))
        self.position = seq
        if targets:  # the message is built only for someone who wants it (a catch-up mostly has nobody)
            self._offer(seq, targets, event_message(data))
            await asyncio.sleep(0)  # the streams take their event before the next is read (a burst is shared fairly)

    def _targets(self, owners: tuple[str, str | None]) -> set[Subscription]:
        targets = set(self._everything)
        for owner in owners:
            if owner is not None:
                targets |= self._by_owner.get(owner, set())
        return targets

    def _offer(self, seq: int, targets: set[Subscription], event: Event) -> None:
        self.position = seq
        for subscription in targets:
            subscription.offer(seq, event)


def data_owner(event: Event) -> tuple[str, str | None]:
    return event.owner, event.counterparty or None
