"""The withdrawals of the last `window` seconds, kept in memory and updated from the new events
of each pass (so a pass costs its new withdrawals, not a query over the window): per owner
and in total. Loaded once from the database when the monitor starts (the window's
withdrawals, by the index of withdrawals by block_time, migration 255)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

_LOAD = """
SELECT owner, signature, instruction_index, event_index, amount::text AS amount, COALESCE(block_time, indexed_at) AS at
FROM transactions WHERE kind = 'withdraw' AND block_time >= to_timestamp($1)
"""


@dataclass
class WithdrawalWindow:
    seconds: float
    _events: deque[tuple[float, str, int, str]] = field(default_factory=deque)  # (time, owner, amount, event id)
    _ids: set[str] = field(default_factory=set)
    by_owner: dict[str, int] = field(default_factory=dict)
    total: int = 0
    loaded: bool = False

    async def load(self, pool: asyncpg.Pool, now: float) -> None:
        for r in sorted(await pool.fetch(_LOAD, now - self.seconds), key=lambda r: r["at"]):
            self.add(r["at"], r["owner"], int(r["amount"]),
                     f"{r['signature']}:{r['instruction_index']}:{r['event_index']}")
        self.loaded = True

    def add(self, at: datetime, owner: str, amount: int, event_id: str) -> bool:
        """Counts a withdrawal once (False: already counted)."""
        if event_id in self._ids:
            return False
        self._ids.add(event_id)
        self._events.append((at.timestamp(), owner, amount, event_id))
        self.by_owner[owner] = self.by_owner.get(owner, 0) + amount
        self.total += amount
        return True

    def expire(self, now: float) -> None:
        """Forgets what is older than the window. Events are appended in commit order, which
        is close to time order: one that came late leaves when those before it have."""
        while self._events and self._events[0][0] < now - self.seconds:
            _, owner, amount, event_id = self._events.popleft()
            self._ids.discard(event_id)
            self.total -= amount
            left = self.by_owner[owner] - amount
            if left:
                self.by_owner[owner] = left
            else:
                del self.by_owner[owner]
