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

and exports TVL, vault count and indexer lag as gauges."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from prometheus_client import Counter, Gauge

from services.common.chain import ChainClient

logger = logging.getLogger("watcher")
ALERTS = Counter("monitor_alerts_total", "Alerts raised", ["kind"])
TVL = Gauge("vault_tvl", "Collateral in vaults (USDT base units)", ["part"])
VAULTS = Gauge("vault_count", "Open vaults")
LAG = Gauge("indexer_lag_slots", "Chain slot minus the indexer's cursor slot")
PAUSED = Gauge("vault_program_pause_flags", "Pause flags of the vault authority")


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclass
class WatcherConfig:
    vault_share: float = field(default_factory=lambda: _float("ALERT_WITHDRAWAL_VAULT_SHARE", 0.5))
    tvl_share: float = field(default_factory=lambda: _float("ALERT_WITHDRAWAL_TVL_SHARE", 0.2))
    window_seconds: float = field(default_factory=lambda: _float("ALERT_WITHDRAWAL_WINDOW_SECONDS", 3600))
    max_lag_slots: int = field(default_factory=lambda: int(_float("ALERT_INDEXER_LAG_SLOTS", 150)))
    interval_seconds: float = field(default_factory=lambda: _float("MONITOR_INTERVAL_SECONDS", 2))
    cursor_name: str = "collateral_vault"


