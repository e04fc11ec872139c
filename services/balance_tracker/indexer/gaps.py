"""Gap detection over each vault's event numbers (docs/indexer-gaps.md), pure bookkeeping.

Every vault event carries the vault's own number (`seq`; a transfer `from_seq` for the
payer and `to_seq` for the receiver): 1 for `VaultInitialized`, then one more per event.
The indexer keeps, per vault, the number of the last event folded into its row
(vaults.event_seq) and checks each event side against it, in order:

* seq <= last, or a slot at or below a repair's slot: the row has it already (a replay, or
  a repair from the chain's state covered it): stored, not folded again;
* seq == last + 1 (or 1 for a vault_initialized): folded;
* seq > last + 1: a gap. The vault is *held*: this event and every later one of the vault
  are stored but not folded, so its row stays at the last good event until the gap is
  repaired (`repaired`), which sets where the vault goes on from.

The authority's admin events are numbered the same way (`AdminSequence`); a gap there only
raises an alert: admin events move no balance.

The guard runs ahead of the write pipeline (a batch is checked when it is submitted), so it
must be reset whenever the pipeline abandons batches (`reset`)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, replace

from services.balance_tracker.events import ADMIN_EVENTS, AdminEvent, EventRow
from services.balance_tracker.store import to_seq

DEFAULT_CAPACITY = 250_000  # vaults whose last number is remembered (others are read again)


@dataclass(frozen=True)
class Gap:
    owner: str
    expected: int
    seen: int
    signature: str  # the transaction of the event after the gap
    slot: int  # its slot
    after_slot: int  # the slot of the vault's last good event (the missing ones are between)

    @property
    def key(self) -> str:
        return f"sequence_gap:{self.owner}:{self.expected}:{self.seen}"


@dataclass
class _Vault:
    seq: int | None  # the last folded number (None: not known, the next is taken as it is)
    slot: int = 0  # the last folded event's slot
    floor: int = -1  # events at or below this slot are in the row (a repair read the chain there)


@dataclass
class Held:
    gap: Gap
    max_slot: int  # the latest slot of the vault's events held since


class SequenceGuard:
    """Per vault: the last folded number, and the vaults held at a gap."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._vaults: OrderedDict[str, _Vault] = OrderedDict()
        self.held: dict[str, Held] = {}
        # once a vault was forgotten, a row read from the database may lag batches in
        # flight: the caller then waits for them before reading (see `must_drain`)
        self.spilled = False

    def reset(self) -> None:
        self._vaults.clear()
        self.held.clear()
        self.spilled = False

    def snapshot(self, events: Iterable[EventRow]) -> dict[str, tuple[_Vault | None, Held | None]]:
        """What the guard knows of the vaults of `events` (`restore` puts it back)."""
        return {owner: (replace(v) if (v := self._vaults.get(owner)) else None,
                        replace(h) if (h := self.held.get(owner)) else None)
                for owner in _vaults_of(events)}

    def restore(self, snapshot: dict[str, tuple[_Vault | None, Held | None]]) -> None:
        for owner, (state, held) in snapshot.items():
            self._vaults.pop(owner, None)
            self.held.pop(owner, None)
            if state is not None:
                self._remember(owner, state)
            if held is not None:
                self.held[owner] = held

    def unknown(self, events: Iterable[EventRow]) -> set[str]:
        """The vaults of `events` whose last number must be read from the database."""
        owners: set[str] = set()
        initialized: set[str] = set()  # a vault initialized earlier in the batch needs no row
        for event in events:
            if event.balances is None:
                continue
            if event.kind == "vault_initialized":
                initialized.add(event.owner)
            sides = [event.owner]
            if event.counterparty and event.counterparty_balances is not None:
                sides.append(event.counterparty)
            owners.update(o for o in sides if o not in initialized and o not in self._vaults and o not in self.held)
        return owners

    def load(self, rows: dict[str, tuple[int | None, int]]) -> None:
        """The database's (event_seq, last_slot) of vaults; a vault without a row is new."""
        for owner, (seq, slot) in rows.items():
            self._remember(owner, _Vault(seq, slot))

    def check(self, events: list[EventRow]) -> list[Gap]:
        """Marks which side of each event is folded (`apply_owner`, `apply_counterparty`);
        returns the gaps found now (their vaults are held)."""
        gaps: list[Gap] = []
        for event in events:
            if event.balances is None:
                continue
            event.apply_owner = self._side(event.owner, event.vault_seq, event, event.kind == "vault_initialized",
                                           gaps)
            if event.counterparty and event.counterparty_balances is not None:
                event.apply_counterparty = self._side(event.counterparty, to_seq(event), event, False, gaps)
        return gaps

    def repaired(self, owner: str, seq: int | None, slot: int) -> None:
        """The vault's row was set from the chain's state at `slot` (its number `seq`; None:
        no vault there): it goes on from there, no longer held."""
        self.held.pop(owner, None)
        self._remember(owner, _Vault(seq if seq is not None else 0, slot, slot))

    def resume(self, owner: str, seq: int, slot: int) -> None:
        """The missing events were found and folded: the vault goes on after `seq`."""
        self.held.pop(owner, None)
        self._remember(owner, _Vault(seq, slot))

    def _side(self, owner: str, seq: int | None, event: EventRow, initializes: bool, gaps: list[Gap]) -> bool:
        held = self.held.get(owner)
        if held is not None:
            held.max_slot = max(held.max_slot, event.slot)
            return False
        state = self._vaults.get(owner)
        if state is not None:
            self._vaults.move_to_end(owner)
        if seq is None:  # an event without a number (never from this program version): as before
            return True
        if state is not None and event.slot <= state.floor:
            return False  # the repair's state has it
        if initializes:
            expected = 1
        elif state is None:
            expected = 1  # no row: the vault's first event must be its initialization
        elif state.seq is None:
            expected = seq  # a row indexed without numbers: start from what comes
        else:
            if seq <= state.seq:
                return False  # in the row already (a replay)
            expected = state.seq + 1
        if seq != expected:
            gap = Gap(owner, expected, seq, event.signature, event.slot, state.slot if state else 0)
            self.held[owner] = Held(gap, event.slot)
            self._vaults.pop(owner, None)
            gaps.append(gap)
            return False
        self._remember(owner, _Vault(seq, event.slot, state.floor if state and not initializes else -1))
        return True

    def _remember(self, owner: str, state: _Vault) -> None:
        self._vaults[owner] = state
        self._vaults.move_to_end(owner)
        while len(self._vaults) > self.capacity:
            self._vaults.popitem(last=False)
            self.spilled = True


def _vaults_of(events: Iterable[EventRow]) -> set[str]:
    owners: set[str] = set()
    for event in events:
        if event.balances is not None:
            owners.add(event.owner)
            if event.counterparty and event.counterparty_balances is not None:
                owners.add(event.counterparty)
    return owners


@dataclass(frozen=True)
class AdminGap:
    expected: int
    seen: int
    signature: str
    name: str

    @property
    def key(self) -> str:
        return f"admin_sequence_gap:{self.expected}:{self.seen}"


@dataclass
class AdminSequence:
    """The VaultAuthority's admin event numbers (alert only)."""

    last: int | None = None  # None: not known, the next is taken as it is

    def check(self, events: list[AdminEvent]) -> list[AdminGap]:
        gaps: list[AdminGap] = []
        for event in events:
            if event.name not in ADMIN_EVENTS or "seq" not in event.details:
                continue
            seq = int(event.details["seq"])
            if self.last is not None and seq <= self.last:
                continue  # a replay
            if event.name == "AuthorityInitialized":
                expected = 1
            else:
                expected = seq if self.last is None else self.last + 1
            if seq != expected:
                gaps.append(AdminGap(expected, seq, event.signature, event.name))
            self.last = seq
        return gaps
