"""position_manager, the reference exchange program: the trader grants once, the operator
alone locks, releases, settles and liquidates inside the grant, and the trader can always
exit. Each refusal names its error (and the program that raised it) and changes nothing;
each success checks balances, the grant and the events."""

from __future__ import annotations

import pytest
from solders.account import Account
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.sysvar import INSTRUCTIONS

from localnet.genesis import program_keypair
from localnet.svm import program_path
from localnet.vault_env import DAY, USDT, User, VaultEnv, error_code
from vault_client.vault_program import (
    IDL,
    PM_IDL,
    ConfigChange,
    ExchangeProgram,
    Pause,
    SettlePair,
    caller_authority,
)


@pytest.fixture
def env() -> VaultEnv:
    return VaultEnv()


@pytest.fixture
def alice(env: VaultEnv) -> User:
    """500 USDT deposited, 400 granted."""
    return env.trader(500 * USDT, 400 * USDT)


@pytest.fixture
def bob(env: VaultEnv) -> User:
    return env.trader(500 * USDT, 400 * USDT)


def lock(env: VaultEnv, trader: User, amount: int, op_id: int | None = None) -> Instruction:
    return env.exchange.lock(env.operator.pubkey(), trader.key, amount,
                             env.next_op(trader.key) if op_id is None else op_id)


def release(env: VaultEnv, trader: User, amount: int) -> Instruction:
    return env.exchange.release(env.operator.pubkey(), trader.key, amount, env.next_op(trader.key))


def settle(env: VaultEnv, *pairs: tuple[User, Pubkey, int]) -> Instruction:
    return env.exchange.settle(env.operator.pubkey(), [
        SettlePair(payer.key, receiver, amount, env.next_op(payer.key)) for payer, receiver, amount in pairs])


def liquidate(env: VaultEnv, trader: User, amount: int) -> Instruction:
    return env.exchange.liquidate(env.operator.pubkey(), trader.key, env.insurance_owner, amount,
                                  env.next_op(trader.key))


def refused(env: VaultEnv, ix: Instruction, payer: Keypair, name: str, program: str = "exchange") -> None:
    env.refused([ix], payer, name, program=program)


# --- the grant bounds the operator ---------------------------------------------------


def test_operator_above_the_grant_is_refused(env: VaultEnv, alice: User) -> None:
    env.lock(alice, 300 * USDT)
    refused(env, lock(env, alice, 100 * USDT + 1), env.operator, "GrantExceeded")
    env.lock(alice, 100 * USDT)  # exactly the grant
    refused(env, lock(env, alice, 1), env.operator, "GrantExceeded")


def test_lowering_the_grant_stops_new_locks_and_keeps_what_is_held(env: VaultEnv, alice: User) -> None:
    env.lock(alice, 300 * USDT)
    env.ok([env.exchange.grant(alice.key, 100 * USDT, env.now() + DAY)], alice.wallet)
    refused(env, lock(env, alice, 1), env.operator, "GrantExceeded")
    assert env.vault(alice.key).locked_by(env.pm_id) == 300 * USDT


def test_operator_after_expiry_is_refused(env: VaultEnv, alice: User) -> None:
    env.warp_seconds(DAY)
    refused(env, lock(env, alice, 1 * USDT), env.operator, "GrantExpired")


def test_operator_after_revocation_is_refused_and_held_collateral_stays(env: VaultEnv, alice: User, bob: User) -> None:
    env.lock(alice, 100 * USDT)
    result = env.ok([env.exchange.revoke(alice.key)], alice.wallet)
    assert [e.name for e in env.pm_events(result)] == ["GrantRevoked"] and env.grant(alice.key).revoked
    refused(env, lock(env, alice, 1 * USDT), env.operator, "GrantRevoked")
    assert env.vault(alice.key).locked_by(env.pm_id) == 100 * USDT
    env.operate(settle(env, (alice, bob.key, 10 * USDT)))  # open positions still settle
    env.operate(release(env, alice, 90 * USDT))
    env.ok([env.exchange.grant(alice.key, 400 * USDT, env.now() + DAY)], alice.wallet)  # un-revoke
    env.lock(alice, 1 * USDT)


