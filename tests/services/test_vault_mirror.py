"""vault_manager's in-process mirror: an answer is served only while it is recent and no newer
change is known (from a notification, a read or one of its own submissions), a closed vault's
answer goes with it, a reconnect expires every answer but forgets no known slot, and the
number of owners held is bounded."""

from __future__ import annotations

import time

from collateral_vault.v1 import common_pb2
from solders.pubkey import Pubkey

from services.vault_manager.mirror import VaultMirror
from vault_client.vault_program import Vault, VaultProgram

PROGRAM = VaultProgram(Pubkey.new_unique())


def vault(owner: Pubkey, total: int) -> Vault:
    return Vault(owner=owner, token_account=Pubkey.new_unique(), total_balance=total, locked_balance=0,
                 available_balance=total, total_deposited=total, total_withdrawn=0, created_at=1_700_000_000,
                 bump=254)


def held_total(mirror: VaultMirror, owner: Pubkey) -> int | None:
    answer = mirror.answer(str(owner))
    return None if answer is None else answer.vault.total_balance


def test_an_answer_is_served_while_recent_and_then_expires() -> None:
    mirror, owner = VaultMirror(PROGRAM, ttl=0.05), Pubkey.new_unique()
    assert mirror.answer(str(owner)) is None and mirror.current(str(owner), 0)
    mirror.remember(vault(owner, 10), 5)
    answer = mirror.answer(str(owner))
    assert answer is not None and answer.vault.total_balance == 10 and answer.vault.slot == 5
    assert answer.vault.source == common_pb2.DATA_SOURCE_CACHE and answer.vault.address == str(PROGRAM.vault(owner))
    time.sleep(0.06)
    assert mirror.answer(str(owner)) is None
    mirror.remember(vault(owner, 10), 5)  # the same state confirmed again (by a read) is served again
    assert held_total(mirror, owner) == 10


def test_an_older_state_never_replaces_a_newer_one() -> None:
    mirror, owner = VaultMirror(PROGRAM, ttl=60), Pubkey.new_unique()
    held = mirror.remember(vault(owner, 10), 5)
    assert held is not None and held == mirror.answer(str(owner)) and held.vault.total_balance == 10
    assert mirror.remember(vault(owner, 7), 4) is None
    assert held_total(mirror, owner) == 10
    assert not mirror.current(str(owner), 4) and mirror.current(str(owner), 5) and mirror.current(str(owner), 6)


def test_a_landed_submission_outranks_every_older_answer() -> None:
    mirror, owner = VaultMirror(PROGRAM, ttl=60), Pubkey.new_unique()
    mirror.remember(vault(owner, 10), 5)
    mirror.landed(owner, 8)  # our deposit landed at slot 8; its notification has not come yet
    assert mirror.answer(str(owner)) is None  # not the pre-deposit answer
    assert not mirror.current(str(owner), 7)  # nor a Redis entry the indexer has not updated
    assert not mirror.current(str(owner), 8)  # nor one from earlier in the deposit's own slot
    assert mirror.current(str(owner), 9)
    mirror.remember(vault(owner, 11), 7)  # a read at an older slot does not satisfy it either
    assert mirror.answer(str(owner)) is None
    mirror.remember(vault(owner, 12), 8)  # the notification, or a read made after the landing
    assert held_total(mirror, owner) == 12
    mirror.landed(owner, 3)  # an older landing changes nothing
    assert held_total(mirror, owner) == 12


def test_a_landing_drops_an_answer_from_earlier_in_its_own_slot() -> None:
    mirror, owner = VaultMirror(PROGRAM, ttl=60), Pubkey.new_unique()
    mirror.remember(vault(owner, 10), 8)  # read at slot 8, before our transaction in slot 8
    mirror.landed(owner, 8)
    assert mirror.answer(str(owner)) is None and not mirror.current(str(owner), 8)
    mirror.remember(vault(owner, 15), 8)
    assert held_total(mirror, owner) == 15


def test_a_closed_vault_is_no_longer_answered() -> None:
    mirror, owner, other = VaultMirror(PROGRAM, ttl=60), Pubkey.new_unique(), Pubkey.new_unique()
    mirror.remember(vault(owner, 0), 5)
    mirror.remember(vault(other, 3), 5)
    mirror.closed(str(PROGRAM.vault(owner)), 4)  # an older notification: ignored
    assert held_total(mirror, owner) == 0
    mirror.closed(str(PROGRAM.vault(owner)), 6)
    assert mirror.answer(str(owner)) is None and not mirror.current(str(owner), 5)
    assert held_total(mirror, other) == 3
    mirror.closed(str(Pubkey.new_unique()), 7)  # a vault it never held: nothing to do
    mirror.remember(vault(owner, 0), 9)  # reopened
    assert held_total(mirror, owner) == 0


def test_a_reconnect_expires_answers_but_keeps_known_slots() -> None:
    mirror, owner = VaultMirror(PROGRAM, ttl=60), Pubkey.new_unique()
    mirror.remember(vault(owner, 10), 5)
    mirror.expire()
    assert mirror.answer(str(owner)) is None and not mirror.current(str(owner), 4)
    mirror.remember(vault(owner, 10), 5)
    assert held_total(mirror, owner) == 10


def test_the_number_of_owners_is_bounded_least_recently_touched_first() -> None:
    mirror = VaultMirror(PROGRAM, ttl=60, max_owners=10)
    owners = [Pubkey.new_unique() for _ in range(12)]
    for slot, owner in enumerate(owners[:10]):
        mirror.remember(vault(owner, slot), slot)
    mirror.landed(owners[0], 100)  # touched again: now the most recent
    mirror.remember(vault(owners[10], 1), 1)  # the 11th owner drops the least recently touched (owners[1])
    assert not mirror.current(str(owners[0]), 99)  # still known
    assert mirror.current(str(owners[1]), 0) and mirror.answer(str(owners[1])) is None  # dropped
    assert held_total(mirror, owners[2]) == 2
    mirror.closed(str(PROGRAM.vault(owners[1])), 50)  # a dropped owner's address is forgotten too
    assert mirror.current(str(owners[1]), 0)
    assert len(mirror._entries) == len(mirror._owners) == 10
