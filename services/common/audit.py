"""Appends to the audit log (who did what, when). Concurrent appends share one INSERT and one
commit (`coalesce.py`): under load the log costs a round trip per batch, not per entry.

An entry with an `entry_id` is written at most once: the INSERT skips an id the log already
holds for that owner (migration 006's unique index), so an outbox may deliver it again after
a crash or a lost answer (`audit_outbox.py`)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import asyncpg

from services.common.coalesce import Coalescer

MAX_BATCH = 500
_COLUMNS = "owner, actor, action, signature, details, entry_id"
_ONCE = "ON CONFLICT (owner, entry_id) WHERE entry_id IS NOT NULL DO NOTHING"
_ONE = f"INSERT INTO audit_log ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5::jsonb, $6) {_ONCE}"
_MANY = (f"INSERT INTO audit_log ({_COLUMNS}) "
         f"SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::text[]) {_ONCE}")


@dataclass(frozen=True)
class Entry:
    owner: str
    actor: str
    action: str
    signature: str | None
    details: str  # JSON
    entry_id: str | None = None  # stable id: the entry is stored once however often it is written

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        return cls(**data)


def entry(*, owner: str, actor: str, action: str, signature: str | None = None,
          details: dict[str, Any] | None = None, entry_id: str | None = None) -> Entry:
    return Entry(owner, actor, action, signature, json.dumps(details or {}, default=str), entry_id)


class AuditLog:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._append: Coalescer[Entry, None] = Coalescer(self._insert, MAX_BATCH)

    async def record(self, *, owner: str, actor: str, action: str, signature: str | None = None,
                     details: dict[str, Any] | None = None) -> None:
        """Returns once the entry is committed."""
        await self._append(entry(owner=owner, actor=actor, action=action, signature=signature, details=details))

    async def write(self, item: Entry) -> None:
        """Returns once `item` is committed (or, having an id, was already there)."""
        await self._append(item)

    async def _insert(self, entries: list[Entry]) -> list[None]:
        if len(entries) == 1:
            e = entries[0]
            await self.pool.execute(_ONE, e.owner, e.actor, e.action, e.signature, e.details, e.entry_id)
        else:
            await self.pool.execute(_MANY, [e.owner for e in entries], [e.actor for e in entries],
                                    [e.action for e in entries], [e.signature for e in entries],
                                    [e.details for e in entries], [e.entry_id for e in entries])
        return [None] * len(entries)