def test_replayed_or_out_of_order_operation_ids_are_refused(env: VaultEnv, alice: User, bob: User) -> None:
    env.operate(lock(env, alice, 10 * USDT, op_id=5))
    refused(env, lock(env, alice, 10 * USDT, op_id=5), env.operator, "OperationReplayed")
    refused(env, lock(env, alice, 10 * USDT, op_id=4), env.operator, "OperationReplayed")
    refused(env, env.exchange.release(env.operator.pubkey(), alice.key, 1, 5), env.operator, "OperationReplayed")
    refused(env, env.exchange.settle(env.operator.pubkey(), [SettlePair(alice.key, bob.key, 1, 5)]), env.operator,
            "OperationReplayed")
    env.operate(lock(env, alice, 10 * USDT, op_id=9))  # gaps are fine: ids only increase
    assert env.grant(alice.key).last_op_id == 9
    assert env.grant(bob.key).last_op_id == 0  # per trader


def test_the_same_operation_re_signed_with_a_fresh_blockhash_applies_once(env: VaultEnv, alice: User) -> None:
    ix = lock(env, alice, 10 * USDT)
    env.operate(ix)
    refused(env, ix, env.operator, "OperationReplayed")  # Chain.send uses a new blockhash each time
    assert env.vault(alice.key).locked_balance == 10 * USDT


# --- only the operator ----------------------------------------------------------------


def test_the_non_operator_signing_an_operator_instruction_is_refused(env: VaultEnv, alice: User, bob: User) -> None:
    env.lock(alice, 100 * USDT)
    for signer in (alice.wallet, env.admin, env.chain.wallet()):
        ex = env.exchange
        for ix in (ex.lock(signer.pubkey(), alice.key, 1, 99), ex.release(signer.pubkey(), alice.key, 1, 99),
                   ex.settle(signer.pubkey(), [SettlePair(alice.key, bob.key, 1, 99)]),
                   ex.liquidate(signer.pubkey(), alice.key, env.insurance_owner, 1, 99)):
            refused(env, ix, signer, "NotOperator")
    # the operator's key named but not signing
    ix = lock(env, alice, 1)
    unsigned = Instruction(ix.program_id, ix.data, [AccountMeta(env.operator.pubkey(), False, False),
                                                    *ix.accounts[1:]])
    refused(env, unsigned, alice.wallet, "NotOperator")


def test_the_trader_cannot_unlock_by_himself(env: VaultEnv, alice: User) -> None:
    env.lock(alice, 100 * USDT)
    # through position_manager: release is the operator's
    refused(env, env.exchange.release(alice.key, alice.key, 100 * USDT, 99), alice.wallet, "NotOperator")
    # through the vault directly, naming position_manager's caller PDA (which only it can sign for)
    direct = env.program.unlock_collateral(alice.key, caller_authority(env.pm_id)[0], 100 * USDT, owner_signs=True)
    direct = Instruction(direct.program_id, direct.data, [*direct.accounts[:2],
                                                          AccountMeta(direct.accounts[2].pubkey, False, False),
                                                          direct.accounts[3]])
    refused(env, direct, alice.wallet, "UnauthorizedCaller", program="vault")
    # the exit, before asking for it and before its delay
    refused(env, env.exchange.exit(alice.key), alice.wallet, "ExitNotRequested")
    env.ok([env.exchange.request_exit(alice.key)], alice.wallet)
    refused(env, env.exchange.exit(alice.key), alice.wallet, "ExitNotDue")
    # nor withdraw what is locked
    refused(env, env.program.withdraw(alice.key, alice.token_account, 400 * USDT + 1), alice.wallet,
            "InsufficientAvailableBalance", program="vault")
    assert env.vault(alice.key).locked_balance == 100 * USDT


def test_operator_instructions_must_be_top_level_and_alone(env: VaultEnv, alice: User) -> None:
    hello = env.chain.deploy("hello")
    ix = lock(env, alice, 1 * USDT)
    forwarded = Instruction(hello, bytes([5]) + bytes(ix.data), [AccountMeta(ix.program_id, False, False),
                                                                 *ix.accounts])
    env.refused([forwarded], env.operator, "NotTopLevel", program="exchange")
    env.refused([lock(env, alice, 1 * USDT), release(env, alice, 1 * USDT)], env.operator,
                "OperatorInstructionNotAlone", program="exchange")
    # a trader's own instruction beside it is not an operator instruction
    env.ok([env.exchange.grant(alice.key, 400 * USDT, env.now() + DAY), lock(env, alice, 1 * USDT)],
           env.operator, alice.wallet)


