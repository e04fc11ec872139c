"""What a full garbage collection costs vault_manager with its mirror full (issue 25: GetVault's
and ListVaults' tails grew with the vault count). Fills a `VaultMirror` with N owners as the
vault-change subscription does, then times full collections with the start-up heap frozen,
as in the service (`heap.freeze_startup_heap`). Prints JSON: the owners, the objects the
collector tracks, and the collections' median and longest time in ms.

    python -m services.vault_manager.perf_mirror_gc --owners 100000"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from typing import Any

from solders.pubkey import Pubkey

from services.vault_manager.mirror import VaultMirror
from vault_client.heap import freeze_startup_heap
from vault_client.vault_program import Vault, VaultProgram

COLLECTIONS = 5


def measure(owners: int) -> dict[str, Any]:
    """The mirror at `owners` owners: tracked objects and full-collection times."""
    freeze_startup_heap()
    program = VaultProgram(Pubkey.new_unique())
    mirror = VaultMirror(program, ttl=1.0, max_owners=owners)
    for slot in range(owners):
        owner = Pubkey.new_unique()
        mirror.remember(Vault(owner=owner, token_account=Pubkey.new_unique(), total_balance=slot, locked_balance=0,
                              available_balance=slot, total_deposited=slot, total_withdrawn=0,
                              created_at=1_700_000_000, bump=254), slot)
        mirror.landed(owner, slot - 1)  # an entry replaced once more, its answer still held
    gc.collect()  # the first collection to see the entries (it stops tracking what it can)
    times = []
    for _ in range(COLLECTIONS):
        t0 = time.perf_counter()
        gc.collect()
        times.append((time.perf_counter() - t0) * 1000)
    return {"owners": owners, "tracked_objects": len(gc.get_objects()),
            "full_collection_ms": {"median": round(statistics.median(times), 2), "max": round(max(times), 2)}}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.vault_manager.perf_mirror_gc",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--owners", type=int, default=100_000, help="owners held (default %(default)s)")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.owners)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
