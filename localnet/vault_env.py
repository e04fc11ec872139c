"""A deployed vault system in the real SVM: collateral_vault and position_manager at their
fixed development ids (deployed through the upgradeable loader), the development-only
second position_manager instance (not authorized), a 6-decimal USDT mint, the
VaultAuthority initialized by the upgrade authority with position_manager authorized, and
the exchange (fee and insurance-fund vaults, ExchangeConfig with an operator key this
environment holds)."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

from solders.account import Account
from solders.address_lookup_table_account import AddressLookupTableAccount
from solders.clock import Clock
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata, TransactionMetadata

from localnet import genesis
from localnet.svm import Chain
from vault_client.idl import DecodedEvent, Idl
from vault_client.program_logs import data_lines
from vault_client.vault_program import IDL, PM_IDL, Authority, ExchangeConfig, Grant, Vault, WithdrawLimits

USDT = 10**6
DAY = 86_400
#: the cluster time a test chain starts at (LiteSVM's own clock starts at 0)
START_TIME = 1_800_000_000
#: withdrawal limits that never throttle (tests that move sums beyond the defaults)
UNTHROTTLED = WithdrawLimits(max_outflow_bps=10_000, window_slots=1, min_budget=2**64 - 1, exempt_amount=2**64 - 1)
LOOKUP_TABLE_PROGRAM = Pubkey.from_string("AddressLookupTab1e1111111111111111111111111")
_FAILED = re.compile(r"^Program (\w+) failed: custom program error: 0x([0-9a-f]+)$")


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
    exit_delay_slots: int = genesis.DEV_EXIT_DELAY_SLOTS
    config_delay_slots: int = genesis.DEV_CONFIG_DELAY_SLOTS
    chain: Chain = field(init=False)

    def __post_init__(self) -> None:
        self.chain = Chain(self.token, seed=self.seed)
        self._set_clock(slot=1, unix_timestamp=START_TIME)
        self.operator = self.chain.wallet()
        setup = genesis.ExchangeSetup(self.operator.pubkey(), self.chain.wallet(), self.chain.wallet(),
                                      self.exit_delay_slots, self.config_delay_slots)
        deployment = genesis.create(self.chain, self.chain.wallet(100_000_000_000), self.chain.wallet(), setup=setup)
        self.admin, self.mint_authority, self.mint = deployment.admin, deployment.faucet, deployment.mint
        self.vault_id, self.pm_id, self.rogue_pm_id = deployment.vault_id, deployment.pm_id, deployment.rogue_pm_id
        self.program = deployment.program
        self.exchange = deployment.exchange
        self.fee_owner, self.insurance_owner = setup.fee_owner.pubkey(), setup.insurance_owner.pubkey()
        self._op_ids: dict[Pubkey, int] = {}

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

    def send_v0(self, ixs: list[Instruction], payer: Keypair, *signers: Keypair
                ) -> TransactionMetadata | FailedTransactionMetadata:
        """Sends a v0 transaction whose non-signer accounts come from an address lookup table
        (written directly into the chain: LiteSVM has no table program history to wait for),
        so it can name more accounts than a legacy transaction's 1,232 bytes hold."""
        signing = {payer.pubkey(), *(s.pubkey() for s in signers)}
        keys = list(dict.fromkeys(m.pubkey for ix in ixs for m in ix.accounts if m.pubkey not in signing))
        table = Pubkey.new_unique()
        meta = struct.pack("<IQQBB32sH", 1, 2**64 - 1, 0, 0, 1, bytes(payer.pubkey()), 0)
        self.chain.svm.set_account(table, Account(10**9, meta + b"".join(bytes(k) for k in keys), LOOKUP_TABLE_PROGRAM,
                                                  False, 0))
        message = MessageV0.try_compile(payer.pubkey(), ixs, [AddressLookupTableAccount(table, keys)],
                                        self.chain.svm.latest_blockhash())
        result = self.chain.svm.send_transaction(VersionedTransaction(message, [payer, *signers]))
        self.chain.svm.expire_blockhash()
        return result

    def refused(self, ixs: list[Instruction], payer: Keypair, name: str, *signers: Keypair,
                program: str | None = None) -> FailedTransactionMetadata:
        """Sends, expects error ``name`` (of ``program``, "vault" or "exchange", when given),
        and checks that no account the instructions name changed (the payer pays the fee)."""
        keys = {meta.pubkey for ix in ixs for meta in ix.accounts} - {payer.pubkey()}
        before = {key: self.chain.svm.get_account(key) for key in keys}
        result = self.fails(ixs, payer, *signers)
        failed_in, error = self.error(result)
        assert error == name, (failed_in, error, result.err(), list(result.meta().logs()))
        if program is not None:
            assert failed_in == program, (failed_in, error)
        for key, account in before.items():
            after = self.chain.svm.get_account(key)
            assert (account.data if account else None) == (after.data if after else None), f"{key} changed"
            assert (account.lamports if account else 0) == (after.lamports if after else 0), f"{key} lamports changed"
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

    def authorize_now(self, program: Pubkey) -> TransactionMetadata:
        """Authorizes ``program`` (queue and execute in one transaction: the environment's
        timelock delay is 0 unless a test changed it)."""
        change_id = self.authority().next_change_id + 1
        return self.ok(self.program.authorize_program_now(self.admin.pubkey(), program, change_id), self.admin)

    def change_now(self, ix: Instruction, program: Pubkey | None = None) -> TransactionMetadata:
        """Sends an admin instruction that queues a loosening change, with its execution in the
        same transaction (the environment's timelock delay is 0 unless a test changed it)."""
        change_id = self.authority().next_change_id + 1
        return self.ok([ix, self.program.execute_change(change_id, program)], self.admin)

    def set_limits_now(self, limits: WithdrawLimits) -> TransactionMetadata:
        """The withdrawal limits, at once (raising them is queued: executed in the same transaction)."""
        ix = self.program.set_withdraw_limits(self.admin.pubkey(), limits)
        if _tightens(self.authority().limits, limits):
            return self.ok([ix], self.admin)
        return self.change_now(ix)

    def set_paused_now(self, flags: int) -> TransactionMetadata:
        """``set_paused``; a lift is queued, then executed in the same transaction."""
        ix = self.program.set_paused(self.admin.pubkey(), flags)
        if self.authority().pause_flags & ~flags:
            return self.change_now(ix)
        return self.ok([ix], self.admin)

    def deposit(self, user: User, amount: int) -> TransactionMetadata:
        return self.ok([self.program.deposit(user.key, user.token_account, amount)], user.wallet)

    def trader(self, deposit: int = 500 * USDT, max_locked: int = 400 * USDT) -> User:
        """A user with a vault, ``deposit`` in it and a grant to position_manager."""
        user = self.user(max(deposit, 1_000 * USDT))
        if deposit:
            self.deposit(user, deposit)
        self.ok([self.exchange.grant(user.key, max_locked, self.now() + DAY)], user.wallet)
        return user

    # the operator (op ids strictly increasing per trader, as the matching engine keeps them)

    def next_op(self, trader: Pubkey) -> int:
        self._op_ids[trader] = self._op_ids.get(trader, 0) + 1
        return self._op_ids[trader]

    def operate(self, ix: Instruction) -> TransactionMetadata:
        return self.ok([ix], self.operator)

    def lock(self, trader: User, amount: int) -> TransactionMetadata:
        return self.operate(self.exchange.lock(self.operator.pubkey(), trader.key, amount, self.next_op(trader.key)))

    def release(self, trader: User, amount: int) -> TransactionMetadata:
        return self.operate(self.exchange.release(self.operator.pubkey(), trader.key, amount,
                                                  self.next_op(trader.key)))

    # time

    def now(self) -> int:
        return int(self.chain.svm.get_clock().unix_timestamp)

    def slot(self) -> int:
        return int(self.chain.svm.get_clock().slot)

    def _set_clock(self, *, slot: int, unix_timestamp: int) -> None:
        clock = self.chain.svm.get_clock()
        self.chain.svm.set_clock(Clock(slot=slot, epoch_start_timestamp=clock.epoch_start_timestamp,
                                       epoch=clock.epoch, leader_schedule_epoch=clock.leader_schedule_epoch,
                                       unix_timestamp=unix_timestamp))

    def warp_slots(self, slots: int) -> None:
        self._set_clock(slot=self.slot() + slots, unix_timestamp=self.now())

    def warp_seconds(self, seconds: int) -> None:
        self._set_clock(slot=self.slot(), unix_timestamp=self.now() + seconds)

    # state

    def vault(self, owner: Pubkey) -> Vault:
        account = self.chain.svm.get_account(self.program.vault(owner))
        assert account is not None, "no vault"
        return Vault.decode(bytes(account.data))

    def authority(self) -> Authority:
        account = self.chain.svm.get_account(self.program.authority)
        assert account is not None
        return Authority.decode(bytes(account.data))

    def config(self) -> ExchangeConfig:
        return ExchangeConfig.decode(bytes(self.chain.account(self.exchange.config).data))

    def grant(self, trader: Pubkey) -> Grant:
        return Grant.decode(bytes(self.chain.account(self.exchange.grant_account(trader)).data))

    def vault_tokens(self, owner: Pubkey) -> int:
        return self.chain.token_amount(self.program.vault_token(owner))

    def events(self, result: TransactionMetadata) -> list[DecodedEvent]:
        """The vault program's events."""
        return [IDL.decode_event(line.parts[0]) for line in data_lines(result.logs())
                if line.program_id == str(self.vault_id)]

    def pm_events(self, result: TransactionMetadata) -> list[DecodedEvent]:
        """position_manager's events."""
        return [PM_IDL.decode_event(line.parts[0]) for line in data_lines(result.logs())
                if line.program_id == str(self.pm_id)]

    def error(self, result: FailedTransactionMetadata) -> tuple[str, str | None]:
        """(program, error name) of a failed transaction: "vault" or "exchange" for the
        program that failed first (a CPI's callee before its caller)."""
        failed = failing_program(result)
        if failed is None:
            return "", None
        program, code = failed
        idl: Idl = IDL if program == self.vault_id else PM_IDL
        found = idl.error(code)
        if found is not None:  # every refusal also checks the line Anchor clients parse
            assert anchor_error_line(result) == anchor_line(found[0], code, found[1]), list(result.meta().logs())
        return ("vault" if idl is IDL else "exchange"), (found[0] if found else None)


