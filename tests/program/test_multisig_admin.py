"""The vault's admin can be a multisig's address (issue 23, item 1): a PDA with no private key
whose signature arrives by CPI, as a Squads vault's does. `multisig_standin` (program/
multisig-standin, test-only) stands in for the multisig program: it signs with the PDA
`[b"multisig", member]` for whatever its member sends, without Squads' approvals (not
installable here). Real SVM, real collateral_vault: the PDA accepts the admin transfer, then
queues, cancels and tightens through CPI; other signers are refused."""

from __future__ import annotations

import pytest
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from localnet.svm import program_path
from localnet.vault_env import VaultEnv
from vault_client.vault_program import Pause

DELAY = 3_600
SEED = b"multisig"


class Multisig:
    """The stand-in deployed in ``env``, for one member."""

    def __init__(self, env: VaultEnv, member: Keypair, program_id: Pubkey | None = None) -> None:
        """Deploys the stand-in unless ``program_id`` (a deployed one) is given."""
        if program_id is None:
            program_id = Pubkey.new_unique()
            env.chain.svm.add_program(program_id, program_path("multisig_standin").read_bytes())
        self.program_id = program_id
        self.member = member
        self.address = Pubkey.find_program_address([SEED, bytes(member.pubkey())], self.program_id)[0]

    def wrap(self, ix: Instruction) -> Instruction:
        """``ix`` (built with this multisig's address as its first account, the admin) sent
        through the stand-in, which signs for the address by CPI."""
        assert ix.accounts[0].pubkey == self.address
        accounts = [AccountMeta(self.member.pubkey(), True, False), AccountMeta(self.address, False, False),
                    AccountMeta(ix.program_id, False, False), *ix.accounts[1:]]
        return Instruction(self.program_id, bytes(ix.data), accounts)


@pytest.fixture
def env() -> VaultEnv:
    env = VaultEnv()
    env.change_now(env.program.set_timelock_delay(env.admin.pubkey(), DELAY))
    return env


def test_a_pda_admin_signing_by_cpi_accepts_queues_cancels_and_tightens(env: VaultEnv) -> None:
    multisig = Multisig(env, env.chain.wallet())
    member, vaults = multisig.member, env.program
    env.ok([vaults.transfer_admin(env.admin.pubkey(), multisig.address)], env.admin)
    env.warp_seconds(DELAY)
    result = env.ok([multisig.wrap(vaults.accept_admin(multisig.address))], member)
    assert [e.name for e in env.events(result)] == ["ChangeExecuted", "AdminTransferAccepted"]
    assert env.authority().admin == multisig.address
    env.refused([vaults.set_paused(env.admin.pubkey(), Pause.ALL)], env.admin, "Unauthorized")  # the old key

    # queue a loosening change, then cancel it
    result = env.ok([multisig.wrap(vaults.add_authorized_program(multisig.address, env.rogue_pm_id))], member)
    [queued] = env.events(result)
    assert queued.name == "ChangeQueued" and queued.fields["admin"] == multisig.address
    result = env.ok([multisig.wrap(vaults.cancel_change(multisig.address, queued.fields["change_id"]))], member)
    assert env.events(result)[0].name == "ChangeCancelled" and env.authority().pending_changes == ()

    # tightening is instant
    env.ok([multisig.wrap(vaults.set_paused(multisig.address, Pause.WITHDRAW))], member)
    env.ok([multisig.wrap(vaults.remove_authorized_program(multisig.address, env.pm_id))], member)
    authority = env.authority()
    assert authority.pause_flags == Pause.WITHDRAW and authority.programs == []


def test_only_the_admins_pda_is_accepted(env: VaultEnv) -> None:
    multisig = Multisig(env, env.chain.wallet())
    env.ok([env.program.transfer_admin(env.admin.pubkey(), multisig.address)], env.admin)
    env.warp_seconds(DELAY)
    env.ok([multisig.wrap(env.program.accept_admin(multisig.address))], multisig.member)
    # another member's PDA of the same stand-in signs too, but is not the admin
    other = Multisig(env, env.chain.wallet(), multisig.program_id)
    env.refused([other.wrap(env.program.set_paused(other.address, Pause.ALL))], other.member, "Unauthorized")
    # the stand-in refuses a PDA that is not its member's (no signature for it)
    forged = Instruction(multisig.program_id, bytes(env.program.set_paused(multisig.address, Pause.ALL).data), [
        AccountMeta(other.member.pubkey(), True, False), AccountMeta(multisig.address, False, False),
        AccountMeta(env.program.program_id, False, False), AccountMeta(env.program.authority, False, True)])
    assert "InvalidSeeds" in str(env.fails([forged], other.member).err())
    assert env.authority().pause_flags == 0
