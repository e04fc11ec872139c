"""Indexed events as the API shows them: from a stored row or a published message to the
`VaultEvent` protobuf (one conversion for GetHistory, the resume replay and the live stream)."""

from __future__ import annotations

from typing import Any

from collateral_vault.v1 import balance_tracker_pb2

KIND_NAMES = {
    balance_tracker_pb2.EVENT_KIND_DEPOSIT: "deposit", balance_tracker_pb2.EVENT_KIND_WITHDRAW: "withdraw",
    balance_tracker_pb2.EVENT_KIND_LOCK: "lock", balance_tracker_pb2.EVENT_KIND_UNLOCK: "unlock",
    balance_tracker_pb2.EVENT_KIND_TRANSFER: "transfer",
    balance_tracker_pb2.EVENT_KIND_VAULT_INITIALIZED: "vault_initialized",
    balance_tracker_pb2.EVENT_KIND_VAULT_CLOSED: "vault_closed", balance_tracker_pb2.EVENT_KIND_SURPLUS: "surplus",
}
KIND_VALUES = {name: value for value, name in KIND_NAMES.items()}

# the columns row_event reads (a resume or a gap fill selects these)
EVENT_ROW_COLUMNS = ("owner, signature, instruction_index, event_index, kind, amount, counterparty, caller_program, "
                     "total_balance, locked_balance, available_balance, slot, block_time, seq")


def event_message(data: dict[str, Any]) -> balance_tracker_pb2.VaultEvent:
    return balance_tracker_pb2.VaultEvent(
        id=data["id"], kind=KIND_VALUES.get(data["kind"], 0), owner=data["owner"],  # type: ignore[arg-type]
        counterparty=data.get("counterparty") or "", amount=int(data["amount"]), slot=int(data["slot"]),
        block_time=int(data.get("block_time") or 0), signature=data["signature"],
        total_balance=int(data.get("total_balance") or 0), locked_balance=int(data.get("locked_balance") or 0),
        available_balance=int(data.get("available_balance") or 0), caller_program=data.get("caller_program") or "",
        seq=int(data.get("seq") or 0))


def row_event(row: Any) -> dict[str, Any]:
    return {"id": f"{row['signature']}:{row['instruction_index']}:{row['event_index']}", "kind": row["kind"],
            "owner": row["owner"], "counterparty": row["counterparty"], "amount": row["amount"],
            "slot": row["slot"], "signature": row["signature"],
            "block_time": int(row["block_time"].timestamp()) if row["block_time"] else 0,
            "total_balance": row["total_balance"], "locked_balance": row["locked_balance"],
            "available_balance": row["available_balance"], "caller_program": row["caller_program"],
            "seq": row["seq"]}
