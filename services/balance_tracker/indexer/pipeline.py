"""Ordered, overlapped batch writes.

Writing a batch is two phases: insert its events (COPY), then fold vault rows, move the
cursor and commit. One at a time, the client encodes while PostgreSQL waits and the other
way round. The pipeline keeps up to `depth` batches in flight, each in its own transaction
on its own connection: batch N+1 inserts its events while batch N folds and commits, and
N+1's second phase starts only after N has committed. So:

* vault rows and the cursor change in batch order (a batch's absolute balances are never
  overwritten by an older batch's);
* if a batch fails, every later one fails before its second phase (it waits on the failed
  one) and rolls back: nothing after a failed batch is committed;
* batches that share an event key never overlap (the later one would wait inside
  PostgreSQL on the earlier one's uncommitted row): such a batch waits for the earlier
  batch to finish before it starts.

Failures of PostgreSQL are retried by the caller (`retry`), per batch, in order: a batch's
retry loop runs inside its own task, and a later batch waits for that task.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from services.balance_tracker.events import AdminEvent, EventRow
from services.balance_tracker.store import Fence, write_batch
from vault_client.vault_program import VaultProgram

# Batches in flight: two already overlap one batch's insert with the previous one's commit;
# a third keeps both cores busy while a batch waits for its turn (bench/bench_indexer.py).
DEFAULT_DEPTH = 3

Result = tuple[list[EventRow], list[Any]]
Retry = Callable[[Callable[[], Awaitable[Result]]], Awaitable[Result]]
OnCommit = Callable[[Result, tuple[int, str] | None], Awaitable[None]]


@dataclass
class _InFlight:
    task: asyncio.Task[Result]
    keys: set[tuple[str, int, int]]


async def _once(action: Callable[[], Awaitable[Result]]) -> Result:
    return await action()


@dataclass
class WritePipeline:
    """Submit batches in order with `submit`; `on_commit` is called for each, in order,
    right after it commits (before any later batch's results). `drain` waits for all."""

    pool: asyncpg.Pool
    program: VaultProgram
    cursor_name: str
    depth: int = DEFAULT_DEPTH
    retry: Retry = _once
    on_commit: OnCommit | None = None
    before_write: Callable[[], Awaitable[None]] | None = None
    fence: Fence | None = None  # (lease name, term) every batch is written under (store.write_batch)
    _in_flight: deque[_InFlight] = field(default_factory=deque, init=False)
    _cancelled: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if self.depth < 1:
            raise ValueError("depth must be at least 1")

    async def submit(self, events: list[EventRow], admin: list[AdminEvent],
                     cursor: tuple[int, str] | None) -> asyncio.Task[Result]:
        """Starts writing a batch once a slot is free; returns its task (its result is the
        new events and the vault rows they changed). Raises the error of a failed earlier
        batch."""
        keys = {e.key for e in events}
        while self._in_flight and (len(self._in_flight) >= self.depth
                                   or any(keys & f.keys for f in self._in_flight)):
            await self._finish_oldest()
        previous = self._in_flight[-1].task if self._in_flight else None
        task = asyncio.create_task(self._write(events, admin, cursor, previous))
        self._in_flight.append(_InFlight(task, keys))
        return task

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def settled(self) -> bool:
        """Whether every batch submitted has finished (committed and its `on_commit` done, or
        failed), so no commit waits for its effects; never again once cancelled (a batch
        abandoned there may have committed without them)."""
        return not self._cancelled and all(flight.task.done() for flight in self._in_flight)

    async def settle(self, timeout: float) -> None:
        """Waits up to `timeout` for the oldest batch in flight to finish; returns at once
        when none is. Never raises: a failure surfaces at the next `submit` or `drain`."""
        if self._in_flight:
            await asyncio.wait({self._in_flight[0].task}, timeout=timeout)

    async def drain(self) -> None:
        """Waits until every submitted batch has committed (raises the first failure)."""
        while self._in_flight:
            await self._finish_oldest()

    def cancel(self) -> None:
        """Abandons the batches in flight (they roll back, or those committed already go without
        their `on_commit`)."""
        self._cancelled = True
        for flight in self._in_flight:
            flight.task.cancel()
        self._in_flight.clear()

    async def _finish_oldest(self) -> None:
        flight = self._in_flight[0]
        try:
            await asyncio.shield(flight.task)
        except BaseException:
            self.cancel()
            raise
        if self._in_flight and self._in_flight[0] is flight:  # another drain (a repair's) may have popped it
            self._in_flight.popleft()

    async def _write(self, events: list[EventRow], admin: list[AdminEvent], cursor: tuple[int, str] | None,
                     previous: asyncio.Task[Result] | None) -> Result:
        async def attempt() -> Result:
            if self.before_write is not None:
                await self.before_write()
            if previous is not None and previous.done():
                previous.result()  # a failed predecessor fails this batch too
            async with self.pool.acquire() as conn:
                return await write_batch(conn, self.program, self.cursor_name, events, admin, cursor,
                                         None if previous is None or previous.done()
                                         else lambda: _committed(previous), self.fence)

        result = await self.retry(attempt)
        if self.on_commit is not None:
            await self.on_commit(result, cursor)
        return result


async def _committed(previous: asyncio.Task[Result]) -> None:
    """Waits for the previous batch (committed and its `on_commit` done) without cancelling
    it when this batch is cancelled."""
    await asyncio.shield(previous)
