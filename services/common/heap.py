"""The cyclic garbage collector in long-running processes: what start-up leaves alive is
kept out of its sight, and its pauses are measured (`python_gc_pause_seconds`)."""

from __future__ import annotations

import gc
import time
from typing import Any

from services.common.metrics import GC_PAUSES


def freeze_startup_heap() -> None:
    """Moves everything alive after start-up (modules, protobuf descriptors, pools, a
    localnet's genesis) out of the collector's sight for good: a full collection then scans
    only what was allocated since, instead of stopping the event loop for the whole heap
    (bench/bench_mesh.py reports the pauses during its deposit rounds)."""
    gc.collect()
    gc.freeze()


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
