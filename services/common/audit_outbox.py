"""An outbox for audit entries that must reach PostgreSQL exactly once, across PostgreSQL
outages and a killed process.

* `journal(entry)` appends the entry to a local append-only spool file and returns once the
  file is on disk (fdatasync). Concurrent calls share one write and one sync (group commit,
  `coalesce.py`). A caller journals BEFORE its action (sending a transaction), so an action
  that may have happened always has its entry on disk.
* After the action, `deliver(entry, wait)` writes the entry to PostgreSQL, waiting at most
  `wait` seconds for it, or `deliver_later(entry)` leaves it to the background; `discard(id)`
  drops it (the action did not happen: also on disk before it returns). Each `journal` is
  followed by exactly one of the three. Two callers may journal the same id (the same
  transaction submitted twice at once): one caller's discard never drops an entry the other
  acted on. An entry whose delivery failed or timed out stays in the outbox, and a
  background task delivers it again with backoff until PostgreSQL has it.
* Every entry has a stable id and the INSERT skips an id already stored (`audit.py`,
  migration 006), so a delivery repeated after a crash or a lost answer stores nothing twice.
* At start (`open`), a new process delivers what an earlier one journaled and did not see
  stored (it was killed, or PostgreSQL was down when it stopped). Delivered ids are marked
  in the file as well (without a sync of their own: an unmarked one is only delivered again,
  which stores nothing), and the file is rewritten with only the undelivered entries once it
  passes `compact_bytes`.
* Bounded: at most `max_pending` entries wait for PostgreSQL; beyond that `journal` refuses
  (UNAVAILABLE) and the caller does not act. One process per spool file (an exclusive lock on
  `<path>.lock`): a second one refuses to start rather than share it.

The file lives on local disk (`AUDIT_SPOOL_DIR`; a volume in Kubernetes): losing it loses the
entries not yet in PostgreSQL, and only those."""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import time
from itertools import islice
from pathlib import Path

from prometheus_client import Gauge

from services.common.audit import MAX_BATCH, AuditLog, Entry
from services.common.coalesce import Coalescer
from services.common.errors import unavailable

logger = logging.getLogger("audit_outbox")
PENDING = Gauge("audit_outbox_pending", "Audit entries journaled locally and not yet stored in PostgreSQL",
                ["service"])
MAX_PENDING = 100_000
COMPACT_BYTES = 4 * 1024 * 1024
RETRY_MAX_SECONDS = 5.0


class SpoolInUse(RuntimeError):
    """Another process holds the spool file."""


def _add_line(item: Entry) -> bytes:
    return json.dumps({"add": item.to_json()}, separators=(",", ":")).encode() + b"\n"


def _done_line(entry_id: str) -> bytes:
    return json.dumps({"done": entry_id}).encode() + b"\n"


def replay(data: bytes) -> dict[str, Entry]:
    """The entries a spool file holds that are not marked delivered (or discarded), in the
    order they were journaled. A line cut short by a crash, always the last, is skipped."""
    pending: dict[str, Entry] = {}
    for line in data.splitlines():
        try:
            record = json.loads(line)
            if "add" in record:
                item = Entry.from_json(record["add"])
                if item.entry_id:
                    pending[item.entry_id] = item
            elif "done" in record:
                pending.pop(str(record["done"]), None)
        except (ValueError, TypeError, AttributeError):
            continue
    return pending


