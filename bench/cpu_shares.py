"""Who had the machine's cores during a benchmark phase, and who waited for one (issue 25):
each process's CPU time and the time its threads spent runnable but waiting for a core
(the kernel's run-queue wait, /proc/<pid>/task/<tid>/schedstat), between two readings.

bench_scale's load phase runs the load generator, localnet, the five services, PostgreSQL
and Redis on the same cores. A call's latency there includes the time the serving process,
and the calling one, waited for a core while others ran: `wait_s` says how much of that
there was, per process, so a latency tail can be told apart from work on a service's own
event loop. Linux only; a process that ends between readings is left out."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROC = Path("/proc")
# processes outside the benchmark's own tree that serve it: named by their command
SERVERS = {"postgres": "postgresql", "redis-server": "redis"}


@dataclass(frozen=True)
class Usage:
    cpu_s: float
    wait_s: float
    slices: int  # times a thread of it was put on a core


def _schedstat(pid: int) -> Usage | None:
    """The sum over `pid`'s threads: CPU time, run-queue wait, timeslices."""
    cpu = wait = slices = 0
    try:
        tasks = list((PROC / str(pid) / "task").iterdir())
    except OSError:
        return None
    for task in tasks:
        try:
            run, queued, count = (int(v) for v in (task / "schedstat").read_text().split())
        except (OSError, ValueError):
            continue  # the thread ended
        cpu, wait, slices = cpu + run, wait + queued, slices + count
    return Usage(cpu / 1e9, wait / 1e9, slices)


def _stat(pid: int) -> tuple[str, int] | None:
    """(command, parent pid) of `pid`."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    head, _, tail = text.rpartition(")")
    return head.partition("(")[2], int(tail.split()[1])


def _name(pid: int, command: str) -> str:
    """A Python process by the module it runs (`-m module`: its last part), else its command."""
    try:
        argv = (PROC / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return command
    words = [a.decode(errors="replace") for a in argv if a]
    if "-m" in words[:-1]:
        return words[words.index("-m") + 1].rsplit(".", 1)[-1]
    return command


def processes(root: int) -> dict[int, str]:
    """`root`, every process below it, and the database and cache servers: pid -> name."""
    parents: dict[int, tuple[str, int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                parents[int(entry.name)] = stat
    out: dict[int, str] = {}
    for pid, (command, _) in parents.items():
        if command in SERVERS:
            out[pid] = SERVERS[command]
    below = {root}
    changed = True
    while changed:
        changed = False
        for pid, (_, parent) in parents.items():
            if parent in below and pid not in below:
                below.add(pid)
                changed = True
    for pid in below:
        if pid in parents and pid not in out:
            out[pid] = _name(pid, parents[pid][0])
    return out


def reading(root: int) -> dict[int, tuple[str, Usage]]:
    """Every process of `processes(root)` with its usage so far."""
    out = {}
    for pid, name in processes(root).items():
        usage = _schedstat(pid)
        if usage is not None:
            out[pid] = (name, usage)
    return out


def diff(before: dict[int, tuple[str, Usage]], after: dict[int, tuple[str, Usage]], seconds: float
         ) -> dict[str, Any]:
    """Per name (processes of one name summed, e.g. PostgreSQL's backends), CPU seconds, the
    seconds its threads waited for a core, and waits per timeslice; and the machine's busy
    share (CPU of all of them over the cores' time). A process that started in between
    counts from zero."""
    by_name: dict[str, list[float]] = {}
    for pid, (name, usage) in after.items():
        start = before.get(pid, (name, Usage(0.0, 0.0, 0)))[1]
        total = by_name.setdefault(name, [0.0, 0.0, 0.0])
        total[0] += usage.cpu_s - start.cpu_s
        total[1] += usage.wait_s - start.wait_s
        total[2] += usage.slices - start.slices
    cores = os.cpu_count() or 1
    busy = sum(t[0] for t in by_name.values())
    return {
        "seconds": round(seconds, 2), "cores": cores,
        "busy_share": round(busy / (cores * seconds), 2) if seconds > 0 else None,
        "processes": {name: {"cpu_s": round(t[0], 2), "wait_s": round(t[1], 2),
                             "wait_ms_per_slice": round(t[1] * 1000 / t[2], 3) if t[2] else None}
                      for name, t in sorted(by_name.items(), key=lambda item: -item[1][0])},
    }
