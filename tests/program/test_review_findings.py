"""The review findings of issue 23 against collateral_vault, each reproduced (each test
fails on the code before the fix) and refused or handled now. The sbf-runtime findings
(BorshWriter, duplicated-account borrows) are in test_pipeline.py."""

from __future__ import annotations

from solders.account import Account
from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from localnet.vault_env import DAY, UNTHROTTLED, USDT, User, VaultEnv
from vault_client import spl_token
from vault_client.vault_program import Authority, Pause, SettlePair

MAX = 2**64 - 1


def donate(env: VaultEnv, donor: User, owner: Pubkey, amount: int) -> None:
    env.ok([spl_token.transfer(donor.token_account, env.program.vault_token(owner), donor.key, amount)], donor.wallet)


def test_lifetime_counters_saturate_so_a_donation_near_u64_max_cannot_freeze_a_vault() -> None:
    """Before: total_deposited / total_withdrawn used checked addition; with them at
    u64::MAX, a 1-unit donation made every deposit, withdrawal and settlement fail with
    Overflow (absorbing the donation adds to total_deposited) and close with VaultNotEmpty."""
    env = VaultEnv()
    user = env.user(0)
    env.chain.mint_to(user.wallet, env.mint, user.token_account, env.mint_authority, MAX)
    env.deposit(user, MAX)
    env.set_limits_now(UNTHROTTLED)  # the withdrawal throttle would refuse u64::MAX
    env.warp_slots(1)  # its budget refills to the new capacity over the (1-slot) window
    env.ok([env.program.withdraw(user.key, user.token_account, MAX)], user.wallet)
    vault = env.vault(user.key)
    assert (vault.total_deposited, vault.total_withdrawn) == (MAX, MAX)

    donate(env, user, user.key, 1)
    env.deposit(user, 10 * USDT)  # absorbs the donation: total_deposited stays at MAX
    env.ok([env.program.withdraw(user.key, user.token_account, 5 * USDT)], user.wallet)
    vault = env.vault(user.key)
    assert (vault.total_deposited, vault.total_withdrawn, vault.total_balance) == (MAX, MAX, 5 * USDT + 1)

    # a settlement absorbing another donation on the payer's side
    receiver = env.user(0)  # the mint is at its u64 supply: nothing more can be minted
    env.ok([env.exchange.grant(user.key, 5 * USDT, env.now() + DAY)], user.wallet)
    env.lock(user, 5 * USDT)
    donate(env, user, user.key, 1)
    pair = SettlePair(user.key, receiver.key, 5 * USDT, env.next_op(user.key))
    result = env.operate(env.exchange.settle(env.operator.pubkey(), [pair]))
    assert [e.name for e in env.events(result)] == ["SurplusAbsorbed", "CollateralTransferred"]

    # and close: withdraw what is left, a donation lands, the close sweeps it
    env.ok([env.program.withdraw(user.key, user.token_account, 2)], user.wallet)
    donate(env, user, user.key, 1)
    env.ok([env.program.close_vault(user.key)], user.wallet)


def test_a_one_unit_donation_just_before_close_is_swept_to_the_owner() -> None:
    """Before: close_vault required an empty token account, so anyone could block every
    close with a 1-unit donation just before it. Now the surplus goes to the owner's token
    account as part of closing."""
    env = VaultEnv()
    user, griefer = env.user(), env.user(with_vault=False)
    env.deposit(user, 10 * USDT)
    env.ok([env.program.withdraw(user.key, user.token_account, 10 * USDT)], user.wallet)
    donate(env, griefer, user.key, 1)
    before = env.chain.token_amount(user.token_account)
    result = env.ok([env.program.close_vault(user.key)], user.wallet)
    [closed] = env.events(result)
    assert closed.name == "VaultClosed" and closed.fields["swept"] == 1
    assert env.chain.token_amount(user.token_account) == before + 1
    assert env.chain.svm.get_account(env.program.vault(user.key)) is None or \
        env.chain.lamports(env.program.vault(user.key)) == 0


def test_the_sweep_goes_only_to_the_owners_own_token_account() -> None:
    env = VaultEnv()
    user, griefer = env.user(), env.user(with_vault=False)
    donate(env, griefer, user.key, 1)
    for destination in (griefer.token_account, env.program.vault_token(user.key)):
        env.refused([env.program.close_vault(user.key, destination)], user.wallet, "InvalidTokenAccount",
                    program="vault")


def test_the_authority_is_recognised_by_its_address_not_only_its_contents() -> None:
    """Before: the VaultAuthority was recognised by owner, size and discriminator alone, so
    a look-alike account at another address (same contents with the pause lifted, or with
    another program listed) passed for it. Such an account can only exist if the program
    itself wrote one, but the check must not depend on that: it is now refused by address.
    (The look-alike is written with set_account, which a real cluster would not allow.)"""
    env = VaultEnv()
    user = env.user()
    env.deposit(user, 10 * USDT)
    env.ok([env.program.set_paused(env.admin.pubkey(), Pause.WITHDRAW)], env.admin)
    real = env.chain.account(env.program.authority)
    data = bytearray(bytes(real.data))
    data[8 + 96 + 1024 + 1] = 0  # pause_flags: nothing paused in the copy
    look_alike = Pubkey.new_unique()
    env.chain.svm.set_account(look_alike, Account(real.lamports, bytes(data), env.vault_id, False, 0))
    assert Authority.decode(bytes(data)).pause_flags == 0

    def with_authority(ix: Instruction) -> Instruction:
        return Instruction(ix.program_id, ix.data, [AccountMeta(look_alike, False, m.is_writable)
                                                    if m.pubkey == env.program.authority else m for m in ix.accounts])

    for ix in (env.program.withdraw(user.key, user.token_account, 1 * USDT), env.program.close_vault(user.key),
               env.program.release_orphaned_lock(user.key, env.pm_id)):
        env.refused([with_authority(ix)], user.wallet, "InvalidAuthority", program="vault")
    env.refused([with_authority(env.program.set_paused(env.admin.pubkey(), 0))], env.admin, "InvalidAuthority",
                program="vault")
    # the real one still governs
    env.refused([env.program.withdraw(user.key, user.token_account, 1 * USDT)], user.wallet, "OperationPaused",
                program="vault")
