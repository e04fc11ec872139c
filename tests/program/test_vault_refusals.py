"""collateral_vault refuses: each case checks the program error by name (from the IDL) and
that nothing changed. The holes found in peer implementations
(../shared/notes/lessons-from-peers.md) are marked PEER HOLE."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
from solders.account import Account
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.transaction_metadata import FailedTransactionMetadata

from localnet.genesis import program_keypair
from localnet.loader_v3 import deploy_upgradeable
from localnet.svm import Chain, program_path
from localnet.vault_env import USDT, User, VaultEnv, error_name
from vault_client.vault_program import (
    ExchangeProgram,
    Pause,
    ProgramLock,
    SettlePair,
    VaultProgram,
    caller_authority,
)


@pytest.fixture
def env() -> VaultEnv:
    return VaultEnv()


@pytest.fixture
def funded(env: VaultEnv) -> tuple[VaultEnv, User]:
    user = env.user(1_000 * USDT)
    env.deposit(user, 500 * USDT)
    return env, user


def refused(env: VaultEnv, ixs: list[Instruction], payer: Keypair, name: str, *signers: Keypair) -> None:
    """Sends, expects the vault program's error `name`, and checks nothing changed."""
    env.refused(ixs, payer, name, *signers, program="vault")


@pytest.fixture
def trading(env: VaultEnv) -> tuple[VaultEnv, User]:
    """A trader with 500 USDT in the vault and a grant of 400 to position_manager."""
    return env, env.trader(500 * USDT, 400 * USDT)


def op(env: VaultEnv, build: Callable[..., Instruction], trader: User, amount: int) -> Instruction:
    """An operator instruction (lock or release) for ``trader`` with its next op id."""
    return build(env.operator.pubkey(), trader.key, amount, env.next_op(trader.key))


def settle(env: VaultEnv, payer: User, receiver: Pubkey, amount: int) -> Instruction:
    return env.exchange.settle(env.operator.pubkey(), [SettlePair(payer.key, receiver, amount, env.next_op(payer.key))])


# --- ownership -------------------------------------------------------------------------


def test_peer_hole_non_owner_cannot_withdraw_to_themselves(funded: tuple[VaultEnv, User]) -> None:
    """PEER HOLE: a signer that is not the vault owner, passing the victim's vault and their
    own destination."""
    env, victim = funded
    thief = env.user(0, with_vault=False)
    ix = env.program.withdraw(victim.key, thief.token_account, 100 * USDT)
    ix = Instruction(ix.program_id, ix.data, [AccountMeta(thief.key, True, False), *ix.accounts[1:]])
    refused(env, [ix], thief.wallet, "Unauthorized")


def test_owner_cannot_withdraw_to_someone_elses_token_account(funded: tuple[VaultEnv, User]) -> None:
    env, user = funded
    other = env.user(0, with_vault=False)
    refused(env, [env.program.withdraw(user.key, other.token_account, 1 * USDT)], user.wallet, "InvalidTokenAccount")


def test_withdraw_requires_the_owners_signature(funded: tuple[VaultEnv, User]) -> None:
    env, user = funded
    thief = env.chain.wallet()
    ix = env.program.withdraw(user.key, user.token_account, 1 * USDT)
    ix = Instruction(ix.program_id, ix.data, [AccountMeta(user.key, False, False), *ix.accounts[1:]])
    refused(env, [ix], thief, "MissingSigner")


def test_deposit_into_someone_elses_vault(funded: tuple[VaultEnv, User]) -> None:
    env, user = funded
    other = env.user()
    ix = env.program.deposit(other.key, other.token_account, 1 * USDT)
    swapped = {env.program.vault(other.key): env.program.vault(user.key),
               env.program.vault_token(other.key): env.program.vault_token(user.key)}
    accounts = [AccountMeta(swapped.get(m.pubkey, m.pubkey), m.is_signer, m.is_writable) for m in ix.accounts]
    ix = Instruction(ix.program_id, ix.data, accounts)
    refused(env, [ix], other.wallet, "Unauthorized")


