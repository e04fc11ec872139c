"""The event loop the long-running processes run on: uvloop unless EVENT_LOOP=asyncio, and
a clear start-up error for anything else."""

from __future__ import annotations

import subprocess
import sys

import pytest

from localnet.svm import ROOT
from vault_client import event_loop


def test_uvloop_unless_asyncio_is_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVENT_LOOP", raising=False)
    assert event_loop.selected() == "uvloop"
    # run() is what the services call at start-up; the tests' own loop is already running
    # here, so it runs in a fresh interpreter as a service would
    code = ("import asyncio; from vault_client import event_loop\n"
            "async def main(): return type(asyncio.get_running_loop()).__module__\n"
            "print(event_loop.run(main()))")
    for name, module in (("", "uvloop"), ("uvloop", "uvloop"), ("asyncio", "asyncio.unix_events")):
        env = {"PATH": "/usr/bin:/bin", "EVENT_LOOP": name}
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                             check=True).stdout.strip()
        assert out == module, (name, out)


def test_an_unknown_loop_is_a_start_up_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENT_LOOP", "trio")
    with pytest.raises(SystemExit, match="EVENT_LOOP='trio': expected one of uvloop, asyncio"):
        event_loop.selected()


async def test_a_task_that_swallows_its_cancellation_is_cancelled_again() -> None:
    """balance_tracker's stop hung now and then (test_chain_binding, 2 runs in 8): its live
    event feed was cancelled while redis-py connected, the library swallowed the
    cancellation and the feed went on reading, and `cancel(); await gather(task)` waited for
    it forever. `cancel_and_wait` cancels such a task again until it ends."""
    import asyncio

    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed == 1:
                    continue  # the first cancellation is lost, as in the library
                raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(event_loop.cancel_and_wait([task], retry_seconds=0.05), 5)
    assert task.cancelled() and swallowed == 2
    # the old way waits forever (bounded here)
    again = asyncio.create_task(stubborn())
    swallowed = 0
    await asyncio.sleep(0)
    again.cancel()
    done, _ = await asyncio.wait({again}, timeout=0.3)
    assert not done
    again.cancel()
    await asyncio.gather(again, return_exceptions=True)
