"""vault_manager's in-process view of vault state: the answers GetVault serves from memory,
and for each owner the newest slot at which this process knows the vault changed.

What it learns from: its own programSubscribe (every vault change, as it happens), reads
from Redis or the chain, and the transactions it submitted (the slot each landed in). The
rule it enforces: no answer older than the newest slot known for that owner, so a caller
that submitted through this process reads its own write, and a Redis entry that the indexer
has not yet brought up to date is passed over for the chain.

Answers are served from memory for `ttl` seconds after they were last confirmed; after a
reconnect of the subscription every answer is expired at once (changes may have been missed
while it was down), while the known slots stay.

Slots order states only between slots: at `processed`, several changes of one vault can
share a slot. So a submission's landing drops the answer held even from its own slot, and a
Redis entry from that slot is passed over. A notification the node sent before the
submission landed but that is read after it can still set the older answer, until the
submission's own notification, right behind it, replaces it.

Each owner's entry is a plain tuple of strings, numbers and the answer's serialized bytes,
replaced whole on each change, never an object with attributes or a held protobuf message:
the cyclic garbage collector stops tracking such a tuple the first time it examines it, so a
full collection does not walk 100,000 entries. With attribute objects holding messages it
did: a full collection took 38 ms at 100,000 owners against 2.5 ms at 10,000 (now 0.01 ms
at both), and a GetVault or ListVaults call arriving meanwhile waited that long (issue 25;
measured by `python -m services.vault_manager.perf_mirror_gc`). Parsing an answer back
costs a few microseconds per call."""

from __future__ import annotations

import itertools
import time

from collateral_vault.v1 import common_pb2, vault_manager_pb2
from solders.pubkey import Pubkey

from services.common.convert import vault_message
from vault_client.vault_program import Vault, VaultProgram

MAX_OWNERS = 100_000  # beyond this, the owners least recently changed or read are dropped first

# An owner's entry (module docstring): the vault's address (its PDA), when the answer was last
# confirmed, the answer's slot, the answer (a serialized GetVaultResponse, or None), the newest
# slot the vault is known to have changed at, the newest slot a transaction this process
# submitted landed at.
Entry = tuple[str, float, int, bytes | None, int, int]
_NEW = ("", 0.0, -1, None, -1, -1)


class VaultMirror:
    def __init__(self, program: VaultProgram, ttl: float, max_owners: int = MAX_OWNERS) -> None:
        self.program = program
        self.ttl = ttl
        self.max_owners = max_owners
        self._entries: dict[str, Entry] = {}  # by owner, least recently touched first
        self._owners: dict[str, str] = {}  # vault address -> owner, for the entries held
        self._expired_at = float("-inf")  # answers confirmed at or before this are expired

    def answer(self, owner: str) -> vault_manager_pb2.GetVaultResponse | None:
        """The answer held for `owner` if it is recent and no newer change is known."""
        entry = self._entries.get(owner)
        if entry is None:
            return None
        _, seen_at, answer_slot, answer, known_slot, _ = entry
        if answer is None or answer_slot < known_slot or seen_at <= self._expired_at \
                or time.monotonic() - seen_at >= self.ttl:
            return None
        return vault_manager_pb2.GetVaultResponse.FromString(answer)

    def current(self, owner: str, slot: int) -> bool:
        """Whether a state another process stored at `slot` (a Redis entry) is at least as new
        as what is known. One stored at the slot of this process's own latest submission may
        come from earlier in that slot, before the submission, so it must be newer still."""
        entry = self._entries.get(owner)
        return entry is None or (slot >= entry[4] and slot > entry[5])

    def remember(self, vault: Vault, slot: int) -> vault_manager_pb2.GetVaultResponse | None:
        """A state of a vault at `slot`, from a notification or a read; the answer now held
        for it (None if an answer from a newer slot is held)."""
        key, (address, _, answer_slot, _, known_slot, landed_slot) = self._touch(vault.owner)
        if slot < answer_slot:
            return None
        answer = vault_manager_pb2.GetVaultResponse(
            vault=vault_message(vault, address, slot, common_pb2.DATA_SOURCE_CACHE))
        self._entries[key] = (address, time.monotonic(), slot, answer.SerializeToString(), max(known_slot, slot),
                              landed_slot)
        return answer

    def landed(self, owner: Pubkey, slot: int) -> None:
        """A transaction this process submitted changed `owner`'s vault at `slot`: the answer
        held may have been taken earlier in that slot, so it goes; the next comes from a read
        made after the landing, or a notification."""
        key, (address, seen_at, answer_slot, answer, known_slot, landed_slot) = self._touch(owner)
        if slot >= answer_slot:
            answer_slot, answer = slot, None
        self._entries[key] = (address, seen_at, answer_slot, answer, max(known_slot, slot), max(landed_slot, slot))

    def closed(self, address: str, slot: int) -> None:
        """The vault at `address` was closed at `slot` (its notification names only the address)."""
        owner = self._owners.get(address)
        entry = self._entries.get(owner) if owner is not None else None
        if owner is not None and entry is not None and slot >= entry[2]:
            self._entries[owner] = (address, entry[1], slot, None, max(entry[4], slot), entry[5])

    def expire(self) -> None:
        """Every held answer expires now (the known slots stay); one assignment, however
        many owners are held."""
        self._expired_at = time.monotonic()

    def _touch(self, owner: Pubkey) -> tuple[str, Entry]:
        """The owner's key and entry, now the most recently touched (created if new); the
        caller stores the entry's next value under the key."""
        key = str(owner)
        entry = self._entries.pop(key, None)
        if entry is None:
            address = str(self.program.vault(owner))
            entry = (address, *_NEW[1:])
            if len(self._entries) >= self.max_owners:
                for stale in list(itertools.islice(self._entries, max(1, self.max_owners // 10))):
                    del self._owners[self._entries.pop(stale)[0]]
            self._owners[address] = key
        self._entries[key] = entry
        return key, entry
