"""What a signed transaction may do before we send it: call only the vault program, the
position manager and the compute-budget program, each instruction decoding under the IDL
and naming exactly the accounts our own builders would have named for its signer."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from solders.instruction import Instruction
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from services.common.errors import invalid
from vault_client.idl import Idl
from vault_client.quoting import quoted
from vault_client.transactions import COMPUTE_BUDGET_PROGRAM
from vault_client.vault_program import IDL, PM_IDL, ExchangeProgram, VaultProgram, WithdrawLimits

# Instructions a wallet has no reason to send directly: they are CPI-only, deploy-time, or
# position_manager's operator instructions (signed by the exchange's operator key, not a wallet).
_NOT_SUBMITTABLE = {"lock_collateral", "unlock_collateral", "transfer_collateral", "initialize_authority",
                    "initialize_exchange", "lock", "release", "settle", "liquidate"}
MAX_TRANSACTION_BYTES = 1232


@dataclass
class CheckedTransaction:
    tx: VersionedTransaction
    signature: str
    instructions: list[str] = field(default_factory=list)
    owners: set[Pubkey] = field(default_factory=set)  # vault owners whose state may change


def decode_signed(value: str) -> VersionedTransaction:
    if not value:
        raise invalid("signed_transaction_base64 is required")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise invalid("signed_transaction_base64 is not valid base64") from exc
    if len(raw) > MAX_TRANSACTION_BYTES:
        raise invalid(f"the transaction is {len(raw)} bytes; Solana's limit is {MAX_TRANSACTION_BYTES}")
    try:
        tx = VersionedTransaction.from_bytes(raw)
    except ValueError as exc:
        raise invalid(f"signed_transaction_base64 is not a serialized transaction: {quoted(exc)}") from exc
    if not tx.signatures or tx.message.header.num_required_signatures == 0:
        raise invalid("the transaction carries no signature: sign the transaction that was built")
    if not all(tx.verify_with_results()):
        raise invalid("a signature is missing or does not verify: sign the exact transaction that was built")
    return tx


def _indexes_in_range(index: int, program_id_index: int, accounts: bytes, count: int) -> None:
    """Every index an instruction uses names one of the transaction's `count` account keys."""
    if program_id_index >= count:
        raise invalid(f"instruction {index} names program index {program_id_index}, but the transaction has "
                      f"{count} account keys")
    beyond = next((i for i in accounts if i >= count), None)
    if beyond is not None:
        raise invalid(f"instruction {index} names account index {beyond}, but the transaction has {count} "
                      "account keys")


def _decode_args(idl: Idl, name: str, data: bytes) -> dict[str, Any]:
    spec = idl.instructions[name]
    args = idl.decode_fields(spec.args, data, 8)
    expected_len = 8 + sum({"u64": 8, "i64": 8, "u8": 1, "publicKey": 32}[a["type"]] for a in spec.args)
    if len(data) != expected_len:
        raise ValueError("argument bytes")
    return args


