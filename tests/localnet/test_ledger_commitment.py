"""Account reads at a commitment see the state of that slot: the Ledger keeps a
before-image of every changed account until its slot is final (real LiteSVM, in-process)."""

from __future__ import annotations

from solders.keypair import Keypair
from solders.pubkey import Pubkey

from localnet.ledger import Ledger

SOL = 10**9


def lamports(ledger: Ledger, key: Pubkey, commitment: str) -> int | None:
    account = ledger.get_account(key, commitment)
    return None if account is None else account.lamports


def test_reads_follow_commitment_through_several_changed_slots() -> None:
    ledger = Ledger(finality_depth=3)
    for _ in range(5):
        ledger.advance_slot()
    key = Keypair().pubkey()
    created = ledger.slot
    ledger.airdrop(key, 1 * SOL)  # created in this slot
    ledger.advance_slot()
    ledger.airdrop(key, 2 * SOL)
    ledger.airdrop(key, 4 * SOL)  # two changes in one slot: reads before it see neither
    ledger.advance_slot()
    ledger.airdrop(key, 8 * SOL)

    assert lamports(ledger, key, "processed") == 15 * SOL
    assert lamports(ledger, key, "confirmed") == 7 * SOL  # the previous slot's state
    assert ledger.commitment_slot("finalized") < created
    assert lamports(ledger, key, "finalized") is None  # not yet created in a final slot

    ledger.advance_slot()
    assert lamports(ledger, key, "confirmed") == 15 * SOL
    assert lamports(ledger, key, "finalized") == 1 * SOL  # the slot it was created in is final
    ledger.advance_slot()
    assert lamports(ledger, key, "finalized") == 7 * SOL
    for _ in range(2):
        ledger.advance_slot()
    assert lamports(ledger, key, "finalized") == 15 * SOL
    assert str(key) not in ledger.before_images  # every change is final: nothing kept


def test_program_accounts_at_finalized_omit_an_account_created_since() -> None:
    ledger = Ledger(finality_depth=2)
    for _ in range(3):
        ledger.advance_slot()
    key = Keypair().pubkey()
    ledger.airdrop(key, SOL)
    system_owned = [k for k, _ in ledger.program_accounts(Pubkey.default(), "finalized")]
    assert key not in system_owned
    assert key in [k for k, _ in ledger.program_accounts(Pubkey.default(), "processed")]
