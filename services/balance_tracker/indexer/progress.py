"""Whether the active indexer makes progress: a replica that holds the lease but whose cursor
stays behind the newest program transaction the cluster knows, without moving, for
`stuck_seconds`, is stuck (e.g. a subscription whose peer vanished without closing, so no
notification and no error ever comes). Then this replica's health goes NOT_SERVING (its
liveness probe fails, so an orchestrator restarts it and a standby takes over) and the
indexer is told to resubscribe and backfill; health comes back once the cursor moves.

A standby is never stuck (it is not expected to index); neither is a leader the cluster has
nothing new for, however long the chain runs without a program transaction.

Each look also records the leader's watermark (`store.record_seen`, migration 253): the
chain's slot read before the newest program transaction was, and, when that transaction is
processed (at or below the cursor), that slot as the one everything is processed up to. So
the monitor measures the indexer's lag against the chain as the indexer saw it, and an idle
indexer is caught up (issue 25: it raised lag alerts whenever no vault changed for a minute)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import asyncpg
from prometheus_client import Gauge
from solana.rpc.commitment import Commitment

from services.balance_tracker.indexer.follower import Indexer
from services.balance_tracker.store import Fenced, record_seen
from vault_client.rpc_http import SolanaRpc, rpc_client

logger = logging.getLogger("progress")
STUCK = Gauge("indexer_stuck", "1 while this replica leads but its cursor stays behind the chain without moving")


async def newest_program_slot(client: SolanaRpc, indexer: Indexer) -> int | None:
    """The slot of the newest successful program transaction at the indexer's commitment (at
    least confirmed: history serves no less), or None if none is among the newest ten."""
    commitment = "confirmed" if indexer.config.commitment == "processed" else indexer.config.commitment
    page = (await client.get_signatures_for_address(indexer.config.program.program_id, limit=10,
                                                    commitment=Commitment(commitment))).value
    return next((s.slot for s in page if s.err is None), None)


async def chain_slot(client: SolanaRpc, indexer: Indexer) -> int:
    """The chain's slot at the commitment the indexer's history is read at."""
    commitment = "confirmed" if indexer.config.commitment == "processed" else indexer.config.commitment
    return int((await client.get_slot(Commitment(commitment))).value)


async def _record(indexer: Indexer, seen: int, caught_up: int) -> None:
    try:
        await record_seen(indexer.pool, indexer.config.cursor_name, seen, caught_up,
                          (indexer.config.cursor_name, indexer.lease.term))
    except Fenced:
        pass  # no longer the leader: the next one records its own
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        logger.debug("watermark not recorded: %s", exc)


async def watch(indexer: Indexer, report: Callable[[bool], Awaitable[None]], stuck_seconds: float = 30.0,
                every: float = 5.0) -> None:
    """Calls `report(healthy)` whenever the indexer becomes stuck or stops being stuck."""
    healthy = True
    still: tuple[int, float] | None = None  # (cursor slot, since when) while behind
    async with rpc_client(indexer.config.rpc_url, timeout=every) as client:
        while True:
            await asyncio.sleep(every)
            now, stuck = time.monotonic(), False
            try:
                seen = await chain_slot(client, indexer) if indexer.is_leader else 0
                newest = await newest_program_slot(client, indexer) if indexer.is_leader else None
            except Exception as exc:  # the node is unreachable: nothing to compare against
                logger.debug("progress check skipped: %s", exc)
                continue
            cursor = indexer.cursor[0] if indexer.cursor else 0  # read after: it only moves forward
            if seen:
                await _record(indexer, seen, seen if newest is not None and newest <= cursor else 0)
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
