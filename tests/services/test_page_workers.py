"""ListVaults' pages come from worker processes (services/vault_manager/page_workers.py): the
same pages as the database holds, a clear UNAVAILABLE when PostgreSQL is not there (and pages
again once it is), a killed worker replaced, and no worker outliving vault_manager."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import asyncpg
import grpc
import pytest

from services.common.errors import ServiceError
from services.vault_manager.page_workers import PARENT_CHECK_SECONDS, PageWorkers
from tests.support.databases import temporary_database


async def _fill(url: str, vaults: int = 30) -> None:
    from services.common.migrations import migrate

    pool = await asyncpg.create_pool(url, min_size=1, max_size=1)
    assert pool is not None
    try:
        await migrate(pool)
        await pool.execute(
            "INSERT INTO vaults (owner, address, token_account, total_balance, available_balance, last_slot, "
            "closed_at) SELECT 'o' || i, 'a' || lpad(i::text, 3, '0'), 't' || i, i, i, i, "
            "CASE WHEN i % 4 = 0 THEN now() END FROM generate_series(1, $1::int) AS i", vaults)
        await pool.execute("INSERT INTO indexer_cursor (name, slot) VALUES ('collateral_vault', 77)")
    finally:
        await pool.close()


@pytest.fixture
async def workers(pg_database: str) -> AsyncIterator[PageWorkers]:
    await _fill(pg_database)
    pages = PageWorkers(pg_database, 2)
    await pages.start()
    try:
        yield pages
    finally:
        await pages.close()


def _alive(pid: int) -> bool:
    """Running (a zombie no one reaped yet counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def _walk(pages: PageWorkers, size: int) -> list[str]:
    seen: list[str] = []
    after = ""
    while True:
        response, last, more = await pages.page(after, size)
        assert response.slot == 77 and len(response.vaults) <= size and not response.next_page_token
        seen += [v.address for v in response.vaults]
        if not more:
            return seen
        assert last == response.vaults[-1].address
        after = last


async def test_pages_from_the_workers_are_the_open_vaults_in_address_order(workers: PageWorkers) -> None:
    assert len(workers.started_pids) == 2 and os.getpid() not in workers.started_pids
    expected = sorted(f"a{i:03d}" for i in range(1, 31) if i % 4)
    assert await _walk(workers, 7) == expected
    # both workers at once: each page whole
    walks = await asyncio.gather(*(_walk(workers, size) for size in (1, 3, 5, 500)))
    assert all(walk == expected for walk in walks)
    response, last, more = await workers.page("a999", 10)
    assert (list(response.vaults), last, more) == ([], "", False)


async def test_a_killed_worker_costs_one_page_and_is_replaced(workers: PageWorkers) -> None:
    before = workers.started_pids
    os.kill(before[0], signal.SIGKILL)
    deadline = time.monotonic() + 10
    answered = 0
    refused: list[ServiceError] = []
    while answered < 3 and time.monotonic() < deadline:  # at most one refusal, then pages again
        try:
            await workers.page("", 5)
            answered += 1
        except ServiceError as exc:
            refused.append(exc)
    assert answered == 3 and len(refused) <= 1, refused
    for error in refused:
        assert error.code == grpc.StatusCode.UNAVAILABLE and "worker stopped" in error.message


async def test_no_database_is_unavailable_until_there_is_one() -> None:
    async with temporary_database() as url:
        missing = url.rsplit("/", 1)[0] + "/cv_not_yet_" + str(os.getpid())
        name = missing.rsplit("/", 1)[1]
        pages = PageWorkers(missing, 1)
        await pages.start()  # the workers start without PostgreSQL: a page needs it, not a worker
        admin = await asyncpg.connect(url)
        try:
            with pytest.raises(ServiceError) as refused:
                await pages.page("", 5)
            assert refused.value.code == grpc.StatusCode.UNAVAILABLE
            assert "vault index (PostgreSQL) is unavailable (InvalidCatalogNameError)" in refused.value.message
            await admin.execute(f'CREATE DATABASE "{name}"')
            await _fill(missing)
            assert len(await _walk(pages, 100)) == 23  # the same worker, connected now
        finally:
            await pages.close()
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


_PARENT = """
import asyncio, sys
from services.vault_manager.page_workers import PageWorkers

async def main() -> None:
    pages = PageWorkers(sys.argv[1], 2)
    await pages.start()
    print(*pages.started_pids, flush=True)
    await asyncio.sleep(120)

asyncio.run(main())
"""


async def test_workers_exit_when_vault_manager_is_killed(pg_database: str) -> None:
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, pg_database], stdout=subprocess.PIPE, text=True,
                              cwd=os.getcwd())
    try:
        assert parent.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(parent.stdout.readline), 60)
        pids = [int(p) for p in line.split()]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
        parent.kill()  # SIGKILL: no shutdown of the executor
        parent.wait()
        deadline = time.monotonic() + 5 * PARENT_CHECK_SECONDS + 5
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert not any(_alive(p) for p in pids)
    finally:
        parent.kill()
        parent.wait()
