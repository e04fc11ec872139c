"""The cyclic garbage collector's pauses in the services, measured
(`python_gc_pause_seconds`); freezing the start-up heap is the client package's
(vault_client/heap.py), which the benchmarks' load generators use too."""

from __future__ import annotations

import gc
import time
from typing import Any

from services.common.metrics import GC_PAUSES


def observe_collector_pauses(service: str) -> None:
    """Records every collection's duration in `python_gc_pause_seconds` (by generation)."""
    children = [GC_PAUSES.labels(service, str(generation)) for generation in range(3)]
    started = 0.0

    def callback(phase: str, info: dict[str, Any]) -> None:
        nonlocal started
        if phase == "start":
            started = time.perf_counter()
        else:
            children[info["generation"]].observe(time.perf_counter() - started)

    gc.callbacks.append(callback)
