"""Property tests in the real SVM.

* Random mixes of deposits, withdrawals, grants, revocations, locks, releases, settlements
  (to other traders and to the fee vault), liquidations, exit requests, exits and the
  passing of slots, across several traders, against a model: each operation succeeds
  exactly when the model says it should, and after every step `total == locked +
  available`, `locked == the sum of the per-program locks` (== what position_manager holds
  in the model), each vault token account holds exactly its vault's total, no lock ever
  took a trader above his grant, and no token is created or lost (wallets + vaults +
  the fee and insurance vaults == what was minted).
* Fuzzing both programs with random instruction data and random account lists: only
  program errors, never a panic or an access violation, and no state change when an
  instruction fails.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey
from solders.sysvar import INSTRUCTIONS
from solders.transaction_metadata import FailedTransactionMetadata

from localnet.vault_env import DAY, USDT, User, VaultEnv
from vault_client import spl_token
from vault_client.idl import discriminator
from vault_client.vault_program import IDL, PM_IDL, SettlePair, caller_authority

USERS = 3
FEE = USERS  # receiver index of the fee vault
MINTED = 1_000 * USDT
EXIT_DELAY = 5

amounts = st.one_of(st.just(0), st.integers(1, 1_200 * USDT), st.integers(1, 50))
user_index = st.integers(0, USERS - 1)
operations = st.one_of(
    st.tuples(st.sampled_from(["deposit", "withdraw", "lock", "release", "liquidate", "grant"]), user_index, amounts),
    st.tuples(st.sampled_from(["revoke", "request_exit", "exit"]), user_index),
    st.tuples(st.just("settle"), user_index, st.integers(0, FEE), amounts),
    st.tuples(st.just("warp"), st.integers(1, EXIT_DELAY + 1)),
)


@dataclass
class Model:
    wallet: int = MINTED
    total: int = 0
    held: int = 0  # locked by position_manager
    granted: bool = False
    max_locked: int = 0
    revoked: bool = False
    exit_slot: int = 0  # 0: no exit requested

    @property
    def available(self) -> int:
        return self.total - self.held


class World:
    def __init__(self) -> None:
        self.env = VaultEnv(exit_delay_slots=EXIT_DELAY)
        self.users = [self.env.user(MINTED) for _ in range(USERS)]
        self.models = [Model() for _ in range(USERS)]
        self.fee = 0
        self.insurance = 0

    def exit_due(self, m: Model) -> bool:
        return m.exit_slot != 0 and self.env.slot() >= m.exit_slot + EXIT_DELAY

    def served(self, m: Model) -> None:
        if m.held == 0:
            m.exit_slot = 0

    def apply(self, op: tuple) -> None:
        env, ex, operator = self.env, self.env.exchange, self.env.operator.pubkey()
        kind = op[0]
        if kind == "warp":
            env.warp_slots(op[1])
            return
        i = op[1]
        m, user = self.models[i], self.users[i]
        signer = user.wallet
        amount = op[2] if len(op) == 3 else op[-1]
        if kind == "deposit":
            ok = 0 < amount <= m.wallet
            ix = env.program.deposit(user.key, user.token_account, amount)
        elif kind == "withdraw":
            ok = 0 < amount <= m.available
            ix = env.program.withdraw(user.key, user.token_account, amount)
        elif kind == "grant":
            ok = True
            ix = ex.grant(user.key, amount, env.now() + DAY)
        elif kind == "revoke":
            ok = m.granted
            ix = ex.revoke(user.key)
        elif kind == "request_exit":
            ok = m.granted and m.exit_slot == 0
            ix = ex.request_exit(user.key)
        elif kind == "exit":
            ok = m.granted and self.exit_due(m)
            ix = ex.exit(user.key)
        else:
            signer = env.operator
            op_id = env.next_op(user.key)
            if kind == "lock":
                ok = (m.granted and not m.revoked and m.exit_slot == 0 and m.held + amount <= m.max_locked
                      and 0 < amount <= m.available)
                ix = ex.lock(operator, user.key, amount, op_id)
            elif kind == "release":
                ok = m.granted and 0 < amount <= m.held
                ix = ex.release(operator, user.key, amount, op_id)
            elif kind == "liquidate":
                ok = m.granted and 0 < amount <= m.held and not self.exit_due(m)
                ix = ex.liquidate(operator, user.key, env.insurance_owner, amount, op_id)
            else:  # settle
                j = op[2]
                receiver = env.fee_owner if j == FEE else self.users[j].key
                ok = m.granted and j != i and 0 < amount <= m.held and not self.exit_due(m)
                ix = ex.settle(operator, [SettlePair(user.key, receiver, amount, op_id)])
        result = env.send([ix], signer)
        assert isinstance(result, FailedTransactionMetadata) != ok, (op, m, result)
        if ok:
            self.record(kind, op, m, amount)

    def record(self, kind: str, op: tuple, m: Model, amount: int) -> None:
        if kind == "deposit":
            m.total, m.wallet = m.total + amount, m.wallet - amount
        elif kind == "withdraw":
            m.total, m.wallet = m.total - amount, m.wallet + amount
        elif kind == "grant":
            m.granted, m.max_locked, m.revoked, m.exit_slot = True, amount, False, 0
        elif kind == "revoke":
            m.revoked = True
        elif kind == "request_exit":
            m.exit_slot = max(self.env.slot(), 1)
        elif kind == "exit":
            m.held, m.exit_slot, m.revoked = 0, 0, True
        elif kind == "lock":
            m.held += amount
            assert m.held <= m.max_locked, "a lock took the trader above his grant"
        elif kind == "release":
            m.held -= amount
            self.served(m)
        elif kind == "liquidate":
            m.held, m.total = m.held - amount, m.total - amount
            self.insurance += amount
            self.served(m)
        else:  # settle
            m.held, m.total = m.held - amount, m.total - amount
            if op[2] == FEE:
                self.fee += amount
            else:
                self.models[op[2]].total += amount
            self.served(m)

    def check(self) -> None:
        env = self.env
        vault_tokens = 0
        for user, model in zip(self.users, self.models, strict=True):
            vault = env.vault(user.key)
            tokens = env.vault_tokens(user.key)
            assert vault.total_balance == vault.locked_balance + vault.available_balance
            assert vault.locked_balance == sum(lock.amount for lock in vault.locks)
            assert tokens == vault.total_balance
            assert (vault.total_balance, vault.locked_balance) == (model.total, model.held)
            assert vault.locked_by(env.pm_id) == model.held
            assert env.chain.token_amount(user.token_account) == model.wallet
            if model.granted:
                assert env.grant(user.key).exit_requested_slot == model.exit_slot
            vault_tokens += tokens
        assert env.vault_tokens(env.fee_owner) == env.vault(env.fee_owner).total_balance == self.fee
        assert env.vault_tokens(env.insurance_owner) == self.insurance
        assert vault_tokens + self.fee + self.insurance + sum(m.wallet for m in self.models) == USERS * MINTED


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operations, min_size=1, max_size=40))
def test_random_operation_sequences_keep_every_invariant(ops: list[tuple]) -> None:
    world = World()
    for op in ops:
        world.apply(op)
        world.check()


# --- fuzzing ----------------------------------------------------------------------------

_FUZZ_ENV: dict[str, object] = {}


def fuzz_env() -> tuple[VaultEnv, list[Pubkey], User]:
    if not _FUZZ_ENV:
        env = VaultEnv()
        alice, bob = env.trader(300 * USDT), env.trader(200 * USDT)
        env.lock(alice, 100 * USDT)
        ex = env.exchange
        pool = [alice.key, bob.key, alice.token_account, bob.token_account,
                env.program.vault(alice.key), env.program.vault(bob.key),
                env.program.vault_token(alice.key), env.program.vault_token(bob.key),
                env.program.authority, env.mint, spl_token.TOKEN_PROGRAM_ID, spl_token.SYSTEM_PROGRAM_ID,
                spl_token.ASSOCIATED_TOKEN_PROGRAM_ID, env.pm_id, env.vault_id, caller_authority(env.pm_id)[0],
                env.admin.pubkey(), Pubkey.new_unique(), ex.config, ex.grant_account(alice.key),
                ex.grant_account(bob.key), INSTRUCTIONS, env.program.vault(env.insurance_owner),
                env.program.vault_token(env.insurance_owner)]
        _FUZZ_ENV.update(env=env, pool=pool, payer=alice)
    return _FUZZ_ENV["env"], _FUZZ_ENV["pool"], _FUZZ_ENV["payer"]  # type: ignore[return-value]


def instruction_data(discriminators: list[bytes]) -> st.SearchStrategy[bytes]:
    tags = st.sampled_from([*discriminators, discriminator("global", "bogus"), b""])
    return st.one_of(st.binary(max_size=64), st.tuples(tags, st.binary(max_size=48)).map(lambda t: t[0] + t[1]))


picks = st.lists(st.tuples(st.integers(0, 23), st.booleans()), max_size=14)


def fuzz_once(program: str, data: bytes, chosen: list[tuple[int, bool]]) -> None:
    env, pool, payer = fuzz_env()
    program_id = env.vault_id if program == "vault" else env.pm_id
    metas = [AccountMeta(pool[i], pool[i] == payer.key, writable) for i, writable in chosen]
    watched = [k for k in pool if k != payer.key]
    before = {k: env.chain.svm.get_account(k) for k in watched}
    result = env.send([Instruction(program_id, data, metas)], payer.wallet)
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
            assert vault.locked_balance == sum(lock.amount for lock in vault.locks)
            assert env.vault_tokens(owner) == vault.total_balance


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=instruction_data([ix.discriminator for ix in IDL.instructions.values()]), chosen=picks)
def test_fuzzed_vault_instructions_fail_cleanly_and_change_nothing(data: bytes, chosen: list[tuple[int, bool]]) -> None:
    fuzz_once("vault", data, chosen)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=instruction_data([ix.discriminator for ix in PM_IDL.instructions.values()]), chosen=picks)
def test_fuzzed_exchange_instructions_fail_cleanly_and_change_nothing(data: bytes,
                                                                      chosen: list[tuple[int, bool]]) -> None:
    fuzz_once("exchange", data, chosen)