class AuditOutbox:
    def __init__(self, audit: AuditLog, path: Path, service: str = "", *, max_pending: int = MAX_PENDING,
                 compact_bytes: int = COMPACT_BYTES) -> None:
        self.audit = audit
        self.path = path
        self.max_pending = max_pending
        self.compact_bytes = compact_bytes
        self._gauge = PENDING.labels(service)
        self._fd: int | None = None
        self._lock_fd: int | None = None
        self._size = 0
        self._pending: dict[str, Entry] = {}  # journaled, not known to be stored
        self._retry: dict[str, Entry] = {}  # of those, the ones the background task delivers
        # callers that journaled an entry and have not yet said whether they acted (two calls
        # may journal the same id); and the ids whose action happened or may have: a discard
        # by one caller never drops an entry another caller acted on
        self._holders: dict[str, int] = {}
        self._acted: set[str] = set()
        self._marked: list[str] = []  # delivered or discarded since the last write
        self._journal: Coalescer[bytes, None] = Coalescer(self._write, MAX_BATCH)
        self._wake = asyncio.Event()
        self._drainer: asyncio.Task[None] | None = None

    # --- lifecycle ------------------------------------------------------------------

    async def open(self) -> None:
        """Locks the spool, takes over what it holds undelivered and starts delivering it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            raise SpoolInUse(f"the audit spool {self.path} is in use by another process: give each process its "
                             "own AUDIT_SPOOL_DIR") from None
        self._lock_fd = lock_fd
        data = self.path.read_bytes() if self.path.exists() else b""
        self._pending = replay(data)
        self._retry = dict(self._pending)
        self._acted = set(self._pending)  # never discarded by the process that journaled them
        await asyncio.to_thread(self._rewrite, b"".join(_add_line(e) for e in self._pending.values()))
        self._gauge.set(len(self._pending))
        if self._pending:
            logger.warning("%d audit entries journaled by an earlier process are not yet stored: delivering them",
                           len(self._pending))
            self._wake.set()
        self._drainer = asyncio.create_task(self._drain())

    async def close(self, grace: float = 2.0) -> None:
        """Delivers what it can within `grace` seconds, marks it, and releases the spool
        (what is left is delivered by the next process)."""
        if self._drainer is not None:
            self._retry.update(self._pending)
            self._wake.set()
            deadline = time.monotonic() + grace
            while self._retry and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            self._drainer.cancel()
            await asyncio.gather(self._drainer, return_exceptions=True)
            self._drainer = None
        if self._fd is not None and self._marked:
            marks, self._marked = b"".join(_done_line(i) for i in self._marked), []
            await asyncio.to_thread(self._append, marks)
        self._release_files()

    def _release_files(self) -> None:
        """Closes the spool and its lock: all a killed process leaves behind is the file."""
        for fd in (self._fd, self._lock_fd):
            if fd is not None:
                os.close(fd)
        self._fd = self._lock_fd = None

    @property
    def pending(self) -> int:
        return len(self._pending)

    # --- the caller's side ----------------------------------------------------------

    async def journal(self, item: Entry) -> None:
        """Returns once `item` is on disk. UNAVAILABLE when the outbox is full (PostgreSQL has
        been unreachable for long) or the disk refuses the write: then do not act."""
        assert item.entry_id, "an outbox entry needs a stable id"
        if self._fd is None:
            raise unavailable("the audit spool is not open")
        if len(self._pending) >= self.max_pending and item.entry_id not in self._pending:
            raise unavailable(f"{len(self._pending)} audit entries wait for PostgreSQL (the outbox holds at most "
                              f"{self.max_pending}): nothing is sent until they are stored")
        self._pending[item.entry_id] = item
        self._holders[item.entry_id] = self._holders.get(item.entry_id, 0) + 1
        self._gauge.set(len(self._pending))
        try:
            await self._journal(_add_line(item))
        except OSError as exc:
            if self._release(item.entry_id):
                self._forget(item.entry_id)
            raise unavailable(f"the audit spool cannot be written ({exc.strerror}): nothing was sent") from exc

    async def deliver(self, item: Entry, wait: float) -> bool:
        """Writes `item` to PostgreSQL; True once stored within `wait` seconds. Otherwise it
        stays in the outbox and is delivered later (never raises)."""
        self._acted_on(item)
        task = asyncio.ensure_future(self._deliver_once(item))
        done, _ = await asyncio.wait({task}, timeout=wait)
        if task in done:
            return task.result()
        task.add_done_callback(lambda t: t.cancelled() or t.result() or None)
        return False

    def deliver_later(self, item: Entry) -> None:
        """Leaves `item` to the background delivery (e.g. its caller was cancelled)."""
        self._acted_on(item)
        self._retry_later(item)

    def _retry_later(self, item: Entry) -> None:
        if item.entry_id in self._pending:
            self._retry[item.entry_id] = item
            self._wake.set()

    async def discard(self, entry_id: str) -> None:
        """This caller's action did not happen: the entry is dropped, on disk before this
        returns, unless another caller journaled the same id and acted (or may still act)."""
        if not self._release(entry_id) or entry_id in self._acted:
            return
        self._forget(entry_id)
        self._marked.append(entry_id)
        try:
            await self._journal(b"")  # the mark goes out with this write, synced
        except OSError:
            logger.warning("could not mark audit entry %s discarded in the spool", entry_id)

    def _acted_on(self, item: Entry) -> None:
        assert item.entry_id
        if item.entry_id in self._pending:
            self._acted.add(item.entry_id)
            self._release(item.entry_id)

    def _release(self, entry_id: str) -> bool:
        """One caller fewer holds `entry_id`; True when none is left."""
        left = self._holders.get(entry_id, 0) - 1
        if left > 0:
            self._holders[entry_id] = left
            return False
        self._holders.pop(entry_id, None)
        return True

    # --- delivery -------------------------------------------------------------------

    async def _deliver_once(self, item: Entry) -> bool:
        try:
            await self.audit.write(item)
        except asyncio.CancelledError:
            self._retry_later(item)
            raise
        except Exception as exc:  # PostgreSQL unreachable or refusing: keep it, try again later
            logger.warning("audit entry %s not stored yet (%s); it stays in the outbox", item.entry_id, exc)
            self._retry_later(item)
            return False
        self._delivered(item)
        return True

    def _delivered(self, item: Entry) -> None:
        assert item.entry_id
        if item.entry_id in self._pending:
            self._forget(item.entry_id)
            self._marked.append(item.entry_id)

    def _forget(self, entry_id: str) -> None:
        self._pending.pop(entry_id, None)
        self._retry.pop(entry_id, None)
        self._holders.pop(entry_id, None)
        self._acted.discard(entry_id)
        self._gauge.set(len(self._pending))

    async def _drain(self) -> None:
        """Delivers the entries left to it, in batches, with backoff while PostgreSQL fails."""
        delay = 0.1
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._retry:
                batch = list(islice(self._retry.values(), MAX_BATCH))
                try:
                    await asyncio.gather(*(self.audit.write(item) for item in batch))
                except Exception as exc:
                    logger.warning("%d audit entries wait for PostgreSQL (%s); retrying in %.1f s",
                                   len(self._pending), exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX_SECONDS)
                    continue
                delay = 0.1
                for item in batch:
                    self._delivered(item)
                logger.info("stored %d audit entries from the outbox", len(batch))

    # --- the spool file -------------------------------------------------------------

    async def _write(self, lines: list[bytes]) -> list[None]:
        """One write and one sync for a batch of journal calls (and the marks made since the
        last write); or, past `compact_bytes`, a new file with only the undelivered entries."""
        marks, self._marked = self._marked, []
        payload = b"".join(_done_line(i) for i in marks) + b"".join(lines)
        if self._size + len(payload) > self.compact_bytes:
            # every entry of this batch is already in _pending: the new file holds it
            await asyncio.to_thread(self._rewrite, b"".join(_add_line(e) for e in self._pending.values()))
        else:
            await asyncio.to_thread(self._append, payload, sync=True)
        return [None] * len(lines)

    def _append(self, data: bytes, sync: bool = False) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]
        if sync:
            os.fdatasync(self._fd)
        self._size += len(data)

    def _rewrite(self, data: bytes) -> None:
        """Replaces the spool with `data` atomically (a new file, synced, renamed over)."""
        temporary = self.path.with_name(self.path.name + ".new")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
            os.replace(temporary, self.path)
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except BaseException:
            os.close(fd)
            raise
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self._size = fd, len(data)
