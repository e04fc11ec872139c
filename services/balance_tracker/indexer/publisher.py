"""After a batch commits: the Redis vault cache and the live event stream (pub/sub).
Best effort: Redis being down never blocks indexing; the cache is rebuilt from
PostgreSQL once Redis answers again.

A batch costs a few Redis commands, not a few per event: its events go out as messages of
up to PUBLISH_CHUNK events each (a JSON array, every event still naming the one published
before it), its vault entries as one set-if-newer script per PUT_MANY_CHUNK vaults. One
PUBLISH per event and one EVAL per vault, each packed by redis-py in Python, were about a
third of a catch-up's CPU (cProfile of a backfill, docs/live-events.md)."""

from __future__ import annotations

import logging
from typing import Any, TypedDict

import asyncpg
import redis.asyncio as aioredis
from pydantic_core import to_json
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError
from solders.pubkey import Pubkey

from services.balance_tracker.events import EventRow
from services.common.vault_cache import VaultCache, encode_values, queue_put_encoded
from vault_client.config import events_channel
from vault_client.vault_program import Vault, VaultProgram, vault_bump

logger = logging.getLogger("publisher")
PUBLISHED_KEY = "indexer:published"  # after the prefix (`Publisher.published_key`)
REBUILD_ROWS = 10_000  # vault rows a rebuild reads and writes at a time
Cursor = tuple[int, str]  # (slot, signature) of the last transaction a batch holds


def _format(cursor: Cursor) -> str:
    return f"{cursor[0]}:{cursor[1]}"


def _parse(raw: bytes | str) -> Cursor | None:
    text = raw.decode() if isinstance(raw, bytes) else raw
    slot, _, signature = text.partition(":")
    return (int(slot), signature) if slot.isdigit() and signature else None


def _at_or_after(mark: Cursor | None, cursor: Cursor) -> bool:
    """Whether a mark says everything up to `cursor` is published: a later slot, or the same
    transaction (another signature in the same slot may be earlier in it)."""
    return mark is not None and (mark[0] > cursor[0] or mark == cursor)
# Events per pub/sub message: a message stays small enough for a subscriber to parse without
# holding its event loop long (a backfill's batch has thousands of events).
PUBLISH_CHUNK = 500


def event_json(event: EventRow, prev: int) -> dict[str, Any]:
    """An event as published: `prev` is the number of the event published before it, so a
    subscriber that did not see `prev` knows it missed events and fetches them."""
    b = event.balances  # None for position_manager's events (the vault's own events carry them)
    return {
        "id": event.event_id, "seq": event.seq, "prev": prev, "kind": event.kind, "owner": event.owner,
        "counterparty": event.counterparty or "",
        "amount": event.amount, "slot": event.slot, "signature": event.signature,
        "block_time": int(event.block_time.timestamp()) if event.block_time else 0,
        "total_balance": b.total if b else 0, "locked_balance": b.locked if b else 0,
        "available_balance": b.available if b else 0, "caller_program": event.caller_program or "",
        "program_locked": event.program_locked or 0, "vault_seq": event.vault_seq or 0, "op_id": event.op_id or 0,
        "details": event.details or {},
    }


class _RowValues(TypedDict):
    total_balance: int
    locked_balance: int
    available_balance: int
    total_deposited: int
    total_withdrawn: int
    created_at: int
    bump: int


def _row_values(row: Any, owner: Pubkey, program: VaultProgram) -> _RowValues:
    """A vault row's numbers as `Vault` names them (the bump from the row's `address`: no PDA
    search per row), for `vault_from_row` and `cache_entry` alike."""
    created_at = row["created_at"]
    return {"total_balance": int(row["total_balance"]), "locked_balance": int(row["locked_balance"]),
            "available_balance": int(row["available_balance"]), "total_deposited": int(row["total_deposited"]),
            "total_withdrawn": int(row["total_withdrawn"]),
            "created_at": int(created_at.timestamp()) if created_at else 0,
            "bump": vault_bump(owner, Pubkey.from_string(row["address"]), program.program_id)}


def vault_from_row(row: Any, program: VaultProgram) -> Vault:
    """A vault row (with its `address`) as a `Vault`."""
    owner = Pubkey.from_string(row["owner"])
    return Vault(owner=owner, token_account=Pubkey.from_string(row["token_account"]),
                 **_row_values(row, owner, program))


def cache_entry(row: Any, program: VaultProgram) -> str:
    """A vault row's cache entry: `encode(vault_from_row(row, program), row's last slot)`,
    built from the row's text without a Vault or its keys parsed and printed again (that
    round trip cost as much as the rest of a published row)."""
    owner = Pubkey.from_string(row["owner"])
    return encode_values({"owner": str(owner), "token_account": str(Pubkey.from_string(row["token_account"])),
                          **_row_values(row, owner, program), "event_seq": 0, "locks": []}, int(row["last_slot"]))


