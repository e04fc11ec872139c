"""Issue 23 item 5: on every failure a program logs the line an Anchor program logs, so
@coral-xyz/anchor and anchorpy raise AnchorError / ProgramError by name. Custom errors:
`AnchorError occurred. Error Code: <Name>. Error Number: <n>. Error Message: <msg>.` (the
IDL's name, code and msg); builtin errors: `ProgramError occurred. ...` with the loader's
name, the u64 value and the message solana-program's ProgramError displays. Every refusal
test also checks the AnchorError line (localnet/vault_env.VaultEnv.error); the
clients themselves parse it in tests/clients/."""

from __future__ import annotations

import re
import struct

import pytest
from solders.instruction import Instruction
from solders.transaction_metadata import FailedTransactionMetadata

from localnet.svm import ROOT, Chain
from localnet.vault_env import USDT, VaultEnv, anchor_error_line, anchor_line
from vault_client.vault_program import IDL, PM_IDL

# hello's `3, index` returns ProgramError::BUILTINS[index]: (Debug name, builtin index,
# Display message of solana-program's ProgramError).
BUILTINS = [
    ("InvalidArgument", 2, "The arguments provided to a program instruction were invalid"),
    ("InvalidInstructionData", 3, "An instruction's data contents was invalid"),
    ("InvalidAccountData", 4, "An account's data contents was invalid"),
    ("AccountDataTooSmall", 5, "An account's data was too small"),
    ("InsufficientFunds", 6, "An account's balance was too small to complete the instruction"),
    ("IncorrectProgramId", 7, "The account did not have the expected program id"),
    ("MissingRequiredSignature", 8, "A signature was required but not found"),
    ("AccountAlreadyInitialized", 9,
     "An initialize instruction was sent to an account that has already been initialized"),
    ("UninitializedAccount", 10, "An attempt to operate on an account that hasn't been initialized"),
    ("NotEnoughAccountKeys", 11, "The instruction expected additional account keys"),
    ("AccountBorrowFailed", 12, "Failed to borrow a reference to account data, already borrowed"),
    ("MaxSeedLengthExceeded", 13, "Length of the seed is too long for address generation"),
    ("InvalidSeeds", 14, "Provided seeds do not result in a valid address"),
    ("BorshIoError", 15, "IO Error"),
    ("UnsupportedSysvar", 17, "Unsupported sysvar"),
    ("IllegalOwner", 18, "Provided owner is not allowed"),
    ("ArithmeticOverflow", 24, "Program arithmetic overflowed"),
    ("Custom(0)", 1, "Custom program error: 0x0"),
]

# What the clients match (@coral-xyz/anchor's AnchorError.parse, anchorpy's AnchorError.parse).
ANCHOR_RE = re.compile(r"^Program log: AnchorError occurred\. Error Code: (.*)\. Error Number: (\d*)\. "
                       r"Error Message: (.*)\.$")


def program_logs(result: FailedTransactionMetadata) -> list[str]:
    return [line for line in result.meta().logs() if line.startswith("Program log: ")]


def test_builtin_errors_log_anchors_program_error_line() -> None:
    chain = Chain()
    program_id = chain.deploy("hello")
    payer = chain.wallet()
    for index, (name, builtin, message) in enumerate(BUILTINS):
        result = chain.send([Instruction(program_id, bytes([3, index]), [])], payer)
        assert isinstance(result, FailedTransactionMetadata)
        assert program_logs(result) == [f"Program log: ProgramError occurred. Error Code: {name}. "
                                        f"Error Number: {builtin << 32}. Error Message: {message}."], name


@pytest.mark.parametrize("code", [1, 6000, 0x1772, 4_294_967_295])
def test_an_unnamed_custom_error_logs_anchors_program_error_line(code: int) -> None:
    chain = Chain()
    program_id = chain.deploy("hello")
    result = chain.send([Instruction(program_id, bytes([6]) + struct.pack("<I", code), [])], chain.wallet())
    assert isinstance(result, FailedTransactionMetadata)
    assert program_logs(result) == [f"Program log: ProgramError occurred. Error Code: Custom({code}). "
                                    f"Error Number: {code}. Error Message: Custom program error: {code:#x}."]


def test_an_overdraw_logs_the_anchor_error_line_exactly_once() -> None:
    env = VaultEnv()
    user = env.user()
    env.deposit(user, 10 * USDT)
    result = env.fails([env.program.withdraw(user.key, user.token_account, 10 * USDT + 1)], user.wallet)
    line = ("Program log: AnchorError occurred. Error Code: InsufficientAvailableBalance. Error Number: 6002. "
            "Error Message: The amount exceeds the vault's available balance.")
    assert program_logs(result) == [line]
    match = ANCHOR_RE.match(line)
    assert match and match.groups() == ("InsufficientAvailableBalance", "6002",
                                        "The amount exceeds the vault's available balance")


def test_a_failure_inside_a_cpi_logs_the_callees_line_first() -> None:
    """position_manager's lock refused by the vault (paused): the vault's line is the first
    AnchorError line (the one clients take); the caller never returns, so logs nothing more."""
    env = VaultEnv()
    trader = env.trader(100 * USDT, 100 * USDT)
    env.ok([env.program.set_paused(env.admin.pubkey(), 2)], env.admin)
    ix = env.exchange.lock(env.operator.pubkey(), trader.key, 1 * USDT, env.next_op(trader.key))
    result = env.fails([ix], env.operator)
    name, message = IDL.errors[6005]
    assert name == "OperationPaused"
    assert anchor_error_line(result) == anchor_line(name, 6005, message)
    assert sum(line.startswith("Program log: AnchorError") for line in result.meta().logs()) == 1


def test_every_error_message_fits_anchors_pattern() -> None:
    """The client regexes end at the last `.`: each message must parse back to itself."""
    for idl in (IDL, PM_IDL):
        for code, (name, message) in idl.errors.items():
            match = ANCHOR_RE.match(anchor_line(name, code, message))
            assert match and match.groups() == (name, str(code), message), name


def test_every_program_entrypoint_names_its_error_enum() -> None:
    """A program with an `anchor_errors!` enum passes it to `entrypoint!`, or its errors
    would be logged as unnamed custom errors."""
    programs = [p for p in (ROOT / "program").glob("*/src/error.rs") if p.parent.parent.name != "sbf-runtime"]
    assert {p.parent.parent.name for p in programs} == {"collateral-vault", "position-manager"}
    for error_rs in programs:
        enum = re.search(r"anchor_errors! \{.*?pub enum (\w+)", error_rs.read_text(), re.S)
        assert enum, f"{error_rs}: the error enum is not declared with sbf_runtime::anchor_errors!"
        lib = (error_rs.parent / "lib.rs").read_text()
        assert f"entrypoint!(processor::process, error::{enum.group(1)});" in lib, error_rs