def test_programs_sysvar_and_pdas_are_checked_by_address(env: VaultEnv, alice: User) -> None:
    """A fake Instructions sysvar (which could claim the instruction is alone), another vault
    program (which would receive our PDA's signature), another VaultAuthority or caller PDA:
    each refused by position_manager before any CPI."""
    env.lock(alice, 10 * USDT)
    ix = lock(env, alice, 1 * USDT)
    fake_sysvar = Pubkey.new_unique()
    env.chain.svm.set_account(fake_sysvar, Account(1_000_000, bytes(64), Pubkey.default(), False, 0))
    replacements = {INSTRUCTIONS: fake_sysvar, env.vault_id: env.rogue_pm_id,
                    env.program.authority: env.exchange.config,
                    caller_authority(env.pm_id)[0]: caller_authority(env.rogue_pm_id)[0]}
    for original, replacement in replacements.items():
        metas = [AccountMeta(replacement, m.is_signer, m.is_writable) if m.pubkey == original else m
                 for m in ix.accounts]
        refused(env, Instruction(ix.program_id, ix.data, metas), env.operator, "InvalidAccount")


def test_the_grant_must_be_the_vault_owners(env: VaultEnv, alice: User, bob: User) -> None:
    ix = lock(env, alice, 1 * USDT)
    swapped = [AccountMeta(env.program.vault(bob.key), False, True) if m.pubkey == env.program.vault(alice.key) else m
               for m in ix.accounts]
    refused(env, Instruction(ix.program_id, ix.data, swapped), env.operator, "GrantMismatch")
    stolen = env.exchange.revoke(alice.key)
    refused(env, Instruction(stolen.program_id, stolen.data, [AccountMeta(alice.key, False, False),
                                                              stolen.accounts[1]]), bob.wallet, "MissingSigner")
    stolen = Instruction(stolen.program_id, stolen.data, [AccountMeta(bob.key, True, False), stolen.accounts[1]])
    refused(env, stolen, bob.wallet, "GrantMismatch")


def test_a_grant_must_expire_in_the_future(env: VaultEnv) -> None:
    user = env.user()
    refused(env, env.exchange.grant(user.key, 1, env.now()), user.wallet, "InvalidExpiry")


# --- settle -------------------------------------------------------------------------


def test_settle_more_than_locked_is_refused(env: VaultEnv, alice: User, bob: User) -> None:
    env.lock(alice, 100 * USDT)
    refused(env, settle(env, (alice, bob.key, 100 * USDT + 1)), env.operator, "InsufficientLockedBalance",
            program="vault")
    # the whole batch or nothing: the first pair would have been fine
    refused(env, settle(env, (alice, bob.key, 50 * USDT), (alice, bob.key, 50 * USDT + 1)), env.operator,
            "InsufficientLockedBalance", program="vault")


def test_settle_to_an_account_that_is_not_a_vault_is_refused(env: VaultEnv, alice: User, bob: User) -> None:
    env.lock(alice, 100 * USDT)
    ix = settle(env, (alice, bob.key, 1 * USDT))
    # the receiver named as a plain token account (bob's wallet account) and its token account
    metas = list(ix.accounts)
    metas[-2] = AccountMeta(bob.token_account, False, True)
    metas[-1] = AccountMeta(bob.token_account, False, True)
    refused(env, Instruction(ix.program_id, ix.data, metas), env.operator, "InvalidVault")
    # a look-alike vault (same data) owned by another program
    fake = Pubkey.new_unique()
    real = env.chain.account(env.program.vault(bob.key))
    env.chain.svm.set_account(fake, Account(real.lamports, bytes(real.data), env.rogue_pm_id, False, 0))
    metas = list(settle(env, (alice, bob.key, 1 * USDT)).accounts)
    metas[-2] = AccountMeta(fake, False, True)
    refused(env, Instruction(ix.program_id, ix.data, metas), env.operator, "InvalidVault")
    # a real vault with someone else's token account: the vault program refuses
    metas = list(settle(env, (alice, bob.key, 1 * USDT)).accounts)
    metas[-1] = AccountMeta(bob.token_account, False, True)
    refused(env, Instruction(ix.program_id, ix.data, metas), env.operator, "InvalidTokenAccount", program="vault")


