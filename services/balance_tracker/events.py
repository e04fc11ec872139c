"""Program events of one transaction → the rows the indexer stores (pure functions)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.common.idl import CodecError
from services.common.program_logs import data_lines
from services.common.vault_program import IDL

KINDS = {
    "Deposited": "deposit", "Withdrawn": "withdraw", "CollateralLocked": "lock", "CollateralUnlocked": "unlock",
    "CollateralTransferred": "transfer", "VaultInitialized": "vault_initialized", "VaultClosed": "vault_closed",
    "SurplusAbsorbed": "surplus",
}
ADMIN_EVENTS = {"AuthorityInitialized", "ProgramAuthorized", "ProgramDeauthorized", "PauseFlagsSet",
                "AdminTransferProposed", "AdminTransferAccepted"}


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


def _balances(total: int, available: int) -> Balances:
    return Balances(total, total - available, available)


def decode(signature: str, logs: list[str], slot: int, block_time: datetime | None, commitment: str,
           program_id: str) -> tuple[list[EventRow], list[AdminEvent]]:
    rows: list[EventRow] = []
    admin: list[AdminEvent] = []
    for line in data_lines(logs):
        if line.program_id != program_id or not line.parts:
            continue
        try:
            event = IDL.decode_event(line.parts[0])
        except CodecError:
            continue
        f = event.fields
        base: dict[str, Any] = dict(signature=signature, instruction_index=line.instruction_index,
                                    event_index=line.event_index,
                    slot=slot, block_time=block_time, commitment=commitment)
        if event.name in ADMIN_EVENTS:
            actor = f.get("admin") or f.get("new_admin") or ""
            admin.append(AdminEvent(event.name, str(actor), signature, line.instruction_index, line.event_index,
                                    {k: str(v) for k, v in f.items()}))
            continue
        kind = KINDS.get(event.name)
        if kind is None:
            continue
        if kind in ("deposit", "withdraw", "surplus"):
            rows.append(EventRow(owner=str(f["owner"]), kind=kind, amount=f["amount"],
                                 balances=_balances(f["total_balance"], f["available_balance"]), **base))
        elif kind in ("lock", "unlock"):
            locked, available = f["locked_balance"], f["available_balance"]
            rows.append(EventRow(owner=str(f["owner"]), kind=kind, amount=f["amount"],
                                 balances=Balances(locked + available, locked, available),
                                 caller_program=str(f["caller_program"]), **base))
        elif kind == "transfer":
            from_total, from_locked = f["from_total_balance"], f["from_locked_balance"]
            rows.append(EventRow(
                owner=str(f["from_owner"]), kind=kind, amount=f["amount"],
                balances=Balances(from_total, from_locked, from_total - from_locked),
                counterparty=str(f["to_owner"]), caller_program=str(f["caller_program"]),
                counterparty_balances=_balances(f["to_total_balance"], f["to_available_balance"]), **base))
        elif kind == "vault_initialized":
            rows.append(EventRow(owner=str(f["owner"]), kind=kind, amount=0, balances=Balances(0, 0, 0),
                                 vault=str(f["vault"]), token_account=str(f["token_account"]), **base))
        else:  # vault_closed
            rows.append(EventRow(owner=str(f["owner"]), kind=kind, amount=0, balances=Balances(0, 0, 0),
                                 vault=str(f["vault"]), **base))
    return rows, admin
