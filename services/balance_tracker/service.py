"""BalanceTracker: GetBalance (Redis, else PostgreSQL, else chain), GetHistory (paged by a
keyset on slot and event id), GetSnapshots, StreamEvents (live through the process's fan-out,
resumable from an event id) and Reconcile."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import asyncpg
import grpc
import redis.asyncio as aioredis
from collateral_vault.v1 import balance_tracker_pb2, balance_tracker_pb2_grpc, common_pb2

from services.balance_tracker import reconcile
from services.balance_tracker.event_messages import event_message, row_event
from services.balance_tracker.fanout import EventFanout
from services.balance_tracker.indexer.publisher import vault_from_row
from services.balance_tracker.indexer.watermark import CursorWatermark
from services.common import validation
from services.common.chain import ChainClient
from services.common.convert import vault_message
from services.common.errors import invalid, not_found, unavailable
from services.common.event_kinds import KIND_NAMES, KIND_VALUES
from services.common.vault_cache import VaultCache
from vault_client.quoting import quoted

__all__ = ["KIND_NAMES", "KIND_VALUES", "BalanceTrackerService"]
T = TypeVar("T")


def _encode_token(row: Any) -> str:
    raw = json.dumps([row["slot"], row["signature"], row["instruction_index"], row["event_index"]])
    return base64.urlsafe_b64encode(raw.encode()).decode()


_INT64 = 2**63
_INT32 = 2**31
MAX_TOKEN_CHARACTERS = 512


def _decode_token(token: str) -> tuple[int, str, int, int]:
    """The keyset position a page token names; anything this service did not issue (out of
    range numbers, a signature that is not base58) is INVALID_ARGUMENT."""
    try:
        if len(token) > MAX_TOKEN_CHARACTERS:
            raise ValueError("too long")
        slot, signature, ix, ev = json.loads(base64.urlsafe_b64decode(token.encode()))
        if not (all(type(v) is int for v in (slot, ix, ev)) and isinstance(signature, str)
                and 0 <= slot < _INT64 and 0 <= ix < _INT32 and 0 <= ev < _INT32
                and 0 < len(signature) <= 88 and signature.isascii() and signature.isalnum()):
            raise ValueError("out of range")
        return slot, signature, ix, ev
    except (ValueError, TypeError) as exc:
        raise invalid("page_token is not a token this service issued") from exc


_DATABASE_DOWN = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError,
                  TimeoutError)


async def _database(query: Awaitable[T]) -> T:
    """A query whose failure to reach PostgreSQL is UNAVAILABLE (not INTERNAL)."""
    try:
        return await query
    except _DATABASE_DOWN as exc:
        raise unavailable(f"the database is unavailable ({type(exc).__name__}); try again shortly") from exc


async def _database_stream(rows: AsyncIterator[T]) -> AsyncIterator[T]:
    try:
        async for row in rows:
            yield row
    except _DATABASE_DOWN as exc:
        raise unavailable(f"the database is unavailable ({type(exc).__name__}); resume with since=<the id of the "
                          "last event you received>") from exc


def peer_host(peer: str) -> str:
    """The client's address without its port ("ipv4:10.0.0.7:53211" -> "ipv4:10.0.0.7")."""
    return peer.rsplit(":", 1)[0] if peer.count(":") > 1 else peer


