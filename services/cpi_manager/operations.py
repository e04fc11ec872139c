"""The operator's operations as values: what the matching engine asked for (a lock, a release,
a settlement of up to MAX_SETTLE_PAIRS pairs, a liquidation), its fingerprint (the same
client_request_id with other parameters is refused), the traders whose operation ids it
uses, and the one position_manager instruction that carries it with those ids."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from solders.instruction import Instruction
from solders.pubkey import Pubkey

from vault_client.vault_program import MAX_SETTLE_PAIRS, ExchangeProgram, SettlePair

LOCK, RELEASE, SETTLE, LIQUIDATE = "lock", "release", "settle", "liquidate"
OPERATIONS = (LOCK, RELEASE, SETTLE, LIQUIDATE)


@dataclass(frozen=True)
class Leg:
    """One part of an operation: `amount` for `trader` (whose op id it takes); a
    settlement's or a liquidation's leg also names the vault owner that receives it."""

    trader: Pubkey
    amount: int
    receiver: Pubkey | None = None


@dataclass(frozen=True)
class Operation:
    kind: str
    legs: tuple[Leg, ...]
    #: what the request said, for the fingerprint (e.g. a settlement "to the fee vault"
    #: before the fee vault's owner is known)
    requested: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in OPERATIONS:
            raise ValueError(f"unknown operation {self.kind!r}")
        if not 1 <= len(self.legs) <= (MAX_SETTLE_PAIRS if self.kind == SETTLE else 1):
            raise ValueError(f"{self.kind} takes {'1 to ' + str(MAX_SETTLE_PAIRS) if self.kind == SETTLE else 1} legs")

    @property
    def traders(self) -> list[Pubkey]:
        """Whose op ids the operation takes, one per leg, in leg order."""
        return [leg.trader for leg in self.legs]

    @property
    def affected(self) -> list[Pubkey]:
        """Every vault owner the operation changes (payers, then receivers), once each."""
        owners = [leg.trader for leg in self.legs] + [leg.receiver for leg in self.legs if leg.receiver is not None]
        return list(dict.fromkeys(owners))

    def fingerprint(self) -> str:
        shown = self.requested or tuple((str(leg.trader), str(leg.amount), str(leg.receiver or ""))
                                        for leg in self.legs)
        return hashlib.sha256(json.dumps([self.kind, shown]).encode()).hexdigest()

    def params(self) -> dict[str, Any]:
        """What is stored to sign the same operation again (receivers resolved)."""
        return {"legs": [{"trader": str(leg.trader), "amount": str(leg.amount),
                          "receiver": str(leg.receiver) if leg.receiver else None} for leg in self.legs],
                "requested": [list(r) for r in self.requested]}

    @classmethod
    def from_params(cls, kind: str, params: dict[str, Any]) -> Operation:
        legs = tuple(Leg(Pubkey.from_string(leg["trader"]), int(leg["amount"]),
                         Pubkey.from_string(leg["receiver"]) if leg.get("receiver") else None)
                     for leg in params["legs"])
        return cls(kind, legs, tuple(tuple(r) for r in params.get("requested", ())))

    def instruction(self, exchange: ExchangeProgram, operator: Pubkey, op_ids: list[int]) -> Instruction:
        leg = self.legs[0]
        if self.kind == LOCK:
            return exchange.lock(operator, leg.trader, leg.amount, op_ids[0])
        if self.kind == RELEASE:
            return exchange.release(operator, leg.trader, leg.amount, op_ids[0])
        if self.kind == LIQUIDATE:
            assert leg.receiver is not None  # the insurance-fund vault's owner
            return exchange.liquidate(operator, leg.trader, leg.receiver, leg.amount, op_ids[0])
        pairs = []
        for part, op_id in zip(self.legs, op_ids, strict=True):
            assert part.receiver is not None
            pairs.append(SettlePair(part.trader, part.receiver, part.amount, op_id))
        return exchange.settle(operator, pairs)
