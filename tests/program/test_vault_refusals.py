"""collateral_vault refuses: each case checks the program error by name (from the IDL) and
that nothing changed. The holes found in peer implementations
(../shared/notes/lessons-from-peers.md) are marked PEER HOLE."""

from __future__ import annotations

import pytest
from solders.account import Account
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.transaction_metadata import FailedTransactionMetadata

from localnet.genesis import program_keypair
from localnet.loader_v3 import deploy_upgradeable
from localnet.svm import Chain, program_path
from services.common.vault_program import Pause, VaultProgram, caller_authority
from tests.support.vault_env import USDT, User, VaultEnv, error_code, error_name


@pytest.fixture
def env() -> VaultEnv:
    return VaultEnv()


@pytest.fixture
def funded(env: VaultEnv) -> tuple[VaultEnv, User]:
    user = env.user(1_000 * USDT)
    env.deposit(user, 500 * USDT)
    return env, user


def refused(env: VaultEnv, ixs: list[Instruction], payer: Keypair, name: str, *signers: Keypair) -> None:
    """Sends, expects program error `name`, and checks no vault or token balance moved."""
    snapshot = {key: env.chain.svm.get_account(key) for ix in ixs for key in (m.pubkey for m in ix.accounts)}
    result = env.fails(ixs, payer, *signers)
    assert error_name(result) == name, (result.err(), result.meta().logs())
    for key, before in snapshot.items():
        after = env.chain.svm.get_account(key)
        if key == payer.pubkey():
            continue  # pays the fee
        assert (before.data if before else None) == (after.data if after else None), f"{key} changed"


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
    accounts = [*ix.accounts[:4], AccountMeta(env.pm_id, False, False)]
    refused(env, [Instruction(ix.program_id, ix.data, accounts)], user.wallet, "InvalidProgramAccount")


# --- amounts --------------------------------------------------------------------------


def test_zero_amounts(funded: tuple[VaultEnv, User]) -> None:
    env, user = funded
    refused(env, [env.program.deposit(user.key, user.token_account, 0)], user.wallet, "InvalidAmount")
    refused(env, [env.program.withdraw(user.key, user.token_account, 0)], user.wallet, "InvalidAmount")
    refused(env, [env.program.open_position(user.key, 0, env.pm_id)], user.wallet, "InvalidAmount")


def test_amounts_above_available_or_locked(funded: tuple[VaultEnv, User]) -> None:
    env, user = funded
    refused(env, [env.program.withdraw(user.key, user.token_account, 500 * USDT + 1)], user.wallet,
            "InsufficientAvailableBalance")
    env.ok([env.program.open_position(user.key, 200 * USDT, env.pm_id)], user.wallet)
    refused(env, [env.program.withdraw(user.key, user.token_account, 300 * USDT + 1)], user.wallet,
            "InsufficientAvailableBalance")
    refused(env, [env.program.open_position(user.key, 300 * USDT + 1, env.pm_id)], user.wallet,
            "InsufficientAvailableBalance")
    refused(env, [env.program.close_position(user.key, 200 * USDT + 1, env.pm_id)], user.wallet,
            "InsufficientLockedBalance")
    other = env.user()
    refused(env, [env.program.settle(user.key, other.key, 200 * USDT + 1, env.pm_id)], user.wallet,
            "InsufficientLockedBalance")


def test_u64_overflow_of_lifetime_deposits(env: VaultEnv) -> None:
    user = env.user(0)
    env.chain.mint_to(user.wallet, env.mint, user.token_account, env.mint_authority, 2**64 - 1)
    env.deposit(user, 2**63)
    env.ok([env.program.withdraw(user.key, user.token_account, 2**63)], user.wallet)
    refused(env, [env.program.deposit(user.key, user.token_account, 2**63)], user.wallet, "Overflow")
    env.deposit(user, 2**63 - 1)  # exactly u64::MAX deposited in total


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


def test_unauthorized_program_cpi_is_refused(funded: tuple[VaultEnv, User]) -> None:
    """The same position_manager binary at an id not in the authority list."""
    env, user = funded
    refused(env, [env.program.open_position(user.key, 1 * USDT, env.rogue_pm_id)], user.wallet, "UnauthorizedCaller")
    other = env.user()
    env.ok([env.program.open_position(user.key, 10 * USDT, env.pm_id)], user.wallet)
    refused(env, [env.program.settle(user.key, other.key, 1 * USDT, env.rogue_pm_id)], user.wallet,
            "UnauthorizedCaller")


