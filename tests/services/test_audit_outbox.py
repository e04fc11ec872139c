"""The audit outbox against a real PostgreSQL (cut through a TCP proxy) and a real spool file:
an entry journaled before an action reaches PostgreSQL exactly once, after an outage, after
the process that journaled it was killed, and however often it is delivered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import grpc
import pytest

from services.common import audit
from services.common.audit import AuditLog
from services.common.audit_outbox import AuditOutbox, SpoolInUse, replay
from services.common.errors import ServiceError
from services.common.migrations import migrate
from tests.support.proxy import TcpProxy


@pytest.fixture
async def database(pg_database: str) -> AsyncIterator[str]:
    pool = await asyncpg.create_pool(pg_database, min_size=1, max_size=2)
    assert pool is not None
    await migrate(pool)
    await pool.close()
    yield pg_database


@pytest.fixture
async def proxy(database: str) -> AsyncIterator[TcpProxy]:
    link = TcpProxy.to(database, 5432)
    await link.start()
    yield link
    await link.close()


def item(n: int) -> audit.Entry:
    return audit.entry(owner="owner", actor="wallet", action="submit:deposit", signature=f"sig{n}",
                       entry_id=f"submit:sig{n}")


async def rows(database: str) -> list[str]:
    conn = await asyncpg.connect(database)
    try:
        return [r["entry_id"] for r in await conn.fetch("SELECT entry_id FROM audit_log ORDER BY id")]
    finally:
        await conn.close()


async def until(condition: object, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


def killed(outbox: AuditOutbox) -> None:
    """What a SIGKILL leaves: the spool file on disk, no task, no open file, nothing unmarked written."""
    if outbox._drainer is not None:
        outbox._drainer.cancel()
    outbox._release_files()


async def opened(database: str, path: Path, **options: int) -> tuple[AuditOutbox, asyncpg.Pool]:
    pool = await asyncpg.create_pool(database, min_size=1, max_size=2)
    assert pool is not None
    outbox = AuditOutbox(AuditLog(pool), path, "test", **options)
    await outbox.open()
    return outbox, pool


async def test_an_outage_delays_the_entry_and_stores_it_once(proxy: TcpProxy, database: str, tmp_path: Path) -> None:
    outbox, pool = await opened(proxy.url(database), tmp_path / "audit.log")
    try:
        await outbox.journal(item(1))
        assert await outbox.deliver(item(1), 5.0)
        await proxy.cut()
        await outbox.journal(item(2))
        assert not await outbox.deliver(item(2), 1.0)  # PostgreSQL is unreachable: it stays in the outbox
        assert outbox.pending == 1 and await rows(database) == ["submit:sig1"]
        await proxy.restore()

        async def stored() -> bool:
            return await rows(database) == ["submit:sig1", "submit:sig2"]

        await until(stored)
        assert outbox.pending == 0
        assert await outbox.deliver(item(2), 5.0)  # delivered again: nothing more is stored
        assert await rows(database) == ["submit:sig1", "submit:sig2"]
    finally:
        await outbox.close()
        await pool.close()


async def test_a_killed_process_leaves_its_entries_to_the_next(proxy: TcpProxy, database: str,
                                                               tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    first, first_pool = await opened(proxy.url(database), path)
    await first.journal(item(2))  # journaled, and killed before it was delivered
    await first.journal(item(3))
    await first.discard("submit:sig3")  # the action did not happen
    await proxy.cut()
    await first.journal(item(4))
    assert not await first.deliver(item(4), 0.5)  # PostgreSQL was unreachable
    await proxy.restore()
    await first.journal(item(1))
    assert await first.deliver(item(1), 5.0)  # stored, and killed before its mark reached the file
    killed(first)
    with path.open("ab") as spool:
        spool.write(b'{"add": {"owner": "o", "act')  # a line the kill cut short
    assert sorted(replay(path.read_bytes())) == ["submit:sig1", "submit:sig2", "submit:sig4"]

    second, second_pool = await opened(database, path)  # the next process, PostgreSQL reachable

    async def stored() -> bool:
        return sorted(await rows(database)) == ["submit:sig1", "submit:sig2", "submit:sig4"]

    try:
        await until(stored)
        assert second.pending == 0
    finally:
        await second.close()
        await second_pool.close()
        await first_pool.close()
    assert replay(path.read_bytes()) == {}  # the next start has nothing to deliver


async def test_one_process_per_spool_and_a_bounded_backlog(proxy: TcpProxy, database: str, tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    outbox, pool = await opened(proxy.url(database), path, max_pending=2)
    try:
        with pytest.raises(SpoolInUse):
            await opened(database, path)
        await proxy.cut()
        for n in (1, 2):
            await outbox.journal(item(n))
            outbox.deliver_later(item(n))
        with pytest.raises(ServiceError) as info:
            await outbox.journal(item(3))
        assert info.value.code == grpc.StatusCode.UNAVAILABLE and "at most 2" in info.value.message
        await outbox.journal(item(2))  # one already waiting may be journaled again
    finally:
        await proxy.restore()
        await outbox.close()
        await pool.close()
    assert sorted(await rows(database)) == ["submit:sig1", "submit:sig2"]


async def test_the_spool_is_compacted_to_what_is_undelivered(database: str, tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    outbox, pool = await opened(database, path, compact_bytes=2_000)
    try:
        for n in range(40):
            await outbox.journal(item(n))
            assert await outbox.deliver(item(n), 5.0)
        assert path.stat().st_size < 2_000 + 400
        await outbox.journal(item(99))
        assert list(replay(path.read_bytes())) == ["submit:sig99"]
    finally:
        killed(outbox)
        await pool.close()
    assert len(await rows(database)) == 40


async def test_a_discard_never_drops_an_entry_another_caller_acted_on(proxy: TcpProxy, database: str,
                                                                      tmp_path: Path) -> None:
    """The same transaction submitted twice at once: one send is accepted (its audit entry
    cannot be stored yet), the other is refused. The refusal must not drop the entry."""
    outbox, pool = await opened(proxy.url(database), tmp_path / "audit.log")
    try:
        await proxy.cut()
        await outbox.journal(item(1))
        await outbox.journal(item(1))
        assert not await outbox.deliver(item(1), 0.5)  # the first caller sent it
        await outbox.discard("submit:sig1")  # the second caller's send was refused
        assert outbox.pending == 1
        await outbox.journal(item(2))
        await outbox.discard("submit:sig2")  # alone: dropped
        assert outbox.pending == 1
        await proxy.restore()

        async def stored() -> bool:
            return await rows(database) == ["submit:sig1"]

        await until(stored)
    finally:
        await outbox.close()
        await pool.close()
    assert replay((tmp_path / "audit.log").read_bytes()) == {}
