"""bench_scale's latency probe process (bench/scale_readers.py) on its bad paths; its good
path runs in tests/bench/test_bench_scale.py (a real system, calls counted)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from bench.scale_readers import Readers, open_loop
from localnet.node_harness import free_port


async def test_a_probe_that_cannot_reach_the_services_fails_clearly_and_leaves_nothing_running() -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    readers = Readers("get_vault", nowhere, nowhere, ["11111111111111111111111111111111"])
    with pytest.raises(RuntimeError, match="was not calling within 3"):
        await readers.start(timeout=3.0)
    assert readers.process is not None and readers.process.returncode is not None
    assert not Path(readers._file).exists() and not Path(readers._out).exists()  # its files are gone too


def test_an_unknown_method_or_no_rate_is_refused() -> None:
    with pytest.raises(ValueError, match="method must be one of get_vault, get_tvl"):
        Readers("get_everything", "127.0.0.1:1", "127.0.0.1:1", [])
    with pytest.raises(ValueError, match="rate must be above 0"):
        Readers("get_vault", "127.0.0.1:1", "127.0.0.1:1", [], rate=0.0)


async def test_the_open_loop_probe_sends_on_schedule_and_times_calls_from_when_they_were_due() -> None:
    """The schedule, with a stand-in call (asyncio.sleep; the probe against real services runs
    in test_bench_scale): slow answers do not slow the sending, and a stall of the probe's own
    loop counts for every call it delayed."""
    latencies: list[float] = []
    stop = asyncio.Event()
    calls = 0

    async def slow_call() -> None:
        nonlocal calls
        calls += 1
        if calls == 10:
            time.sleep(0.1)  # the process stalls: the calls due meanwhile go late
        await asyncio.sleep(0.05)

    task = asyncio.create_task(open_loop(slow_call, 200.0, stop, latencies))
    await asyncio.sleep(0.5)
    stop.set()
    await task
    assert calls >= 80  # ~100 due in 0.5 s, though each takes 50 ms (one caller in a loop: 10)
    assert len(latencies) == calls and min(latencies) >= 0.05
    late = [t for t in latencies if t >= 0.1]
    assert len(late) >= 15  # the ~20 calls due during the 0.1 s stall waited for it


async def test_an_overrun_open_loop_probe_fails_clearly() -> None:
    never = asyncio.Event()
    with pytest.raises(RuntimeError, match="overrun"):
        await asyncio.wait_for(open_loop(never.wait, 100_000.0, asyncio.Event(), []), 10)