def test_batch_settlement_with_a_fee_and_the_same_payer_twice(env: VaultEnv, alice: User, bob: User) -> None:
    carol = env.trader()
    env.lock(alice, 200 * USDT)
    env.lock(bob, 100 * USDT)
    result = env.operate(settle(env, (alice, bob.key, 50 * USDT), (alice, env.fee_owner, 2 * USDT),
                                (bob, carol.key, 30 * USDT), (bob, env.fee_owner, 1 * USDT)))
    assert [e.name for e in env.events(result)] == ["CollateralTransferred"] * 4
    actions = [e.fields for e in env.pm_events(result)]
    assert [(a["action"], a["amount"], a["op_id"]) for a in actions] == [
        (2, 50 * USDT, 2), (2, 2 * USDT, 3), (2, 30 * USDT, 2), (2, 1 * USDT, 3)]
    assert actions[1]["counterparty"] == env.fee_owner and actions[1]["locked"] == 148 * USDT
    assert env.vault(alice.key).locked_by(env.pm_id) == 148 * USDT
    assert env.vault(bob.key).available_balance == 400 * USDT + 50 * USDT
    assert env.vault(carol.key).available_balance == 530 * USDT
    assert env.vault(env.fee_owner).available_balance == env.vault_tokens(env.fee_owner) == 3 * USDT
    assert env.grant(alice.key).last_op_id == 3


def test_settle_batch_shape_is_checked(env: VaultEnv, alice: User, bob: User) -> None:
    env.lock(alice, 100 * USDT)
    ix = settle(env, (alice, bob.key, 1 * USDT))
    refused(env, Instruction(ix.program_id, ix.data, list(ix.accounts[:-1])), env.operator, "InvalidSettleBatch")
    empty = env.exchange.settle(env.operator.pubkey(), [])
    refused(env, empty, env.operator, "InvalidSettleBatch")
    too_many = [SettlePair(alice.key, bob.key, 1, 100 + i) for i in range(7)]
    data = env.exchange.settle(env.operator.pubkey(), too_many).data
    refused(env, Instruction(ix.program_id, data, list(ix.accounts)), env.operator, "InvalidInstruction")


# --- liquidate ---------------------------------------------------------------------


def test_liquidation_moves_held_collateral_to_the_insurance_fund(env: VaultEnv, alice: User) -> None:
    env.lock(alice, 300 * USDT)
    result = env.operate(liquidate(env, alice, 300 * USDT))
    [transfer] = env.events(result)
    assert transfer.fields["to_owner"] == env.insurance_owner and transfer.fields["amount"] == 300 * USDT
    [action] = env.pm_events(result)
    assert (action.fields["action"], action.fields["counterparty"], action.fields["locked"]) == (
        3, env.insurance_owner, 0)
    vault = env.vault(alice.key)
    assert (vault.total_balance, vault.locked_balance, vault.available_balance) == (200 * USDT, 0, 200 * USDT)
    assert env.vault(env.insurance_owner).available_balance == 300 * USDT == env.vault_tokens(env.insurance_owner)


def test_liquidation_goes_only_to_the_insurance_vault(env: VaultEnv, alice: User, bob: User) -> None:
    env.lock(alice, 100 * USDT)
    ix = env.exchange.liquidate(env.operator.pubkey(), alice.key, bob.key, 10 * USDT, env.next_op(alice.key))
    refused(env, ix, env.operator, "InvalidVault")
    refused(env, liquidate(env, alice, 100 * USDT + 1), env.operator, "InsufficientLockedBalance", program="vault")


# --- the exit ----------------------------------------------------------------------