def test_removed_program_loses_access(funded: tuple[VaultEnv, User]) -> None:
    env, user = funded
    env.ok([env.program.remove_authorized_program(env.admin.pubkey(), env.pm_id)], env.admin)
    refused(env, [env.program.open_position(user.key, 1 * USDT, env.pm_id)], user.wallet, "UnauthorizedCaller")


def test_settle_into_the_same_vault(funded: tuple[VaultEnv, User]) -> None:
    env, user = funded
    env.ok([env.program.open_position(user.key, 10 * USDT, env.pm_id)], user.wallet)
    refused(env, [env.program.settle(user.key, user.key, 1 * USDT, env.pm_id)], user.wallet, "SameVault")


def test_position_manager_requires_the_vault_owner(funded: tuple[VaultEnv, User]) -> None:
    env, victim = funded
    attacker = env.user()
    ix = env.program.open_position(victim.key, 1 * USDT, env.pm_id)
    ix = Instruction(ix.program_id, ix.data, [AccountMeta(attacker.key, True, False), *ix.accounts[1:]])
    result = env.fails([ix], attacker.wallet)
    assert error_code(result) == 6003  # position_manager: NotVaultOwner


# --- pause ----------------------------------------------------------------------------


def test_pause_refuses_everything_but_deposits(funded: tuple[VaultEnv, User]) -> None:
    env, user = funded
    other = env.user()
    env.ok([env.program.open_position(user.key, 50 * USDT, env.pm_id)], user.wallet)
    env.ok([env.program.set_paused(env.admin.pubkey(), Pause.ALL)], env.admin)
    env.deposit(user, 1 * USDT)  # deposits stay open
    for ix in (env.program.withdraw(user.key, user.token_account, 1 * USDT),
               env.program.open_position(user.key, 1 * USDT, env.pm_id),
               env.program.close_position(user.key, 1 * USDT, env.pm_id),
               env.program.settle(user.key, other.key, 1 * USDT, env.pm_id),
               env.program.close_vault(other.key)):
        refused(env, [ix], user.wallet if ix.accounts[0].pubkey == user.key else other.wallet, "OperationPaused")
    newcomer = env.user(with_vault=False)
    refused(env, [env.program.initialize_vault(newcomer.key)], newcomer.wallet, "OperationPaused")
    env.ok([env.program.set_paused(env.admin.pubkey(), 0)], env.admin)
    env.ok([env.program.withdraw(user.key, user.token_account, 1 * USDT)], user.wallet)


def test_only_the_admin_pauses(funded: tuple[VaultEnv, User]) -> None:
    """PEER HOLE: pause controls belong to the exchange's authority, not to vault owners."""
    env, user = funded
    refused(env, [env.program.set_paused(user.key, Pause.ALL)], user.wallet, "Unauthorized")
    refused(env, [env.program.set_paused(env.admin.pubkey(), 0x80)], env.admin, "InvalidInstruction")


# --- close ----------------------------------------------------------------------------


def test_close_with_funds_or_locked_collateral(funded: tuple[VaultEnv, User]) -> None:
    env, user = funded
    refused(env, [env.program.close_vault(user.key)], user.wallet, "VaultNotEmpty")
    env.ok([env.program.open_position(user.key, 500 * USDT, env.pm_id)], user.wallet)
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
        env.ok([env.program.add_authorized_program(env.admin.pubkey(), program_id)], env.admin)
    assert len(env.authority().programs) == 16
    extra = Pubkey.new_unique()
    env.chain.svm.add_program(extra, hello)
    refused(env, [env.program.add_authorized_program(env.admin.pubkey(), extra)], env.admin, "AuthorityListFull")


def test_missing_accounts(funded: tuple[VaultEnv, User]) -> None:
    env, user = funded
    ix = env.program.withdraw(user.key, user.token_account, 1)
    refused(env, [Instruction(ix.program_id, ix.data, ix.accounts[:3])], user.wallet, "MissingAccounts")
