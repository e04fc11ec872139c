"""Checks before building collateral_vault's timelock instructions (issue 23,
docs/guard-rails.md), against the VaultAuthority as the chain holds it: what the program
would refuse is refused here with a status saying why (and when a change is due), before
anything is built for the admin to sign."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc

from services.common.errors import ServiceError, invalid, precondition_of
from vault_client.vault_program import Authority, ChangeKind, QueuedChange, WithdrawLimits

# collateral_vault/src/state/authority.rs
MAX_TIMELOCK_DELAY = 30 * 86_400
MAX_WINDOW_SLOTS = 2**32 - 1
BPS = 10_000


def utc(timestamp: int) -> str:
    try:
        return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return f"{timestamp} (Unix seconds)"


def queued_change(authority: Authority, change_id: int) -> QueuedChange:
    """The queued change `change_id`; NOT_FOUND (naming what is queued) if there is none."""
    if change_id == 0:
        raise invalid("change_id is required (GetAuthority lists the queued changes)")
    for change in authority.pending_changes:
        if change.change_id == change_id:
            return change
    queued = ", ".join(f"{c.change_id} ({ChangeKind.name_of(c.kind)})" for c in authority.pending_changes) or "none"
    raise ServiceError(grpc.StatusCode.NOT_FOUND, f"change {change_id} is not queued (executed, cancelled or never "
                       f"queued); queued now: {queued}", "ChangeNotFound")


def executable(change: QueuedChange, now: int) -> None:
    """An admin transfer is applied by its new admin; any other change from its eta on."""
    if change.kind == ChangeKind.ADMIN_TRANSFER:
        raise precondition_of("AcceptanceRequired", f"change {change.change_id} is an admin transfer: only the new "
                              f"admin {change.target} applies it, by signing accept_admin once it is due")
    if now < change.eta:
        kind = ChangeKind.name_of(change.kind)
        raise precondition_of("ChangeNotReady", f"change {change.change_id} ({kind}) is due at {utc(change.eta)}, "
                              f"in {change.eta - now} s (the cluster's clock reads {utc(now)})")


def delay(seconds: int) -> int:
    if not 0 <= seconds <= MAX_TIMELOCK_DELAY:
        raise invalid(f"seconds must be 0 to {MAX_TIMELOCK_DELAY} (30 days), got {seconds}")
    return seconds


def limits(max_outflow_bps: int, window_slots: int, min_budget: int, exempt_amount: int) -> WithdrawLimits:
    if max_outflow_bps > BPS:
        raise invalid(f"max_outflow_bps must be 0 to {BPS} (100 % of TVL), got {max_outflow_bps}")
    if not 1 <= window_slots <= MAX_WINDOW_SLOTS:
        raise invalid(f"window_slots must be 1 to {MAX_WINDOW_SLOTS}, got {window_slots}")
    return WithdrawLimits(max_outflow_bps, window_slots, min_budget, exempt_amount)


def loosens(current: WithdrawLimits, new: WithdrawLimits) -> bool:
    """Whether `new` raises any limit (then it is queued; else it applies at once): a higher
    share, floor or exempt amount, or a shorter window."""
    return (new.max_outflow_bps > current.max_outflow_bps or new.window_slots < current.window_slots
            or new.min_budget > current.min_budget or new.exempt_amount > current.exempt_amount)
