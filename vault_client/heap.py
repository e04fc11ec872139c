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


def freeze_survivors_of_full_collections() -> None:
    """From now on, whatever survives a full collection is frozen too: for a process whose
    heap only grows (a localnet's ledger keeps every transaction it landed), each full
    collection then scans what was allocated since the previous one, not the whole heap.
    Measured on localnet at 100,000 vaults without it (bench/bench_scale.py, a temporary
    collector log): 4.1 million tracked objects, each full collection 1.1-2.0 s with the event
    loop stopped, 35 s of collections during a 135 s population. With it, bench_scale's
    population of 100,000 vaults took 104 s (959 vaults/s), against 126-129 s in two runs
    before.

    What it costs: an object alive at a full collection is never examined again, so if it
    later becomes garbage held only by a reference cycle, it stays until the process ends
    (garbage without a cycle is freed by reference counting as always). A full collection
    has just freed every unreachable cycle, so nothing frozen is garbage at that moment; what
    dies later in a cycle in localnet is a closed connection's or subscription's objects."""
    gc.callbacks.append(_freeze_after_full)


def _freeze_after_full(phase: str, info: dict[str, int]) -> None:
    if phase == "stop" and info["generation"] == 2:
        gc.freeze()
