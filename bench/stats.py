"""Machine-wide readings the benchmarks share (a process's CPU time and latency quantiles
are vault_client/readings.py's: the services' measurement entry points take them too)."""

from __future__ import annotations

import os

from vault_client.readings import cpu_seconds


def machine_busy_seconds() -> float:
    """CPU time all of this machine's cores have spent not idle so far, every process and
    the kernel included (from /proc/stat; iowait counts as idle)."""
    with open("/proc/stat") as stat:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, stat.readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def processes_cpu_seconds(names: dict[str, str]) -> dict[str, float]:
    """CPU time used so far by every process on this machine whose command name is a key of
    `names`, summed under its value (e.g. every PostgreSQL backend under "postgres")."""
    totals = dict.fromkeys(names.values(), 0.0)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as comm:
                label = names.get(comm.read().strip())
            if label is not None:
                totals[label] += cpu_seconds(int(entry))
        except (OSError, ValueError, IndexError):
            continue  # the process ended while it was read
    return totals