def test_close_someone_elses_vault(funded: tuple[VaultEnv, User]) -> None:
    env, victim = funded
    thief = env.user()
    ix = env.program.close_vault(thief.key)
    ix = Instruction(ix.program_id, ix.data, [ix.accounts[0], AccountMeta(env.program.vault(victim.key), False, True),
                                              AccountMeta(env.program.vault_token(victim.key), False, True),
                                              *ix.accounts[3:]])
    refused(env, [ix], thief.wallet, "Unauthorized")


# --- account substitution -------------------------------------------------------------


def test_wrong_pda_for_initialize_vault(env: VaultEnv) -> None:
    user, other = env.user(with_vault=False), env.user(with_vault=False)
    ix = env.program.initialize_vault(user.key)
    accounts = list(ix.accounts)
    accounts[1] = AccountMeta(env.program.vault(other.key), False, True)
    refused(env, [Instruction(ix.program_id, ix.data, accounts)], user.wallet, "InvalidPda")


def test_initialize_vault_twice(funded: tuple[VaultEnv, User]) -> None:
    env, user = funded
    refused(env, [env.program.initialize_vault(user.key)], user.wallet, "AlreadyInitialized")


def test_wrong_mint_for_initialize_vault(env: VaultEnv) -> None:
    user = env.user(with_vault=False)
    other_mint = env.chain.create_mint(env.admin, env.mint_authority.pubkey())
    ix = VaultProgram(other_mint, env.vault_id).initialize_vault(user.key)
    refused(env, [ix], user.wallet, "InvalidMint")


def test_deposit_from_a_token_account_of_another_mint(funded: tuple[VaultEnv, User]) -> None:
    env, user = funded
    other_mint = env.chain.create_mint(env.admin, env.mint_authority.pubkey())
    fake = env.chain.create_ata(user.wallet, user.key, other_mint)
    env.chain.mint_to(user.wallet, other_mint, fake, env.mint_authority, 100 * USDT)
    refused(env, [env.program.deposit(user.key, fake, 10 * USDT)], user.wallet, "InvalidMint")


def test_foreign_vault_token_account(funded: tuple[VaultEnv, User]) -> None:
    env, user = funded
    other = env.user()
    env.deposit(other, 10 * USDT)
    for ix in (env.program.withdraw(user.key, user.token_account, 1 * USDT),
               env.program.deposit(user.key, user.token_account, 1 * USDT)):
        accounts = [AccountMeta(env.program.vault_token(other.key), False, True)
                    if m.pubkey == env.program.vault_token(user.key) else m for m in ix.accounts]
        refused(env, [Instruction(ix.program_id, ix.data, accounts)], user.wallet, "InvalidTokenAccount")


def test_fake_vault_account_owned_by_another_program(funded: tuple[VaultEnv, User]) -> None:
    """A look-alike account (right size and discriminator) not owned by the program."""
    env, user = funded
    real = env.chain.account(env.program.vault(user.key))
    fake = Pubkey.new_unique()
    env.chain.svm.set_account(fake, Account(lamports=real.lamports, data=bytes(real.data), owner=env.pm_id))
    ix = env.program.withdraw(user.key, user.token_account, 1 * USDT)
    accounts = [AccountMeta(fake, False, True) if m.pubkey == env.program.vault(user.key) else m for m in ix.accounts]
    refused(env, [Instruction(ix.program_id, ix.data, accounts)], user.wallet, "InvalidVault")


def test_wrong_token_program(funded: tuple[VaultEnv, User]) -> None:
    env, user = funded
    ix = env.program.deposit(user.key, user.token_account, 1 * USDT)
    accounts = [*ix.accounts[:5], AccountMeta(env.pm_id, False, False)]
    refused(env, [Instruction(ix.program_id, ix.data, accounts)], user.wallet, "InvalidProgramAccount")


# --- amounts --------------------------------------------------------------------------


def test_zero_amounts(trading: tuple[VaultEnv, User]) -> None:
    env, user = trading
    refused(env, [env.program.deposit(user.key, user.token_account, 0)], user.wallet, "InvalidAmount")
    refused(env, [env.program.withdraw(user.key, user.token_account, 0)], user.wallet, "InvalidAmount")
    refused(env, [op(env, env.exchange.lock, user, 0)], env.operator, "InvalidAmount")


