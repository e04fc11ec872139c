"""Concurrent calls that share round trips: group commit for any batched operation.

A call made while no batch of its kind is in flight goes out at once, alone, in the caller's
own task (no added latency or hand-off). Calls made while a batch is in flight wait for it
and then go out together, up to `max_batch` per round trip, one batch at a time. So under
light load every call is its own round trip, and as load rises (or the machine slows and
calls overlap more) each round trip carries more calls and the cost per call falls instead
of the queue growing.

`flush` gets the items of one batch and returns one result per item, in order: a value, or
an exception for that item alone. An exception raised by `flush` itself fails every item of
that batch."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Flush = Callable[[list[T]], Awaitable[Sequence[R | BaseException]]]


class Coalescer(Generic[T, R]):
    def __init__(self, flush: Flush[T, R], max_batch: int) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.flush = flush
        self.max_batch = max_batch
        self._busy = False
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def __call__(self, item: T) -> R:
        if self._busy:
            future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
            self._waiting.append((item, future))
            return await future
        self._busy = True
        try:
            results = await self.flush([item])
        finally:
            self._hand_on()
        _check_count(results, 1)
        result = results[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def _hand_on(self) -> None:
        """After a batch: the calls that gathered meanwhile go out, else nothing is in flight."""
        if self._waiting:
            self._drainer = asyncio.get_running_loop().create_task(self._drain())
        else:
            self._busy = False

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:self.max_batch], self._waiting[self.max_batch:]
                try:
                    results = await self.flush([item for item, _ in batch])
                    _check_count(results, len(batch))
                except BaseException as exc:  # the whole batch failed (cancellation included)
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():  # its caller was cancelled meanwhile
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._drainer = None
            for _, future in self._waiting:  # only if cancelled: nothing may wait forever
                if not future.done():
                    future.set_exception(asyncio.CancelledError())
            self._waiting = []
            self._busy = False


def _check_count(results: Sequence[object], expected: int) -> None:
    if len(results) != expected:
        raise RuntimeError(f"a batch of {expected} got {len(results)} results")
