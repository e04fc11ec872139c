"""Unsigned transactions for a user's wallet (pure): the compute-budget instructions, the
message with a recent blockhash and empty signature slots, and what a caller returns
about it. The simulation that measures the compute-unit limit is the services' (they hold
the chain connection: services/common/tx_building.py)."""

from __future__ import annotations

from dataclasses import dataclass

from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.instruction import Instruction
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

MAX_COMPUTE_UNITS = 1_400_000
CU_MARGIN_RATIO = 1.2
CU_MARGIN_MIN = 1_000
COMPUTE_BUDGET_PROGRAM = Pubkey.from_string("ComputeBudget111111111111111111111111111111")


@dataclass(frozen=True)
class UnsignedTx:
    transaction_base64: str
    fee_payer: Pubkey
    recent_blockhash: str
    last_valid_block_height: int
    compute_unit_limit: int
    simulated_compute_units: int
    priority_fee_micro_lamports: int


def unsigned(instructions: list[Instruction], payer: Pubkey, blockhash: object) -> VersionedTransaction:
    message = Message.new_with_blockhash(instructions, payer, blockhash)  # type: ignore[arg-type]
    signatures = [Signature.default()] * message.header.num_required_signatures
    return VersionedTransaction.populate(message, signatures)


def budget(limit: int, priority_fee: int) -> list[Instruction]:
    out = [set_compute_unit_limit(limit)]
    if priority_fee:
        out.append(set_compute_unit_price(priority_fee))
    return out


def margin_limit(simulated_units: int) -> int:
    """limit = used x 1.2 (at least +1,000), at most the maximum."""
    return min(MAX_COMPUTE_UNITS, max(int(simulated_units * CU_MARGIN_RATIO), simulated_units + CU_MARGIN_MIN))