def anchor_line(name: str, code: int, message: str) -> str:
    """The line an Anchor program logs when it fails with its error ``code``."""
    return f"Program log: AnchorError occurred. Error Code: {name}. Error Number: {code}. Error Message: {message}."


def anchor_error_line(result: FailedTransactionMetadata) -> str | None:
    """The first `AnchorError` log line of a failed transaction (the one Anchor clients parse)."""
    return next((line for line in result.meta().logs() if line.startswith("Program log: AnchorError")), None)


def _tightens(current: WithdrawLimits, new: WithdrawLimits) -> bool:
    return (new.max_outflow_bps <= current.max_outflow_bps and new.window_slots >= current.window_slots
            and new.min_budget <= current.min_budget and new.exempt_amount <= current.exempt_amount)


def failing_program(result: FailedTransactionMetadata) -> tuple[Pubkey, int] | None:
    """The program whose custom error failed the transaction (the innermost one), and the code."""
    for line in result.meta().logs():
        match = _FAILED.match(line)
        if match:
            return Pubkey.from_string(match.group(1)), int(match.group(2), 16)
    return None


def error_code(result: FailedTransactionMetadata) -> int | None:
    """The custom program error code of a failed transaction, if it has one."""
    text = str(result.err())
    marker = "Custom("
    if marker not in text:
        return None
    return int(text[text.index(marker) + len(marker):].split(")")[0])


def error_name(result: FailedTransactionMetadata) -> str | None:
    """The error's name in the IDL of the program that failed (vault or position_manager)."""
    failed = failing_program(result)
    code = error_code(result)
    if code is None:
        return None
    idl = IDL if failed is None or failed[0] == IDL.address else PM_IDL
    found = idl.error(code)
    return found[0] if found else None
