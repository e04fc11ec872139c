"""Appends to the audit log (who did what, when). Concurrent appends share one INSERT and one
commit (`coalesce.py`): under load the log costs a round trip per batch, not per entry."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import asyncpg

from services.common.coalesce import Coalescer

MAX_BATCH = 500
_ONE = "INSERT INTO audit_log (owner, actor, action, signature, details) VALUES ($1, $2, $3, $4, $5::jsonb)"
_MANY = ("INSERT INTO audit_log (owner, actor, action, signature, details) "
         "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[])")


@dataclass(frozen=True)
class Entry:
    owner: str
    actor: str
    action: str
    signature: str | None
    details: str  # JSON


class AuditLog:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._append: Coalescer[Entry, None] = Coalescer(self._insert, MAX_BATCH)

    async def record(self, *, owner: str, actor: str, action: str, signature: str | None = None,
                     details: dict[str, Any] | None = None) -> None:
        """Returns once the entry is committed."""
        await self._append(Entry(owner, actor, action, signature, json.dumps(details or {}, default=str)))

    async def _insert(self, entries: list[Entry]) -> list[None]:
        if len(entries) == 1:
            e = entries[0]
            await self.pool.execute(_ONE, e.owner, e.actor, e.action, e.signature, e.details)
        else:
            await self.pool.execute(_MANY, [e.owner for e in entries], [e.actor for e in entries],
                                    [e.action for e in entries], [e.signature for e in entries],
                                    [e.details for e in entries])
        return [None] * len(entries)