def test_amounts_above_available_or_locked(trading: tuple[VaultEnv, User]) -> None:
    env, user = trading
    env.ok([env.exchange.grant(user.key, 10_000 * USDT, env.now() + 100)], user.wallet)
    refused(env, [env.program.withdraw(user.key, user.token_account, 500 * USDT + 1)], user.wallet,
            "InsufficientAvailableBalance")
    env.lock(user, 200 * USDT)
    refused(env, [env.program.withdraw(user.key, user.token_account, 300 * USDT + 1)], user.wallet,
            "InsufficientAvailableBalance")
    refused(env, [op(env, env.exchange.lock, user, 300 * USDT + 1)], env.operator, "InsufficientAvailableBalance")
    refused(env, [op(env, env.exchange.release, user, 200 * USDT + 1)], env.operator, "InsufficientLockedBalance")
    other = env.user()
    refused(env, [settle(env, user, other.key, 200 * USDT + 1)], env.operator, "InsufficientLockedBalance")


def test_malformed_instruction_data(funded: tuple[VaultEnv, User]) -> None:
    env, user = funded
    ix = env.program.deposit(user.key, user.token_account, 1)
    for data in (b"", ix.data[:8], ix.data[:12], ix.data + b"\x00", b"\xff" * 16):
        refused(env, [Instruction(ix.program_id, data, ix.accounts)], user.wallet, "InvalidInstruction")


# --- lock / unlock / transfer authorization -------------------------------------------


def test_peer_hole_direct_lock_from_a_wallet_is_refused(funded: tuple[VaultEnv, User]) -> None:
    """PEER HOLE: a wallet calls lock/unlock directly, passing the authorized program's id,
    or its caller PDA (which it cannot sign for), or itself as a signer."""
    env, user = funded
    attacker = env.chain.wallet()
    pm_caller, _ = caller_authority(env.pm_id)
    for build in (env.program.lock_collateral, env.program.unlock_collateral):
        for caller, signs in ((env.pm_id, False), (pm_caller, False), (attacker.pubkey(), True)):
            ix = build(user.key, caller, 1 * USDT)
            accounts = [*ix.accounts[:2], AccountMeta(caller, signs, False)]
            refused(env, [Instruction(ix.program_id, ix.data, accounts)], attacker, "UnauthorizedCaller")


def test_unauthorized_program_cpi_is_refused(trading: tuple[VaultEnv, User]) -> None:
    """The same position_manager code at an id not in the authority list (its own exchange
    and a grant to it set up, so only the vault's check stands in the way)."""
    env, user = trading
    rogue = rogue_exchange(env)
    env.ok([rogue.grant(user.key, 100 * USDT, env.now() + 100)], user.wallet)
    refused(env, [rogue.lock(env.operator.pubkey(), user.key, 1 * USDT, 1)], env.operator, "UnauthorizedCaller")
    other = env.user()
    env.lock(user, 10 * USDT)
    refused(env, [rogue.settle(env.operator.pubkey(), [SettlePair(user.key, other.key, 1 * USDT, 1)])], env.operator,
            "UnauthorizedCaller")


def rogue_exchange(env: VaultEnv) -> ExchangeProgram:
    """The second position_manager instance, its exchange initialized (same operator)."""
    rogue = ExchangeProgram(env.program, env.rogue_pm_id)
    env.ok([rogue.initialize_exchange(env.admin.pubkey(), env.operator.pubkey(), env.fee_owner,
                                      env.insurance_owner, env.exit_delay_slots, env.config_delay_slots)], env.admin)
    return rogue


def test_removed_program_loses_access(trading: tuple[VaultEnv, User]) -> None:
    env, user = trading
    env.ok([env.program.remove_authorized_program(env.admin.pubkey(), env.pm_id)], env.admin)
    refused(env, [op(env, env.exchange.lock, user, 1 * USDT)], env.operator, "UnauthorizedCaller")


def test_settle_into_the_same_vault(trading: tuple[VaultEnv, User]) -> None:
    env, user = trading
    env.lock(user, 10 * USDT)
    refused(env, [settle(env, user, user.key, 1 * USDT)], env.operator, "SameVault")


