"""Property tests in the real SVM.

* Random sequences of deposits, withdrawals, locks, unlocks and settlements across several
  users and the position manager, against a model: each operation succeeds exactly when
  the model says it should, and after every step `total == locked + available`, each vault
  token account holds exactly its vault's total, the vault totals add up to the tokens the
  vault accounts hold, and no token is created or lost.
* Fuzzing with random instruction data and random account lists: only program errors,
  never a panic or an access violation, and no state change when an instruction fails.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey
from solders.transaction_metadata import FailedTransactionMetadata

from services.common import spl_token
from services.common.idl import discriminator
from services.common.vault_program import IDL, caller_authority
from tests.support.vault_env import USDT, User, VaultEnv

USERS = 3
MINTED = 1_000 * USDT

amounts = st.one_of(st.just(0), st.integers(1, 1_200 * USDT), st.integers(1, 50))
user_index = st.integers(0, USERS - 1)
operations = st.one_of(
    st.tuples(st.sampled_from(["deposit", "withdraw", "lock", "unlock"]), user_index, amounts),
    st.tuples(st.just("settle"), user_index, user_index, amounts),
)


@dataclass
class Model:
    wallet: int = MINTED
    total: int = 0
    locked: int = 0

    @property
    def available(self) -> int:
        return self.total - self.locked


def apply(env: VaultEnv, users: list[User], models: list[Model], op: tuple) -> None:
    kind = op[0]
    if kind == "settle":
        _, a, b, amount = op
        ok = a != b and 0 < amount <= models[a].locked
        result = env.send([env.program.settle(users[a].key, users[b].key, amount, env.pm_id)], users[a].wallet)
        if ok:
            models[a].total -= amount
            models[a].locked -= amount
            models[b].total += amount
    else:
        _, i, amount = op
        m, user = models[i], users[i]
        if kind == "deposit":
            ok = 0 < amount <= m.wallet
            ix = env.program.deposit(user.key, user.token_account, amount)
        elif kind == "withdraw":
            ok = 0 < amount <= m.available
            ix = env.program.withdraw(user.key, user.token_account, amount)
        elif kind == "lock":
            ok = 0 < amount <= m.available
            ix = env.program.open_position(user.key, amount, env.pm_id)
        else:
            ok = 0 < amount <= m.locked
            ix = env.program.close_position(user.key, amount, env.pm_id)
        result = env.send([ix], user.wallet)
        if ok:
            delta = {"deposit": amount, "withdraw": -amount}.get(kind, 0)
            m.total += delta
            m.wallet -= delta
            m.locked += {"lock": amount, "unlock": -amount}.get(kind, 0)
    assert isinstance(result, FailedTransactionMetadata) != ok, (op, result)


def check_invariants(env: VaultEnv, users: list[User], models: list[Model]) -> None:
    vault_tokens = 0
    for user, model in zip(users, models, strict=True):
        vault = env.vault(user.key)
        tokens = env.vault_tokens(user.key)
        assert vault.total_balance == vault.locked_balance + vault.available_balance
        assert tokens == vault.total_balance
        assert (vault.total_balance, vault.locked_balance) == (model.total, model.locked)
        assert env.chain.token_amount(user.token_account) == model.wallet
        vault_tokens += tokens
    assert vault_tokens == sum(env.vault(u.key).total_balance for u in users)
    assert vault_tokens + sum(m.wallet for m in models) == USERS * MINTED


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operations, min_size=1, max_size=30))
def test_random_operation_sequences_keep_every_invariant(ops: list[tuple]) -> None:
    env = VaultEnv()
    users = [env.user(MINTED) for _ in range(USERS)]
    models = [Model() for _ in range(USERS)]
    for op in ops:
        apply(env, users, models, op)
        check_invariants(env, users, models)


# --- fuzzing ----------------------------------------------------------------------------

_FUZZ_ENV: dict[str, object] = {}


def fuzz_env() -> tuple[VaultEnv, list[Pubkey], User]:
    if not _FUZZ_ENV:
        env = VaultEnv()
        alice, bob = env.user(), env.user()
        env.deposit(alice, 300 * USDT)
        env.deposit(bob, 200 * USDT)
        env.ok([env.program.open_position(alice.key, 100 * USDT, env.pm_id)], alice.wallet)
        pool = [alice.key, bob.key, alice.token_account, bob.token_account,
                env.program.vault(alice.key), env.program.vault(bob.key),
                env.program.vault_token(alice.key), env.program.vault_token(bob.key),
                env.program.authority, env.mint, spl_token.TOKEN_PROGRAM_ID, spl_token.SYSTEM_PROGRAM_ID,
                spl_token.ASSOCIATED_TOKEN_PROGRAM_ID, env.pm_id, env.vault_id, caller_authority(env.pm_id)[0],
                env.admin.pubkey(), Pubkey.new_unique()]
        _FUZZ_ENV.update(env=env, pool=pool, payer=alice)
    return _FUZZ_ENV["env"], _FUZZ_ENV["pool"], _FUZZ_ENV["payer"]  # type: ignore[return-value]


discriminators = st.sampled_from([ix.discriminator for ix in IDL.instructions.values()]
                                 + [discriminator("global", "bogus"), b""])
instruction_data = st.one_of(
    st.binary(max_size=64),
    st.tuples(discriminators, st.binary(max_size=40)).map(lambda t: t[0] + t[1]),
)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=instruction_data,
       picks=st.lists(st.tuples(st.integers(0, 17), st.booleans()), max_size=10))
def test_fuzzed_instructions_fail_cleanly_and_change_nothing(data: bytes, picks: list[tuple[int, bool]]) -> None:
    env, pool, payer = fuzz_env()
    metas = [AccountMeta(pool[i], pool[i] == payer.key, writable) for i, writable in picks]
    watched = [k for k in pool if k != payer.key]
    before = {k: env.chain.svm.get_account(k) for k in watched}
    result = env.send([Instruction(env.vault_id, data, metas)], payer.wallet)
    if isinstance(result, FailedTransactionMetadata):
        logs = "\n".join(result.meta().logs())
        err = str(result.err())
        assert "panicked" not in logs and "Access violation" not in logs, logs
        assert "ProgramFailedToComplete" not in err and "abort" not in logs.lower(), (err, logs)
        for key, account in before.items():
            assert env.chain.svm.get_account(key) == account, f"{key} changed by a failed instruction"
    else:  # a well-formed, authorized instruction: every invariant must still hold
        for owner in pool[:2]:
            vault = env.vault(owner)
            assert vault.total_balance == vault.locked_balance + vault.available_balance
            assert env.vault_tokens(owner) == vault.total_balance
