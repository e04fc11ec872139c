"""The event loop's lag (`event_loop_lag_seconds`, services/common/loop_lag.py): a stall of
the loop shows as one late look of about its length."""

from __future__ import annotations

import asyncio
import time

from services.common import loop_lag
from services.common.metrics import LOOP_LAG


def _samples(service: str) -> dict[str, float]:
    return {s.name + s.labels.get("le", ""): s.value for metric in LOOP_LAG.collect() for s in metric.samples
            if s.labels.get("service") == service}


async def test_a_stalled_loop_shows_as_one_look_about_the_stall_late() -> None:
    watcher = asyncio.create_task(loop_lag.watch("test_loop_lag", interval=0.01))
    await asyncio.sleep(0.1)
    idle = _samples("test_loop_lag")
    assert idle["event_loop_lag_seconds_count"] >= 5  # a look every 10 ms
    time.sleep(0.3)  # a handler holds the loop
    await asyncio.sleep(0.05)
    watcher.cancel()
    stalled = _samples("test_loop_lag")
    late = stalled["event_loop_lag_seconds_bucket0.5"] - stalled["event_loop_lag_seconds_bucket0.25"]
    assert late == 1  # the one look that waited for the stall, between 0.25 and 0.5 s late
    assert stalled["event_loop_lag_seconds_sum"] - idle["event_loop_lag_seconds_sum"] >= 0.28