def test_program_b_cannot_unlock_or_transfer_what_program_a_locked(trading: tuple[VaultEnv, User]) -> None:
    """Locks belong to the program that made them: with the second instance authorized too
    (program B), it can neither release nor settle what position_manager (A) locked."""
    env, user = trading
    other = env.user()
    rogue = rogue_exchange(env)
    env.authorize_now(env.rogue_pm_id)
    env.ok([rogue.grant(user.key, 100 * USDT, env.now() + 100)], user.wallet)
    env.lock(user, 50 * USDT)
    operator = env.operator.pubkey()
    refused(env, [rogue.release(operator, user.key, 1 * USDT, 1)], env.operator, "InsufficientLockedBalance")
    refused(env, [rogue.settle(operator, [SettlePair(user.key, other.key, 1 * USDT, 1)])], env.operator,
            "InsufficientLockedBalance")
    # B's own lock is B's: it can release that, and A's stays as it was
    env.ok([rogue.lock(operator, user.key, 20 * USDT, 1)], env.operator)
    env.ok([rogue.release(operator, user.key, 20 * USDT, 2)], env.operator)
    refused(env, [rogue.release(operator, user.key, 1 * USDT, 3)], env.operator, "InsufficientLockedBalance")
    vault = env.vault(user.key)
    assert vault.locks == (ProgramLock(env.pm_id, 50 * USDT),) and vault.locked_balance == 50 * USDT


def test_a_fifth_program_finds_no_free_lock_slot(trading: tuple[VaultEnv, User]) -> None:
    """Four programs can hold locks in one vault at once. Only two instances of a locking
    program are built here, so the other programs' locks are written into the vault account
    directly (a state four authorized programs would produce); then position_manager, a
    fifth program, is refused until a slot is free."""
    env, user = trading
    others = [Pubkey.new_unique() for _ in range(4)]
    set_locks(env, user.key, [(program, 10 * USDT) for program in others])
    refused(env, [op(env, env.exchange.lock, user, 1 * USDT)], env.operator, "LockSlotsFull")
    set_locks(env, user.key, [(program, 10 * USDT) for program in others[:3]] + [(Pubkey.default(), 0)])
    env.lock(user, 1 * USDT)
    assert env.vault(user.key).locked_by(env.pm_id) == 1 * USDT


def set_locks(env: VaultEnv, owner: Pubkey, locks: list[tuple[Pubkey, int]]) -> None:
    """Rewrites a vault's lock slots (and its locked/available split to match)."""
    key = env.program.vault(owner)
    account = env.chain.account(key)
    data = bytearray(bytes(account.data))
    total = struct.unpack_from("<Q", data, 72)[0]
    locked = sum(amount for _, amount in locks)
    struct.pack_into("<QQ", data, 80, locked, total - locked)
    for index, (program, amount) in enumerate(locks):
        data[136 + 40 * index:176 + 40 * index] = bytes(program) + struct.pack("<Q", amount)
    env.chain.svm.set_account(key, Account(account.lamports, bytes(data), account.owner, account.executable,
                                           account.rent_epoch))


# --- pause ----------------------------------------------------------------------------


def test_pause_refuses_everything_but_deposits(trading: tuple[VaultEnv, User]) -> None:
    env, user = trading
    other = env.user()
    env.lock(user, 50 * USDT)
    env.ok([env.program.set_paused(env.admin.pubkey(), Pause.ALL)], env.admin)
    env.deposit(user, 1 * USDT)  # deposits stay open
    refused(env, [env.program.withdraw(user.key, user.token_account, 1 * USDT)], user.wallet, "OperationPaused")
    refused(env, [env.program.close_vault(other.key)], other.wallet, "OperationPaused")
    for ix in (op(env, env.exchange.lock, user, 1 * USDT), op(env, env.exchange.release, user, 1 * USDT),
               settle(env, user, other.key, 1 * USDT)):
        refused(env, [ix], env.operator, "OperationPaused")
    newcomer = env.user(with_vault=False)
    refused(env, [env.program.initialize_vault(newcomer.key)], newcomer.wallet, "OperationPaused")
    env.set_paused_now(0)
    env.ok([env.program.withdraw(user.key, user.token_account, 1 * USDT)], user.wallet)


