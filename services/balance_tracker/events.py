"""Program events of one transaction → the rows the indexer stores (pure functions).

Both programs: the vault program's events (vault rows follow their balances) and
position_manager's, the exchange program's (grants, exits, the operator's actions: rows of
the trader's history without vault balances; its configuration changes go to the audit
log like the vault's admin actions)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from solders.pubkey import Pubkey

from vault_client.idl import CodecError, Idl, discriminator, snake
from vault_client.program_logs import data_lines
from vault_client.vault_program import IDL, PM_IDL, Action

KINDS = {
    "Deposited": "deposit", "Withdrawn": "withdraw", "CollateralLocked": "lock", "CollateralUnlocked": "unlock",
    "CollateralTransferred": "transfer", "VaultInitialized": "vault_initialized", "VaultClosed": "vault_closed",
    "SurplusAbsorbed": "surplus", "OrphanedLockReleased": "orphaned_lock_released",
}
# the vault program's admin events (each carries the VaultAuthority's `seq`); the
# timelock's (issue 23: a loosening change is queued, then executed or cancelled) and the
# withdrawal limits' too (left out, each limits change looked like a gap in the numbering)
ADMIN_EVENTS = {"AuthorityInitialized", "ProgramAuthorized", "ProgramDeauthorized", "PauseFlagsSet",
                "AdminTransferProposed", "AdminTransferAccepted", "ChangeQueued", "ChangeExecuted",
                "ChangeCancelled", "WithdrawLimitsSet"}
# position_manager
EXCHANGE_KINDS = {"GrantSet": "grant_set", "GrantRevoked": "grant_revoked", "ExitRequested": "exit_requested",
                  "ExitServed": "exit_served"}
OPERATOR_KINDS = tuple(f"operator_{name}" for name in Action.NAMES)  # by OperatorAction.action
EXCHANGE_ADMIN_EVENTS = {"ExchangeInitialized", "ConfigChangeProposed", "ConfigChangeApplied",
                         "ConfigChangeCancelled"}
ALL_KINDS = frozenset(KINDS.values()) | frozenset(EXCHANGE_KINDS.values()) | frozenset(OPERATOR_KINDS)
NO_KEY = "11111111111111111111111111111111"


@dataclass(frozen=True)
class Balances:
    total: int
    locked: int
    available: int


@dataclass
class EventRow:
    owner: str
    signature: str
    instruction_index: int
    event_index: int
    kind: str
    amount: int
    slot: int
    block_time: datetime | None
    commitment: str
    balances: Balances | None
    counterparty: str | None = None
    caller_program: str | None = None
    # the receiver's balances after a transfer (its vault row changes too)
    counterparty_balances: Balances | None = None
    vault: str | None = None
    token_account: str | None = None
    seq: int = 0  # the global commit order number the indexer gives it before writing (migration 008)
    # migration 021: what the acting program holds locked after, the vault's own event
    # number, the operator's op id, and an exchange event's other fields
    program_locked: int | None = None
    vault_seq: int | None = None
    op_id: int | None = None
    details: dict[str, Any] | None = None
    # whether the event moves the owner's (and a transfer's receiver's) vault row: the
    # sequence check (gaps.py) clears these for an event already in the row or past a gap
    apply_owner: bool = True
    apply_counterparty: bool = True

    @property
    def event_id(self) -> str:
        return f"{self.signature}:{self.instruction_index}:{self.event_index}"

    @property
    def key(self) -> tuple[str, int, int]:
        return self.signature, self.instruction_index, self.event_index


@dataclass
class AdminEvent:
    name: str
    actor: str
    signature: str
    instruction_index: int
    event_index: int
    details: dict[str, Any] = field(default_factory=dict)


def _detail(value: Any) -> Any:
    """A field of an admin event as JSON: text, or a list of texts (an array field)."""
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else str(value)


def _balances(total: int, available: int) -> Balances:
    return Balances(total, total - available, available)


# The fields each vault event kind reads that are keys (text in its row); `_compiled`
# converts only these, the others of a compiled event stay bytes and are never read.
_KEYS_READ = {"deposit": ("owner",), "withdraw": ("owner",), "surplus": ("owner",),
              "lock": ("owner", "caller_program"), "unlock": ("owner", "caller_program"),
              "orphaned_lock_released": ("owner", "program"),
              "transfer": ("from_owner", "to_owner", "caller_program"),
              "vault_initialized": ("owner", "vault", "token_account"), "vault_closed": ("owner", "vault")}


@dataclass(frozen=True)
class _Compiled:
    """One vault event's fields read by one struct unpack (its IDL layout), as the field
    dict `_vault_row` reads: the keys it reads as text, every other value as unpacked."""

    name: str
    kind: str
    layout: struct.Struct
    names: tuple[str, ...]
    keys: tuple[int, ...]  # the positions of the keys read

    def fields(self, data: bytes) -> dict[str, Any]:
        values = list(self.layout.unpack_from(data, 8))
        for i in self.keys:
            values[i] = str(Pubkey.from_bytes(values[i]))
        return dict(zip(self.names, values, strict=True))


@cache
def _compiled(idl: Idl) -> dict[bytes, _Compiled]:
    """The vault's event kinds in `idl` by discriminator, compiled once from the IDL (same
    fields as `Idl.decode_event`, without a Pubkey or a call per field). An event whose
    layout is not fixed (none of the vault's) is left to the IDL walk."""
    out: dict[bytes, _Compiled] = {}
    for name, kind in KINDS.items():
        fields = idl.events.get(name)
        layout = idl.layout("event", name)
        if fields is None or layout is None or any(not isinstance(f["type"], str) for f in fields):
            continue
        names = tuple(snake(f["name"]) for f in fields)
        keys = tuple(i for i, (n, f) in enumerate(zip(names, fields, strict=True))
                     if f["type"] == "publicKey" and n in _KEYS_READ[kind])
        out[discriminator("event", name)] = _Compiled(name, kind, layout.struct, names, keys)
    return out


def decode(signature: str, logs: list[str], slot: int, block_time: datetime | None, commitment: str,
           program_id: str, exchange_id: str | None = None, idl: Idl = IDL, *, compiled: bool = True
           ) -> tuple[list[EventRow], list[AdminEvent]]:
    """The events of `program_id` (the vault program, described by `idl`) and of
    `exchange_id` (position_manager), when given, in one transaction's logs. The vault's
    event kinds are read by their compiled layouts (`_compiled`), unless `compiled` is
    False (the IDL walk for every event: the reference they are tested against)."""
    rows: list[EventRow] = []
    admin: list[AdminEvent] = []
    fast = _compiled(idl) if compiled else {}
    for line in data_lines(logs):
        if not line.parts or line.program_id not in (program_id, exchange_id):
            continue
        exchange = line.program_id == exchange_id
        data = line.parts[0]
        event = None if exchange else fast.get(data[:8])
        kind: str | None
        if event is not None:
            try:
                f = event.fields(data)
            except struct.error:  # too short for its layout: as the IDL walk's CodecError
                continue
            name, kind = event.name, event.kind
        else:
            try:
                decoded = (PM_IDL if exchange else idl).decode_event(data)
            except CodecError:
                continue
            name, f = decoded.name, decoded.fields
            kind = None if exchange else KINDS.get(name)
        if kind is not None:  # the vault's own (the common case: no dict of the common fields)
            rows.append(_vault_row(kind, f, signature, line.instruction_index, line.event_index, slot, block_time,
                                   commitment))
            continue
        base: dict[str, Any] = dict(signature=signature, instruction_index=line.instruction_index,
                                    event_index=line.event_index, slot=slot, block_time=block_time,
                                    commitment=commitment)
        if exchange:
            _exchange_event(name, f, base, line.program_id, rows, admin)
            continue
        if name in ADMIN_EVENTS:
            actor = f.get("admin") or f.get("new_admin") or ""
            admin.append(AdminEvent(name, str(actor), signature, line.instruction_index, line.event_index,
                                    {k: _detail(v) for k, v in f.items()}))
    return rows, admin


def _vault_row(kind: str, f: dict[str, Any], signature: str, instruction_index: int, event_index: int, slot: int,
               block_time: datetime | None, commitment: str) -> EventRow:
    """The row of one of the vault's own events (`f`: its fields, keys as Pubkey or text).
    EventRow's leading fields by position: owner, signature, instruction and event index,
    kind, amount, slot, block time, commitment, balances."""
    if kind in ("deposit", "withdraw", "surplus"):
        total, available = f["total_balance"], f["available_balance"]
        return EventRow(str(f["owner"]), signature, instruction_index, event_index, kind, f["amount"], slot,
                        block_time, commitment, Balances(total, total - available, available), vault_seq=f["seq"])
    if kind in ("lock", "unlock", "orphaned_lock_released"):
        locked, available = f["locked_balance"], f["available_balance"]
        return EventRow(str(f["owner"]), signature, instruction_index, event_index, kind, f["amount"], slot,
                        block_time, commitment, Balances(locked + available, locked, available),
                        caller_program=str(f.get("caller_program") or f.get("program")),
                        program_locked=f["program_locked"], vault_seq=f["seq"])
    if kind == "transfer":
        from_total, from_locked = f["from_total_balance"], f["from_locked_balance"]
        return EventRow(str(f["from_owner"]), signature, instruction_index, event_index, kind, f["amount"], slot,
                        block_time, commitment, Balances(from_total, from_locked, from_total - from_locked),
                        counterparty=str(f["to_owner"]), caller_program=str(f["caller_program"]),
                        counterparty_balances=_balances(f["to_total_balance"], f["to_available_balance"]),
                        program_locked=f["from_program_locked"], vault_seq=f["from_seq"],
                        details={"to_seq": f["to_seq"]})
    if kind == "vault_initialized":
        return EventRow(str(f["owner"]), signature, instruction_index, event_index, kind, 0, slot, block_time,
                        commitment, Balances(0, 0, 0), vault=str(f["vault"]), token_account=str(f["token_account"]),
                        vault_seq=f["seq"])
    # vault_closed
    return EventRow(str(f["owner"]), signature, instruction_index, event_index, kind, 0, slot, block_time,
                    commitment, Balances(0, 0, 0), vault=str(f["vault"]), vault_seq=f["seq"])


def _exchange_event(name: str, f: dict[str, Any], base: dict[str, Any], program: str, rows: list[EventRow],
                    admin: list[AdminEvent]) -> None:
    """One of position_manager's events: a row of the trader's history (no vault balances:
    the vault's own events of the same transaction carry them), or an admin action."""
    if name in EXCHANGE_ADMIN_EVENTS:
        admin.append(AdminEvent(name, str(f.get("admin") or ""), base["signature"], base["instruction_index"],
                                base["event_index"], {k: str(v) for k, v in f.items()}))
        return
    common: dict[str, Any] = dict(owner=str(f.get("trader")), balances=None, caller_program=program, **base)
    if name == "OperatorAction":
        action = int(f["action"])
        if not 0 <= action < len(OPERATOR_KINDS):
            return
        counterparty = str(f["counterparty"])
        rows.append(EventRow(kind=OPERATOR_KINDS[action], amount=f["amount"], op_id=f["op_id"],
                             program_locked=f["locked"], counterparty=None if counterparty == NO_KEY else counterparty,
                             **common))
    elif name == "GrantSet":
        rows.append(EventRow(kind="grant_set", amount=f["max_locked"], details={"expires_at": f["expires_at"]},
                             **common))
    elif name == "GrantRevoked":
        rows.append(EventRow(kind="grant_revoked", amount=0, **common))
    elif name == "ExitRequested":
        rows.append(EventRow(kind="exit_requested", amount=0, details={
            "requested_slot": f["requested_slot"], "deadline_slot": f["deadline_slot"]}, **common))
    elif name == "ExitServed":
        rows.append(EventRow(kind="exit_served", amount=f["released"], details={"by_operator": bool(f["by_operator"])},
                             **common))
