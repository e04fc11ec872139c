"""Regression test of the SBF build pipeline (`make program`): the `hello` program, built
by Debian's rustc and the project's link tool, runs in the real SVM.

It checks a log line, `sol_log_data`, a PDA found with `sol_try_find_program_address`, a
CPI to SPL Token signed by that PDA that moves real balances, deployment through the
upgradeable loader (the cluster's ELF checks), and every build limit the link tool works
around (checked_mul, variable-length memory ops, dynamic dispatch, a 3,200-byte frame).
"""

from __future__ import annotations

import base64
import re
import struct

import pytest
from solders.account import Account
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.transaction_metadata import FailedTransactionMetadata

from localnet.loader_v3 import deploy_upgradeable
from localnet.svm import ROOT, Chain, program_path
from vault_client.spl_token import TOKEN_PROGRAM_ID

U64 = 2**64


@pytest.fixture
def chain() -> Chain:
    return Chain()


def transfer_ix(program_id: Pubkey, payer: Pubkey, source: Pubkey, dest: Pubkey, authority: Pubkey,
                amount: int) -> Instruction:
    return Instruction(
        program_id,
        bytes([0]) + struct.pack("<Q", amount),
        [
            AccountMeta(payer, True, True),
            AccountMeta(source, False, True),
            AccountMeta(dest, False, True),
            AccountMeta(authority, False, False),
            AccountMeta(TOKEN_PROGRAM_ID, False, False),
        ],
    )


def funded_pda(chain: Chain, program_id: Pubkey) -> tuple[Keypair, Pubkey, int, Pubkey, Pubkey]:
    """A payer, its PDA [b"hello", payer] holding 1,000 tokens, and a destination account."""
    payer = chain.wallet()
    pda, bump = Pubkey.find_program_address([b"hello", bytes(payer.pubkey())], program_id)
    mint = chain.create_mint(payer, payer.pubkey())
    source = chain.create_ata(payer, pda, mint)
    dest = chain.create_ata(payer, payer.pubkey(), mint)
    chain.mint_to(payer, mint, source, payer, 1_000)
    return payer, pda, bump, source, dest


@pytest.mark.parametrize("deploy", ["add_program", "upgradeable_loader"])
def test_pda_signed_token_transfer(chain: Chain, deploy: str) -> None:
    if deploy == "add_program":
        program_id = chain.deploy("hello")
    else:
        program_id = deploy_upgradeable(chain, chain.wallet(), program_path("hello").read_bytes())
    payer, pda, bump, source, dest = funded_pda(chain, program_id)

    result = chain.send_ok([transfer_ix(program_id, payer.pubkey(), source, dest, pda, 250)], payer)

    logs = result.logs()
    assert "Program log: hello from sbf" in logs
    assert f"Program log: 0x0, 0x0, 0x0, {bump:#x}, {250:#x}" in logs
    event = base64.b64encode(b"hello-event" + struct.pack("<Q", 250) + bytes(pda)).decode()
    data_lines = [line for line in logs if line.startswith("Program data: ")]
    assert data_lines == [
        "Program data: " + " ".join(
            base64.b64encode(part).decode() for part in (b"hello-event", struct.pack("<Q", 250), bytes(pda))
        )
    ], event
    assert f"Program {TOKEN_PROGRAM_ID} invoke [2]" in logs
    assert chain.token_amount(source) == 750
    assert chain.token_amount(dest) == 250


def test_wrong_pda_is_refused_and_moves_nothing(chain: Chain) -> None:
    program_id = chain.deploy("hello")
    payer, _pda, _bump, source, dest = funded_pda(chain, program_id)
    wrong = Pubkey.find_program_address([b"hello", bytes(Pubkey.new_unique())], program_id)[0]
    result = chain.send([transfer_ix(program_id, payer.pubkey(), source, dest, wrong, 1)], payer)
    assert isinstance(result, FailedTransactionMetadata)
    assert "invalid seeds" in str(result.err()).lower() or "InvalidSeeds" in str(result.err())
    assert chain.token_amount(source) == 1_000


def test_bad_instruction_data_is_a_program_error(chain: Chain) -> None:
    program_id = chain.deploy("hello")
    payer = chain.wallet()
    for data in (b"", b"\x07", b"\x00\x01\x02", b"\x01" + b"\x00" * 10):
        result = chain.send([Instruction(program_id, data, [])], payer)
        assert isinstance(result, FailedTransactionMetadata), data
        assert "InvalidInstructionData" in str(result.err()) or "NotEnoughAccountKeys" in str(result.err())


def expected_selftest(a: int, b: int, n: int) -> bytes:
    out = bytearray(1 + 8 + 8 + 8 + 64)
    if a * b < U64:
        out[0] = 1
        out[1:9] = struct.pack("<Q", a * b)
    op = [(b + 7) % U64, (2 * b) % U64, b ^ (U64 - 1)][a % 3]
    out[9:17] = struct.pack("<Q", op)
    total = 0
    for value in reversed([(a + i) % U64 for i in range(400)]):
        total = ((value ^ (total >> 3)) + total) % U64
    out[17:25] = struct.pack("<Q", total)
    buf = bytearray(64)
    pattern = bytes((3 * i + 1) % 256 for i in range(64))
    buf[:n] = pattern[:n]
    buf[8:8 + n] = bytes(buf[0:n])
    buf[n + 8:] = b"\xab" * (64 - n - 8)
    out[25:] = buf
    return bytes(out)