def test_only_the_admin_pauses(funded: tuple[VaultEnv, User]) -> None:
    """PEER HOLE: pause controls belong to the exchange's authority, not to vault owners."""
    env, user = funded
    refused(env, [env.program.set_paused(user.key, Pause.ALL)], user.wallet, "Unauthorized")
    refused(env, [env.program.set_paused(env.admin.pubkey(), 0x80)], env.admin, "InvalidInstruction")


# --- close ----------------------------------------------------------------------------


def test_close_with_funds_or_locked_collateral(trading: tuple[VaultEnv, User]) -> None:
    env, user = trading
    refused(env, [env.program.close_vault(user.key)], user.wallet, "VaultNotEmpty")
    env.lock(user, 400 * USDT)
    env.ok([env.program.withdraw(user.key, user.token_account, 100 * USDT)], user.wallet)
    refused(env, [env.program.close_vault(user.key)], user.wallet, "VaultNotEmpty")


# --- authority administration ---------------------------------------------------------


def test_peer_hole_authority_cannot_be_initialized_by_a_stranger() -> None:
    """PEER HOLE: anyone initializing the authority first and becoming admin."""
    chain = Chain()
    deployer, stranger = chain.wallet(100_000_000_000), chain.wallet()
    vault_id = deploy_upgradeable(chain, deployer, program_path("collateral_vault").read_bytes(),
                                  program_keypair("collateral_vault"))
    mint = chain.create_mint(deployer, deployer.pubkey())
    program = VaultProgram(mint, vault_id)
    result = chain.send([program.initialize_authority(stranger.pubkey())], stranger)
    assert isinstance(result, FailedTransactionMetadata) and error_name(result) == "NotUpgradeAuthority"
    chain.send_ok([program.initialize_authority(deployer.pubkey())], deployer)
    result = chain.send([program.initialize_authority(deployer.pubkey())], deployer)
    assert isinstance(result, FailedTransactionMetadata) and error_name(result) == "AlreadyInitialized"


def test_admin_instructions_refuse_non_admins_and_bad_input(env: VaultEnv) -> None:
    admin, stranger = env.admin.pubkey(), env.chain.wallet()
    for ix in (env.program.add_authorized_program(stranger.pubkey(), env.rogue_pm_id),
               env.program.remove_authorized_program(stranger.pubkey(), env.pm_id),
               env.program.transfer_admin(stranger.pubkey(), stranger.pubkey())):
        refused(env, [ix], stranger, "Unauthorized")
    refused(env, [env.program.add_authorized_program(admin, env.pm_id)], env.admin, "ProgramAlreadyAuthorized")
    refused(env, [env.program.add_authorized_program(admin, stranger.pubkey())], env.admin, "InvalidProgramAccount")
    refused(env, [env.program.remove_authorized_program(admin, env.rogue_pm_id)], env.admin, "ProgramNotAuthorized")
    refused(env, [env.program.accept_admin(stranger.pubkey())], stranger, "NoPendingAdmin")
    env.ok([env.program.transfer_admin(admin, Keypair().pubkey())], env.admin)
    refused(env, [env.program.accept_admin(stranger.pubkey())], stranger, "NoPendingAdmin")


def test_authorized_list_is_bounded(env: VaultEnv) -> None:
    hello = program_path("hello").read_bytes()
    for _ in range(15):
        program_id = Pubkey.new_unique()
        env.chain.svm.add_program(program_id, hello)
        env.authorize_now(program_id)
    assert len(env.authority().programs) == 16
    extra = Pubkey.new_unique()
    env.chain.svm.add_program(extra, hello)
    refused(env, [env.program.add_authorized_program(env.admin.pubkey(), extra)], env.admin, "AuthorityListFull")


def test_missing_accounts(funded: tuple[VaultEnv, User]) -> None:
    env, user = funded
    ix = env.program.withdraw(user.key, user.token_account, 1)
    refused(env, [Instruction(ix.program_id, ix.data, ix.accounts[:3])], user.wallet, "MissingAccounts")