def test_exit_after_the_delay_with_the_operator_absent(env: VaultEnv, alice: User) -> None:
    env.lock(alice, 300 * USDT)
    result = env.ok([env.exchange.request_exit(alice.key)], alice.wallet)
    [requested] = env.pm_events(result)
    assert requested.fields["deadline_slot"] == requested.fields["requested_slot"] + env.exit_delay_slots
    refused(env, lock(env, alice, 1 * USDT), env.operator, "ExitPending")
    refused(env, env.exchange.request_exit(alice.key), alice.wallet, "ExitAlreadyRequested")
    env.warp_slots(env.exit_delay_slots - 1)
    refused(env, env.exchange.exit(alice.key), alice.wallet, "ExitNotDue")
    env.warp_slots(1)
    result = env.ok([env.exchange.exit(alice.key),
                     env.program.withdraw(alice.key, alice.token_account, 500 * USDT)], alice.wallet)
    [served] = env.pm_events(result)
    assert served.name == "ExitServed" and served.fields["by_operator"] is False
    assert served.fields["released"] == 300 * USDT
    assert env.vault(alice.key).total_balance == 0
    assert env.chain.token_amount(alice.token_account) == 1_000 * USDT
    grant = env.grant(alice.key)
    assert grant.exit_requested_slot == 0 and grant.revoked


def test_after_the_deadline_the_operator_may_only_release(env: VaultEnv, alice: User, bob: User) -> None:
    env.lock(alice, 300 * USDT)
    env.ok([env.exchange.request_exit(alice.key)], alice.wallet)
    env.operate(settle(env, (alice, bob.key, 10 * USDT)))  # before the deadline: fine
    env.warp_slots(env.exit_delay_slots)
    refused(env, settle(env, (alice, bob.key, 10 * USDT)), env.operator, "ExitDue")
    refused(env, liquidate(env, alice, 10 * USDT), env.operator, "ExitDue")
    env.operate(release(env, alice, 90 * USDT))
    result = env.ok([env.exchange.exit(alice.key)], alice.wallet)
    assert env.pm_events(result)[0].fields["released"] == 200 * USDT


def test_an_exit_deadline_is_fixed_when_requested(env: VaultEnv, alice: User, bob: User) -> None:
    """Before: the deadline was computed from the exchange's current exit delay, so an admin
    who raised the delay (after its configuration delay) moved every pending exit's deadline
    further away. Now the deadline is stored in the grant at the request."""
    admin, ex = env.admin, env.exchange
    env.lock(alice, 300 * USDT)
    env.ok([ex.propose_config_change(admin.pubkey(), ConfigChange.EXIT_DELAY, value=10 * env.exit_delay_slots)],
           admin)
    env.ok([ex.request_exit(alice.key)], alice.wallet)
    deadline = env.grant(alice.key).exit_deadline_slot
    assert deadline == env.grant(alice.key).exit_requested_slot + env.exit_delay_slots
    env.warp_slots(env.config_delay_slots)
    env.ok([ex.apply_config_change(ConfigChange.EXIT_DELAY)], admin)
    assert env.config().exit_delay_slots == 10 * env.exit_delay_slots
    assert env.grant(alice.key).exit_deadline_slot == deadline
    env.warp_slots(deadline - env.slot())
    refused(env, settle(env, (alice, bob.key, 10 * USDT)), env.operator, "ExitDue")
    result = env.ok([env.exchange.exit(alice.key)], alice.wallet)
    assert env.pm_events(result)[0].fields["released"] == 300 * USDT
    assert env.grant(alice.key).exit_deadline_slot == 0


def test_exit_while_unlocks_are_paused(env: VaultEnv, alice: User) -> None:
    env.lock(alice, 300 * USDT)
    env.ok([env.program.set_paused(env.admin.pubkey(), Pause.UNLOCK | Pause.TRANSFER)], env.admin)
    env.ok([env.exchange.request_exit(alice.key)], alice.wallet)
    env.warp_slots(env.exit_delay_slots)
    refused(env, release(env, alice, 1 * USDT), env.operator, "OperationPaused", program="vault")
    env.ok([env.exchange.exit(alice.key)], alice.wallet)
    assert env.vault(alice.key).available_balance == 500 * USDT


