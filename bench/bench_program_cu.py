"""Compute units of every collateral_vault and position_manager instruction in the real
SVM, with a bare SPL Token `Transfer` sent directly, in the same run, as the baseline.

For each instruction: the transaction's total CU, the vault program's own CU and
position_manager's own CU (each program's `consumed` log line minus the CU of the programs
it invoked). Lock/unlock/transfer can only run by CPI: they are measured through
position_manager's operator instructions (lock, release, settle), whose rows give both
programs' shares. The largest settle batch (MAX_SETTLE_PAIRS pairs, the worst case for its
log: every vault absorbing a surplus, every pair serving an exit) is measured for its CU and
its log bytes against the 10,000-byte limit. `previous` holds the numbers of the code before
issues 22/23 (128-byte vault, trader-signed position_manager; bench/results/program_cu.json
of that code, classic SPL Token) for comparison.
"""

from __future__ import annotations

import re
from typing import Any

from solders.transaction_metadata import TransactionMetadata

from localnet.vault_env import DAY, USDT, VaultEnv
from vault_client import spl_token
from vault_client.vault_program import MAX_SETTLE_PAIRS, ConfigChange, ExchangeProgram, Pause, SettlePair

_CONSUMED = re.compile(r"^Program (\w+) consumed (\d+) of \d+ compute units$")
_INVOKE = re.compile(r"^Program (\w+) invoke \[(\d+)\]$")
_EXIT = re.compile(r"^Program (\w+) (success|failed)")

# The same wallets and mint every run: initialize_vault's CU includes the search for its
# PDAs' bumps, which depends on the addresses (random keys moved it by thousands of CU).
KEY_SEED = b"bench_program_cu"
TARGET_DEPOSIT_RATIO = 1.6
TARGET_LOCK_CU = 1_500
LOG_LIMIT = 10_000

#: Before issues 22/23, classic SPL Token (transaction CU, vault program CU).
PREVIOUS = {
    "bare_token_transfer_cu": 4644,
    "instructions": {
        "initialize_vault": [25834, 5551], "deposit": [7052, 2407], "withdraw": [7164, 2519],
        "lock_collateral (via position_manager)": [2613, 1048],
        "transfer_collateral (via position_manager)": [9221, 2771],
        "unlock_collateral (via position_manager)": [2607, 1044], "close_vault": [5298, 2283],
        "set_paused": [842, 842], "add_authorized_program": [7104, 7104], "remove_authorized_program": [981, 981],
    },
    "deposit_ratio_to_bare_transfer": 1.52,
    "note": "128-byte vault, one locked pool per vault; lock/unlock/settle signed by the trader",
}


#: deposit and withdraw (transaction CU, vault program CU) of main before issue 23's
#: timelock and withdrawal throttle (deposit without the authority, withdraw with it read-only),
#: measured by this benchmark on that code (commit 8e3d241).
BEFORE_GUARD_RAILS = {
    "classic": {"bare_token_transfer_cu": 4644, "deposit": [7066, 2421], "withdraw": [7199, 2554],
                "deposit_ratio_to_bare_transfer": 1.52},
    "p-token": {"bare_token_transfer_cu": 76, "deposit": [2497, 2421], "withdraw": [2630, 2554],
                "deposit_ratio_to_bare_transfer": 32.86},
}


def own_cu(logs: list[str], program: str) -> int:
    """CU of ``program``'s own code: its consumed line minus its direct callees'. Builtin
    programs (System) log no consumed line, so frames close on success/failed."""
    stack: list[list[Any]] = []  # [program, consumed, consumed_by_children]
    total = 0
    for line in logs:
        invoke = _INVOKE.match(line)
        if invoke:
            stack.append([invoke.group(1), 0, 0])
            continue
        consumed = _CONSUMED.match(line)
        if consumed and stack:
            stack[-1][1] = int(consumed.group(2))
            continue
        if _EXIT.match(line) and stack:
            name, used, children = stack.pop()
            if stack:
                stack[-1][2] += used
            if name == program:
                total += used - children
    return total


