"""How late a service's event loop runs what is due (`event_loop_lag_seconds`): a task asks to
wake every `interval` seconds and records how much later than asked it woke. A handler that
holds the loop, a garbage collection, or a process waiting for a core all show here,
whatever caused them: the one reading that says whether a slow answer waited inside the
process."""

from __future__ import annotations

import asyncio

from services.common.metrics import LOOP_LAG

INTERVAL = 0.05  # seconds between looks: twenty wake-ups a second


async def watch(service: str, interval: float = INTERVAL) -> None:
    """Observes the lag of every look until cancelled."""
    child = LOOP_LAG.labels(service)
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + interval
        await asyncio.sleep(interval)
        child.observe(max(0.0, loop.time() - due))
