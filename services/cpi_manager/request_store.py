"""cpi_manager's records in PostgreSQL (migration 020): one row per client_request_id
(`operator_requests`), the last operation id given per trader (`operator_op_ids`), and
the per-trader locks that apply one trader's operations in order across replicas.

The per-trader lock is a session advisory lock held on a connection of a pool of its own
(`OPERATOR_CONCURRENCY` connections): a slow chain ties up at most that many connections,
never the pool the rest of the service uses, and a caller that cannot get one in time is
answered (its deadline) instead of queueing without bound. A replica that dies drops its
connections, and PostgreSQL releases their locks."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
from solders.pubkey import Pubkey

from services.cpi_manager.operations import Operation

PENDING, LANDED, REFUSED = "pending", "landed", "refused"


@dataclass
class RequestRow:
    request_id: str
    operation: str
    fingerprint: str
    traders: list[str]
    op_ids: list[int]
    params: dict[str, object]
    signatures: list[str]
    last_transaction: bytes | None
    last_valid_block_height: int | None
    state: str
    signature: str | None
    slot: int | None
    response: bytes | None
    error_status: str | None
    error_name: str | None
    error_message: str | None

    @property
    def op(self) -> Operation:
        return Operation.from_params(self.operation, self.params)

    @classmethod
    def of(cls, record: asyncpg.Record) -> RequestRow:
        params = record["params"]
        return cls(record["request_id"], record["operation"], record["fingerprint"], list(record["traders"]),
                   [int(v) for v in record["op_ids"]], json.loads(params) if isinstance(params, str) else params,
                   list(record["signatures"]), record["last_transaction"], record["last_valid_block_height"],
                   record["state"], record["signature"], record["slot"], record["response"], record["error_status"],
                   record["error_name"], record["error_message"])


def lock_key(trader: Pubkey | str) -> int:
    """The advisory lock key of a trader's operations (64 bits of a hash of its key)."""
    digest = hashlib.sha256(b"cpi_manager:trader:" + str(trader).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class RequestStore:
    def __init__(self, pool: asyncpg.Pool, lock_pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.lock_pool = lock_pool

    async def get(self, request_id: str) -> RequestRow | None:
        record = await self.pool.fetchrow("SELECT * FROM operator_requests WHERE request_id = $1", request_id)
        return RequestRow.of(record) if record is not None else None

    @asynccontextmanager
    async def traders_locked(self, traders: Sequence[Pubkey]) -> AsyncIterator[None]:
        """Holds every trader's lock (taken in one order, so two operations on overlapping
        traders cannot deadlock). Bound it with the caller's timeout."""
        keys = sorted({lock_key(t) for t in traders})
        async with self.lock_pool.acquire() as conn:
            try:
                for key in keys:
                    await conn.execute("SELECT pg_advisory_lock($1)", key)
                yield
            finally:
                if not conn.is_closed():
                    try:
                        await conn.execute("SELECT pg_advisory_unlock_all()")
                    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                        conn.terminate()  # PostgreSQL releases a closed session's locks

    async def create(self, request_id: str, op: Operation, fingerprint: str,
                     chain_last_op_ids: dict[Pubkey, int]) -> RequestRow | None:
        """Gives the operation its op ids (above both the chain's and the last given, per
        trader) and records it, in one transaction; None if the id is taken already. The
        caller holds the traders' locks."""
        async with self.pool.acquire() as conn, conn.transaction():
            taken: dict[str, int] = {}
            op_ids = []
            for trader in op.traders:
                name = str(trader)
                if name not in taken:
                    stored = await conn.fetchval("SELECT last_op_id FROM operator_op_ids WHERE trader = $1", name)
                    taken[name] = max(int(stored or 0), chain_last_op_ids.get(trader, 0))
                taken[name] += 1  # a payer in several pairs: increasing ids, in pair order
                op_ids.append(taken[name])
            record = await conn.fetchrow(
                "INSERT INTO operator_requests (request_id, operation, fingerprint, traders, op_ids, params) "
                "VALUES ($1, $2, $3, $4, $5, $6::jsonb) ON CONFLICT (request_id) DO NOTHING RETURNING *",
                request_id, op.kind, fingerprint, [str(t) for t in op.traders], op_ids, json.dumps(op.params()))
            if record is None:
                return None
            await conn.executemany(
                "INSERT INTO operator_op_ids (trader, last_op_id) VALUES ($1, $2) ON CONFLICT (trader) DO UPDATE "
                "SET last_op_id = GREATEST(operator_op_ids.last_op_id, EXCLUDED.last_op_id)", list(taken.items()))
        return RequestRow.of(record)

    async def signed(self, request_id: str, signature: str, transaction: bytes, last_valid_block_height: int) -> None:
        """Records a signature before its transaction is sent."""
        await self.pool.execute(
            "UPDATE operator_requests SET signatures = array_append(signatures, $2), last_transaction = $3, "
            "last_valid_block_height = $4, updated_at = now() WHERE request_id = $1 AND state = 'pending'",
            request_id, signature, transaction, last_valid_block_height)

    async def landed(self, request_id: str, signature: str, slot: int, response: bytes) -> None:
        await self.pool.execute(
            "UPDATE operator_requests SET state = 'landed', signature = $2, slot = $3, response = $4, "
            "updated_at = now(), finished_at = now() WHERE request_id = $1 AND state = 'pending'",
            request_id, signature, slot, response)

    async def refused(self, request_id: str, status: str, name: str | None, message: str,
                      signature: str | None = None) -> None:
        await self.pool.execute(
            "UPDATE operator_requests SET state = 'refused', error_status = $2, error_name = $3, error_message = $4, "
            "signature = $5, updated_at = now(), finished_at = now() WHERE request_id = $1 AND state = 'pending'",
            request_id, status, name, message, signature)

    async def prune(self, retention_days: float, batch: int = 10_000) -> int:
        """Forgets finished requests older than the retention (a batch at a time, oldest
        first): after that long a client_request_id is no longer remembered. Pending ones
        are kept whatever their age."""
        status = await self.pool.execute(
            "DELETE FROM operator_requests WHERE request_id IN (SELECT request_id FROM operator_requests "
            "WHERE state <> 'pending' AND finished_at < now() - make_interval(secs => $1) "
            "ORDER BY finished_at LIMIT $2)", retention_days * 86_400, batch)
        return int(status.split()[-1])
