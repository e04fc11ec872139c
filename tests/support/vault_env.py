"""A deployed vault system in the real SVM: collateral_vault and position_manager at their
fixed development ids (deployed through the upgradeable loader), an unauthorized copy of
position_manager, a 6-decimal USDT mint, and the VaultAuthority initialized by the
upgrade authority with position_manager authorized."""

from __future__ import annotations

from dataclasses import dataclass, field

from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.transaction_metadata import FailedTransactionMetadata, TransactionMetadata

from localnet import genesis
from localnet.svm import Chain
from services.common.idl import DecodedEvent
from services.common.program_logs import data_lines
from services.common.vault_program import IDL, Authority, Vault

USDT = 10**6


@dataclass
class User:
    wallet: Keypair
    token_account: Pubkey

    @property
    def key(self) -> Pubkey:
        return self.wallet.pubkey()


@dataclass
class VaultEnv:
    token: str = "p-token"
    seed: bytes | None = None  # fixed keys (see Chain)
    chain: Chain = field(init=False)

    def __post_init__(self) -> None:
        self.chain = Chain(self.token, seed=self.seed)
        deployment = genesis.create(self.chain, self.chain.wallet(100_000_000_000), self.chain.wallet())
        self.admin, self.mint_authority, self.mint = deployment.admin, deployment.faucet, deployment.mint
        self.vault_id, self.pm_id, self.rogue_pm_id = deployment.vault_id, deployment.pm_id, deployment.rogue_pm_id
        self.program = deployment.program

    # transactions

    def send(
        self, ixs: list[Instruction], payer: Keypair, *signers: Keypair
    ) -> TransactionMetadata | FailedTransactionMetadata:
        return self.chain.send(ixs, payer, *signers)

    def ok(self, ixs: list[Instruction], payer: Keypair, *signers: Keypair) -> TransactionMetadata:
        return self.chain.send_ok(ixs, payer, *signers)

    def fails(self, ixs: list[Instruction], payer: Keypair, *signers: Keypair) -> FailedTransactionMetadata:
        result = self.chain.send(ixs, payer, *signers)
        assert isinstance(result, FailedTransactionMetadata), "the transaction should have failed"
        return result

    # users

    def user(self, usdt: int = 1_000 * USDT, *, with_vault: bool = True) -> User:
        wallet = self.chain.wallet()
        token_account = self.chain.create_ata(wallet, wallet.pubkey(), self.mint)
        if usdt:
            self.chain.mint_to(wallet, self.mint, token_account, self.mint_authority, usdt)
        user = User(wallet, token_account)
        if with_vault:
            self.ok([self.program.initialize_vault(user.key)], wallet)
        return user

    def deposit(self, user: User, amount: int) -> TransactionMetadata:
        return self.ok([self.program.deposit(user.key, user.token_account, amount)], user.wallet)

    # state

    def vault(self, owner: Pubkey) -> Vault:
        account = self.chain.svm.get_account(self.program.vault(owner))
        assert account is not None, "no vault"
        return Vault.decode(bytes(account.data))

    def authority(self) -> Authority:
        account = self.chain.svm.get_account(self.program.authority)
        assert account is not None
        return Authority.decode(bytes(account.data))

    def vault_tokens(self, owner: Pubkey) -> int:
        return self.chain.token_amount(self.program.vault_token(owner))

    def events(self, result: TransactionMetadata) -> list[DecodedEvent]:
        return [IDL.decode_event(line.parts[0]) for line in data_lines(result.logs())
                if line.program_id == str(self.vault_id)]


def error_code(result: FailedTransactionMetadata) -> int | None:
    """The custom program error code of a failed transaction, if it has one."""
    text = str(result.err())
    marker = "Custom("
    if marker not in text:
        return None
    return int(text[text.index(marker) + len(marker):].split(")")[0])


def error_name(result: FailedTransactionMetadata) -> str | None:
    code = error_code(result)
    found = IDL.error(code) if code is not None else None
    return found[0] if found else None