class Publisher:
    def __init__(self, redis: aioredis.Redis, cache: VaultCache, program: VaultProgram, prefix: str) -> None:
        self.redis = redis
        self.cache = cache
        self.program = program
        self.prefix = prefix
        self.dirty = False  # a cache update was lost: rebuild from the database
        self.last_seq = 0  # the number of the last event committed (published or not)
        # The cursor (slot, signature) every batch committed through is in Redis with (its
        # cache entries written, its events published); None until known. The cache's trust
        # (`progress.py`) never runs ahead of it: the cursor moves when a batch commits, its
        # Redis writes come after. A signature, not only a slot: a batch may end inside a slot.
        self.published: Cursor | None = None
        self._failures = 0  # Redis writes lost so far (a rebuild clears only those before it)

    def published_key(self) -> str:
        """The cursor every committed batch is published through (`slot:signature`), kept in
        Redis with the cache itself, so the next leader knows whether its predecessor
        published all it committed."""
        return f"{self.prefix}{PUBLISHED_KEY}"

    def _queue_entries(self, pipe: Pipeline, rows: list[Any]) -> None:
        """The open vaults among `rows` as cache entries at their rows' slots (set if newer)."""
        queue_put_encoded(self.cache, pipe, [(row["owner"], cache_entry(row, self.program), int(row["last_slot"]))
                                             for row in rows if row["closed_at"] is None])

    async def resume(self, cursor: Cursor | None) -> None:
        """At the start of a term (or a resubscription), with the cursor as committed: if a
        predecessor committed a batch it did not get into Redis (it stopped in between, or
        Redis lost it), or that is not known, the cache is rebuilt from the database before
        it is trusted again."""
        try:
            raw = await self.redis.get(self.published_key())
        except RedisError:
            raw = None
        if cursor is not None and raw is not None and _at_or_after(_parse(raw), cursor):
            self._advance(cursor)
        else:
            self._lost()  # not known (or nothing committed yet: an empty rebuild, then a known start)

    def _advance(self, cursor: Cursor) -> None:
        if self.published is None or cursor[0] >= self.published[0]:
            self.published = cursor

    def _lost(self) -> None:
        self.dirty = True
        self._failures += 1

    def channel(self) -> str:
        return events_channel(self.prefix)

    async def publish(self, events: list[EventRow], rows: list[Any], through: Cursor | None = None) -> None:
        """One round trip: the batch's vault entries first, then its events, in order (a
        client that reads the cache on an event sees at least that event's state). Each event
        names the one before it: a lost publication shows as a gap to whoever reads on.
        `through`: the cursor once this batch committed (everything up to it is then in
        Redis)."""
        channel = self.channel()
        messages = []
        for start in range(0, len(events), PUBLISH_CHUNK):
            chunk = []
            for event in events[start:start + PUBLISH_CHUNK]:
                chunk.append(event_json(event, self.last_seq))
                self.last_seq = event.seq
            # compact JSON serialized in Rust (pydantic_core): the values json.dumps gave
            messages.append(to_json(chunk))
        try:
            pipe = self.redis.pipeline(transaction=False)
            closed = [self.cache.key(row["owner"]) for row in rows if row["closed_at"] is not None]
            if closed:
                pipe.delete(*closed)
            self._queue_entries(pipe, rows)
            for message in messages:
                pipe.publish(channel, message)
            if through is not None:
                pipe.set(self.published_key(), _format(through))
            await pipe.execute()
            if through is not None:
                self._advance(through)
        except RedisError as exc:
            self._lost()
            logger.warning("Redis unavailable or refused a command: the cache is stale until rebuilt and the "
                           "batch's events may not have been published: %s", exc)

    async def rebuild(self, pool: asyncpg.Pool, through: Cursor | None) -> bool:
        """Rewrites every open vault's cache entry from PostgreSQL, REBUILD_ROWS rows a read
        (keyset on owner: memory stays flat however many vaults); True when done. `through`:
        the cursor read before the rebuild began (every batch committed up to it is in
        the rows read after). A write lost while it ran leaves the cache marked stale."""
        failures = self._failures
        try:
            await self.redis.ping()
            after = ""
            while True:
                rows = await pool.fetch("SELECT * FROM vaults WHERE closed_at IS NULL AND owner > $1 "
                                        "ORDER BY owner LIMIT $2", after, REBUILD_ROWS)
                if not rows:
                    break
                pipe = self.redis.pipeline(transaction=False)
                self._queue_entries(pipe, rows)
                await pipe.execute()
                after = rows[-1]["owner"]
            if through is not None:
                await self.redis.set(self.published_key(), _format(through))
        except RedisError:
            return False
        if self._failures == failures:
            self.dirty = False
            if through is not None:
                self._advance(through)
        logger.info("vault cache rebuilt from the database")
        return True
