"""The audit log's appends against a real PostgreSQL: concurrent entries share statements and
every one lands with its fields (details as JSON, a missing signature as NULL); a failed
append reaches every caller whose entry it carried."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from services.common.audit import AuditLog


class CountingPool:
    """The pool's execute, counted (a test's view of the round trips made)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.statements = 0

    async def execute(self, query: str, *args: object) -> str:
        self.statements += 1
        return await self.pool.execute(query, *args)


async def test_concurrent_entries_share_statements_and_all_land(migrated_pool: asyncpg.Pool) -> None:
    counting = CountingPool(migrated_pool)
    audit = AuditLog(counting)  # duck-typed: only execute is used
    await asyncio.gather(*(audit.record(owner=f"owner{i % 3}", actor=f"wallet{i}", action="submit:deposit",
                                        signature=f"sig{i}" if i % 2 else None, details={"n": i})
                           for i in range(50)))
    assert counting.statements < 10  # the first alone, the rest gathered behind it
    rows = await migrated_pool.fetch("SELECT owner, actor, action, signature, details FROM audit_log ORDER BY id")
    assert sorted((r["actor"], r["owner"], r["signature"], r["details"]) for r in rows) == sorted(
        (f"wallet{i}", f"owner{i % 3}", f"sig{i}" if i % 2 else None, f'{{"n": {i}}}') for i in range(50))
    assert {r["action"] for r in rows} == {"submit:deposit"}


async def test_a_failed_append_reaches_every_caller(migrated_pool: asyncpg.Pool) -> None:
    audit = AuditLog(migrated_pool)
    await migrated_pool.execute("ALTER TABLE audit_log ADD CONSTRAINT no_x CHECK (action <> 'x')")
    results = await asyncio.gather(*(audit.record(owner="o", actor="a", action="x" if i == 0 else "y")
                                     for i in range(5)), return_exceptions=True)
    assert isinstance(results[0], asyncpg.CheckViolationError)  # alone in its batch
    assert results[1:] == [None] * 4
    with pytest.raises(asyncpg.CheckViolationError):
        await asyncio.gather(audit.record(owner="o", actor="a", action="y"),
                             audit.record(owner="o", actor="a", action="x"))
    assert await migrated_pool.fetchval("SELECT count(*) FROM audit_log") == 5  # 4 + the lone 'y'