@pytest.mark.parametrize(
    ("a", "b", "n"),
    [
        (3, 5, 10),
        (0, U64 - 1, 0),
        (U64 - 1, 1, 48),
        (U64 - 1, 2, 17),
        (2**32, 2**32, 33),  # just overflows
        (2**32 - 1, 2**32 + 1, 1),  # exactly U64 - 1: no overflow
        (2**63, 2, 5),
        (7, 0, 16),
    ],
)
def test_build_limits_compute_correctly(chain: Chain, a: int, b: int, n: int) -> None:
    program_id = chain.deploy("hello")
    payer = chain.wallet()
    result = chain.send_ok([Instruction(program_id, bytes([1]) + struct.pack("<QQQ", a, b, n), [])], payer)
    assert bytes(result.return_data().data) == expected_selftest(a, b, n)


# --- sbf-runtime self-tests (hello tags 2-4) -----------------------------------------

RUNTIME_ERRORS = ["InvalidArgument", "InvalidInstructionData", "InvalidAccountData", "AccountDataTooSmall",
                  "InsufficientFunds", "IncorrectProgramId", "MissingRequiredSignature", "AccountAlreadyInitialized",
                  "UninitializedAccount", "NotEnoughAccountKeys", "AccountBorrowFailed", "MaxSeedLengthExceeded",
                  "InvalidSeeds", "BorshIoError", "UnsupportedSysvar", "IllegalOwner", "ArithmeticOverflow",
                  "InstructionErrorCustom(0)"]


def test_runtime_errors_reach_the_loader_under_their_own_names(chain: Chain) -> None:
    """Reproduces a defect: the runtime encoded ArithmeticOverflow as builtin 21 (the
    loader's MaxInstructionTraceLengthExceeded) and IllegalOwner as 24 (ArithmeticOverflow)."""
    program_id = chain.deploy("hello")
    payer = chain.wallet()
    for index, name in enumerate(RUNTIME_ERRORS):
        result = chain.send([Instruction(program_id, bytes([3, index]), [])], payer)
        assert isinstance(result, FailedTransactionMetadata)
        assert str(result.err()).endswith(f"({name})))") or f"({name})" in str(result.err()), (name, result.err())


@pytest.mark.parametrize("n", [0, 15, 16, 17, 40])
def test_borsh_writer_refuses_bytes_that_do_not_fit(chain: Chain, n: int) -> None:
    """Reproduces a review finding (issue 23): BorshWriter dropped writes past its buffer
    silently, so an event or CPI data could be cut without anyone noticing. Now the writer
    fails with BorshIoError."""
    program_id = chain.deploy("hello")
    result = chain.send([Instruction(program_id, bytes([2, n]), [])], chain.wallet())
    if n <= 16:
        assert not isinstance(result, FailedTransactionMetadata), result
        assert bytes(result.return_data().data) == bytes(range(n))
    else:
        assert isinstance(result, FailedTransactionMetadata) and "BorshIoError" in str(result.err())


def test_one_account_passed_twice_yields_one_exclusive_borrow(chain: Chain) -> None:
    """Reproduces a review finding (issue 23): `data_mut(&self)` handed out a `&mut` to the
    same account's data for each view of a duplicated account. Borrows are now tracked in
    the account header: a second borrow of an exclusively borrowed account is refused,
    through either view."""
    program_id = chain.deploy("hello")
    payer = chain.wallet()
    first, second = Pubkey.new_unique(), Pubkey.new_unique()
    for key in (first, second):
        chain.svm.set_account(key, Account(1_000_000, bytes(8), program_id, False, 0))
    twice = [AccountMeta(first, False, True), AccountMeta(first, False, True)]
    distinct = [AccountMeta(first, False, True), AccountMeta(second, False, True)]
    for mode in (0, 1, 2):  # exclusive then exclusive, exclusive then shared, shared then exclusive
        result = chain.send_ok([Instruction(program_id, bytes([4, mode]), twice)], payer)
        assert bytes(result.return_data().data) == b"\x00", mode
        result = chain.send_ok([Instruction(program_id, bytes([4, mode]), distinct)], payer)
        assert bytes(result.return_data().data) == b"\x01", mode


def test_every_unsafe_block_carries_a_safety_note() -> None:
    """House rule: every `unsafe` block in the programs and the runtime says why it is sound."""
    missing = []
    for path in sorted((ROOT / "program").glob("*/src/**/*.rs")):
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if not re.search(r"\bunsafe\s*\{", line.split("//")[0]):
                continue
            j, noted = i - 1, "SAFETY:" in line
            while not noted and j >= 0 and lines[j].strip().startswith("//"):
                noted = "SAFETY:" in lines[j]
                j -= 1
            if not noted:
                missing.append(f"{path.relative_to(ROOT)}:{i + 1}")
    assert not missing, missing
