"""One mapping from program, RPC, database and input failures to gRPC status codes with
messages that say what is wrong. Handlers raise `ServiceError`; the observability wrapper
turns it (and anything unexpected, as INTERNAL without internals) into a status."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import grpc

from vault_client.program_errors import custom_error_code, failing_program, program_idl
from vault_client.vault_program import IDL, PM_IDL

# Program errors that mean "the request is malformed" rather than "the state forbids it".
_INVALID_ARGUMENT_ERRORS = {"InvalidAmount", "InvalidInstruction", "InvalidMint", "InvalidTokenAccount",
                            "InvalidPda", "SameVault", "MissingAccounts", "InvalidProgramAccount",
                            "InvalidSettleBatch", "DuplicateAccount", "InvalidConfigChange", "InvalidExpiry",
                            "InvalidTimelockDelay", "InvalidWithdrawLimits"}
_PERMISSION_ERRORS = {"Unauthorized", "UnauthorizedCaller", "NotUpgradeAuthority", "MissingSigner", "NotVaultOwner",
                      "NotAdmin"}
# by program: the vault program's InvalidVault is "no such vault"; position_manager's is a
# receiver that is not a vault (a malformed settlement)
_NOT_FOUND_ERRORS = {("vault", "InvalidVault"), ("vault", "ChangeNotFound")}
_PM_INVALID_ARGUMENT_ERRORS = {"InvalidVault", "GrantMismatch", "InvalidAccount"}
# the vault program's withdrawal throttle (issue 23) says, when it refuses, how much can go now
_THROTTLED = re.compile(r"^Program log: withdrawal throttled: available_now=(\d+)$")
THROTTLED = "WithdrawalThrottled"
USDT_DECIMALS = 6


class ServiceError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str, program_error: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        #: the program error's name when the chain refused (e.g. "GrantExceeded")
        self.program_error = program_error


def invalid(message: str) -> ServiceError:
    return ServiceError(grpc.StatusCode.INVALID_ARGUMENT, message)


def precondition(message: str) -> ServiceError:
    return ServiceError(grpc.StatusCode.FAILED_PRECONDITION, message)


def precondition_of(program_error: str, message: str) -> ServiceError:
    return ServiceError(grpc.StatusCode.FAILED_PRECONDITION, message, program_error)


def not_found(message: str) -> ServiceError:
    return ServiceError(grpc.StatusCode.NOT_FOUND, message)


def unavailable(message: str) -> ServiceError:
    return ServiceError(grpc.StatusCode.UNAVAILABLE, message)


def throttled_available(logs: Iterable[str] | None) -> int | None:
    """What the withdrawal throttle lets through now (USDT base units), from the log of a
    withdrawal it refused; None when the logs carry no such line."""
    for line in logs or ():
        match = _THROTTLED.match(line)
        if match:
            return int(match.group(1))
    return None


def usdt(amount: int) -> str:
    """Base units as USDT, exactly: 1500000 -> "1.5", 0 -> "0"."""
    whole, fraction = divmod(amount, 10**USDT_DECIMALS)
    return f"{whole}.{fraction:0{USDT_DECIMALS}d}".rstrip("0").rstrip(".")


def program_error(err: Any, logs: Iterable[str] | None = None, vault_program: str | None = None) -> ServiceError:
    """A failed simulation or transaction as a status: program errors by their IDL name,
    looked up in the IDL of the program that failed (from the logs; without logs, the vault
    program's first)."""
    found = custom_error_code(err)
    if found is not None:
        _, code = found
        idl = program_idl(failing_program(logs), vault_program)
        named = idl.error(code) if idl is not None else (IDL.error(code) or PM_IDL.error(code))
        available = throttled_available(logs)
        if available is not None and (not named or named[0] == THROTTLED):
            return precondition_of(THROTTLED, f"withdrawal throttled: {usdt(available)} USDT can be withdrawn now")
        if named:
            name, message = named
            program = "position_manager" if idl is PM_IDL or (idl is None and not IDL.error(code)) else "vault"
            if name in _INVALID_ARGUMENT_ERRORS or (program == "position_manager"
                                                    and name in _PM_INVALID_ARGUMENT_ERRORS):
                status = grpc.StatusCode.INVALID_ARGUMENT
            elif name in _PERMISSION_ERRORS:
                status = grpc.StatusCode.PERMISSION_DENIED
            elif (program, name) in _NOT_FOUND_ERRORS:
                status = grpc.StatusCode.NOT_FOUND
            else:
                status = grpc.StatusCode.FAILED_PRECONDITION
            return ServiceError(status, f"{name} ({code}): {message}", name)
        if code == 1:  # SPL Token: insufficient funds
            return precondition("the token account does not hold enough USDT (SPL Token error 1)")
        return precondition(f"program error {code}")
    text = str(err)
    if "BlockhashNotFound" in text or "Blockhash not found" in text:
        return precondition("the transaction's blockhash has expired: build it again and sign promptly")
    if "AlreadyProcessed" in text:
        return ServiceError(grpc.StatusCode.ALREADY_EXISTS, "this transaction has already been processed")
    if "InsufficientFundsForFee" in text or "AccountNotFound" in text:
        return precondition("the fee payer has no SOL to pay the transaction fee")
    if "signature" in text.lower() and "verif" in text.lower():
        return invalid("a signature does not verify: sign the exact transaction that was built")
    return precondition(f"the transaction failed: {text}")
