"""ListVaults pages built in processes of their own (issue 25 item 5: heavy work never runs on
a service's request thread).

A page of 500 vaults is a PostgreSQL range read whose rows asyncpg decodes (5,000 values) and
500 messages built in Python: about 5 ms of CPU, on vault_manager's event loop until now. That
loop also accepts every call: grpc.aio takes new calls from its core one at a time, one
accept per turn or two of the loop, so while the loop was building pages GetVault calls waited
unaccepted (bench/bench_scale.py at 1,000 vaults: GetVault p99 40 ms with a client walking
ListVaults, 24 ms without; the calls over 10 ms in their handler 175 against 9). With the
pages here, in the same benchmark: vault_manager's own CPU over the 30 s load 15.6 -> 12.1 s,
its calls over 10 ms in their handler 102-230 over five runs; GetVault's p99 under the whole
load did not move (34-53 ms in three runs: the machine's two cores stay 95% busy, and a lone
server with no other work has a p99 of about 23 ms there, bench/README.md).

Here each page is read and serialized by a worker process (`processes` of them, spawned,
each with one PostgreSQL connection) and handed back as the serialized response; the service
parses it (upb, about 0.08 ms for 500 vaults) and adds the page token. What can go wrong, and
what a caller sees:
- PostgreSQL unreachable or failing: UNAVAILABLE naming the error's kind (its message goes to
  the log), and the worker connects again for a later page;
- a worker killed: that page UNAVAILABLE, and the next page is served by a new set of workers;
- vault_manager killed: each worker notices its parent is gone within a second and exits
  (it holds a PostgreSQL connection; it must not outlive the service)."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import asyncpg
from collateral_vault.v1 import vault_manager_pb2

from services.common import pools, vault_rows
from services.common.errors import unavailable

logger = logging.getLogger("page_workers")

PARENT_CHECK_SECONDS = 1.0  # how often a worker looks whether vault_manager still runs

# One page's outcome from a worker: ("page", the serialized ListVaultsResponse without its
# token, the last vault's address, whether more follow) or ("unavailable", why).
Outcome = tuple[str, bytes, str, bool] | tuple[str, str]


class PageWorkers:
    """The worker processes behind ListVaults. `start` spawns them and waits until each has
    answered once; `page` serves one page; `close` stops them."""

    def __init__(self, database_url: str, processes: int) -> None:
        if processes < 1:
            raise ValueError(f"at least one page worker, got {processes}")
        self.database_url = database_url
        self.processes = processes
        self._executor: ProcessPoolExecutor | None = None
        self.started_pids: list[int] = []  # the workers' process ids at `start`

    def _spawned(self) -> ProcessPoolExecutor:
        if self._executor is None:
            # spawn, not fork: the parent runs gRPC's threads, which a fork does not carry
            self._executor = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_start_worker, initargs=(self.database_url, os.getpid()))
        return self._executor

    async def start(self) -> None:
        """Spawns the workers and returns once each has answered (rounds of one call per
        worker, each holding its worker a moment, until every worker has answered one)."""
        executor = self._spawned()
        loop = asyncio.get_running_loop()
        seen: set[int] = set()
        while len(seen) < self.processes:
            seen.update(await asyncio.gather(*(loop.run_in_executor(executor, _ready)
                                               for _ in range(self.processes))))
        self.started_pids = sorted(seen)

    async def page(self, after: str, size: int) -> tuple[vault_manager_pb2.ListVaultsResponse, str, bool]:
        """The page of up to `size` open vaults after `after` (the response without its page
        token), the last vault's address, and whether more follow."""
        executor = self._spawned()
        try:
            outcome = await asyncio.get_running_loop().run_in_executor(executor, _page, after, size)
        except BrokenProcessPool:
            # a worker died (killed, out of memory): the set is replaced for the next page
            logger.warning("a ListVaults page worker died; starting new ones")
            if self._executor is executor:
                self._executor = None
                executor.shutdown(wait=False, cancel_futures=True)
            raise unavailable("the vault listing's worker stopped while building this page; retry") from None
        if outcome[0] != "page":
            logger.warning("a ListVaults page failed: %s", outcome[1])
            raise unavailable(f"the vault index (PostgreSQL) is unavailable ({str(outcome[1]).split(':')[0]}); retry")
        _, body, last, more = outcome  # type: ignore[misc]
        return vault_manager_pb2.ListVaultsResponse.FromString(body), last, more

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)


# --- in the worker process -------------------------------------------------------------------

_loop: asyncio.AbstractEventLoop | None = None
_database_url = ""
_pool: asyncpg.Pool | None = None


def _start_worker(database_url: str, parent: int) -> None:
    global _loop, _database_url
    _loop, _database_url = asyncio.new_event_loop(), database_url
    threading.Thread(target=_exit_without, args=(parent,), name="parent-watch", daemon=True).start()


def _exit_without(parent: int) -> None:
    """Ends this worker once `parent` is gone (it is then adopted by another process)."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(0)


def _ready() -> int:
    """This worker's process id, a moment later (so the other calls of a round go to others)."""
    time.sleep(0.05)
    return os.getpid()


def _page(after: str, size: int) -> Outcome:
    assert _loop is not None, "the worker was not started by PageWorkers"
    return _loop.run_until_complete(_read_page(after, size))


async def _read_page(after: str, size: int) -> Outcome:
    global _pool
    try:
        if _pool is None:
            _pool = await pools.postgres(_database_url, min_size=1, max_size=1, attempts=1)
        vaults, more, slot = await vault_rows.page(_pool, after, size)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        return "unavailable", f"{type(exc).__name__}: {exc}"[:200]
    response = vault_manager_pb2.ListVaultsResponse(vaults=vaults, slot=slot)
    return "page", response.SerializeToString(), vaults[-1].address if vaults else "", more
