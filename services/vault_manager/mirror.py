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
submission's own notification, right behind it, replaces it."""

from __future__ import annotations

import itertools
import time

from collateral_vault.v1 import common_pb2, vault_manager_pb2
from solders.pubkey import Pubkey

from services.common.convert import vault_message
from vault_client.vault_program import Vault, VaultProgram

MAX_OWNERS = 100_000  # beyond this, the owners least recently changed or read are dropped first


class _Entry:
    __slots__ = ("address", "answer", "answer_slot", "known_slot", "landed_slot", "seen_at")

    def __init__(self, address: Pubkey) -> None:
        self.address = address  # the vault's PDA
        self.seen_at = 0.0  # when the answer was last confirmed
        self.answer_slot = -1
        self.answer: vault_manager_pb2.GetVaultResponse | None = None
        self.known_slot = -1  # the newest slot the vault is known to have changed at
        self.landed_slot = -1  # the newest slot a transaction this process submitted landed at


class VaultMirror:
    def __init__(self, program: VaultProgram, ttl: float, max_owners: int = MAX_OWNERS) -> None:
        self.program = program
        self.ttl = ttl
        self.max_owners = max_owners
        self._entries: dict[str, _Entry] = {}  # by owner, least recently touched first
        self._owners: dict[str, str] = {}  # vault address -> owner, for the entries held

    def answer(self, owner: str) -> vault_manager_pb2.GetVaultResponse | None:
        """The answer held for `owner` if it is recent and no newer change is known."""
        entry = self._entries.get(owner)
        if entry is None or entry.answer_slot < entry.known_slot or time.monotonic() - entry.seen_at >= self.ttl:
            return None
        return entry.answer

    def current(self, owner: str, slot: int) -> bool:
        """Whether a state another process stored at `slot` (a Redis entry) is at least as new
        as what is known. One stored at the slot of this process's own latest submission may
        come from earlier in that slot, before the submission, so it must be newer still."""
        entry = self._entries.get(owner)
        return entry is None or (slot >= entry.known_slot and slot > entry.landed_slot)

    def remember(self, vault: Vault, slot: int) -> vault_manager_pb2.GetVaultResponse | None:
        """A state of a vault at `slot`, from a notification or a read; the answer now held
        for it (None if an answer from a newer slot is held)."""
        entry = self._touch(vault.owner)
        if slot < entry.answer_slot:
            return None
        entry.known_slot = max(entry.known_slot, slot)
        entry.seen_at, entry.answer_slot = time.monotonic(), slot
        entry.answer = vault_manager_pb2.GetVaultResponse(
            vault=vault_message(vault, entry.address, slot, common_pb2.DATA_SOURCE_CACHE))
        return entry.answer

    def landed(self, owner: Pubkey, slot: int) -> None:
        """A transaction this process submitted changed `owner`'s vault at `slot`: the answer
        held may have been taken earlier in that slot, so it goes; the next comes from a read
        made after the landing, or a notification."""
        entry = self._touch(owner)
        if slot >= entry.answer_slot:
            entry.answer_slot, entry.answer = slot, None
        entry.known_slot = max(entry.known_slot, slot)
        entry.landed_slot = max(entry.landed_slot, slot)

    def closed(self, address: str, slot: int) -> None:
        """The vault at `address` was closed at `slot` (its notification names only the address)."""
        owner = self._owners.get(address)
        entry = self._entries.get(owner) if owner is not None else None
        if entry is not None and slot >= entry.answer_slot:
            entry.known_slot, entry.answer_slot, entry.answer = max(entry.known_slot, slot), slot, None

    def expire(self) -> None:
        """Every held answer expires now (the known slots stay)."""
        for entry in self._entries.values():
            entry.seen_at = 0.0

    def _touch(self, owner: Pubkey) -> _Entry:
        """The owner's entry, now the most recently touched (created if new)."""
        key = str(owner)
        entry = self._entries.pop(key, None)
        if entry is None:
            entry = _Entry(self.program.vault(owner))
            if len(self._entries) >= self.max_owners:
                for stale in list(itertools.islice(self._entries, max(1, self.max_owners // 10))):
                    del self._owners[str(self._entries.pop(stale).address)]
            self._owners[str(entry.address)] = key
        self._entries[key] = entry
        return entry