@dataclass
class Watcher:
    pool: asyncpg.Pool
    chain: ChainClient
    config: WatcherConfig = field(default_factory=WatcherConfig)
    # how far the exchange checks have read (alerts are deduplicated anyway: a restart
    # reads again from the start, a page per pass)
    _exchange_seq: int = 0
    _refusals_since: datetime = field(default_factory=lambda: datetime.fromtimestamp(0, UTC))

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
        await self.check_withdrawals()
        await self.check_callers_and_pause()
        await self.check_lag()
        await self.check_exchange_events()
        await self.check_operator_refusals()

    async def check_exchange_events(self) -> None:
        """Liquidations and exits, from the event ledger (each once: it follows the events'
        numbers, a page per pass, and alerts are deduplicated by event id)."""
        rows = await self.pool.fetch(
            "SELECT owner, signature, instruction_index, event_index, kind, amount, counterparty, details, seq "
            "FROM transactions WHERE kind IN ('operator_liquidate', 'exit_requested', 'exit_served') AND seq > $1 "
            "ORDER BY seq LIMIT 500", self._exchange_seq)
        for r in rows:
            self._exchange_seq = max(self._exchange_seq, int(r["seq"]))
            event_id = f"{r['signature']}:{r['instruction_index']}:{r['event_index']}"
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
            elif not details.get("by_operator", True):
                await self.raise_alert("exit_served_by_trader", "critical",
                                       f"{r['owner']} exited by himself after the deadline ({r['amount']} released): "
                                       "the operator did not answer the exit request in time",
                                       f"exit_served:{event_id}", owner=r["owner"],
                                       details={**common, "released": str(r["amount"])})

    async def check_operator_refusals(self) -> None:
        """Operator operations the chain refused (cpi_manager's records), each once."""
        rows = await self.pool.fetch(
            "SELECT request_id, operation, traders, op_ids, error_name, error_message, finished_at "
            "FROM operator_requests WHERE state = 'refused' AND finished_at > $1 ORDER BY finished_at LIMIT 500",
            self._refusals_since)
        for r in rows:
            self._refusals_since = max(self._refusals_since, r["finished_at"])
            await self.raise_alert("operator_refused", "warning",
                                   f"the chain refused the operator's {r['operation']} {r['request_id']!r} for "
                                   f"{', '.join(r['traders'])}: {r['error_message']}",
                                   f"operator_refused:{r['request_id']}", owner=r["traders"][0],
                                   details={"request_id": r["request_id"], "error": r["error_name"],
                                            "op_ids": list(r["op_ids"])})

    async def check_tvl(self) -> None:
        row = await self.pool.fetchrow(
            "SELECT count(*) AS n, COALESCE(sum(total_balance), 0) AS total, COALESCE(sum(locked_balance), 0) AS "
            "locked, COALESCE(sum(available_balance), 0) AS available FROM vaults WHERE closed_at IS NULL")
        assert row is not None
        VAULTS.set(row["n"])
        for part in ("total", "locked", "available"):
            TVL.labels(part).set(float(row[part]))

    async def check_reconciliation(self) -> None:
        row = await self.pool.fetchrow("SELECT id, findings FROM reconciliation_runs WHERE status = 'mismatch' "
                                       "ORDER BY id DESC LIMIT 1")
        if row is not None:
            await self.raise_alert("reconciliation_mismatch", "critical",
                                   f"reconciliation run {row['id']} found {row['findings']} mismatches between "
                                   "the chain, the database and the token accounts", f"reconciliation:{row['id']}",
                                   details={"run_id": row["id"]})

    async def check_withdrawals(self) -> None:
        since = time.time() - self.config.window_seconds
        rows = await self.pool.fetch(
            "SELECT t.owner, sum(t.amount) AS withdrawn, max(t.signature) AS last_signature, v.total_balance "
            "FROM transactions t JOIN vaults v USING (owner) WHERE t.kind = 'withdraw' "
            "AND t.block_time >= to_timestamp($1) GROUP BY t.owner, v.total_balance", since)
        tvl = int(await self.pool.fetchval("SELECT COALESCE(sum(total_balance), 0) FROM vaults "
                                           "WHERE closed_at IS NULL"))
        total_withdrawn = 0
        for r in rows:
            withdrawn, before = int(r["withdrawn"]), int(r["withdrawn"]) + int(r["total_balance"])
            total_withdrawn += withdrawn
            if before and withdrawn > self.config.vault_share * before:
                await self.raise_alert(
                    "large_withdrawal", "warning",
                    f"{r['owner']} withdrew {withdrawn} of {before} ({withdrawn / before:.0%}) within "
                    f"{self.config.window_seconds:.0f} s", f"withdrawal:{r['owner']}:{r['last_signature']}",
                    owner=r["owner"], details={"withdrawn": withdrawn, "vault_before": before})
        before_tvl = tvl + total_withdrawn
        if before_tvl and total_withdrawn > self.config.tvl_share * before_tvl:
            bucket = int(time.time() // self.config.window_seconds)
            await self.raise_alert(
                "large_withdrawal", "critical",
                f"withdrawals of {total_withdrawn} ({total_withdrawn / before_tvl:.0%} of TVL) within "
                f"{self.config.window_seconds:.0f} s", f"withdrawal:tvl:{bucket}",
                details={"withdrawn": total_withdrawn, "tvl_before": before_tvl})

    async def check_callers_and_pause(self) -> None:
        authority = await self.chain.authority()
        if authority is None:
            return
        PAUSED.set(authority.pause_flags)
        if authority.pause_flags:
            slot = await self.chain.slot()
            previous = await self.pool.fetchval(
                "SELECT details ->> 'flags' FROM alerts WHERE kind = 'program_paused' ORDER BY id DESC LIMIT 1")
            if previous != str(authority.pause_flags):
                await self.raise_alert("program_paused", "critical",
                                       f"the vault program is paused (flags {authority.pause_flags})",
                                       f"paused:{authority.pause_flags}:{slot}",
                                       details={"flags": authority.pause_flags})
        allowed = [str(p) for p in authority.programs]
        rows = await self.pool.fetch(
            "SELECT owner, signature, instruction_index, event_index, kind, caller_program FROM transactions "
            "WHERE kind IN ('lock', 'unlock', 'transfer') AND caller_program IS NOT NULL "
            "AND NOT (caller_program = ANY($1::text[])) ORDER BY slot DESC LIMIT 100", allowed)
        for r in rows:
            event_id = f"{r['signature']}:{r['instruction_index']}:{r['event_index']}"
            await self.raise_alert("unauthorized_caller", "critical",
                                   f"{r['kind']} on {r['owner']} by {r['caller_program']}, which is not an "
                                   "authorized program", f"caller:{event_id}", owner=r["owner"],
                                   details={"event_id": event_id, "caller_program": r["caller_program"]})

    async def check_lag(self) -> None:
        cursor = await self.pool.fetchval("SELECT slot FROM indexer_cursor WHERE name = $1", self.config.cursor_name)
        slot = await self.chain.slot()
        lag = slot - int(cursor or 0)
        LAG.set(lag)
        if lag > self.config.max_lag_slots:
            minute = int(time.time() // 60)
            await self.raise_alert("indexer_lag", "warning",
                                   f"the indexer is {lag} slots behind the chain (limit {self.config.max_lag_slots})",
                                   f"lag:{minute}", details={"lag": lag, "cursor": cursor, "slot": slot})

    async def run(self) -> None:
        while True:
            try:
                await self.check_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("monitor pass failed: %s", exc)
            await asyncio.sleep(self.config.interval_seconds)
