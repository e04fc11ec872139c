"""The event loop the long-running processes run on: uvloop unless EVENT_LOOP=asyncio, and
a clear start-up error for anything else."""

from __future__ import annotations

import subprocess
import sys

import pytest

from localnet.svm import ROOT
from services.common import event_loop


def test_uvloop_unless_asyncio_is_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVENT_LOOP", raising=False)
    assert event_loop.selected() == "uvloop"
    # run() is what the services call at start-up; the tests' own loop is already running
    # here, so it runs in a fresh interpreter as a service would
    code = ("import asyncio; from services.common import event_loop\n"
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