class BalanceTrackerService(balance_tracker_pb2_grpc.BalanceTrackerServicer):
    def __init__(self, pool: asyncpg.Pool, redis: aioredis.Redis, cache: VaultCache, chain: ChainClient,
                 fanout: EventFanout, cursor_name: str, reconciler: reconcile.Reconciler | None = None) -> None:
        self.pool = pool
        self.redis = redis
        self.cache = cache
        self.chain = chain
        self.fanout = fanout
        self.cursor_name = cursor_name
        self.watermark = CursorWatermark(pool, cursor_name)
        self.reconciler = reconciler or reconcile.Reconciler(pool, chain, cursor_name)

    async def GetBalance(self, request: balance_tracker_pb2.GetBalanceRequest,
                         context: grpc.aio.ServicerContext) -> balance_tracker_pb2.GetBalanceResponse:
        owner = validation.pubkey(request.owner, "owner")
        address = self.chain.program.vault(owner)
        indexed = await self.watermark.slot()  # read first: the answer holds at least this much
        cached = await self.cache.get(owner)
        if cached is not None:
            vault, slot = cached
            return balance_tracker_pb2.GetBalanceResponse(
                vault=vault_message(vault, address, slot, common_pb2.DATA_SOURCE_CACHE), indexed_slot=indexed)
        row = await self.pool.fetchrow("SELECT * FROM vaults WHERE owner = $1 AND closed_at IS NULL", str(owner))
        if row is not None:
            vault = vault_from_row(row, self.chain.program)
            await self.cache.put(vault, int(row["last_slot"]))
            return balance_tracker_pb2.GetBalanceResponse(
                vault=vault_message(vault, address, int(row["last_slot"]), common_pb2.DATA_SOURCE_DATABASE),
                indexed_slot=indexed)
        state = await self.chain.vault(owner)
        if state is None:
            raise not_found(f"no vault for owner {owner}")
        return balance_tracker_pb2.GetBalanceResponse(
            vault=vault_message(state.vault, address, state.slot, common_pb2.DATA_SOURCE_CHAIN), indexed_slot=indexed)

    async def GetHistory(self, request: balance_tracker_pb2.GetHistoryRequest,
                         context: grpc.aio.ServicerContext) -> balance_tracker_pb2.GetHistoryResponse:
        owner = str(validation.pubkey(request.owner, "owner"))
        size = validation.page_size(request.page_size, default=50, maximum=500)
        kinds = [KIND_NAMES[k] for k in request.kinds if k in KIND_NAMES] or list(KIND_VALUES)
        if len(kinds) != len(request.kinds) and request.kinds:
            raise invalid("kinds contains an unknown event kind")
        from_time = validation.unix_time(request.from_time, "from_time")
        to_time = validation.unix_time(request.to_time, "to_time")
        if from_time and to_time and from_time > to_time:
            raise invalid("from_time is after to_time")
        after = _decode_token(request.page_token) if request.page_token else (2**62, "~", 0, 0)
        rows = await self.pool.fetch(
            "SELECT * FROM transactions WHERE (owner = $1 OR counterparty = $1) AND kind = ANY($2::text[]) "
            "AND ($3::timestamptz IS NULL OR block_time >= $3) AND ($4::timestamptz IS NULL OR block_time <= $4) "
            "AND (slot, signature, instruction_index, event_index) < ($5, $6, $7, $8) "
            "ORDER BY slot DESC, signature DESC, instruction_index DESC, event_index DESC LIMIT $9",
            owner, kinds, from_time, to_time, *after, size + 1)
        page = rows[:size]
        return balance_tracker_pb2.GetHistoryResponse(
            events=[event_message(row_event(r)) for r in page],
            next_page_token=_encode_token(page[-1]) if len(rows) > size else "")

    async def GetSnapshots(self, request: balance_tracker_pb2.GetSnapshotsRequest,
                           context: grpc.aio.ServicerContext) -> balance_tracker_pb2.GetSnapshotsResponse:
        owner = str(validation.pubkey(request.owner, "owner"))
        limit = validation.page_size(request.limit, default=100, maximum=1000)
        from_time = validation.unix_time(request.from_time, "from_time")
        to_time = validation.unix_time(request.to_time, "to_time")
        rows = await self.pool.fetch(
            "SELECT * FROM balance_snapshots WHERE owner = $1 AND ($2::timestamptz IS NULL OR taken_at >= $2) "
            "AND ($3::timestamptz IS NULL OR taken_at <= $3) ORDER BY taken_at DESC LIMIT $4", owner,
            from_time, to_time, limit)
        return balance_tracker_pb2.GetSnapshotsResponse(snapshots=[balance_tracker_pb2.Snapshot(
            owner=r["owner"], total_balance=int(r["total_balance"]), locked_balance=int(r["locked_balance"]),
            available_balance=int(r["available_balance"]), slot=r["slot"], taken_at=int(r["taken_at"].timestamp()))
            for r in rows])

    async def StreamEvents(
        self, request: balance_tracker_pb2.StreamEventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[balance_tracker_pb2.StreamEventsResponse]:
        """Live events through this process's fan-out (`fanout.py`); with `since`, first the
        events committed after that one, from PostgreSQL, then live ones: no gap, no
        duplicate."""
        owner = str(validation.pubkey(request.owner, "owner")) if request.owner else None
        since = None
        if request.since:
            since = await _database(self.fanout.seq_of(request.since))
            if since is None:
                raise not_found(f"unknown event id {quoted(request.since)}" + (f" for {owner}" if owner else "")
                                + ": resume from an id this service sent (VaultEvent.id)")
        subscription = self.fanout.admit(owner, peer_host(context.peer()), context.abort)
        try:
            last = since
            if since is not None:  # catch up from the database before taking live events
                async for seq, event in _database_stream(self.fanout.replay(since, None, owner)):
                    last = seq
                    yield balance_tracker_pb2.StreamEventsResponse(event=event)
            position = subscription.listen()
            if last is not None:
                subscription.floor = max(subscription.floor, last)  # what the replay sent is not sent again
                if last < position:  # and what it had not reached yet comes from the database too
                    async for _, event in _database_stream(self.fanout.replay(last, position, owner)):
                        yield balance_tracker_pb2.StreamEventsResponse(event=event)
            async for event in subscription.events():
                yield balance_tracker_pb2.StreamEventsResponse(event=event)
        finally:
            subscription.close()

    async def Reconcile(self, request: balance_tracker_pb2.ReconcileRequest,
                        context: grpc.aio.ServicerContext) -> balance_tracker_pb2.ReconcileResponse:
        result = await self.reconciler.run()  # one run at a time: a concurrent caller shares it
        return balance_tracker_pb2.ReconcileResponse(
            run_id=result.run_id, vaults_checked=result.vaults_checked,
            findings=[balance_tracker_pb2.ReconcileFinding(
                owner=f.owner, field=f.field, chain_value=f.chain_value or "", database_value=f.database_value or "",
                token_account_value=f.token_account_value or "") for f in result.findings])
