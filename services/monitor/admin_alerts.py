"""Alerts on the vault program's timelocked admin changes (issue 23), from indexed events.

A loosening change (authorizing a program, a new admin, lifting a pause, changing the delay,
raising withdrawal limits) is queued on chain and takes effect only after a delay: the
window in which people can react. The indexer stores each `ChangeQueued`,
`ChangeExecuted` and `ChangeCancelled` event in audit_log (owner '', action = the event's
name, details = its fields); this module follows those rows by id and raises

* `admin_change_queued` (critical) the moment a change is queued: its kind, target, values,
  when it takes effect (UTC) and its id;
* `admin_change_resolved` (info) when it is executed or cancelled.

Each alert is deduplicated by change id, so a restart that reads the rows again (it starts
from the beginning, a page per pass) raises nothing twice."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

logger = logging.getLogger("admin_alerts")

CHANGE_KINDS = {0: "AuthorizeProgram", 1: "AdminTransfer", 2: "LiftPause", 3: "SetDelay", 4: "RaiseWithdrawLimits"}
EVENTS = ("ChangeQueued", "ChangeExecuted", "ChangeCancelled")
PAGE = 500

# Watcher.raise_alert: (kind, severity, message, dedupe key, owner=, details=) -> raised now
RaiseAlert = Callable[..., Awaitable[bool]]


def kind_name(kind: Any) -> str:
    try:
        return CHANGE_KINDS.get(int(kind), f"kind {kind}")
    except (TypeError, ValueError):
        return f"kind {kind!r}"


def utc(timestamp: Any) -> str:
    try:
        return datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError, OverflowError, OSError):
        return f"{timestamp!r} (not a time)"


def describe(action: str, details: dict[str, Any]) -> tuple[str, str, str, str] | None:
    """(alert kind, severity, message, dedupe key) for one indexed change event."""
    change = details.get("change_id", "?")
    kind = kind_name(details.get("kind"))
    values = details.get("values")
    if action == "ChangeQueued":
        return ("admin_change_queued", "critical",
                f"admin change {change} queued: {kind} for {details.get('target')} (values {values}), takes effect "
                f"at {utc(details.get('eta'))} unless the admin ({details.get('admin')}) cancels it",
                f"admin_change_queued:{change}")
    if action == "ChangeExecuted":
        return ("admin_change_resolved", "info",
                f"admin change {change} executed: {kind} for {details.get('target')} (values {values}) is in force",
                f"admin_change_resolved:{change}")
    if action == "ChangeCancelled":
        return ("admin_change_resolved", "info",
                f"admin change {change} cancelled: {kind} by {details.get('admin')}", f"admin_change_resolved:{change}")
    return None


@dataclass
class AdminChangeAlerts:
    pool: asyncpg.Pool
    raise_alert: RaiseAlert
    interval_seconds: float = 1.0
    since_id: int = 0  # the last audit_log row read

    async def check_once(self) -> int:
        """Reads the change events indexed since the last pass; returns how many."""
        rows = await self.pool.fetch(
            "SELECT id, action, signature, details FROM audit_log WHERE owner = '' AND action = ANY($1::text[]) "
            "AND id > $2 ORDER BY id LIMIT $3", list(EVENTS), self.since_id, PAGE)
        for row in rows:
            details = row["details"] if isinstance(row["details"], dict) else json.loads(row["details"])
            alert = describe(row["action"], details)
            if alert is not None:
                kind, severity, message, key = alert
                await self.raise_alert(kind, severity, message, key,
                                       details={**details, "signature": row["signature"], "event": row["action"]})
            self.since_id = max(self.since_id, int(row["id"]))
        return len(rows)

    async def run(self) -> None:
        while True:
            try:
                while await self.check_once() == PAGE:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("admin change pass failed: %s", exc)
            await asyncio.sleep(self.interval_seconds)
