"""The watcher: raises alerts (stored in PostgreSQL, deduplicated, counted in metrics) for

* a reconciliation run that found mismatches;
* withdrawals above a share of a vault, or of TVL, within a window;
* lock / unlock / transfer by a program not in the authority list (should be impossible);
* the program paused (any pause flag set);
* the indexer lagging the chain by more than N slots;
* the exchange (issue 22): a liquidation, an exit requested (the operator has until its
  deadline to answer), an exit the trader served himself (the operator did not answer in
  time), and an operator operation the chain refused (cpi_manager records refusals in
  `operator_requests`; services share the database, not code);

and exports TVL, vault count and indexer lag as gauges.

Each pass costs what changed since the last (issue 25): the events are read after a cursor on
their numbers (`feed.py`), reconciliation runs after a cursor on their ids, refusals after a
cursor on their time (all kept in `monitor_cursor`), withdrawals are summed in memory over
the window (`withdrawals.py`), TVL is one row (`vault_totals`), and the indexer's lag is one
row (its watermark, written by the indexer events or not)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from prometheus_client import Counter, Gauge

from services.common import vault_rows
from services.common.chain import ChainClient
from services.monitor.feed import Cursors, new_events
from services.monitor.withdrawals import WithdrawalWindow
from vault_client.config import MonitorSettings

logger = logging.getLogger("watcher")
# the kinds of events the checks read: withdrawals (large ones), lock / unlock / transfer
# (their caller), the exchange's liquidations and exits
EVENT_KINDS = ["withdraw", "lock", "unlock", "transfer", "operator_liquidate", "exit_requested", "exit_served"]
ALERTS = Counter("monitor_alerts_total", "Alerts raised", ["kind"])
TVL = Gauge("vault_tvl", "Collateral in vaults (USDT base units)", ["part"])
VAULTS = Gauge("vault_count", "Open vaults")
LAG = Gauge("indexer_lag_slots", "The chain's slot as the indexer last saw it minus the slot it had processed "
            "everything up to")
PAUSED = Gauge("vault_program_pause_flags", "Pause flags of the vault authority")


@dataclass
class WatcherConfig(MonitorSettings):
    """The thresholds from the environment (MonitorSettings: ALERT_*, MONITOR_INTERVAL_SECONDS)
    and the watcher's fixed parameters."""

    # the indexer records its watermark every few seconds while it leads: silent for this long,
    # it is down or stuck (an alert too)
    silent_seconds: float = 60.0
    cursor_name: str = "collateral_vault"