def measure_all(token: str) -> dict[str, Any]:
    env = VaultEnv(token, seed=KEY_SEED)
    vault, pm = str(env.vault_id), str(env.pm_id)
    ex, admin, operator = env.exchange, env.admin, env.operator.pubkey()
    alice, bob = env.user(10_000 * USDT), env.user(10_000 * USDT)
    rows: dict[str, dict[str, int]] = {}

    def measure(name: str, result: TransactionMetadata) -> None:
        logs = list(result.logs())
        rows[name] = {"transaction_cu": result.compute_units_consumed(), "vault_program_cu": own_cu(logs, vault),
                      "position_manager_cu": own_cu(logs, pm)}

    # Baseline: a bare token transfer of the same kind a deposit makes.
    baseline = env.ok([spl_token.transfer(alice.token_account, bob.token_account, alice.key, 1 * USDT)], alice.wallet)
    bare = baseline.compute_units_consumed()

    carol = env.user(10_000 * USDT, with_vault=False)
    measure("initialize_vault", env.ok([env.program.initialize_vault(carol.key)], carol.wallet))
    measure("deposit", env.deposit(alice, 1_000 * USDT))
    env.deposit(bob, 1_000 * USDT)
    measure("withdraw", env.ok([env.program.withdraw(alice.key, alice.token_account, 100 * USDT)], alice.wallet))
    measure("grant (creates the Grant)", env.ok([ex.grant(alice.key, 500 * USDT, env.now() + DAY)], alice.wallet))
    measure("grant (update)", env.ok([ex.grant(alice.key, 600 * USDT, env.now() + DAY)], alice.wallet))
    env.ok([ex.grant(bob.key, 600 * USDT, env.now() + DAY)], bob.wallet)
    measure("lock_collateral (via position_manager)", env.lock(alice, 300 * USDT))
    pair = SettlePair(alice.key, bob.key, 50 * USDT, env.next_op(alice.key))
    measure("transfer_collateral (via position_manager)", env.operate(ex.settle(operator, [pair])))
    measure("unlock_collateral (via position_manager)", env.release(alice, 50 * USDT))
    measure("liquidate", env.operate(ex.liquidate(operator, alice.key, env.insurance_owner, 50 * USDT,
                                                  env.next_op(alice.key))))
    measure("revoke", env.ok([ex.revoke(bob.key)], bob.wallet))
    measure("request_exit", env.ok([ex.request_exit(alice.key)], alice.wallet))
    env.warp_slots(env.exit_delay_slots)
    measure("exit", env.ok([ex.exit(alice.key)], alice.wallet))
    measure("propose_config_change",
            env.ok([ex.propose_config_change(admin.pubkey(), ConfigChange.EXIT_DELAY, value=10)], admin))
    measure("cancel_config_change", env.ok([ex.cancel_config_change(admin.pubkey(), ConfigChange.EXIT_DELAY)], admin))
    env.ok([ex.propose_config_change(admin.pubkey(), ConfigChange.EXIT_DELAY, value=10)], admin)
    env.warp_slots(env.config_delay_slots)
    measure("apply_config_change", env.ok([ex.apply_config_change(ConfigChange.EXIT_DELAY)], admin))
    rogue = ExchangeProgram(env.program, env.rogue_pm_id)
    result = env.ok([rogue.initialize_exchange(admin.pubkey(), operator, env.fee_owner, env.insurance_owner, 1, 1)],
                    admin)
    rows["initialize_exchange"] = {"transaction_cu": result.compute_units_consumed(), "vault_program_cu": 0,
                                   "position_manager_cu": own_cu(list(result.logs()), str(env.rogue_pm_id))}
    dave = env.trader(100 * USDT, 100 * USDT)
    env.lock(dave, 40 * USDT)
    env.ok([env.program.remove_authorized_program(admin.pubkey(), env.pm_id)], admin)
    measure("release_orphaned_lock", env.ok([env.program.release_orphaned_lock(dave.key, env.pm_id)], dave.wallet))
    env.authorize_now(env.pm_id)
    measure("close_vault", env.ok([env.program.close_vault(carol.key)], carol.wallet))
    measure("set_paused", env.ok([env.program.set_paused(admin.pubkey(), Pause.ALL)], admin))
    env.set_paused_now(0)
    change_id = env.authority().next_change_id + 1
    measure("add_authorized_program (queues)",
            env.ok([env.program.add_authorized_program(admin.pubkey(), env.rogue_pm_id)], admin))
    measure("execute_change (authorizes)", env.ok([env.program.execute_change(change_id, env.rogue_pm_id)], admin))
    measure("remove_authorized_program",
            env.ok([env.program.remove_authorized_program(admin.pubkey(), env.rogue_pm_id)], admin))
    batch = max_settle_batch(env)
    rows[f"settle, {MAX_SETTLE_PAIRS} pairs, worst case (v0 transaction)"] = {
        key: batch[key] for key in ("transaction_cu", "vault_program_cu", "position_manager_cu")}

    deposit = rows["deposit"]
    before = BEFORE_GUARD_RAILS["classic" if token == "classic" else "p-token"]
    return {
        "deposit_withdraw_before_guard_rails": before,
        "bare_token_transfer_cu": bare,
        "instructions": rows,
        "deposit_ratio_to_bare_transfer": round(deposit["transaction_cu"] / bare, 2),
        "deposit_ratio_target_met": deposit["transaction_cu"] <= TARGET_DEPOSIT_RATIO * bare,
        "max_settle_batch": {key: batch[key] for key in ("pairs", "log_bytes", "log_limit", "log_bytes_per_pair",
                                                         "truncated", "events")},
    }


