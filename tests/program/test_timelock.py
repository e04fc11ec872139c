"""Delayed loosening, instant tightening (issue 23, item 1), in the real SVM with the real
program: every loosening change of the VaultAuthority (authorize a program, admin transfer,
lift a pause, change the delay, raise a withdrawal limit) is queued, refused before its delay
(`ChangeNotReady`, the LiteSVM clock warped to one second before) and applied after it;
the admin can cancel it before; non-admins are refused; tightening is instant."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from solders.instruction import Instruction
from solders.pubkey import Pubkey
from solders.transaction_metadata import FailedTransactionMetadata

from localnet.genesis import program_keypair
from localnet.loader_v3 import deploy_upgradeable
from localnet.svm import Chain, program_path
from localnet.vault_env import VaultEnv, error_name
from vault_client.vault_program import Authority, ChangeKind, Pause, VaultProgram, WithdrawLimits

DELAY = 3_600
CHANGE_QUEUED_FIELDS = ["change_id", "kind", "target", "values", "eta", "admin", "timestamp", "seq"]


@pytest.fixture
def env() -> VaultEnv:
    """The environment with a timelock delay of one hour (set through the delay-0 genesis)."""
    env = VaultEnv()
    env.change_now(env.program.set_timelock_delay(env.admin.pubkey(), DELAY))
    assert env.authority().timelock_delay == DELAY
    return env


def higher(limits: WithdrawLimits) -> WithdrawLimits:
    return WithdrawLimits(limits.max_outflow_bps * 2, limits.window_slots, limits.min_budget, limits.exempt_amount)


def pause_all(env: VaultEnv) -> None:
    env.ok([env.program.set_paused(env.admin.pubkey(), Pause.ALL)], env.admin)


@dataclass
class Loosening:
    """One kind of loosening change: how to queue it, what it changes once executed."""

    kind: int
    queue: Callable[[VaultEnv], Instruction]
    applied: Callable[[VaultEnv, Authority], bool]
    effect_event: str | None  # the effect's event after ChangeExecuted
    prepare: Callable[[VaultEnv], None] = lambda env: None
    program: Callable[[VaultEnv], Pubkey | None] = lambda env: None


LOOSENING = {
    "authorize_program": Loosening(
        ChangeKind.AUTHORIZE_PROGRAM,
        lambda env: env.program.add_authorized_program(env.admin.pubkey(), env.rogue_pm_id),
        lambda env, a: env.rogue_pm_id in a.programs, "ProgramAuthorized", program=lambda env: env.rogue_pm_id),
    "lift_pause": Loosening(
        ChangeKind.LIFT_PAUSE, lambda env: env.program.set_paused(env.admin.pubkey(), Pause.LOCK),
        lambda env, a: a.pause_flags == Pause.LOCK, "PauseFlagsSet",
        prepare=lambda env: pause_all(env)),
    "set_delay": Loosening(
        ChangeKind.SET_DELAY, lambda env: env.program.set_timelock_delay(env.admin.pubkey(), 60),
        lambda env, a: a.timelock_delay == 60, None),
    "raise_withdraw_limits": Loosening(
        ChangeKind.RAISE_WITHDRAW_LIMITS,
        lambda env: env.program.set_withdraw_limits(env.admin.pubkey(), higher(env.authority().limits)),
        lambda env, a: a.max_outflow_bps == 2_000, "WithdrawLimitsSet"),
}


@pytest.mark.parametrize("name", list(LOOSENING))
def test_a_loosening_change_is_refused_before_its_delay_and_applied_after(env: VaultEnv, name: str) -> None:
    change = LOOSENING[name]
    change.prepare(env)
    before = env.authority()
    result = env.ok([change.queue(env)], env.admin)
    [queued] = [e for e in env.events(result) if e.name == "ChangeQueued"]
    assert list(queued.fields) == CHANGE_QUEUED_FIELDS
    change_id = queued.fields["change_id"]
    assert change_id == before.next_change_id + 1
    assert queued.fields["kind"] == change.kind
    assert queued.fields["eta"] == env.now() + DELAY and queued.fields["admin"] == env.admin.pubkey()
    assert queued.fields["seq"] == env.authority().event_seq
    authority = env.authority()
    assert not change.applied(env, authority)
    pending = [(c.change_id, c.kind, c.eta) for c in authority.pending_changes]
    assert pending == [(change_id, change.kind, env.now() + DELAY)]

    stranger = env.chain.wallet()  # anyone may execute, once due
    execute = env.program.execute_change(change_id, change.program(env))
    env.refused([execute], stranger, "ChangeNotReady")
    env.warp_seconds(DELAY - 1)
    env.refused([execute], stranger, "ChangeNotReady")
    env.warp_seconds(1)
    result = env.ok([execute], stranger)
    names = [e.name for e in env.events(result)]
    assert names == ["ChangeExecuted"] + ([change.effect_event] if change.effect_event else [])
    executed = env.events(result)[0].fields
    assert list(executed) == ["change_id", "kind", "target", "values", "timestamp", "seq"]
    assert (executed["change_id"], executed["kind"], executed["values"]) == (
        change_id, change.kind, queued.fields["values"])
    authority = env.authority()
    assert change.applied(env, authority) and authority.pending_changes == ()
    env.refused([execute], stranger, "ChangeNotFound")  # once only


def test_admin_transfer_waits_and_needs_the_new_admins_signature(env: VaultEnv) -> None:
    new_admin = env.chain.wallet()
    result = env.ok([env.program.transfer_admin(env.admin.pubkey(), new_admin.pubkey())], env.admin)
    assert [e.name for e in env.events(result)] == ["ChangeQueued", "AdminTransferProposed"]
    change_id = env.events(result)[0].fields["change_id"]
    assert env.authority().pending_admin == new_admin.pubkey()
    env.refused([env.program.accept_admin(new_admin.pubkey())], new_admin, "ChangeNotReady")
    env.warp_seconds(DELAY)
    # due, but only the new admin's own signature applies it
    env.refused([env.program.execute_change(change_id)], env.chain.wallet(), "AcceptanceRequired")
    env.refused([env.program.accept_admin(env.admin.pubkey())], env.admin, "NoPendingAdmin")
    result = env.ok([env.program.accept_admin(new_admin.pubkey())], new_admin)
    assert [e.name for e in env.events(result)] == ["ChangeExecuted", "AdminTransferAccepted"]
    authority = env.authority()
    assert authority.admin == new_admin.pubkey() and authority.pending_admin == Pubkey.default()
    assert authority.pending_changes == ()
    env.refused([env.program.set_paused(env.admin.pubkey(), Pause.ALL)], env.admin, "Unauthorized")


def test_the_admin_cancels_a_change_before_it_executes(env: VaultEnv) -> None:
    admin = env.admin.pubkey()
    new_admin = env.chain.wallet()
    queue = (env.program.add_authorized_program(admin, env.rogue_pm_id),
             env.program.transfer_admin(admin, new_admin.pubkey()))
    queued = [env.events(env.ok([ix], env.admin))[0].fields["change_id"] for ix in queue]
    stranger = env.chain.wallet()
    env.refused([env.program.cancel_change(stranger.pubkey(), queued[0])], stranger, "Unauthorized")
    for change_id, kind in zip(queued, (ChangeKind.AUTHORIZE_PROGRAM, ChangeKind.ADMIN_TRANSFER), strict=True):
        [event] = env.events(env.ok([env.program.cancel_change(admin, change_id)], env.admin))
        assert event.name == "ChangeCancelled"
        assert list(event.fields) == ["change_id", "kind", "admin", "timestamp", "seq"]
        assert (event.fields["change_id"], event.fields["kind"], event.fields["admin"]) == (change_id, kind, admin)
    authority = env.authority()
    assert authority.pending_changes == () and authority.pending_admin == Pubkey.default()
    env.warp_seconds(DELAY)
    env.refused([env.program.execute_change(queued[0], env.rogue_pm_id)], stranger, "ChangeNotFound")
    env.refused([env.program.accept_admin(new_admin.pubkey())], new_admin, "NoPendingAdmin")
    env.refused([env.program.cancel_change(admin, queued[0])], env.admin, "ChangeNotFound")
    assert env.rogue_pm_id not in env.authority().programs and env.authority().admin == admin


def test_non_admins_cannot_queue_or_cancel(env: VaultEnv) -> None:
    stranger = env.chain.wallet()
    key = stranger.pubkey()
    limits = higher(env.authority().limits)
    for ix in (env.program.add_authorized_program(key, env.rogue_pm_id), env.program.transfer_admin(key, key),
               env.program.set_paused(key, 0), env.program.set_timelock_delay(key, 0),
               env.program.set_withdraw_limits(key, limits), env.program.cancel_change(key, 1)):
        env.refused([ix], stranger, "Unauthorized")


def test_tightening_is_instant(env: VaultEnv) -> None:
    admin = env.admin.pubkey()
    result = env.ok([env.program.set_paused(admin, Pause.WITHDRAW)], env.admin)
    assert [e.name for e in env.events(result)] == ["PauseFlagsSet"] and env.authority().pause_flags == Pause.WITHDRAW
    # adding LOCK while lifting WITHDRAW: the addition applies now, the lift waits
    result = env.ok([env.program.set_paused(admin, Pause.LOCK)], env.admin)
    assert [e.name for e in env.events(result)] == ["PauseFlagsSet", "ChangeQueued"]
    assert env.events(result)[0].fields["flags"] == Pause.WITHDRAW | Pause.LOCK
    assert env.events(result)[1].fields["values"] == [Pause.LOCK, Pause.WITHDRAW, 0, 0]
    assert env.authority().pause_flags == Pause.WITHDRAW | Pause.LOCK

    limits = env.authority().limits
    lower = WithdrawLimits(limits.max_outflow_bps // 2, limits.window_slots * 2, limits.min_budget // 2,
                           limits.exempt_amount // 2)
    result = env.ok([env.program.set_withdraw_limits(admin, lower)], env.admin)
    [event] = env.events(result)
    assert event.name == "WithdrawLimitsSet" and event.fields["values"] == lower.values()
    assert list(event.fields) == ["values", "admin", "timestamp", "seq"]
    assert env.authority().limits == lower
    # one limit higher (a shorter window refills faster): queued, nothing applied
    faster = WithdrawLimits(lower.max_outflow_bps, lower.window_slots - 1, lower.min_budget, lower.exempt_amount)
    assert env.events(env.ok([env.program.set_withdraw_limits(admin, faster)], env.admin))[0].name == "ChangeQueued"
    assert env.authority().limits == lower

    result = env.ok([env.program.remove_authorized_program(admin, env.pm_id)], env.admin)
    assert [e.name for e in env.events(result)] == ["ProgramDeauthorized"] and env.authority().programs == []


def test_execute_checks_the_change_again(env: VaultEnv) -> None:
    admin = env.admin.pubkey()
    first, second = (env.events(env.ok([env.program.add_authorized_program(admin, env.rogue_pm_id)], env.admin))[0]
                     .fields["change_id"] for _ in range(2))
    env.warp_seconds(DELAY)
    stranger = env.chain.wallet()
    env.refused([env.program.execute_change(first)], stranger, "MissingAccounts")
    env.refused([env.program.execute_change(first, env.pm_id)], stranger, "InvalidProgramAccount")
    env.ok([env.program.execute_change(first, env.rogue_pm_id)], stranger)
    env.refused([env.program.execute_change(second, env.rogue_pm_id)], stranger, "ProgramAlreadyAuthorized")
    env.ok([env.program.cancel_change(admin, second)], env.admin)


def test_the_queue_is_bounded_and_bad_input_refused(env: VaultEnv) -> None:
    admin = env.admin.pubkey()
    for delay in (-1, 30 * 86_400 + 1):
        env.refused([env.program.set_timelock_delay(admin, delay)], env.admin, "InvalidTimelockDelay")
    limits = env.authority().limits
    for bad in (WithdrawLimits(10_001, 1, 0, 0), WithdrawLimits(100, 0, 0, 0), WithdrawLimits(100, 2**32, 0, 0)):
        env.refused([env.program.set_withdraw_limits(admin, bad)], env.admin, "InvalidWithdrawLimits")
    assert env.authority().limits == limits
    stranger = env.chain.wallet()
    for change_id in (0, 999):
        env.refused([env.program.execute_change(change_id)], stranger, "ChangeNotFound")
    for seconds in range(8):
        env.ok([env.program.set_timelock_delay(admin, seconds)], env.admin)
    env.refused([env.program.set_timelock_delay(admin, 9)], env.admin, "ChangeQueueFull")
    assert len(env.authority().pending_changes) == 8
    env.ok([env.program.cancel_change(admin, env.authority().pending_changes[3].change_id)], env.admin)
    env.ok([env.program.set_timelock_delay(admin, 9)], env.admin)  # a freed slot is reused


def test_initialize_authority_takes_the_delay_and_refuses_a_bad_one() -> None:
    chain = Chain()
    deployer = chain.wallet(100_000_000_000)
    deploy_upgradeable(chain, deployer, program_path("collateral_vault").read_bytes(),
                       program_keypair("collateral_vault"))
    program = VaultProgram(chain.create_mint(deployer, deployer.pubkey()))
    for bad in (-1, 30 * 86_400 + 1):
        result = chain.send([program.initialize_authority(deployer.pubkey(), bad)], deployer)
        assert isinstance(result, FailedTransactionMetadata) and error_name(result) == "InvalidTimelockDelay"
    chain.send_ok([program.initialize_authority(deployer.pubkey(), 48 * 3_600)], deployer)
    authority = Authority.decode(bytes(chain.account(program.authority).data))
    assert authority.timelock_delay == 48 * 3_600 and authority.pending_changes == ()
    # the documented defaults (docs/guard-rails.md): 10 % of TVL per ~24 h, floor 100,000 USDT, exempt 1,000 USDT
    assert authority.limits == WithdrawLimits(1_000, 216_000, 100_000 * 10**6, 1_000 * 10**6)
    assert authority.outflow_budget == authority.exempt_budget == 100_000 * 10**6 and authority.tvl == 0
