"""collateral_vault: every instruction's success path in the real SVM, with balances,
token movements and the events decoded from the logs through the IDL."""

from __future__ import annotations

import pytest
from solders.pubkey import Pubkey
from solders.system_program import TransferParams
from solders.system_program import transfer as sol_transfer

from localnet.svm import TOKEN_IMPLEMENTATIONS
from localnet.vault_env import USDT, VaultEnv
from vault_client import spl_token
from vault_client.vault_program import Pause, ProgramLock, SettlePair, caller_authority


@pytest.fixture(params=TOKEN_IMPLEMENTATIONS)
def env(request: pytest.FixtureRequest) -> VaultEnv:
    """Every success path runs against both SPL Token implementations."""
    return VaultEnv(request.param)


def test_authority_is_initialized_by_the_upgrade_authority(env: VaultEnv) -> None:
    authority = env.authority()
    assert authority.admin == env.admin.pubkey()
    assert authority.usdt_mint == env.mint
    assert authority.programs == [env.pm_id]
    assert len(env.chain.account(env.program.authority).data) == 1928
    assert authority.caller_authorities[0] == caller_authority(env.pm_id)[0]
    assert authority.pause_flags == 0


def test_initialize_vault_creates_pda_and_its_token_account(env: VaultEnv) -> None:
    user = env.user(with_vault=False)
    result = env.ok([env.program.initialize_vault(user.key)], user.wallet)
    vault = env.vault(user.key)
    assert vault.owner == user.key
    assert vault.token_account == env.program.vault_token(user.key)
    assert (vault.total_balance, vault.locked_balance, vault.available_balance) == (0, 0, 0)
    token = spl_token.TokenAccount.decode(bytes(env.chain.account(vault.token_account).data))
    assert token.owner == env.program.vault(user.key) and token.mint == env.mint and token.amount == 0
    [event] = env.events(result)
    assert event.name == "VaultInitialized"
    assert event.fields["owner"] == user.key and event.fields["vault"] == env.program.vault(user.key)


def test_deposit_and_withdraw(env: VaultEnv) -> None:
    user = env.user(1_000 * USDT)
    result = env.deposit(user, 400 * USDT)
    [event] = env.events(result)
    assert event.name == "Deposited"
    assert event.fields["amount"] == 400 * USDT and event.fields["total_balance"] == 400 * USDT
    assert env.chain.token_amount(user.token_account) == 600 * USDT
    assert env.vault_tokens(user.key) == 400 * USDT

    result = env.ok([env.program.withdraw(user.key, user.token_account, 150 * USDT)], user.wallet)
    [event] = env.events(result)
    assert event.name == "Withdrawn"
    assert event.fields["amount"] == 150 * USDT and event.fields["available_balance"] == 250 * USDT
    vault = env.vault(user.key)
    assert (vault.total_balance, vault.available_balance, vault.locked_balance) == (250 * USDT,) * 2 + (0,)
    assert (vault.total_deposited, vault.total_withdrawn) == (400 * USDT, 150 * USDT)
    assert env.chain.token_amount(user.token_account) == 750 * USDT
    assert env.vault_tokens(user.key) == 250 * USDT


def test_lock_release_and_settle_through_position_manager(env: VaultEnv) -> None:
    alice, bob = env.trader(500 * USDT), env.trader(100 * USDT)

    result = env.lock(alice, 300 * USDT)
    [event] = env.events(result)
    assert event.name == "CollateralLocked"
    assert event.fields["caller_program"] == env.pm_id
    assert (event.fields["locked_balance"], event.fields["available_balance"]) == (300 * USDT, 200 * USDT)
    assert event.fields["program_locked"] == 300 * USDT
    assert env.vault(alice.key).locks == (ProgramLock(env.pm_id, 300 * USDT),)

    pair = SettlePair(alice.key, bob.key, 120 * USDT, env.next_op(alice.key))
    result = env.operate(env.exchange.settle(env.operator.pubkey(), [pair]))
    [event] = env.events(result)
    assert event.name == "CollateralTransferred"
    assert event.fields["from_owner"] == alice.key and event.fields["to_owner"] == bob.key
    assert event.fields["from_locked_balance"] == 180 * USDT and event.fields["to_available_balance"] == 220 * USDT
    assert event.fields["from_program_locked"] == 180 * USDT
    assert env.vault_tokens(alice.key) == 380 * USDT and env.vault_tokens(bob.key) == 220 * USDT

    result = env.release(alice, 180 * USDT)
    [event] = env.events(result)
    assert event.name == "CollateralUnlocked" and event.fields["program_locked"] == 0
    alice_vault = env.vault(alice.key)
    assert (alice_vault.total_balance, alice_vault.locked_balance, alice_vault.available_balance) == (
        380 * USDT, 0, 380 * USDT)
    assert alice_vault.locks == ()  # the emptied slot is free again


def test_every_vault_event_carries_the_vaults_next_sequence_number(env: VaultEnv) -> None:
    """VaultInitialized is 1; each later event of the vault takes the next number, and the
    vault records the last one; a transfer is an event of both vaults (from_seq, to_seq)."""
    alice, bob = env.user(with_vault=False), env.user()
    result = env.ok([env.program.initialize_vault(alice.key)], alice.wallet)
    assert [e.fields["seq"] for e in env.events(result)] == [1]
    env.ok([spl_token.transfer(bob.token_account, env.program.vault_token(alice.key), bob.key, 5)], bob.wallet)
    result = env.deposit(alice, 100 * USDT)
    assert [(e.name, e.fields["seq"]) for e in env.events(result)] == [("SurplusAbsorbed", 2), ("Deposited", 3)]
    env.ok([env.exchange.grant(alice.key, 50 * USDT, env.now() + 100)], alice.wallet)
    assert env.events(env.lock(alice, 10 * USDT))[0].fields["seq"] == 4
    bob_seq = env.vault(bob.key).event_seq
    pair = SettlePair(alice.key, bob.key, 1 * USDT, env.next_op(alice.key))
    [event] = env.events(env.operate(env.exchange.settle(env.operator.pubkey(), [pair])))
    assert (event.fields["from_seq"], event.fields["to_seq"]) == (5, bob_seq + 1)
    assert env.vault(alice.key).event_seq == 5 and env.vault(bob.key).event_seq == bob_seq + 1


