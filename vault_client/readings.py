"""What a measurement reads: a process's CPU time (from /proc) and a latency quantile. Here,
in the package everything may import, because two sides that may import nothing of each
other take the same readings: the benchmarks (bench/) and the measurement entry points the
services own (services/<service>/perf_*.py, services/common/perf_*.py), which the
benchmarks run in processes of their own (issue 24)."""

from __future__ import annotations

import os


def pct(values: list[float], q: float, digits: int = 2) -> float:
    """The q-quantile (nearest rank) of latencies in seconds, in milliseconds."""
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, digits)


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """User + system CPU time process `pid` (or only its thread `thread`) has used so far
    (from /proc)."""
    path = f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat"
    with open(path) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
