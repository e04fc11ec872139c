"""The coalescer behind the services' shared round trips: a lone call goes out at once and
alone, calls that overlap one in flight go out together (within the batch limit, in order),
each caller gets its own result or its own error, a failed batch fails only its callers, and
a caller that gives up leaves the others unharmed."""

from __future__ import annotations

import asyncio

import pytest

from services.common.coalesce import Coalescer


class Recorder:
    """A flush that records its batches and holds each until released."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def flush(self, items: list[int]) -> list[int | BaseException]:
        self.batches.append(list(items))
        await self.gate.wait()
        return [ValueError(f"odd {i}") if i < 0 else i * 10 for i in items]


async def test_a_lone_call_goes_out_at_once_and_alone() -> None:
    recorder = Recorder()
    coalesce = Coalescer(recorder.flush, 10)
    assert [await coalesce(1), await coalesce(2)] == [10, 20]
    assert recorder.batches == [[1], [2]]


async def test_calls_overlapping_one_in_flight_go_out_together_in_order() -> None:
    recorder = Recorder()
    coalesce = Coalescer(recorder.flush, 4)
    recorder.gate.clear()
    first = asyncio.create_task(coalesce(0))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(coalesce(i)) for i in range(1, 11)]
    await asyncio.sleep(0.01)
    assert recorder.batches == [[0]]  # the others wait for the batch in flight
    recorder.gate.set()
    assert await first == 0 and [await task for task in rest] == [i * 10 for i in range(1, 11)]
    assert recorder.batches == [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]
    assert await coalesce(11) == 110 and recorder.batches[-1] == [11]  # idle again: alone


async def test_each_caller_gets_its_own_error() -> None:
    recorder = Recorder()
    coalesce = Coalescer(recorder.flush, 10)
    recorder.gate.clear()
    tasks = [asyncio.create_task(coalesce(i)) for i in (1, 2, -3, 4)]
    await asyncio.sleep(0.01)
    recorder.gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results[0] == 10 and results[1] == 20 and results[3] == 40
    assert isinstance(results[2], ValueError) and str(results[2]) == "odd -3"
    with pytest.raises(ValueError, match="odd -5"):
        await coalesce(-5)


async def test_a_failed_batch_fails_only_its_callers() -> None:
    calls: list[list[int]] = []
    gate = asyncio.Event()

    async def flush(items: list[int]) -> list[int]:
        calls.append(items)
        await gate.wait()
        if 2 in items:
            raise ConnectionError("the store went away")
        return items

    coalesce = Coalescer(flush, 2)
    tasks = [asyncio.create_task(coalesce(i)) for i in range(1, 6)]
    await asyncio.sleep(0.01)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert calls == [[1], [2, 3], [4, 5]]
    assert results[0] == 1 and results[3:] == [4, 5]
    assert all(isinstance(r, ConnectionError) for r in results[1:3])


async def test_a_caller_that_gives_up_leaves_the_others_unharmed() -> None:
    recorder = Recorder()
    coalesce = Coalescer(recorder.flush, 10)
    recorder.gate.clear()
    leader = asyncio.create_task(coalesce(1))
    await asyncio.sleep(0)
    quitter, stayer = asyncio.create_task(coalesce(2)), asyncio.create_task(coalesce(3))
    await asyncio.sleep(0.01)
    quitter.cancel()
    leader.cancel()  # the caller whose own call is in flight gives up too
    await asyncio.sleep(0.01)
    recorder.gate.set()
    assert await stayer == 30
    assert quitter.cancelled() and leader.cancelled()
    assert await coalesce(4) == 40


async def test_a_flush_that_miscounts_its_results_is_an_error() -> None:
    async def flush(items: list[int]) -> list[int]:
        return [1, 2]

    with pytest.raises(RuntimeError, match="a batch of 1 got 2 results"):
        await Coalescer(flush, 5)(0)
    with pytest.raises(ValueError, match="at least 1"):
        Coalescer(flush, 0)
