"""The indexer's check of each vault's event numbers (services/balance_tracker/indexer/gaps.py),
as pure bookkeeping: which event moves which vault row, where a vault stops at a gap, and
how it goes on after a repair. The end-to-end cases (localnet, the real indexer) are in
test_indexer_gaps.py."""

from __future__ import annotations

from services.balance_tracker.events import Balances, EventRow
from services.balance_tracker.indexer.gaps import SequenceGuard

B = Balances(1, 0, 1)


def event(owner: str, seq: int, slot: int, kind: str = "deposit", to: str | None = None,
          to_seq: int | None = None) -> EventRow:
    return EventRow(owner=owner, signature=f"{owner}-{seq}-{slot}", instruction_index=0, event_index=0, kind=kind,
                    amount=1, slot=slot, block_time=None, commitment="confirmed", balances=B, counterparty=to,
                    counterparty_balances=B if to else None, vault_seq=seq,
                    details={"to_seq": to_seq} if to_seq is not None else None)


def test_a_new_vault_starts_at_one_and_replays_are_not_folded_again() -> None:
    guard = SequenceGuard()
    batch = [event("a", 1, 10, "vault_initialized"), event("a", 2, 11), event("a", 3, 12)]
    assert guard.unknown(batch) == set(), "a vault_initialized needs no row"
    assert guard.check(batch) == [] and all(e.apply_owner for e in batch)
    replay = [event("a", 2, 11), event("a", 3, 12), event("a", 4, 13)]
    assert guard.check(replay) == []
    assert [e.apply_owner for e in replay] == [False, False, True]


def test_a_vault_without_a_row_whose_first_event_is_not_its_initialization_is_a_gap() -> None:
    guard = SequenceGuard()
    [gap] = guard.check([event("a", 2, 10)])
    assert (gap.expected, gap.seen) == (1, 2)


def test_a_gap_holds_the_vault_until_repaired_and_the_others_go_on() -> None:
    guard = SequenceGuard()
    guard.load({"a": (2, 10), "b": (5, 10)})
    batch = [event("a", 3, 11), event("a", 5, 12), event("b", 6, 12), event("a", 6, 13), event("b", 7, 14)]
    [gap] = guard.check(batch)
    assert (gap.owner, gap.expected, gap.seen, gap.signature, gap.after_slot) == ("a", 4, 5, "a-5-12", 11)
    assert [e.apply_owner for e in batch] == [True, False, True, False, True]
    assert guard.held["a"].max_slot == 13
    assert guard.check([event("a", 4, 11)]) == [] and "a" in guard.held, "held: even the missing event waits"
    # repaired from the chain's state at slot 20 (its number 8): events up to slot 20 are in it
    guard.repaired("a", 8, 20)
    later = [event("a", 7, 19), event("a", 8, 20), event("a", 9, 21)]
    assert guard.check(later) == [] and [e.apply_owner for e in later] == [False, False, True]
    [again] = guard.check([event("a", 11, 22)])
    assert (again.expected, again.seen) == (10, 11)


def test_a_transfer_checks_the_payer_and_the_receiver_each_against_its_own_numbers() -> None:
    guard = SequenceGuard()
    guard.load({"a": (3, 10), "b": (7, 10)})
    ok = event("a", 4, 11, "transfer", to="b", to_seq=8)
    assert guard.check([ok]) == [] and ok.apply_owner and ok.apply_counterparty
    receiver_gap = event("a", 5, 12, "transfer", to="b", to_seq=10)
    [gap] = guard.check([receiver_gap])
    assert (gap.owner, gap.expected, gap.seen) == ("b", 9, 10)
    assert receiver_gap.apply_owner and not receiver_gap.apply_counterparty, "the payer's side still moves"


def test_a_row_indexed_without_numbers_takes_the_next_as_it_comes() -> None:
    guard = SequenceGuard()
    guard.load({"a": (None, 10)})
    assert guard.check([event("a", 41, 11), event("a", 42, 12)]) == []
    [gap] = guard.check([event("a", 44, 13)])
    assert (gap.expected, gap.seen) == (43, 44)


def test_a_closed_vault_repaired_goes_on_with_its_next_initialization() -> None:
    guard = SequenceGuard()
    guard.load({"a": (3, 10)})
    guard.check([event("a", 6, 11)])
    guard.repaired("a", None, 15)  # no vault account there: closed
    reopened = [event("a", 1, 16, "vault_initialized"), event("a", 2, 17)]
    assert guard.check(reopened) == [] and all(e.apply_owner for e in reopened)


def test_a_snapshot_puts_back_what_a_check_changed() -> None:
    guard = SequenceGuard()
    guard.load({"a": (2, 10)})
    batch = [event("a", 4, 11)]
    snapshot = guard.snapshot(batch)
    assert guard.check(batch) and "a" in guard.held
    guard.restore(snapshot)
    assert "a" not in guard.held
    refetched = [event("a", 3, 11), event("a", 4, 11)]
    assert guard.check(refetched) == [] and all(e.apply_owner for e in refetched)


def test_a_forgotten_vault_is_read_again() -> None:
    guard = SequenceGuard(capacity=2)
    guard.load({"a": (1, 1), "b": (1, 1), "c": (1, 1)})
    assert guard.spilled and guard.unknown([event("a", 2, 2)]) == {"a"}
