"""Balance snapshots (docs/snapshots.md): the bytes one snapshot row costs on disk, and what a
pass costs when few vaults changed, with BENCH_SNAPSHOT_VAULTS vaults (100,000 unless set),
a tenth of them active. The measurement is balance_tracker's own entry point
services/balance_tracker/perf_snapshots.py (its docstring has the method; bench/ imports
nothing from services/), run in a process of its own on a database made for the run."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from bench.environment import temporary_database
from bench.probes import probe

VAULTS = int(os.environ.get("BENCH_SNAPSHOT_VAULTS", "100000"))


async def _measure() -> dict[str, Any]:
    async with temporary_database("cvbench") as url:
        return await probe("services.balance_tracker.perf_snapshots", url, str(VAULTS))


def run() -> dict[str, Any]:
    return asyncio.run(_measure())