def _expected(program: VaultProgram, name: str, accounts: list[Pubkey], args: dict[str, Any],
              pm_id: Pubkey) -> Instruction:
    signer = accounts[0]
    match name:
        case "initialize_vault":
            return program.initialize_vault(signer)
        case "deposit":
            return program.deposit(signer, accounts[2], args["amount"])
        case "withdraw":
            return program.withdraw(signer, accounts[3], args["amount"])
        case "close_vault":
            return program.close_vault(signer)
        case "set_paused":
            return program.set_paused(signer, args["flags"])
        case "add_authorized_program":
            return program.add_authorized_program(signer, accounts[2])
        case "remove_authorized_program":
            return program.remove_authorized_program(signer, args["program_id"])
        case "transfer_admin":
            return program.transfer_admin(signer, args["new_admin"])
        case "accept_admin":
            return program.accept_admin(signer)
        # the timelock (issue 23): what the vault's admin signs, and an execution anyone sends
        case "set_timelock_delay":
            return program.set_timelock_delay(signer, args["delay"])
        case "set_withdraw_limits":
            return program.set_withdraw_limits(signer, WithdrawLimits(
                args["max_outflow_bps"], args["window_slots"], args["min_budget"], args["exempt_amount"]))
        case "cancel_change":
            return program.cancel_change(signer, args["change_id"])
        case "execute_change":  # [authority, program (an authorization only)]: no signer among them
            return program.execute_change(args["change_id"], accounts[1] if len(accounts) > 1 else None)
        # position_manager: what the trader's wallet signs (operator instructions are not submitted here)
        case "grant":
            return ExchangeProgram(program, pm_id).grant(signer, args["max_locked"], args["expires_at"])
        case "revoke":
            return ExchangeProgram(program, pm_id).revoke(signer)
        case "request_exit":
            return ExchangeProgram(program, pm_id).request_exit(signer)
        case "exit":
            return ExchangeProgram(program, pm_id).exit(signer)
        # position_manager: what the exchange's admin signs (a change applies after its delay)
        case "propose_config_change":
            return ExchangeProgram(program, pm_id).propose_config_change(signer, args["kind"], key=args["key"],
                                                                         value=args["value"])
        case "apply_config_change":
            return ExchangeProgram(program, pm_id).apply_config_change(args["kind"])
        case "cancel_config_change":
            return ExchangeProgram(program, pm_id).cancel_config_change(signer, args["kind"])
    raise invalid(f"{name} cannot be submitted")


def check(tx: VersionedTransaction, program: VaultProgram, position_managers: set[Pubkey]) -> CheckedTransaction:
    message = tx.message
    keys = list(message.account_keys)
    if getattr(message, "address_table_lookups", None):
        raise invalid("address lookup tables are not accepted: send a transaction with static account keys")
    checked = CheckedTransaction(tx, str(tx.signatures[0]))
    for index, compiled in enumerate(message.instructions):
        _indexes_in_range(index, compiled.program_id_index, bytes(compiled.accounts), len(keys))
        program_id = keys[compiled.program_id_index]
        if program_id == COMPUTE_BUDGET_PROGRAM:
            continue
        if program_id == program.program_id:
            idl = IDL
        elif program_id in position_managers:
            idl = PM_IDL
        else:
            raise invalid(f"instruction {index} calls program {program_id}: only the vault program "
                          f"({program.program_id}), authorized position managers and the compute budget are allowed")
        data = bytes(compiled.data)
        name = next((n for n, ix in idl.instructions.items() if ix.discriminator == data[:8]), None)
        if name is None:
            raise invalid(f"instruction {index} is not a known {idl.name} instruction")
        if name in _NOT_SUBMITTABLE:
            raise invalid(f"instruction {index} ({name}) is only callable by an authorized program, not submitted")
        accounts = [keys[i] for i in compiled.accounts]
        try:
            args = _decode_args(idl, name, data)
        except (ValueError, KeyError) as exc:
            raise invalid(f"instruction {index} ({name}) has malformed arguments") from exc
        wanted = sum(1 for a in idl.instructions[name].accounts if not a.get("isOptional"))
        if len(accounts) < wanted:
            raise invalid(f"instruction {index} ({name}) names {len(accounts)} accounts; it takes {wanted}")
        expected = _expected(program, name, accounts, args, program_id)
        expected_keys = [m.pubkey for m in expected.accounts]
        if accounts != expected_keys:
            position = next((i for i, (a, b) in enumerate(zip(accounts, expected_keys, strict=False)) if a != b),
                            min(len(accounts), len(expected_keys)))
            raise invalid(f"instruction {index} ({name}): account #{position} is not the one expected for signer "
                          f"{accounts[0]} (expected {len(expected_keys)} accounts as built by this service)")
        checked.instructions.append(name)
        if name in ("initialize_vault", "deposit", "withdraw", "close_vault", "grant", "revoke", "request_exit",
                    "exit"):
            checked.owners.add(accounts[0])
    if not checked.instructions:
        raise invalid("the transaction has no vault instruction")
    return checked
