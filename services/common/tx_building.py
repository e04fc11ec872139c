"""Unsigned transactions for a user's wallet: a recent blockhash, a compute-unit limit
measured by simulation plus a margin, and an optional priority fee (the pure parts are the
client package's: vault_client/transactions.py)."""

from __future__ import annotations

import base64

from solders.instruction import Instruction
from solders.pubkey import Pubkey

from services.common.chain import ChainClient
from services.common.errors import program_error
from vault_client.transactions import MAX_COMPUTE_UNITS, UnsignedTx, budget, margin_limit, unsigned


async def build(chain: ChainClient, payer: Pubkey, instructions: list[Instruction],
                priority_fee_micro_lamports: int = 0) -> UnsignedTx:
    """Simulates with the maximum limit, then sets limit = used x 1.2 (at least +1,000).
    A simulation failure is the program's answer: raised as a status with its name."""
    blockhash, last_valid = await chain.latest_blockhash()
    probe = unsigned(budget(MAX_COMPUTE_UNITS, priority_fee_micro_lamports) + instructions, payer, blockhash)
    simulation = await chain.simulate(probe)
    if simulation.err is not None:
        raise program_error(simulation.err, simulation.logs)
    limit = margin_limit(simulation.units)
    tx = unsigned(budget(limit, priority_fee_micro_lamports) + instructions, payer, blockhash)
    return UnsignedTx(base64.b64encode(bytes(tx)).decode(), payer, str(blockhash), last_valid, limit,
                      simulation.units, priority_fee_micro_lamports)
