"""What the audit outbox's journal adds to a submission: SubmitTransaction journals the audit
entry to the spool file (a write and an fdatasync, in a worker thread) before it sends, so
this is latency added in series on the submission path; PostgreSQL's insert still overlaps
the status wait as before.

Journal calls one at a time (each its own write and sync) and 32 in flight (group commit:
calls made while a sync is in flight share the next one), into a spool under `.local/` on
this machine's disk; latency per call, CPU of this process per call, and syncs per call.
Three passes, the median pass counts. `python -m services.common.perf_audit_outbox` prints
the result as JSON; bench/bench_audit_spool.py runs it in a process of its own."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Any, cast

import asyncpg

from services.common import audit
from services.common.audit import AuditLog
from services.common.audit_outbox import AuditOutbox
from vault_client.config import Settings
from vault_client.readings import cpu_seconds, pct

SEQUENTIAL = 2_000
CONCURRENT_CALLS = 20_000
IN_FLIGHT = 32
PASSES = 3


class _CountingOutbox(AuditOutbox):
    syncs = 0

    def _append(self, data: bytes, sync: bool = False) -> None:
        super()._append(data, sync)
        self.syncs += sync


def _entry(n: int) -> audit.Entry:
    signature = f"{n:088d}"
    return audit.entry(owner="9" * 44, actor="8" * 44, action="submit:deposit", signature=signature,
                       entry_id=f"submit:{signature}")


async def _pass(directory: Path, calls: int, in_flight: int) -> dict[str, float]:
    outbox = _CountingOutbox(AuditLog(cast(asyncpg.Pool, None)), directory / "bench-audit.log",
                             compact_bytes=1 << 40)
    await outbox.open()
    latencies: list[float] = []
    queue = iter(range(calls))

    async def worker() -> None:
        for n in queue:
            started = time.perf_counter()
            await outbox.journal(_entry(n))
            latencies.append(time.perf_counter() - started)

    cpu, started = cpu_seconds(os.getpid()), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    wall, cpu = time.perf_counter() - started, cpu_seconds(os.getpid()) - cpu
    syncs = outbox.syncs
    await outbox.close(grace=0)
    (directory / "bench-audit.log").unlink()
    return {"p50_ms": pct(latencies, 0.5, 3), "p99_ms": pct(latencies, 0.99, 3),
            "calls_per_s": round(calls / wall), "cpu_us_per_call": round(cpu / calls * 1e6, 1),
            "calls_per_sync": round(calls / syncs, 2)}


def _median(passes: list[dict[str, float]]) -> dict[str, Any]:
    middle = sorted(passes, key=lambda p: p["p50_ms"])[len(passes) // 2]
    return {**middle, "p50_ms_per_pass": [p["p50_ms"] for p in passes]}


async def _run() -> dict[str, Any]:
    directory = Path(Settings(service="bench").audit_spool_dir) / "bench"
    directory.mkdir(parents=True, exist_ok=True)
    try:
        sequential = [await _pass(directory, SEQUENTIAL, 1) for _ in range(PASSES)]
        concurrent = [await _pass(directory, CONCURRENT_CALLS, IN_FLIGHT) for _ in range(PASSES)]
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return {"spool_directory": str(directory.parent), "one_at_a_time": _median(sequential),
            f"{IN_FLIGHT}_in_flight": _median(concurrent),
            "median_of": PASSES, "note": "journal = write + fdatasync in a worker thread, before the send"}


def measure() -> dict[str, Any]:
    result = asyncio.run(_run())
    result["p50_ms_one_at_a_time_median"] = statistics.median(result["one_at_a_time"]["p50_ms_per_pass"])
    return result


if __name__ == "__main__":
    print(json.dumps(measure()))
