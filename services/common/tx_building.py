"""Unsigned transactions for a user's wallet: a recent blockhash, a compute-unit limit
measured by simulation plus a margin, and an optional priority fee."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.instruction import Instruction
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from services.common.chain import ChainClient
from services.common.errors import program_error

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


def _unsigned(instructions: list[Instruction], payer: Pubkey, blockhash: object) -> VersionedTransaction:
    message = Message.new_with_blockhash(instructions, payer, blockhash)  # type: ignore[arg-type]
    signatures = [Signature.default()] * message.header.num_required_signatures
    return VersionedTransaction.populate(message, signatures)


def _budget(limit: int, priority_fee: int) -> list[Instruction]:
    out = [set_compute_unit_limit(limit)]
    if priority_fee:
        out.append(set_compute_unit_price(priority_fee))
    return out


async def build(chain: ChainClient, payer: Pubkey, instructions: list[Instruction],
                priority_fee_micro_lamports: int = 0) -> UnsignedTx:
    """Simulates with the maximum limit, then sets limit = used x 1.2 (at least +1,000).
    A simulation failure is the program's answer: raised as a status with its name."""
    blockhash, last_valid = await chain.latest_blockhash()
    probe = _unsigned(_budget(MAX_COMPUTE_UNITS, priority_fee_micro_lamports) + instructions, payer, blockhash)
    simulation = await chain.simulate(probe)
    if simulation.err is not None:
        raise program_error(simulation.err, simulation.logs)
    limit = min(MAX_COMPUTE_UNITS, max(int(simulation.units * CU_MARGIN_RATIO), simulation.units + CU_MARGIN_MIN))
    tx = _unsigned(_budget(limit, priority_fee_micro_lamports) + instructions, payer, blockhash)
    return UnsignedTx(base64.b64encode(bytes(tx)).decode(), payer, str(blockhash), last_valid, limit,
                      simulation.units, priority_fee_micro_lamports)
