"""Balance snapshots (docs/snapshots.md): the bytes one snapshot row costs on disk, and what a
pass costs when few vaults changed.

A fresh database gets `VAULTS` vault rows (base58 owners, balances of realistic size); a
first pass snapshots them all (every vault is new), then every vault changes once more and a
second pass writes the second snapshot of each (so half the rows carry an expiry and the
expiry index holds them, as in steady state). The size of the table with its indexes
(`pg_total_relation_size`, after VACUUM) divided by the rows is the cost per row. Then
`ACTIVE` vaults change and a pass is timed, and an idle pass is timed.

`python -m services.balance_tracker.perf_snapshots DATABASE_URL VAULTS` measures that on an
empty database (bench/bench_snapshots.py makes one); `... DATABASE_URL --pass` times one pass
over a database the system has filled (bench/bench_scale.py's `snapshot_pass`). Each prints
its result as JSON."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from solders.keypair import Keypair

from services.balance_tracker import snapshots
from services.common.migrations import migrate
from vault_client import event_loop


async def measure(url: str, vaults: int) -> dict[str, Any]:
    """Row cost and pass times with `vaults` vaults, `vaults // 10` of them active."""
    active = vaults // 10
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    assert pool is not None
    try:
        await migrate(pool)
        owners = [str(Keypair().pubkey()) for _ in range(vaults)]
        await pool.execute(
            "INSERT INTO vaults (owner, address, token_account, total_balance, available_balance, last_slot) "
            "SELECT o, o || 'a', o || 't', 123456789012 + n, 123456789012 + n, 250000000 + n "
            "FROM unnest($1::text[]) WITH ORDINALITY AS u(o, n)", owners)
        t0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
        first = await snapshots.take(pool, t0)
        await pool.execute("UPDATE vaults SET total_balance = total_balance + 1, "
                           "available_balance = available_balance + 1, last_slot = last_slot + 1")
        second = await snapshots.take(pool, t0 + timedelta(minutes=1))
        await pool.execute("VACUUM ANALYZE balance_snapshots")
        rows = int(await pool.fetchval("SELECT count(*) FROM balance_snapshots"))
        total = int(await pool.fetchval("SELECT pg_total_relation_size('balance_snapshots')"))
        heap = int(await pool.fetchval("SELECT pg_relation_size('balance_snapshots')"))

        await pool.execute("UPDATE vaults SET total_balance = total_balance + 1, "
                           "available_balance = available_balance + 1 WHERE owner = ANY($1::text[])",
                           owners[:active])
        started = time.perf_counter()
        active_written = await snapshots.take(pool, t0 + timedelta(minutes=2))
        active_seconds = time.perf_counter() - started
        started = time.perf_counter()
        idle_written = await snapshots.take(pool, t0 + timedelta(minutes=3))
        idle_seconds = time.perf_counter() - started
    finally:
        await pool.close()
    assert first == second == rows // 2 == vaults and active_written == active and idle_written == 0
    return {
        "vaults": vaults, "rows": rows, "bytes_total": total, "bytes_heap": heap,
        "bytes_per_row": round(total / rows, 1), "heap_bytes_per_row": round(heap / rows, 1),
        "active_vaults": active, "active_pass_seconds": round(active_seconds, 3),
        "active_pass_rows_per_second": round(active / active_seconds),
        "idle_pass_ms": round(idle_seconds * 1000, 2),
    }


async def one_pass(url: str) -> dict[str, Any]:
    """One snapshot pass over the vaults the database holds: its time and the rows it wrote."""
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    try:
        t0 = time.perf_counter()
        rows = await snapshots.take(pool)
        return {"seconds": round(time.perf_counter() - t0, 3), "rows": rows}
    finally:
        await pool.close()


if __name__ == "__main__":
    if sys.argv[2] == "--pass":
        print(json.dumps(event_loop.run(one_pass(sys.argv[1]))))  # on the services' loop, as bench_scale runs
    else:
        print(json.dumps(asyncio.run(measure(sys.argv[1], int(sys.argv[2])))))
