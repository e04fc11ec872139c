"""A seeded chain makes the same keys every run, so compute units that depend on addresses
(initialize_vault searches its PDAs' bumps) repeat exactly; unseeded chains stay random."""

from __future__ import annotations

from localnet.vault_env import VaultEnv


def initialize_cu(env: VaultEnv) -> tuple[str, int]:
    user = env.user(with_vault=False)
    result = env.ok([env.program.initialize_vault(user.key)], user.wallet)
    return str(user.key), result.compute_units_consumed()


def test_seeded_environments_repeat_keys_and_compute_units() -> None:
    first, second = VaultEnv(seed=b"cu"), VaultEnv(seed=b"cu")
    assert first.mint == second.mint
    assert initialize_cu(first) == initialize_cu(second)
    assert VaultEnv(seed=b"other").mint != first.mint
    assert VaultEnv().mint != VaultEnv().mint
