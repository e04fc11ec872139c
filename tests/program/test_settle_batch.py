"""The largest settlement a transaction can hold keeps every event in the log.

Events are `sol_log_data` lines and a transaction's log is cut at 10,000 bytes ("Log
truncated"), so position_manager bounds a settle batch (`MAX_SETTLE_PAIRS`) and allows
one operator instruction per transaction, at the top level. This test sends the worst case
at the maximum: every pair with a distinct payer and receiver, both vaults absorbing a
surplus (two extra events), and every pair serving an exit (one more), then finds every
event and no truncation. It also checks the margin: one more pair of the same kind would
still fit (measured: 7,912 bytes for 6 pairs with classic SPL Token, 1,283 per pair, so 7
pairs would take about 9,200 and 8 would overflow), and a batch above the bound is refused."""

from __future__ import annotations

import pytest
from solders.instruction import Instruction
from solders.transaction_metadata import FailedTransactionMetadata, TransactionMetadata

from localnet.svm import TOKEN_IMPLEMENTATIONS
from localnet.vault_env import USDT, User, VaultEnv
from vault_client import spl_token
from vault_client.program_logs import data_lines
from vault_client.vault_program import IDL, MAX_SETTLE_PAIRS, SettlePair

LOG_LIMIT = 10_000


def worst_case_batch(env: VaultEnv, pairs: int) -> tuple[Instruction, list[User], list[User]]:
    payers = [env.trader(100 * USDT, 100 * USDT) for _ in range(pairs)]
    receivers = [env.user() for _ in range(pairs)]
    donor = env.user(with_vault=False)
    batch = []
    for payer, receiver in zip(payers, receivers, strict=True):
        env.lock(payer, 50 * USDT)
        env.ok([env.exchange.request_exit(payer.key)], payer.wallet)
        for owner in (payer.key, receiver.key):  # a surplus on both vaults
            env.ok([spl_token.transfer(donor.token_account, env.program.vault_token(owner), donor.key, 1)],
                   donor.wallet)
        batch.append(SettlePair(payer.key, receiver.key, 50 * USDT, env.next_op(payer.key)))
    return env.exchange.settle(env.operator.pubkey(), batch), payers, receivers


def log_bytes(logs: list[str]) -> int:
    return sum(len(line) for line in logs)


@pytest.mark.parametrize("token", TOKEN_IMPLEMENTATIONS)
def test_the_maximum_settle_batch_keeps_every_event_in_the_log(token: str) -> None:
    env = VaultEnv(token)
    ix, payers, receivers = worst_case_batch(env, MAX_SETTLE_PAIRS)
    result = env.send_v0([ix], env.operator)
    assert isinstance(result, TransactionMetadata), result
    logs = list(result.logs())
    assert "Log truncated" not in logs
    vault_events = [(e.name, e.fields) for e in env.events(result)]
    assert [name for name, _ in vault_events] == ["SurplusAbsorbed", "SurplusAbsorbed", "CollateralTransferred"] * (
        MAX_SETTLE_PAIRS)
    transfers = [fields for name, fields in vault_events if name == "CollateralTransferred"]
    assert [(t["from_owner"], t["to_owner"]) for t in transfers] == [(p.key, r.key) for p, r in zip(
        payers, receivers, strict=True)]
    assert [e.name for e in env.pm_events(result)] == ["OperatorAction", "ExitServed"] * MAX_SETTLE_PAIRS
    # the margin: the fixed part plus one more pair of the same size still fits
    used = log_bytes(logs)
    per_pair = (used - fixed_log_bytes(env, result)) / MAX_SETTLE_PAIRS
    assert used + per_pair < LOG_LIMIT, (used, per_pair)
    for payer in payers:
        assert env.vault(payer.key).locked_balance == 0 and env.grant(payer.key).exit_requested_slot == 0


def fixed_log_bytes(env: VaultEnv, result: TransactionMetadata) -> int:
    """The log lines of the settle instruction's own frame (invoke, consumed, success)."""
    pm = str(env.pm_id)
    return sum(len(line) for line in result.logs() if line.startswith(f"Program {pm} "))


def test_a_batch_above_the_bound_is_refused() -> None:
    env = VaultEnv()
    alice, bob = env.trader(), env.trader()
    env.lock(alice, 100 * USDT)
    pairs = [SettlePair(alice.key, bob.key, 1, i + 1) for i in range(MAX_SETTLE_PAIRS + 1)]
    result = env.send_v0([env.exchange.settle(env.operator.pubkey(), pairs)], env.operator)
    assert isinstance(result, FailedTransactionMetadata) and env.error(result) == ("exchange", "InvalidInstruction")


def test_events_of_the_maximum_batch_decode_in_order_with_their_sequence_numbers() -> None:
    env = VaultEnv()
    ix, payers, receivers = worst_case_batch(env, MAX_SETTLE_PAIRS)
    before = {u.key: env.vault(u.key).event_seq for u in payers + receivers}
    result = env.send_v0([ix], env.operator)
    assert isinstance(result, TransactionMetadata)
    seen: dict[str, list[int]] = {}
    for line in data_lines(result.logs()):
        if line.program_id != str(env.vault_id):
            continue
        fields = IDL.decode_event(line.parts[0]).fields
        if "seq" in fields:
            seen.setdefault(str(fields["owner"]), []).append(fields["seq"])
        else:
            seen.setdefault(str(fields["from_owner"]), []).append(fields["from_seq"])
            seen.setdefault(str(fields["to_owner"]), []).append(fields["to_seq"])
    for user in payers + receivers:
        assert seen[str(user.key)] == [before[user.key] + 1, before[user.key] + 2], "gap-free, in order"
