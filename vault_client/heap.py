"""The cyclic garbage collector in long-running processes: what start-up leaves alive is
kept out of its sight. Generic (the standard library's `gc` only), so the services and the
benchmarks' load generators freeze their heaps the same way; the services' measurement of
the collector's pauses is services/common/gc_pauses.py's."""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Moves everything alive after start-up (modules, protobuf descriptors, pools, a
    localnet's genesis) out of the collector's sight for good: a full collection then scans
    only what was allocated since, instead of stopping the event loop for the whole heap
    (bench/bench_mesh.py reports the pauses during its deposit rounds)."""
    gc.collect()
    gc.freeze()