def test_the_operator_serves_an_exit_by_releasing_and_settling_everything(env: VaultEnv, alice: User,
                                                                           bob: User) -> None:
    env.lock(alice, 300 * USDT)
    env.ok([env.exchange.request_exit(alice.key)], alice.wallet)
    requested = env.grant(alice.key).exit_requested_slot
    result = env.operate(release(env, alice, 100 * USDT))  # partial: still pending, same deadline
    assert [e.name for e in env.pm_events(result)] == ["OperatorAction"]
    assert env.grant(alice.key).exit_requested_slot == requested
    result = env.operate(settle(env, (alice, bob.key, 200 * USDT)))
    assert [e.name for e in env.pm_events(result)] == ["OperatorAction", "ExitServed"]
    served = env.pm_events(result)[1].fields
    assert served["by_operator"] is True
    assert env.grant(alice.key).exit_requested_slot == 0
    env.warp_slots(env.exit_delay_slots)
    refused(env, env.exchange.exit(alice.key), alice.wallet, "ExitNotRequested")
    env.ok([env.exchange.grant(alice.key, 400 * USDT, env.now() + DAY)], alice.wallet)
    env.lock(alice, 1 * USDT)  # trading again after a new grant


def test_a_new_grant_withdraws_the_exit_request(env: VaultEnv, alice: User) -> None:
    env.ok([env.exchange.request_exit(alice.key)], alice.wallet)
    env.ok([env.exchange.grant(alice.key, 400 * USDT, env.now() + DAY)], alice.wallet)
    assert env.grant(alice.key).exit_requested_slot == 0
    env.lock(alice, 1 * USDT)


# --- de-authorization ------------------------------------------------------------------


def test_orphaned_lock_released_by_the_owner_after_de_authorization(env: VaultEnv, alice: User) -> None:
    env.lock(alice, 300 * USDT)
    env.refused([env.program.release_orphaned_lock(alice.key, env.pm_id)], alice.wallet, "ProgramStillAuthorized",
                program="vault")
    env.ok([env.program.remove_authorized_program(env.admin.pubkey(), env.pm_id)], env.admin)
    stranger = env.user()
    thief = env.program.release_orphaned_lock(alice.key, env.pm_id)
    thief = Instruction(thief.program_id, thief.data, [AccountMeta(stranger.key, True, False), *thief.accounts[1:]])
    env.refused([thief], stranger.wallet, "Unauthorized", program="vault")
    result = env.ok([env.program.release_orphaned_lock(alice.key, env.pm_id)], alice.wallet)
    [event] = env.events(result)
    assert event.name == "OrphanedLockReleased" and event.fields["amount"] == 300 * USDT
    vault = env.vault(alice.key)
    assert (vault.locked_balance, vault.available_balance, vault.locks) == (0, 500 * USDT, ())
    env.refused([env.program.release_orphaned_lock(alice.key, env.pm_id)], alice.wallet, "NoLockForProgram",
                program="vault")


# --- configuration ------------------------------------------------------------------


def test_operator_change_waits_out_the_configuration_delay(env: VaultEnv, alice: User) -> None:
    new_operator = env.chain.wallet()
    admin = env.admin
    result = env.ok([env.exchange.propose_config_change(admin.pubkey(), ConfigChange.OPERATOR,
                                                        key=new_operator.pubkey())], admin)
    [proposed] = env.pm_events(result)
    assert proposed.fields["eta_slot"] == env.slot() + env.config_delay_slots
    refused(env, env.exchange.apply_config_change(ConfigChange.OPERATOR), admin, "ChangeNotDue")
    env.warp_slots(env.config_delay_slots)
    stranger = env.chain.wallet()
    env.ok([env.exchange.apply_config_change(ConfigChange.OPERATOR)], stranger)  # anyone applies
    assert env.config().operator == new_operator.pubkey()
    refused(env, lock(env, alice, 1 * USDT), env.operator, "NotOperator")
    env.ok([env.exchange.lock(new_operator.pubkey(), alice.key, 1 * USDT, env.next_op(alice.key))], new_operator)


