"""bench/cpu_shares.py: per process CPU and run-queue wait between two readings, read from
the kernel's schedstat of real processes (children of this test), and the arithmetic of
`diff` on readings made by hand."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bench.cpu_shares import Usage, diff, processes, reading

SPIN = "import time\nend = time.process_time() + 0.6\nwhile time.process_time() < end: pass\n"


def test_a_busy_child_shows_its_cpu_and_a_module_its_name(tmp_path: object) -> None:
    before = reading(os.getpid())
    started = time.perf_counter()
    # `-m timeit` names the process by its module; the busy child by its command
    sleeper = subprocess.Popen([sys.executable, "-m", "timeit", "-n", "1", "-r", "1", "import time; time.sleep(5)"])
    busy = subprocess.Popen([sys.executable, "-c", SPIN])
    try:
        busy.wait(30)
        assert processes(os.getpid())[sleeper.pid] == "timeit"
        after = reading(os.getpid())
    finally:
        sleeper.kill()
        sleeper.wait()
    assert busy.pid not in after  # ended before the reading: left out
    assert after[sleeper.pid][0] == "timeit"
    report = diff(before, after, time.perf_counter() - started)
    assert report["processes"]["timeit"]["cpu_s"] < 0.5  # it sleeps
    assert report["cores"] == os.cpu_count()
    assert 0 < report["busy_share"] <= 1.0


def test_a_living_busy_child_is_counted_from_zero() -> None:
    busy = subprocess.Popen([sys.executable, "-c", SPIN + "time.sleep(5)\n"])
    try:
        time.sleep(0.05)
        before = reading(os.getpid())
        assert busy.pid in before
        deadline = time.monotonic() + 30
        while reading(os.getpid())[busy.pid][1].cpu_s < 0.5 and time.monotonic() < deadline:
            time.sleep(0.05)
        after = reading(os.getpid())
    finally:
        busy.kill()
        busy.wait()
    name = after[busy.pid][0]
    assert diff({}, after, 1.0)["processes"][name]["cpu_s"] >= 0.5
    assert diff(before, after, 1.0)["processes"][name]["cpu_s"] < diff({}, after, 1.0)["processes"][name]["cpu_s"]


def test_diff_sums_processes_of_one_name_and_counts_new_ones_from_zero() -> None:
    before = {1: ("postgresql", Usage(1.0, 0.5, 10)), 2: ("postgresql", Usage(2.0, 0.0, 5)),
              3: ("vault_manager", Usage(4.0, 1.0, 100))}
    after = {1: ("postgresql", Usage(1.5, 0.75, 20)), 2: ("postgresql", Usage(2.5, 0.25, 25)),
             3: ("vault_manager", Usage(5.0, 1.5, 200)), 4: ("postgresql", Usage(0.5, 0.0, 5))}
    report = diff(before, after, 2.0)
    cores = os.cpu_count() or 1
    assert report["processes"] == {
        "postgresql": {"cpu_s": 1.5, "wait_s": 0.5, "wait_ms_per_slice": round(500 / 35, 3)},
        "vault_manager": {"cpu_s": 1.0, "wait_s": 0.5, "wait_ms_per_slice": 5.0},
    }
    assert list(report["processes"]) == ["postgresql", "vault_manager"]  # most CPU first
    assert report["busy_share"] == round(2.5 / (cores * 2.0), 2)
    assert diff(before, before, 0.0)["busy_share"] is None
