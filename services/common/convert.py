"""Conversions between the program's account types and the protobuf messages."""

from __future__ import annotations

from collateral_vault.v1 import common_pb2
from solders.pubkey import Pubkey

from vault_client.transactions import UnsignedTx
from vault_client.vault_program import Vault

COMMITMENT_NAMES = {
    common_pb2.COMMITMENT_PROCESSED: "processed",
    common_pb2.COMMITMENT_CONFIRMED: "confirmed",
    common_pb2.COMMITMENT_FINALIZED: "finalized",
}
COMMITMENT_VALUES = {name: value for value, name in COMMITMENT_NAMES.items()}


def vault_message(vault: Vault, address: Pubkey | str, slot: int, source: int) -> common_pb2.Vault:
    return common_pb2.Vault(
        owner=str(vault.owner), address=str(address), token_account=str(vault.token_account),
        total_balance=vault.total_balance, locked_balance=vault.locked_balance,
        available_balance=vault.available_balance, total_deposited=vault.total_deposited,
        total_withdrawn=vault.total_withdrawn, created_at=vault.created_at, slot=slot, source=source,  # type: ignore[arg-type]
    )


def unsigned_message(tx: UnsignedTx, vault: Pubkey | None = None) -> common_pb2.UnsignedTransaction:
    return common_pb2.UnsignedTransaction(
        transaction_base64=tx.transaction_base64, fee_payer=str(tx.fee_payer), recent_blockhash=tx.recent_blockhash,
        last_valid_block_height=tx.last_valid_block_height, compute_unit_limit=tx.compute_unit_limit,
        simulated_compute_units=tx.simulated_compute_units,
        priority_fee_micro_lamports=tx.priority_fee_micro_lamports, vault=str(vault) if vault else "",
    )
