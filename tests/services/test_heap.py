"""The collector settings every long-running process applies after start-up (in a child
process: freezing would change this test process's own heap)."""

from __future__ import annotations

import subprocess
import sys

from localnet.svm import ROOT

CHILD = """
import gc
from prometheus_client import generate_latest
from services.common.gc_pauses import observe_collector_pauses
from vault_client.heap import freeze_startup_heap

freeze_startup_heap()
observe_collector_pauses('svc')
assert gc.get_freeze_count() > 10_000, gc.get_freeze_count()  # imported modules and their objects
assert not gc.get_objects(2)  # nothing left for a full collection to scan
garbage = [[] for _ in range(10)]
for item in garbage:
    item.append(item)  # reference cycles: only the collector frees them
del garbage, item
assert gc.collect() >= 10  # new objects are still collected
text = generate_latest().decode()
line = next(l for l in text.splitlines() if l.startswith('python_gc_pause_seconds_count{generation="2",service="svc"}'))
assert float(line.split()[-1]) >= 1, line
print("ok")
"""


def test_startup_heap_is_frozen_new_garbage_still_collected_and_pauses_measured() -> None:
    result = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


SURVIVORS = """
import gc
from vault_client.heap import freeze_startup_heap, freeze_survivors_of_full_collections

freeze_startup_heap()
freeze_survivors_of_full_collections()
frozen = gc.get_freeze_count()
ledger = [{"slot": i, "keys": [str(i)]} for i in range(50_000)]  # a heap that only grows
garbage = [[] for _ in range(10)]
for item in garbage:
    item.append(item)  # reference cycles that die before the collection
del garbage, item
assert gc.collect() >= 10  # the full collection still frees every dead cycle first
assert gc.get_freeze_count() >= frozen + 100_000  # then the survivors leave its sight
assert len(gc.get_objects()) < 1_000, len(gc.get_objects())  # the next one scans almost nothing
ledger.append({"slot": -1, "keys": []})
assert len(gc.get_objects()) < 1_000
print("ok")
"""


def test_survivors_of_a_full_collection_are_frozen_after_its_dead_cycles_are_freed() -> None:
    """localnet's ledger only grows: each full collection scanned all of it (1.1-2.0 s at
    100,000 vaults, the event loop stopped)."""
    result = subprocess.run([sys.executable, "-c", SURVIVORS], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
