"""LiteSVM with the programs built by `make program`: the chain under localnet and the tests (solders' LiteSVM, which
ships the SPL Token, Token-2022 and Associated Token Account programs)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from solders.account import Account
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account
from solders.transaction import Transaction
from solders.transaction_metadata import FailedTransactionMetadata, TransactionMetadata

from localnet.embedded_programs import classic_spl_token
from vault_client import spl_token

ROOT = Path(__file__).resolve().parents[1]
DEPLOY_DIR = ROOT / "program" / "target" / "deploy"


def program_path(name: str) -> Path:
    path = DEPLOY_DIR / f"{name}.so"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `make program`")
    return path


TOKEN_IMPLEMENTATIONS = ("p-token", "classic")


class Chain:
    """A LiteSVM with helpers to fund wallets, make mints and token accounts, and send.

    ``token`` picks the SPL Token implementation: LiteSVM's default p-token, or the classic
    program (extracted from the solders binary, see embedded_programs). With ``seed``, the
    keypairs it makes (wallets, mints) are the same on every run: compute units that depend
    on addresses (a PDA's bump search) then repeat exactly. Without ``history``, LiteSVM
    keeps no record of the signatures it processed (and so refuses none as a duplicate)."""

    def __init__(self, token: str = "p-token", *, blockhash_check: bool = True, sigverify: bool = True,
                 history: bool = True, seed: bytes | None = None) -> None:
        self._seed, self._made = seed, 0
        #: when a list, every transaction that lands is appended to it (genesis' history)
        self.journal: list[tuple[Transaction, TransactionMetadata]] | None = None
        if token not in TOKEN_IMPLEMENTATIONS:
            raise ValueError(f"token must be one of {TOKEN_IMPLEMENTATIONS}")
        svm = LiteSVM()
        if not blockhash_check:
            svm = svm.with_blockhash_check(False)
        if not sigverify:
            svm = svm.with_sigverify(False)
        if not history:  # the caller keeps its own record of processed signatures
            svm = svm.with_transaction_history(0)
        self.svm = svm
        if token == "classic":
            self.svm.add_program(spl_token.TOKEN_PROGRAM_ID, classic_spl_token())

    def deploy(self, name: str, program_id: Pubkey | None = None) -> Pubkey:
        program_id = program_id or Pubkey.new_unique()
        self.svm.add_program(program_id, program_path(name).read_bytes())
        return program_id

    def keypair(self) -> Keypair:
        """A new keypair: random, or the next one derived from the chain's seed."""
        if self._seed is None:
            return Keypair()
        self._made += 1
        return Keypair.from_seed(hashlib.sha256(self._seed + self._made.to_bytes(8, "little")).digest())

    def wallet(self, lamports: int = 10_000_000_000) -> Keypair:
        keypair = self.keypair()
        self.svm.airdrop(keypair.pubkey(), lamports)
        return keypair

    def send(
        self, instructions: list[Instruction], payer: Keypair, *signers: Keypair
    ) -> TransactionMetadata | FailedTransactionMetadata:
        tx = Transaction([payer, *signers], Message(instructions, payer.pubkey()), self.svm.latest_blockhash())
        result = self.svm.send_transaction(tx)
        self.svm.expire_blockhash()  # so an identical next transaction gets a new signature
        if self.journal is not None and isinstance(result, TransactionMetadata):
            self.journal.append((tx, result))
        return result

    def send_ok(self, instructions: list[Instruction], payer: Keypair, *signers: Keypair) -> TransactionMetadata:
        result = self.send(instructions, payer, *signers)
        if isinstance(result, FailedTransactionMetadata):
            logs = "\n".join(result.meta().logs())
            raise AssertionError(f"transaction failed: {result.err()}\n{logs}")
        return result

    def create_mint(self, payer: Keypair, authority: Pubkey, decimals: int = 6, mint: Keypair | None = None) -> Pubkey:
        mint = mint or self.keypair()
        rent = self.svm.minimum_balance_for_rent_exemption(spl_token.MINT_SIZE)
        self.send_ok(
            [
                create_account(CreateAccountParams(
                    from_pubkey=payer.pubkey(), to_pubkey=mint.pubkey(), lamports=rent,
                    space=spl_token.MINT_SIZE, owner=spl_token.TOKEN_PROGRAM_ID,
                )),
                spl_token.initialize_mint2(mint.pubkey(), decimals, authority),
            ],
            payer, mint,
        )
        return mint.pubkey()

    def create_ata(self, payer: Keypair, owner: Pubkey, mint: Pubkey) -> Pubkey:
        self.send_ok([spl_token.create_associated_token_account(payer.pubkey(), owner, mint)], payer)
        return spl_token.associated_token_address(owner, mint)

    def mint_to(self, payer: Keypair, mint: Pubkey, destination: Pubkey, authority: Keypair, amount: int) -> None:
        self.send_ok([spl_token.mint_to(mint, destination, authority.pubkey(), amount)], payer, authority)

    def account(self, key: Pubkey) -> Account:
        info = self.svm.get_account(key)
        assert info is not None, f"no account {key}"
        return info

    def lamports(self, key: Pubkey) -> int:
        """Lamports at ``key`` (0 when the account does not exist)."""
        return self.svm.get_balance(key) or 0

    def token_amount(self, account: Pubkey) -> int:
        info = self.svm.get_account(account)
        assert info is not None, f"no account {account}"
        return spl_token.TokenAccount.decode(bytes(info.data)).amount
