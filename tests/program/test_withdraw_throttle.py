"""The protocol-wide withdrawal throttle (issue 23, item 2), in the real SVM with the real
program: a token bucket over the VaultAuthority (capacity = max(min_budget, tvl * bps /
10,000), refilled linearly per slot over the window), small withdrawals exempt within a
bounded allowance per window, and a refusal that logs how much can be withdrawn now."""

from __future__ import annotations

import pytest
from solders.instruction import AccountMeta, Instruction
from solders.transaction_metadata import FailedTransactionMetadata

from localnet.vault_env import USDT, User, VaultEnv
from vault_client import spl_token
from vault_client.vault_program import THROTTLED_LOG, SettlePair, WithdrawLimits

WINDOW = 100
#: 10 % of TVL per 100 slots, a floor of 20 USDT (also the exempt allowance), exempt up to 2 USDT
LIMITS = WithdrawLimits(max_outflow_bps=1_000, window_slots=WINDOW, min_budget=20 * USDT, exempt_amount=2 * USDT)


@pytest.fixture
def funded() -> tuple[VaultEnv, User, User]:
    """Alice and Bob with 1,000 USDT each in their vaults (TVL 2,000 USDT), then LIMITS (all
    lower than the defaults: instant, the budgets capped at once)."""
    env = VaultEnv()
    alice, bob = env.user(2_000 * USDT), env.user(2_000 * USDT)
    env.deposit(alice, 1_000 * USDT)
    env.deposit(bob, 1_000 * USDT)
    env.set_limits_now(LIMITS)
    return env, alice, bob


def withdraw(env: VaultEnv, user: User, amount: int) -> None:
    env.ok([env.program.withdraw(user.key, user.token_account, amount)], user.wallet)


def throttled(env: VaultEnv, user: User, amount: int) -> int:
    """Expects the refusal (nothing changed) and returns the available amount it logged."""
    result = env.refused([env.program.withdraw(user.key, user.token_account, amount)], user.wallet,
                         "WithdrawalThrottled")
    [line] = [line for line in result.meta().logs() if line.startswith(THROTTLED_LOG)]
    return int(line.removeprefix(THROTTLED_LOG))


def vault_sum(env: VaultEnv, *users: User) -> int:
    owners = [env.fee_owner, env.insurance_owner, *(u.key for u in users)]
    return sum(env.vault(owner).total_balance for owner in owners)


def test_over_the_budget_is_refused_with_what_can_be_withdrawn_now(funded: tuple[VaultEnv, User, User]) -> None:
    env, alice, _ = funded
    authority = env.authority()
    assert authority.tvl == 2_000 * USDT
    assert authority.outflow_budget == 200 * USDT  # 10 % of TVL: the old budget capped at once
    assert authority.exempt_budget == 20 * USDT
    withdraw(env, alice, 150 * USDT)
    assert throttled(env, alice, 60 * USDT) == 50 * USDT
    withdraw(env, alice, 50 * USDT)  # exactly what was left
    assert env.authority().outflow_budget == 0
    assert env.vault(alice.key).total_balance == 800 * USDT


def test_small_withdrawals_pass_within_a_bounded_allowance(funded: tuple[VaultEnv, User, User]) -> None:
    env, alice, bob = funded
    withdraw(env, alice, 200 * USDT)  # the whole budget
    assert throttled(env, alice, 3 * USDT) == 2 * USDT  # above the exempt amount: refused
    for user in (alice, bob) * 5:  # ten exempt withdrawals of 2 USDT: the window's allowance
        withdraw(env, user, 2 * USDT)
    authority = env.authority()
    assert authority.exempt_budget == 0 and authority.outflow_budget == 0
    assert throttled(env, bob, 1) == 0  # the allowance is spent: many small ones cannot drain the protocol


def test_the_budget_refills_per_slot_up_to_its_capacity(funded: tuple[VaultEnv, User, User]) -> None:
    env, alice, _ = funded
    withdraw(env, alice, 200 * USDT)
    for _ in range(10):
        withdraw(env, alice, 2 * USDT)
    # TVL 1,780 USDT: capacity 178 USDT, refilled 1.78 USDT per slot; the allowance 0.2 USDT per slot
    env.warp_slots(50)
    assert throttled(env, alice, 90 * USDT) == 89 * USDT
    withdraw(env, alice, 89 * USDT)
    authority = env.authority()
    assert (authority.outflow_budget, authority.exempt_budget) == (0, 10 * USDT)
    env.warp_slots(10 * WINDOW)  # never beyond the capacity (TVL 1,691 USDT)
    assert throttled(env, alice, 170 * USDT) == 169_100_000
    assert env.authority().outflow_budget == 0  # a refusal changes nothing (the refill included)


def test_raised_limits_wait_for_the_timelock_and_refill_over_the_window(funded: tuple[VaultEnv, User, User]) -> None:
    env, alice, _ = funded
    withdraw(env, alice, 200 * USDT)
    env.set_limits_now(WithdrawLimits(5_000, WINDOW, 20 * USDT, 2 * USDT))  # raised (delay 0 here)
    assert env.authority().outflow_budget == 0  # raising the capacity does not fill the bucket
    env.warp_slots(WINDOW)
    withdraw(env, alice, 800 * USDT)  # 50 % of 1,800 USDT = 900 available


def test_tvl_is_the_sum_of_the_vaults(funded: tuple[VaultEnv, User, User]) -> None:
    env, alice, bob = funded
    assert env.authority().tvl == vault_sum(env, alice, bob)
    withdraw(env, alice, 100 * USDT)
    donor = env.user(10 * USDT, with_vault=False)
    env.ok([spl_token.transfer(donor.token_account, env.program.vault_token(bob.key), donor.key, 3)], donor.wallet)
    env.deposit(bob, 5 * USDT)  # absorbs the 3-unit surplus: counted
    assert env.authority().tvl == vault_sum(env, alice, bob)
    trader = env.trader(100 * USDT, 100 * USDT)
    env.lock(trader, 40 * USDT)
    env.operate(env.exchange.settle(env.operator.pubkey(), [SettlePair(trader.key, alice.key, 10 * USDT,
                                                                       env.next_op(trader.key))]))
    assert env.authority().tvl == vault_sum(env, alice, bob, trader)  # settlement moves between vaults
    withdraw(env, trader, 1 * USDT)
    assert env.authority().tvl == vault_sum(env, alice, bob, trader)
    # A surplus absorbed where the authority is read-only (a settlement) is not counted:
    # tvl under-counts by that donation (the throttle is stricter, never looser).
    env.ok([spl_token.transfer(donor.token_account, env.program.vault_token(alice.key), donor.key, 7)], donor.wallet)
    env.operate(env.exchange.settle(env.operator.pubkey(), [SettlePair(trader.key, alice.key, 1 * USDT,
                                                                       env.next_op(trader.key))]))
    assert env.authority().tvl == vault_sum(env, alice, bob, trader) - 7


def test_deposit_and_withdraw_need_the_authority_writable(funded: tuple[VaultEnv, User, User]) -> None:
    env, alice, _ = funded
    for ix in (env.program.deposit(alice.key, alice.token_account, 1 * USDT),
               env.program.withdraw(alice.key, alice.token_account, 1 * USDT)):
        accounts = [AccountMeta(m.pubkey, m.is_signer, False) if m.pubkey == env.program.authority else m
                    for m in ix.accounts]
        result = env.fails([Instruction(ix.program_id, ix.data, accounts)], alice.wallet)
        assert isinstance(result, FailedTransactionMetadata) and env.error(result)[1] == "AccountNotWritable"
