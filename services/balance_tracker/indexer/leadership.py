"""Which replica indexes: a lease in PostgreSQL that expires (migration 007), with fencing.

* `acquire()` blocks while another replica holds an unexpired lease (hot standby: it looks
  every `poll_seconds`). Once the lease has expired (its holder stopped renewing: it died,
  stalled or lost its network) it terminates the old holder's backends, so the row locks and
  transactions they held go with them, and takes the lease with term + 1, holding the lock
  every fenced write takes shared (so it waits for the old holder's batches in flight).
* `keep()` renews every `renew_seconds`. It raises `LeadershipLost` when the lease was taken
  over, or when it could not renew before the lease it last renewed would expire: a leader
  cut off from PostgreSQL stops on its own (`valid()` turns false at that deadline, measured
  on this machine's clock from before the renewal was sent).
* Fencing: every batch the indexer writes passes (name, term) to `indexer_fence` inside its
  own statements; a write of a term that is over is refused (`store.Fenced`), whatever the
  writer believes.

Takeover bound: a leader that vanishes right after renewing keeps its lease for
`lease_seconds`; a standby notices within `poll_seconds` and takes over at once (terminating
backends and moving the lease is two round trips), so the stream is followed again within
lease + poll + the new leader's resubscription and backfill: 10 + 1 + ~1 s with the defaults,
under the 30 s this project states (tests/services/test_indexer_leadership.py measures it)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field

import asyncpg

logger = logging.getLogger("leadership")

LOCK_CLASS = 0x6376_6978  # "cvix": the first half of the fence's lock key (migration 007)


class LeadershipLost(Exception):
    """This replica's term is over (taken over, or not renewed in time)."""


def new_holder() -> str:
    """A holder id, also the application_name of the holder's PostgreSQL connections (so a
    successor can find and terminate them); at most 63 characters."""
    return f"cvix-{uuid.uuid4().hex[:24]}"


@dataclass
class Lease:
    pool: asyncpg.Pool  # connections whose application_name is `holder`
    name: str
    holder: str
    lease_seconds: float = 10.0
    renew_seconds: float = 2.0
    poll_seconds: float = 1.0
    term: int = 0
    _valid_until: float = field(default=0.0, init=False)  # time.monotonic()

    def valid(self) -> bool:
        return self.term > 0 and time.monotonic() < self._valid_until

    async def acquire(self) -> int:
        """Blocks until this replica holds the lease; returns its term."""
        self.term = 0
        while True:
            try:
                term = await self._try_take()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                logger.warning("cannot reach PostgreSQL for the indexer lease: %s", exc)
                term = None
            if term is not None:
                self.term = term
                logger.info("holding the indexer lease %s at term %d: this replica indexes", self.name, term)
                return term
            await asyncio.sleep(self.poll_seconds)

    async def _try_take(self) -> int | None:
        sent = time.monotonic()
        async with self.pool.acquire(timeout=self.lease_seconds) as conn:
            row = await conn.fetchrow("SELECT holder, expires_at < now() AS expired FROM indexer_lease WHERE name = $1",
                                      self.name, timeout=self.lease_seconds)
            if row is not None and not row["expired"] and row["holder"] != self.holder:
                return None
            if row is not None and row["holder"] != self.holder:
                terminated = await conn.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = $1 AND pid <> pg_backend_pid()", row["holder"],
                    timeout=self.lease_seconds)
                logger.warning("the indexer lease of %s expired; terminated %d of its connections", row["holder"],
                               terminated)
            async with conn.transaction():
                await conn.execute("SET LOCAL lock_timeout = '2s'")
                await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", LOCK_CLASS, self.name)
                term = await conn.fetchval(
                    "INSERT INTO indexer_lease (name, holder, term, expires_at, holder_pid) "
                    "VALUES ($1, $2, 1, now() + make_interval(secs => $3), pg_backend_pid()) "
                    "ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, term = indexer_lease.term + 1, "
                    "expires_at = EXCLUDED.expires_at, holder_pid = EXCLUDED.holder_pid, renewed_at = now() "
                    "WHERE indexer_lease.expires_at < now() OR indexer_lease.holder = EXCLUDED.holder "
                    "RETURNING term", self.name, self.holder, self.lease_seconds, timeout=self.lease_seconds)
        if term is not None:
            self._valid_until = sent + self.lease_seconds
        return int(term) if term is not None else None

    async def keep(self) -> None:
        """Renews until the term is over; then raises `LeadershipLost` (never returns)."""
        while True:
            await asyncio.sleep(self.renew_seconds)
            sent = time.monotonic()
            try:
                renewed = await self.pool.fetchval(
                    "UPDATE indexer_lease SET expires_at = now() + make_interval(secs => $4), renewed_at = now(), "
                    "holder_pid = pg_backend_pid() WHERE name = $1 AND holder = $2 AND term = $3 RETURNING term",
                    self.name, self.holder, self.term, self.lease_seconds,
                    timeout=max(0.1, self._valid_until - sent))
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                if not self.valid():
                    raise LeadershipLost(f"could not renew the indexer lease before it expired ({exc})") from exc
                logger.warning("could not renew the indexer lease (%s); the term ends in %.1f s unless renewed",
                               exc, self._valid_until - time.monotonic())
                continue
            if renewed is None:
                raise LeadershipLost(f"the indexer lease {self.name} was taken over: term {self.term} is over")
            self._valid_until = sent + self.lease_seconds

    def check(self) -> None:
        """Raises `LeadershipLost` once the term has lapsed (before each write)."""
        if not self.valid():
            raise LeadershipLost(f"the indexer lease {self.name} (term {self.term}) was not renewed in time")

    async def release(self) -> None:
        """Ends the term at once (a graceful stop): a standby takes over within its poll."""
        if self.term == 0:
            return
        try:
            await self.pool.execute("UPDATE indexer_lease SET expires_at = now() WHERE name = $1 AND holder = $2 "
                                    "AND term = $3", self.name, self.holder, self.term, timeout=2)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            logger.warning("could not release the indexer lease (%s); it expires on its own", exc)
        self.term = 0
