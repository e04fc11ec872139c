"""Indexed events as the API shows them: from a stored row or a published message to the
`VaultEvent` protobuf (one conversion for GetHistory, the resume replay and the live stream)."""

from __future__ import annotations

import json
from typing import Any

from collateral_vault.v1 import balance_tracker_pb2

from services.common.event_kinds import KIND_VALUES

# the columns row_event reads (a resume or a gap fill selects these)
EVENT_ROW_COLUMNS = ("owner, signature, instruction_index, event_index, kind, amount, counterparty, caller_program, "
                     "total_balance, locked_balance, available_balance, slot, block_time, seq, program_locked, "
                     "vault_seq, op_id, details")


def event_message(data: dict[str, Any]) -> balance_tracker_pb2.VaultEvent:
    details = data.get("details") or {}
    return balance_tracker_pb2.VaultEvent(
        id=data["id"], kind=KIND_VALUES.get(data["kind"], 0), owner=data["owner"],  # type: ignore[arg-type]
        counterparty=data.get("counterparty") or "", amount=int(data["amount"]), slot=int(data["slot"]),
        block_time=int(data.get("block_time") or 0), signature=data["signature"],
        total_balance=int(data.get("total_balance") or 0), locked_balance=int(data.get("locked_balance") or 0),
        available_balance=int(data.get("available_balance") or 0), caller_program=data.get("caller_program") or "",
        seq=int(data.get("seq") or 0), program_locked=int(data.get("program_locked") or 0),
        vault_seq=int(data.get("vault_seq") or 0), op_id=int(data.get("op_id") or 0),
        exit_deadline_slot=int(details.get("deadline_slot") or 0), by_operator=bool(details.get("by_operator")),
        expires_at=int(details.get("expires_at") or 0))


def row_event(row: Any) -> dict[str, Any]:
    details = row["details"]
    return {"id": f"{row['signature']}:{row['instruction_index']}:{row['event_index']}", "kind": row["kind"],
            "owner": row["owner"], "counterparty": row["counterparty"], "amount": row["amount"],
            "slot": row["slot"], "signature": row["signature"],
            "block_time": int(row["block_time"].timestamp()) if row["block_time"] else 0,
            "total_balance": row["total_balance"], "locked_balance": row["locked_balance"],
            "available_balance": row["available_balance"], "caller_program": row["caller_program"],
            "seq": row["seq"], "program_locked": row["program_locked"], "vault_seq": row["vault_seq"],
            "op_id": row["op_id"], "details": json.loads(details) if isinstance(details, str) else details}