def max_settle_batch(env: VaultEnv) -> dict[str, Any]:
    """The worst case for the log at MAX_SETTLE_PAIRS pairs (see tests/program/test_settle_batch.py)."""
    donor = env.user(with_vault=False)
    payers = [env.trader(100 * USDT, 100 * USDT) for _ in range(MAX_SETTLE_PAIRS)]
    receivers = [env.user() for _ in range(MAX_SETTLE_PAIRS)]
    pairs = []
    for payer, receiver in zip(payers, receivers, strict=True):
        env.lock(payer, 50 * USDT)
        env.ok([env.exchange.request_exit(payer.key)], payer.wallet)
        for owner in (payer.key, receiver.key):
            env.ok([spl_token.transfer(donor.token_account, env.program.vault_token(owner), donor.key, 1)],
                   donor.wallet)
        pairs.append(SettlePair(payer.key, receiver.key, 50 * USDT, env.next_op(payer.key)))
    result = env.send_v0([env.exchange.settle(env.operator.pubkey(), pairs)], env.operator)
    assert isinstance(result, TransactionMetadata), result
    logs = list(result.logs())
    used = sum(len(line) for line in logs)
    frame = sum(len(line) for line in logs if line.startswith(f"Program {env.pm_id} "))
    return {
        "pairs": MAX_SETTLE_PAIRS, "log_bytes": used, "log_limit": LOG_LIMIT,
        "log_bytes_per_pair": round((used - frame) / MAX_SETTLE_PAIRS), "truncated": "Log truncated" in logs,
        "events": len(env.events(result)) + len(env.pm_events(result)),
        "transaction_cu": result.compute_units_consumed(), "vault_program_cu": own_cu(logs, str(env.vault_id)),
        "position_manager_cu": own_cu(logs, str(env.pm_id)),
    }


def run() -> dict[str, Any]:
    """Both SPL Token implementations, in one run. The 1.6x deposit target was written
    against the classic program (~4,645 CU per transfer); against p-token (under 100 CU)
    no CPI-based deposit can meet it, since the CPI base cost alone is 1,000 CU."""
    classic = measure_all("classic")
    ptoken = measure_all("p-token")
    lock = classic["instructions"]["lock_collateral (via position_manager)"]["vault_program_cu"]
    unlock = classic["instructions"]["unlock_collateral (via position_manager)"]["vault_program_cu"]
    return {
        "deposit_ratio_target": TARGET_DEPOSIT_RATIO,
        "lock_unlock_vault_cu_target": TARGET_LOCK_CU,
        "lock_unlock_vault_cu": max(lock, unlock),
        "lock_unlock_target_met": max(lock, unlock) <= TARGET_LOCK_CU,
        "classic_spl_token": classic,
        "p_token": ptoken,
        "previous": PREVIOUS,
    }
