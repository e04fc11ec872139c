"""Whether the active indexer makes progress: a replica that holds the lease but whose cursor
stays behind the newest program transaction the cluster knows, without moving, for
`stuck_seconds`, is stuck (e.g. a subscription whose peer vanished without closing, so no
notification and no error ever comes). Then this replica's health goes NOT_SERVING (its
liveness probe fails, so an orchestrator restarts it and a standby takes over) and the
indexer is told to resubscribe and backfill; health comes back once the cursor moves.

A standby is never stuck (it is not expected to index); neither is a leader the cluster has
nothing new for, however long the chain runs without a program transaction.

Both claims below rest on one rule (`processed`): the indexer has processed everything up to
the newest program transaction a look saw when its cursor is in a later slot, or is that very
transaction, or is in that slot and that transaction is stored (its events or admin actions
written by a committed batch; batches commit in the indexer's order). Only in that last case is
the database asked, once a look (`store.stored_signatures`, by index). A cursor in the slot at
another transaction tells nothing by itself: a batch may end inside a slot, the slot's later
transactions still to be written (issue 25); or the cursor may come later in the slot than the
newest transaction listed (a position_manager transaction, which the vault program's history
does not list; or the first transaction of the last slot a batch holds, which its cursor names),
and an idle indexer must then be caught up. A transaction with no event of ours is never
stored: with the cursor in its slot, the claim waits until the cursor moves on.

Each look records the leader's watermark (`store.record_seen`, migration 253): the chain's
slot read before the newest program transaction was, and, when that transaction is processed,
that slot as the one everything is processed up to. So the monitor measures the indexer's lag
against the chain as the indexer saw it, and an idle indexer is caught up (issue 25: it raised
lag alerts whenever no vault changed for a minute).

Each look also decides whether the leader vouches for the Redis vault cache (issue 25: idle
vaults' entries expired, so GetVault read the chain at 100k vaults). It does when the newest
program transaction this look or the previous one saw is processed and published (`passed`:
the rule applied to the cursor as published, `Publisher.published`, since the cursor moves
when a batch commits and its cache entries are written after; a transaction found stored counts
only while every committed batch is published, `Indexer.all_published`), so everything
confirmed by then is processed and published: the lag is under one check interval, no cache
write was lost since (the publisher is not dirty) and no vault is held at a gap (its row, and
entry, stay at its last good event while the cursor moves on). It then sets
`{prefix}indexer:current` to the chain slot that look read, expiring `TRUST_CHECKS` intervals
after that look began; otherwise it deletes the key at once. So vault_manager trusts an entry
only while the key is there, and an entry it trusts misses no change confirmed more than the
window earlier: if the indexer dies, stalls, or is deposed, the key runs out by itself.

Being stuck goes by slots alone (a cursor in the newest transaction's slot is progress): a
transaction with no event of ours is never stored, and must not make a leader restart."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
from prometheus_client import Gauge
from redis.exceptions import RedisError
from solana.rpc.commitment import Commitment

from services.balance_tracker.indexer.follower import Indexer
from services.balance_tracker.store import Fenced, record_seen, stored_signatures
from vault_client.rpc_http import SolanaRpc, rpc_client

logger = logging.getLogger("progress")
TRUST_CHECKS = 3  # the cache's trust window, in check intervals (one failed look does not withdraw it)
Transaction = tuple[int, str]  # (slot, signature)
STUCK = Gauge("indexer_stuck", "1 while this replica leads but its cursor stays behind the chain without moving")


async def newest_program_transaction(client: SolanaRpc, indexer: Indexer) -> tuple[int, str] | None:
    """The slot and signature of the newest successful program transaction at the indexer's
    commitment (at least confirmed: history serves no less), or None if none is among the
    newest ten."""
    commitment = "confirmed" if indexer.config.commitment == "processed" else indexer.config.commitment
    page = (await client.get_signatures_for_address(indexer.config.program.program_id, limit=10,
                                                    commitment=Commitment(commitment))).value
    return next(((s.slot, str(s.signature)) for s in page if s.err is None), None)


async def chain_slot(client: SolanaRpc, indexer: Indexer) -> int:
    """The chain's slot at the commitment the indexer's history is read at."""
    commitment = "confirmed" if indexer.config.commitment == "processed" else indexer.config.commitment
    return int((await client.get_slot(Commitment(commitment))).value)


async def _record(indexer: Indexer, seen: int, caught_up: int) -> bool:
    """Whether the watermark was recorded (by a leader whose term is not over)."""
    try:
        await record_seen(indexer.pool, indexer.config.cursor_name, seen, caught_up,
                          (indexer.config.cursor_name, indexer.lease.term))
        return True
    except Fenced:
        return False  # no longer the leader: the next one records its own
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        logger.debug("watermark not recorded: %s", exc)
        return False


def processed(newest: Transaction, cursor: tuple[int, str | None] | None, stored: bool) -> bool:
    """The rule (module docstring): whether an indexer at `cursor` has processed everything up
    to the transaction `newest`. `stored`: whether `newest` is written by a committed batch
    (batches commit in the indexer's order); asked only when the cursor is in its slot."""
    if cursor is None:
        return False
    slot, signature = cursor
    return slot > newest[0] or (slot == newest[0] and (signature == newest[1] or stored))


@dataclass(frozen=True)
class Look:
    """One progress check by the leader: when it began, the chain's slot it read then, and
    the newest program transaction it saw after, its slot (None: none among the newest) and
    signature."""

    began: float
    seen: int
    newest: int | None
    newest_signature: str = ""

    @property
    def transaction(self) -> Transaction | None:
        return None if self.newest is None else (self.newest, self.newest_signature)


def needs_lookup(looks: list[Look | None], cursor: tuple[int, str | None] | None) -> list[str]:
    """The newest transactions of `looks` that only the database can tell processed: in the
    cursor's slot, and not the cursor's own."""
    if cursor is None:
        return []
    return sorted({look.newest_signature for look in looks if look is not None and look.newest == cursor[0]
                   and look.newest_signature != cursor[1]})


async def stored(indexer: Indexer, signatures: list[str]) -> frozenset[str]:
    """Which of `signatures` a committed batch wrote (one indexed lookup; none for none);
    nothing if PostgreSQL does not answer (so nothing is claimed)."""
    if not signatures:
        return frozenset()
    try:
        return frozenset(await stored_signatures(indexer.pool, signatures))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        logger.debug("stored transactions not read: %s", exc)
        return frozenset()


def passed(look: Look | None, published: Transaction | None, written: frozenset[str] = frozenset()) -> bool:
    """Whether the indexer has processed, and got into Redis, everything up to the newest
    transaction `look` saw: `processed` with its cursor as published (`Publisher.published`).
    `written`: transactions stored by batches that are published (the caller's evidence:
    found stored, with every committed batch published)."""
    newest = look.transaction if look is not None else None
    return newest is not None and processed(newest, published, newest[1] in written)


async def vouch(indexer: Indexer, looks: list[Look | None], published: Transaction | None, recorded: bool,
                window: float, written: frozenset[str] = frozenset()) -> bool:
    """Sets or withdraws the cache's trust (module docstring) from the newest of `looks`
    (this one, the previous one) whose newest transaction the cursor has passed; whether it
    is vouched for. `written`: the looks' newest transactions found stored (`stored`), which
    count only while every committed batch is published (`Indexer.all_published`, asked
    now: after the lookup). Redis being down withdraws it by itself: the key is unreadable,
    then expires."""
    cache = indexer.publisher.cache
    evidence = written if written and indexer.all_published() else frozenset()
    done = [look for look in looks if look is not None and passed(look, published, evidence)]
    anchor = done[0] if done and recorded and not indexer.publisher.dirty and not indexer.guard.held else None
    remaining = anchor.began + window - time.monotonic() if anchor is not None else 0.0
    try:
        if anchor is not None and remaining > 0.001:
            await cache.vouch(anchor.seen, int(remaining * 1000))
            return True
        await cache.withdraw_trust()
    except RedisError as exc:
        logger.debug("cache trust not updated: %s", exc)
    return False


async def check(indexer: Indexer, client: SolanaRpc, previous: Look | None, window: float
                ) -> tuple[Look | None, int]:
    """One look (none by a standby): the chain's slot, then its newest program transaction;
    the watermark recorded and the cache's trust set or withdrawn by them. Returns the look
    and the cursor's slot read after the chain (it only moves forward). Raises if the node
    does not answer."""
    now = time.monotonic()
    leader = indexer.is_leader
    seen = await chain_slot(client, indexer) if leader else 0
    listed = await newest_program_transaction(client, indexer) if leader else None
    cursor = indexer.cursor
    this = (Look(now, seen, *listed) if listed else Look(now, seen, None)) if seen else None
    found = await stored(indexer, needs_lookup([this, previous], cursor)) if seen else frozenset()
    newest = this.transaction if this is not None else None
    caught_up = newest is not None and processed(newest, cursor, newest[1] in found)
    recorded = bool(seen) and await _record(indexer, seen, seen if caught_up else 0)
    if indexer.is_leader:
        await vouch(indexer, [this, previous], indexer.publisher.published, recorded, window, found)
    return this, cursor[0] if cursor else 0


async def watch(indexer: Indexer, report: Callable[[bool], Awaitable[None]], stuck_seconds: float = 30.0,
                every: float = 5.0) -> None:
    """Calls `report(healthy)` whenever the indexer becomes stuck or stops being stuck."""
    healthy = True
    still: tuple[int, float] | None = None  # (cursor slot, since when) while behind
    previous: Look | None = None  # the leader's previous look
    async with rpc_client(indexer.config.rpc_url, timeout=every) as client:
        while True:
            await asyncio.sleep(every)
            now, stuck = time.monotonic(), False
            try:
                this, cursor = await check(indexer, client, previous, every * TRUST_CHECKS)
            except Exception as exc:  # the node is unreachable: nothing to compare against
                logger.debug("progress check skipped: %s", exc)
                continue
            previous = this
            newest = this.newest if this is not None else None
            if newest is None or newest <= cursor:
                still = None
            elif still is None or still[0] != cursor:
                still = (cursor, now)
            else:
                stuck = now - still[1] >= stuck_seconds
            STUCK.set(1 if stuck else 0)
            if stuck:
                indexer.resubscribe()
            if stuck == healthy:  # changed
                healthy = not stuck
                if stuck:
                    logger.error("the indexer is stuck: its cursor has stayed at slot %d for %.0f s while the "
                                 "cluster has program transactions up to slot %d", cursor, now - still[1],  # type: ignore[index]
                                 newest)
                else:
                    logger.info("the indexer makes progress again")
                await report(healthy)
