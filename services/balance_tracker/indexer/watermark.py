"""The indexer cursor's slot as GetBalance reports it (`indexed_slot`): read from PostgreSQL
at most every `max_age` seconds, one read shared by every caller waiting for it. A reading
that is older is a lower slot, so an answer labelled with it claims less than it holds,
never more."""

from __future__ import annotations

import asyncio
import time

import asyncpg

from services.balance_tracker.store import read_cursor

MAX_AGE_SECONDS = 0.1


class CursorWatermark:
    def __init__(self, pool: asyncpg.Pool, cursor_name: str, max_age: float = MAX_AGE_SECONDS) -> None:
        self.pool = pool
        self.cursor_name = cursor_name
        self.max_age = max_age
        self._slot = 0
        self._read_at = float("-inf")
        self._reading: asyncio.Future[int] | None = None

    async def slot(self) -> int:
        if time.monotonic() - self._read_at < self.max_age:
            return self._slot
        if self._reading is None:
            self._reading = asyncio.ensure_future(self._read())
        # shielded: a caller giving up (deadline, cancel) does not cancel the others' read
        return await asyncio.shield(self._reading)

    async def _read(self) -> int:
        started = time.monotonic()
        try:
            cursor = await read_cursor(self.pool, self.cursor_name)
        finally:
            self._reading = None
        self._slot = cursor[0] if cursor else 0
        self._read_at = started
        return self._slot