@dataclass
class Watcher:
    pool: asyncpg.Pool
    chain: ChainClient
    config: WatcherConfig = field(default_factory=WatcherConfig)
    cursors: Cursors = field(init=False)
    window: WithdrawalWindow = field(init=False)

    def __post_init__(self) -> None:
        self.cursors = Cursors(self.pool)
        self.window = WithdrawalWindow(self.config.window_seconds)

    async def raise_alert(self, kind: str, severity: str, message: str, key: str, owner: str = "",
                          details: dict[str, Any] | None = None) -> bool:
        inserted = await self.pool.fetchval(
            "INSERT INTO alerts (kind, severity, owner, message, dedupe_key, details) VALUES ($1, $2, $3, $4, $5, "
            "$6::jsonb) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id", kind, severity, owner, message, key,
            json.dumps(details or {}, default=str))
        if inserted is not None:
            ALERTS.labels(kind).inc()
            logger.warning("alert %s: %s", kind, message)
        return inserted is not None

    async def check_once(self) -> None:
        await self.check_tvl()
        await self.check_reconciliation()
        await self.check_pause()
        await self.check_events()
        await self.check_lag()
        await self.check_operator_refusals()

    async def check_events(self) -> None:
        """The events numbered since the last pass, of the kinds some check looks at."""
        if not self.window.loaded:
            await self.window.load(self.pool, time.time())
        after = await self.cursors.get("events")
        events, position = await new_events(self.pool, after, EVENT_KINDS)
        allowed: set[str] | None = None
        if any(r["caller_program"] is not None and r["kind"] in ("lock", "unlock", "transfer") for r in events):
            authority = await self.chain.authority()
            allowed = {str(p) for p in authority.programs} if authority is not None else None
        withdrawn: dict[str, str] = {}  # owner -> the event id of its newest withdrawal this pass
        for r in events:
            event_id = f"{r['signature']}:{r['instruction_index']}:{r['event_index']}"
            if r["kind"] == "withdraw":
                if r["at"].timestamp() >= time.time() - self.config.window_seconds \
                        and self.window.add(r["at"], r["owner"], int(r["amount"]), event_id):
                    withdrawn[r["owner"]] = event_id
            elif r["kind"] in ("lock", "unlock", "transfer"):
                if allowed is not None and r["caller_program"] is not None and r["caller_program"] not in allowed:
                    await self.raise_alert("unauthorized_caller", "critical",
                                           f"{r['kind']} on {r['owner']} by {r['caller_program']}, which is not an "
                                           "authorized program", f"caller:{event_id}", owner=r["owner"],
                                           details={"event_id": event_id, "caller_program": r["caller_program"]})
            else:
                await self._exchange_event(r, event_id)
        await self._withdrawals(withdrawn)
        if position > after:
            await self.cursors.move("events", position)

    async def _exchange_event(self, r: Any, event_id: str) -> None:
        """Liquidations and exits (each once: alerts are deduplicated by event id)."""
        details = json.loads(r["details"]) if isinstance(r["details"], str) else (r["details"] or {})
        common = {"event_id": event_id, "signature": r["signature"]}
        if r["kind"] == "operator_liquidate":
            await self.raise_alert("liquidation", "warning",
                                   f"{r['owner']} was liquidated: {r['amount']} moved to the insurance fund "
                                   f"({r['counterparty']})", f"liquidation:{event_id}", owner=r["owner"],
                                   details={**common, "amount": str(r["amount"])})
        elif r["kind"] == "exit_requested":
            await self.raise_alert("exit_requested", "warning",
                                   f"{r['owner']} requested an exit: the operator must release or settle what "
                                   f"it holds before slot {details.get('deadline_slot')}", f"exit:{event_id}",
                                   owner=r["owner"], details={**common, **details})
        elif r["kind"] == "exit_served" and not details.get("by_operator", True):
            await self.raise_alert("exit_served_by_trader", "critical",
                                   f"{r['owner']} exited by himself after the deadline ({r['amount']} released): "
                                   "the operator did not answer the exit request in time",
                                   f"exit_served:{event_id}", owner=r["owner"],
                                   details={**common, "released": str(r["amount"])})

    async def check_operator_refusals(self) -> None:
        """Operator operations the chain refused (cpi_manager's records), each once, after a
        cursor on their time (microseconds since the epoch)."""
        since = datetime.fromtimestamp(await self.cursors.get("operator_refusals") / 1e6, UTC)
        rows = await self.pool.fetch(
            "SELECT request_id, operation, traders, op_ids, error_name, error_message, finished_at "
            "FROM operator_requests WHERE state = 'refused' AND finished_at > $1 ORDER BY finished_at LIMIT 500",
            since)
        for r in rows:
            since = max(since, r["finished_at"])
            await self.raise_alert("operator_refused", "warning",
                                   f"the chain refused the operator's {r['operation']} {r['request_id']!r} for "
                                   f"{', '.join(r['traders'])}: {r['error_message']}",
                                   f"operator_refused:{r['request_id']}", owner=r["traders"][0],
                                   details={"request_id": r["request_id"], "error": r["error_name"],
                                            "op_ids": list(r["op_ids"])})
        if rows:
            await self.cursors.move("operator_refusals", int(since.timestamp() * 1e6))

    async def check_tvl(self) -> None:
        totals = await vault_rows.totals(self.pool, self.config.cursor_name)
        VAULTS.set(totals.vault_count)
        for part, value in (("total", totals.total), ("locked", totals.locked), ("available", totals.available)):
            TVL.labels(part).set(float(value))

    async def check_reconciliation(self) -> None:
        """The runs finished since the last pass (a run still going stops the cursor, unless
        it has been going for an hour: its process died)."""
        after = await self.cursors.get("reconciliation_runs")
        rows = await self.pool.fetch(
            "SELECT id, status, findings, started_at < now() - interval '1 hour' AS abandoned "
            "FROM reconciliation_runs WHERE id > $1 ORDER BY id LIMIT 100", after)
        position = after
        for row in rows:
            if row["status"] == "running" and not row["abandoned"]:
                break
            position = row["id"]
            if row["status"] == "mismatch":
                await self.raise_alert("reconciliation_mismatch", "critical",
                                       f"reconciliation run {row['id']} found {row['findings']} mismatches between "
                                       "the chain, the database and the token accounts",
                                       f"reconciliation:{row['id']}", details={"run_id": row["id"]})
        if position > after:
            await self.cursors.move("reconciliation_runs", position)

    async def _withdrawals(self, withdrawn: dict[str, str]) -> None:
        """Large withdrawals within the window: per vault (for the vaults that withdrew this
        pass) and of TVL."""
        now = time.time()
        self.window.expire(now)
        if not withdrawn:
            return
        balances = {r["owner"]: int(r["total"]) for r in await self.pool.fetch(
            "SELECT owner, total_balance::text AS total FROM vaults WHERE owner = ANY($1::text[])", list(withdrawn))}
        for owner, event_id in withdrawn.items():
            amount = self.window.by_owner.get(owner, 0)
            before = amount + balances.get(owner, 0)
            if before and amount > self.config.vault_share * before:
                await self.raise_alert(
                    "large_withdrawal", "warning",
                    f"{owner} withdrew {amount} of {before} ({amount / before:.0%}) within "
                    f"{self.config.window_seconds:.0f} s", f"withdrawal:{owner}:{event_id}",
                    owner=owner, details={"withdrawn": amount, "vault_before": before})
        total_withdrawn = self.window.total
        before_tvl = (await vault_rows.totals(self.pool, self.config.cursor_name)).total + total_withdrawn
        if before_tvl and total_withdrawn > self.config.tvl_share * before_tvl:
            bucket = int(now // self.config.window_seconds)
            await self.raise_alert(
                "large_withdrawal", "critical",
                f"withdrawals of {total_withdrawn} ({total_withdrawn / before_tvl:.0%} of TVL) within "
                f"{self.config.window_seconds:.0f} s", f"withdrawal:tvl:{bucket}",
                details={"withdrawn": total_withdrawn, "tvl_before": before_tvl})

    async def check_pause(self) -> None:
        authority = await self.chain.authority()
        if authority is None:
            return
        PAUSED.set(authority.pause_flags)
        if authority.pause_flags:
            slot = await self.chain.slot()
            previous = await self.pool.fetchval(
                "SELECT details ->> 'flags' FROM alerts WHERE kind = 'program_paused' "
                "ORDER BY raised_at DESC, id DESC LIMIT 1")
            if previous != str(authority.pause_flags):
                await self.raise_alert("program_paused", "critical",
                                       f"the vault program is paused (flags {authority.pause_flags})",
                                       f"paused:{authority.pause_flags}:{slot}",
                                       details={"flags": authority.pause_flags})

    async def check_lag(self) -> None:
        """Against the chain's slot as the indexer last saw it (its watermark, recorded every
        few seconds while it leads, events or not): an idle indexer that is caught up has no
        lag. An indexer that has not recorded it for `silent_seconds` is down or stuck."""
        row = await self.pool.fetchrow(
            "SELECT chain_slot, GREATEST(slot, caught_up_slot) AS processed, "
            "extract(epoch FROM now() - COALESCE(seen_at, updated_at))::float8 AS silent "
            "FROM indexer_cursor WHERE name = $1", self.config.cursor_name)
        if row is None:  # nothing indexed yet: nothing to be behind
            LAG.set(0)
            return
        lag = max(int(row["chain_slot"]) - int(row["processed"]), 0)
        LAG.set(lag)
        minute = int(time.time() // 60)
        if lag > self.config.max_lag_slots:
            await self.raise_alert("indexer_lag", "warning",
                                   f"the indexer is {lag} slots behind the chain as it last saw it (limit "
                                   f"{self.config.max_lag_slots})", f"lag:{minute}",
                                   details={"lag": lag, "processed": row["processed"], "slot": row["chain_slot"]})
        elif row["silent"] > self.config.silent_seconds:
            await self.raise_alert("indexer_lag", "warning",
                                   f"the indexer has not reported where it is for {row['silent']:.0f} s (limit "
                                   f"{self.config.silent_seconds:.0f} s): it is down or stuck", f"lag:{minute}",
                                   details={"silent_seconds": row["silent"], "processed": row["processed"]})

    async def run(self) -> None:
        while True:
            try:
                await self.check_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("monitor pass failed: %s", exc)
            await asyncio.sleep(self.config.interval_seconds)
