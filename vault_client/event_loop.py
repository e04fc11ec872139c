"""The event loop every long-running process runs on.

uvloop (libuv) by default: the same asyncio API with the loop's scheduling and socket I/O
in C. The services spend most of their CPU in that machinery (gRPC, HTTP to the chain,
PostgreSQL and Redis round trips), and bench/bench_mesh.py measures the difference.
``EVENT_LOOP=asyncio`` selects the standard library's loop instead (the tests run in-process
services on it, so both are exercised)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

import uvloop

from vault_client.config import EVENT_LOOPS, event_loop_name

T = TypeVar("T")
LOOPS = EVENT_LOOPS


def selected() -> str:
    """The loop EVENT_LOOP names ("uvloop" when unset); anything else is a startup error."""
    name = event_loop_name()
    if name not in LOOPS:
        raise SystemExit(f"EVENT_LOOP={name!r}: expected one of {', '.join(LOOPS)}")
    return name


def stop_requested() -> asyncio.Event:
    """An event the running loop sets on SIGINT or SIGTERM (a graceful stop's trigger)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def run(main: Coroutine[Any, Any, T]) -> T:
    """Runs `main` to completion on the selected loop (asyncio.run's semantics)."""
    factory = uvloop.new_event_loop if selected() == "uvloop" else None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]], retry_seconds: float = 1.0) -> None:
    """Cancels `tasks` and waits until each has ended. A task that swallowed its
    cancellation (a client library may, when it arrives while it connects) is cancelled
    again every `retry_seconds` instead of being waited for forever."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=retry_seconds)
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: never "exception was never retrieved"