def test_configuration_changes_refusals_and_cancel(env: VaultEnv) -> None:
    admin, ex = env.admin, env.exchange
    stranger = env.chain.wallet()
    refused(env, ex.propose_config_change(stranger.pubkey(), ConfigChange.EXIT_DELAY, value=1), stranger, "NotAdmin")
    refused(env, ex.propose_config_change(admin.pubkey(), 9, value=1), admin, "InvalidConfigChange")
    refused(env, ex.propose_config_change(admin.pubkey(), ConfigChange.OPERATOR), admin, "InvalidConfigChange")
    refused(env, ex.propose_config_change(admin.pubkey(), ConfigChange.EXIT_DELAY, key=stranger.pubkey(), value=1),
            admin, "InvalidConfigChange")
    refused(env, ex.apply_config_change(ConfigChange.EXIT_DELAY), admin, "NoPendingChange")
    refused(env, ex.cancel_config_change(admin.pubkey(), ConfigChange.EXIT_DELAY), admin, "NoPendingChange")
    env.ok([ex.propose_config_change(admin.pubkey(), ConfigChange.EXIT_DELAY, value=1)], admin)
    refused(env, ex.cancel_config_change(stranger.pubkey(), ConfigChange.EXIT_DELAY), stranger, "NotAdmin")
    env.ok([ex.cancel_config_change(admin.pubkey(), ConfigChange.EXIT_DELAY)], admin)
    env.warp_slots(env.config_delay_slots)
    refused(env, ex.apply_config_change(ConfigChange.EXIT_DELAY), admin, "NoPendingChange")
    assert env.config().exit_delay_slots == env.exit_delay_slots
    # the delay itself changes only after the current delay
    env.ok([ex.propose_config_change(admin.pubkey(), ConfigChange.CONFIG_DELAY, value=0)], admin)
    env.warp_slots(env.config_delay_slots)
    env.ok([ex.apply_config_change(ConfigChange.CONFIG_DELAY)], admin)
    assert env.config().config_delay_slots == 0


def test_initialize_exchange_only_by_the_upgrade_authority_and_once(env: VaultEnv) -> None:
    rogue = ExchangeProgram(env.program, env.rogue_pm_id)
    stranger = env.chain.wallet()
    ix = rogue.initialize_exchange(stranger.pubkey(), stranger.pubkey(), env.fee_owner, env.insurance_owner, 1, 1)
    refused(env, ix, stranger, "NotUpgradeAuthority")
    not_a_vault = rogue.initialize_exchange(env.admin.pubkey(), stranger.pubkey(), stranger.pubkey(),
                                            env.insurance_owner, 1, 1)
    refused(env, not_a_vault, env.admin, "InvalidVault")
    env.ok([rogue.initialize_exchange(env.admin.pubkey(), stranger.pubkey(), env.fee_owner, env.insurance_owner,
                                      1, 1)], env.admin)
    refused(env, env.exchange.initialize_exchange(env.admin.pubkey(), stranger.pubkey(), env.fee_owner,
                                                  env.insurance_owner, 1, 1), env.admin, "AlreadyInitialized")


# --- build-time ids -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["collateral_vault", "position_manager"])
def test_a_program_refuses_to_run_at_an_id_it_was_not_built_for(env: VaultEnv, name: str) -> None:
    """Its PDAs are build-time constants: deployed anywhere else, it refuses every call."""
    elsewhere = env.chain.deploy(name)
    payer = env.chain.wallet()
    idl, ix = (IDL, env.program.deposit(payer.pubkey(), payer.pubkey(), 1)) if name == "collateral_vault" else \
        (PM_IDL, env.exchange.revoke(payer.pubkey()))
    result = env.fails([Instruction(elsewhere, ix.data, list(ix.accounts))], payer)
    code = error_code(result)
    assert code is not None and idl.error(code) is not None and idl.error(code)[0] == "WrongProgramId"  # type: ignore[index]


def test_the_second_instance_is_built_for_its_own_id() -> None:
    first = program_path("position_manager").read_bytes()
    second = program_path("position_manager_unauthorized").read_bytes()
    rogue = program_keypair("position_manager_unauthorized").pubkey()
    assert bytes(PM_IDL.address) in first and bytes(rogue) not in first
    assert bytes(rogue) in second and bytes(PM_IDL.address) not in second
