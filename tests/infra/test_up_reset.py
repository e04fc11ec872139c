"""`make up` against a database that holds an earlier localnet's state (scripts/up.py's
reset_for_chain), over a real PostgreSQL and Redis."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from scripts.up import reset_for_chain
from services.common.migrations import migrate
from tests.conftest import RedisNamespace


async def bind(db: str, genesis: str) -> None:
    pool = await asyncpg.create_pool(db, min_size=1, max_size=1)
    assert pool is not None
    try:
        await migrate(pool)
        await pool.execute("INSERT INTO chain_binding (genesis_hash, vault_program_id, position_manager_id, usdt_mint, "
                           "profile) VALUES ($1, 'v', 'p', 'm', 'development')", genesis)
    finally:
        await pool.close()


async def test_a_reset_sets_the_earlier_chains_audit_spool_aside(pg_database: str, redis_ns: RedisNamespace,
                                                                 tmp_path: Path) -> None:
    """Before: entries journaled against the earlier chain (PostgreSQL down when its processes
    stopped) stayed in the spool, and the next start delivered them into the reset database,
    recording transactions of a chain that no longer exists."""
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "vault_manager.spool").write_text('{"id": "earlier"}\n')
    await bind(pg_database, "genesis-A")

    assert await reset_for_chain(pg_database, redis_ns.url, redis_ns.prefix, "genesis-A", spool) == []
    assert (spool / "vault_manager.spool").exists()  # the same chain: nothing is touched

    done = await reset_for_chain(pg_database, redis_ns.url, redis_ns.prefix, "genesis-B", spool)
    assert done[0].startswith("database") and "audit spool" in done[1], done
    assert not spool.exists()
    [aside] = tmp_path.glob("spool.earlier-chain-*")
    assert (aside / "vault_manager.spool").read_text() == '{"id": "earlier"}\n'  # kept for inspection