def test_admin_events_carry_the_authoritys_sequence_number(env: VaultEnv) -> None:
    before = env.authority().event_seq
    # AuthorityInitialized, then ChangeQueued, ChangeExecuted, ProgramAuthorized (position_manager) at genesis
    assert before == 4
    result = env.ok([env.program.set_paused(env.admin.pubkey(), 0)], env.admin)
    assert env.events(result)[0].fields["seq"] == 5 == env.authority().event_seq


def test_close_vault_returns_rent_and_token_account(env: VaultEnv) -> None:
    user = env.user()
    env.deposit(user, 10 * USDT)
    env.ok([env.program.withdraw(user.key, user.token_account, 10 * USDT)], user.wallet)
    vault_key, token_key = env.program.vault(user.key), env.program.vault_token(user.key)
    before = env.chain.lamports(user.key)
    rent = env.chain.lamports(vault_key) + env.chain.lamports(token_key)
    result = env.ok([env.program.close_vault(user.key)], user.wallet)
    [event] = env.events(result)
    assert event.name == "VaultClosed" and event.fields["swept"] == 0
    assert env.chain.lamports(vault_key) == 0 and env.chain.lamports(token_key) == 0
    assert env.chain.lamports(user.key) == before + rent - 5000
    # the owner can open a new vault at the same address afterwards
    env.ok([env.program.initialize_vault(user.key)], user.wallet)
    assert env.vault(user.key).total_balance == 0


def test_admin_controls(env: VaultEnv) -> None:
    admin = env.admin.pubkey()
    result = env.ok([env.program.set_paused(admin, Pause.WITHDRAW | Pause.LOCK)], env.admin)
    assert env.authority().pause_flags == 3
    assert env.events(result)[0].name == "PauseFlagsSet"

    result = env.authorize_now(env.rogue_pm_id)  # queued and executed (delay 0 here)
    assert env.authority().programs == [env.pm_id, env.rogue_pm_id]
    assert [e.name for e in env.events(result)] == ["ChangeQueued", "ChangeExecuted", "ProgramAuthorized"]
    assert env.events(result)[2].fields["caller_authority"] == caller_authority(env.rogue_pm_id)[0]
    env.ok([env.program.remove_authorized_program(admin, env.pm_id)], env.admin)
    assert env.authority().programs == [env.rogue_pm_id]

    new_admin = env.chain.wallet()
    env.ok([env.program.transfer_admin(admin, new_admin.pubkey())], env.admin)
    assert env.authority().pending_admin == new_admin.pubkey()
    assert env.authority().admin == admin  # not yet
    result = env.ok([env.program.accept_admin(new_admin.pubkey())], new_admin)
    assert [e.name for e in env.events(result)] == ["ChangeExecuted", "AdminTransferAccepted"]
    authority = env.authority()
    assert authority.admin == new_admin.pubkey() and authority.pending_admin == Pubkey.default()


def test_tokens_sent_directly_are_absorbed_not_a_lockout(env: VaultEnv) -> None:
    """Someone sends tokens straight to a vault's token account: the next operation credits
    them to the owner (SurplusAbsorbed) instead of failing the balance check forever."""
    user, donor = env.user(), env.user(with_vault=False)
    env.deposit(user, 50 * USDT)
    env.ok([spl_token.transfer(donor.token_account, env.program.vault_token(user.key), donor.key, 7 * USDT)],
           donor.wallet)
    result = env.deposit(user, 1 * USDT)
    assert [e.name for e in env.events(result)] == ["SurplusAbsorbed", "Deposited"]
    vault = env.vault(user.key)
    assert vault.total_balance == 58 * USDT == env.vault_tokens(user.key)
    assert vault.available_balance == 58 * USDT


def test_vault_pda_prefunded_by_a_griefer_still_initializes(env: VaultEnv) -> None:
    user, griefer = env.user(with_vault=False), env.chain.wallet()
    env.ok([sol_transfer(TransferParams(from_pubkey=griefer.pubkey(), to_pubkey=env.program.vault(user.key),
                                        lamports=1_000_000))], griefer)
    env.ok([env.program.initialize_vault(user.key)], user.wallet)
    assert env.vault(user.key).owner == user.key


def test_exchange_is_initialized_at_genesis(env: VaultEnv) -> None:
    config = env.config()
    assert (config.admin, config.operator) == (env.admin.pubkey(), env.operator.pubkey())
    assert config.fee_vault == env.program.vault(env.fee_owner)
    assert config.insurance_vault == env.program.vault(env.insurance_owner)
    assert (config.exit_delay_slots, config.config_delay_slots) == (env.exit_delay_slots, env.config_delay_slots)
    assert config.caller_bump == caller_authority(env.pm_id)[1]
    assert all(p.eta_slot == 0 for p in config.pending)


def test_full_u64_deposit(env: VaultEnv) -> None:
    user = env.user(0)
    env.chain.mint_to(user.wallet, env.mint, user.token_account, env.mint_authority, 2**64 - 1)
    env.deposit(user, 2**64 - 1)
    vault = env.vault(user.key)
    assert vault.total_balance == vault.available_balance == vault.total_deposited == 2**64 - 1
