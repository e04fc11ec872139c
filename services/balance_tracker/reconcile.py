"""Reconciliation: every vault's state on chain against its database row and its token
account, compared at the same slot; mismatches are stored (reconciliation_runs /
_findings) and reported.

How a run reads (no getProgramAccounts, nothing proportional to N in one call):

1. Vault rows are paged from PostgreSQL by a keyset on `owner` (`PAGE_ROWS` a query). Each
   page is read on chain `OWNERS_PER_CALL` vaults at a time: one getMultipleAccounts of the
   vaults and their token accounts (100 accounts), so each group is one state of the chain,
   at that answer's context slot. At most `Pace.calls_in_flight` calls are in flight and
   the run yields to the event loop after each, so the process's requests and the indexer
   go on between them.
2. A vault whose token account does not hold its total balance is a finding at once (both
   read at one slot). A row that differs from its chain read is only a *suspect*: the row
   may have been read before the indexer wrote that slot, or after it wrote a later one.
3. Suspects are verified once the indexer has processed through their slot (`processed_slot`:
   its cursor is past it, since a batch may end inside a slot; or the newest program
   transactions the node knows are all written, so nothing is left to index up to the node's
   slot): the row is read
   again; if it now holds a later slot than the chain read, the chain is read again (a new
   slot): equal to the row, the vault is clear, else it waits for the indexer once more.
   A mismatch is reported only if the row, as of a slot at or before the chain read, still
   differs with the indexer past it.
   Suspects the indexer has not passed within `Pace.verify_seconds` are counted as
   unverified (logged, a gauge), not reported: that is indexer lag, which has its own alert.
4. Owners the event ledger knows but with no vault row (a row lost or never written) are
   read on chain too, so a vault on chain that the database misses is reported. A vault of
   which the database holds no trace at all cannot be found without enumerating the
   program's accounts; the indexer's backfill by signature is what covers that case.

One run at a time (`Reconciler`): callers that ask while a run is going on in this process
share that run and its result; a run going on in another replica (a PostgreSQL advisory
lock marks it) makes the request ABORTED with the running run's id, and a scheduled run
there is skipped."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import grpc
from prometheus_client import Gauge
from solders.account import Account
from solders.pubkey import Pubkey

from services.balance_tracker.store import read_cursor, stored_signatures
from services.common.chain import ChainClient, Listed
from services.common.errors import ServiceError
from vault_client import spl_token
from vault_client.vault_program import Vault

logger = logging.getLogger("reconcile")
MISMATCHES = Gauge("reconciliation_mismatches", "Findings of the latest reconciliation run")
UNVERIFIED = Gauge("reconciliation_unverified", "Differences of the latest run the indexer had not passed in time")
LAST_RUN = Gauge("reconciliation_last_run_timestamp", "Unix time of the latest reconciliation run")
_LOCK_KEY = 0x6376_7263  # "cvrc": held by the replica whose run is going on

PAGE_ROWS = 1_000  # vault rows a PostgreSQL query reads
OWNERS_PER_CALL = 50  # their vault and token accounts: getMultipleAccounts' limit of 100 keys
BALANCE_FIELDS = ("total_balance", "locked_balance", "available_balance", "total_deposited", "total_withdrawn")
_ROW_COLUMNS = ("owner, address, token_account, closed_at IS NOT NULL AS closed, last_slot, "
                + ", ".join(f"{name}::text" for name in BALANCE_FIELDS))


@dataclass(frozen=True)
class Pace:
    """How hard a run may press on the node and the process."""

    calls_in_flight: int = 4  # getMultipleAccounts calls at once
    pause_seconds: float = 0.0  # between pages (0: only a yield)
    verify_seconds: float = 60.0  # how long suspects may wait for the indexer
    poll_seconds: float = 0.25  # how often the indexer's progress is asked for while they wait


@dataclass(frozen=True)
class Finding:
    owner: str
    field: str
    chain_value: str | None
    database_value: str | None
    token_account_value: str | None


@dataclass(frozen=True)
class RunResult:
    run_id: int
    vaults_checked: int
    findings: list[Finding]
    unverified: list[Finding]
    suspects: int = 0  # vaults whose first comparison differed (most are cleared by the verification)
    seconds: float = 0.0


@dataclass(frozen=True)
class Seen:
    """One owner's vault and token account as the chain held them at `slot`."""

    owner: str
    slot: int
    vault: Vault | None
    token: int | None  # None: no token account


@dataclass(frozen=True)
class Row:
    owner: str
    vault: Pubkey
    token_account: Pubkey
    closed: bool
    last_slot: int
    values: tuple[int, ...]  # BALANCE_FIELDS' values

    @classmethod
    def of(cls, record: Any) -> Row:
        return cls(record["owner"], Pubkey.from_string(record["address"]),
                   Pubkey.from_string(record["token_account"]), record["closed"], int(record["last_slot"]),
                   tuple(int(record[name]) for name in BALANCE_FIELDS))


def differences(row: Row | None, seen: Seen) -> list[Finding]:
    """How the database row differs from the chain as `seen` (the token account aside)."""
    vault = seen.vault
    if vault is None:
        if row is None or row.closed:
            return []
        return [Finding(seen.owner, "missing_on_chain", None, str(row.values[0]), None)]
    if row is None or row.closed:
        return [Finding(seen.owner, "missing_in_database", str(vault.total_balance), None, _text(seen.token))]
    return [Finding(seen.owner, name, str(getattr(vault, name)), str(value), _text(seen.token))
            for name, value in zip(BALANCE_FIELDS, row.values, strict=True) if getattr(vault, name) != value]


def token_difference(seen: Seen) -> Finding | None:
    """A vault whose token account does not hold its total balance (one slot: no database)."""
    if seen.vault is None or seen.token == seen.vault.total_balance:
        return None
    return Finding(seen.owner, "token_account", str(seen.vault.total_balance), None, _text(seen.token))


def _text(value: int | None) -> str | None:
    return None if value is None else str(value)


def _vault(account: Account | None, chain: ChainClient) -> Vault | None:
    if account is None or account.owner != chain.program.program_id:
        return None
    return Vault.decode(bytes(account.data))


def _token(account: Account | None) -> int | None:
    if account is None or account.owner != spl_token.TOKEN_PROGRAM_ID:
        return None
    return spl_token.TokenAccount.decode(bytes(account.data)).amount


async def observe(chain: ChainClient, owners: Sequence[tuple[str, Pubkey, Pubkey]]) -> list[Seen]:
    """(owner, vault, token account) triples read on chain in one getMultipleAccounts: one slot."""
    slot, accounts = await chain.accounts([vault for _, vault, _ in owners] + [token for _, _, token in owners])
    half = len(owners)
    return [Seen(owner, slot, _vault(accounts[i], chain), _token(accounts[half + i]))
            for i, (owner, _, _) in enumerate(owners)]


def _addresses(chain: ChainClient, owner: str) -> tuple[str, Pubkey, Pubkey]:
    key = Pubkey.from_string(owner)
    return owner, chain.program.vault(key), chain.program.vault_token(key)


# How many of the node's newest program transactions are looked at to tell an idle indexer:
# a longer look (getSignaturesForAddress' most) when the first does not list the whole of the
# cursor's slot (a burst of more than ten in it).
LOOKS = (10, 1_000)


async def processed_slot(pool: asyncpg.Pool, chain: ChainClient, cursor_name: str) -> int:
    """A slot through which the indexer has written every program event.

    The indexer writes in the node's order, but a batch may end inside a slot: its cursor then
    names that slot while the slot's later transactions are still to be written (issue 25: 12
    false mismatches under deposit load, rows read with the cursor at the chain read's slot and
    that slot's later deposits not yet written). So a cursor at slot `c` vouches for `c - 1`.

    The cursor moves only on events, so an idle indexer is recognised from the node's newest
    program transactions (read after the node's current slot, so nothing between the two is
    missed): when they are all before `c`, or those in `c` are all stored, nothing up to the
    current slot is left to write."""
    current = await chain.slot()
    cursor = await read_cursor(pool, cursor_name)
    at = cursor[0] if cursor else 0
    through = max(at - 1, 0)
    for limit in LOOKS:
        caught_up = await _caught_up(pool, await chain.newest_transactions(chain.program.program_id, limit), limit,
                                     at)
        if caught_up is not None:
            return max(through, current) if caught_up else through
    return through


async def _caught_up(pool: asyncpg.Pool, page: list[Listed], limit: int, at: int) -> bool | None:
    """Whether the node's newest program transactions (`page`, newest first, asked for `limit`)
    are all written by an indexer whose cursor is at slot `at`; None when the page is too short
    to tell (it does not reach the whole of slot `at`, or holds only failures)."""
    whole = len(page) < limit  # the page reaches back to the program's first transaction
    newest = [listed for listed in page if listed.succeeded]
    if not newest:
        return True if whole else None
    if newest[0].slot > at:
        return False
    in_cursor_slot = [listed.signature for listed in newest if listed.slot == at]
    if not in_cursor_slot:
        return True
    if not whole and page[-1].slot >= at:
        return None
    return await stored_signatures(pool, in_cursor_slot) >= set(in_cursor_slot)


async def _vault_pages(pool: asyncpg.Pool, size: int) -> AsyncIterator[list[Row]]:
    """Every vault row, `size` at a time, in owner order (keyset: each page is one index range)."""
    after = ""
    while True:
        records = await pool.fetch(f"SELECT {_ROW_COLUMNS} FROM vaults WHERE owner > $1 ORDER BY owner LIMIT $2",
                                   after, size)
        if not records:
            return
        yield [Row.of(r) for r in records]
        after = records[-1]["owner"]


# Owners of the event ledger without a vault row: the ledger's owners walked by a skip scan of
# its (owner, seq) index, one index probe per owner, `$2` owners a query.
_LEDGER_ONLY = """
WITH RECURSIVE owners(owner, n) AS (
    (SELECT owner, 1 FROM transactions WHERE owner > $1 ORDER BY owner LIMIT 1)
    UNION ALL
    SELECT (SELECT t.owner FROM transactions t WHERE t.owner > o.owner ORDER BY t.owner LIMIT 1), o.n + 1
    FROM owners o WHERE o.owner IS NOT NULL AND o.n < $2
)
SELECT owner, NOT EXISTS (SELECT 1 FROM vaults v WHERE v.owner = owners.owner) AS missing
FROM owners WHERE owner IS NOT NULL ORDER BY owner
"""


async def _ledger_only_pages(pool: asyncpg.Pool, size: int) -> AsyncIterator[list[str]]:
    after = ""
    while True:
        records = await pool.fetch(_LEDGER_ONLY, after, size)
        if not records:
            return
        yield [r["owner"] for r in records if r["missing"]]
        after = records[-1]["owner"]


async def _rows(pool: asyncpg.Pool, owners: list[str]) -> dict[str, Row]:
    records = await pool.fetch(f"SELECT {_ROW_COLUMNS} FROM vaults WHERE owner = ANY($1::text[])", owners)
    return {r["owner"]: Row.of(r) for r in records}


class _Run:
    """One run's state: what it has read and what it suspects."""

    def __init__(self, pool: asyncpg.Pool, chain: ChainClient, cursor_name: str, pace: Pace) -> None:
        self.pool = pool
        self.chain = chain
        self.cursor_name = cursor_name
        self.pace = pace
        self.findings: list[Finding] = []
        self.suspects: dict[str, Seen] = {}
        self.checked = 0
        self._gate = asyncio.Semaphore(pace.calls_in_flight)

    async def _observe(self, owners: Sequence[tuple[str, Pubkey, Pubkey]]) -> list[Seen]:
        async with self._gate:
            seen = await observe(self.chain, owners)
        await asyncio.sleep(0)  # the process's requests go on between calls
        return seen

    async def _read(self, owners: Sequence[tuple[str, Pubkey, Pubkey]]) -> list[Seen]:
        """The owners read on chain, `OWNERS_PER_CALL` a call, several calls in flight."""
        groups = [owners[i:i + OWNERS_PER_CALL] for i in range(0, len(owners), OWNERS_PER_CALL)]
        return [seen for group in await asyncio.gather(*(self._observe(g) for g in groups)) for seen in group]

    def _compare(self, rows: dict[str, Row], seen: list[Seen]) -> None:
        for each in seen:
            token = token_difference(each)
            if token is not None:
                self.findings.append(token)
            if differences(rows.get(each.owner), each):
                self.suspects[each.owner] = each

    async def scan(self) -> None:
        async for page in _vault_pages(self.pool, PAGE_ROWS):
            rows = {row.owner: row for row in page}
            self._compare(rows, await self._read([(r.owner, r.vault, r.token_account) for r in page]))
            self.checked += len(page)
            await asyncio.sleep(self.pace.pause_seconds)
        async for owners in _ledger_only_pages(self.pool, PAGE_ROWS):
            if owners:
                self._compare({}, await self._read([_addresses(self.chain, o) for o in owners]))
            await asyncio.sleep(self.pace.pause_seconds)

    async def verify(self) -> list[Finding]:
        """Confirms or clears the suspects (module docstring, 3.); returns the unverified."""
        deadline = time.monotonic() + self.pace.verify_seconds
        pending = dict(self.suspects)
        while pending and time.monotonic() < deadline:
            processed = await processed_slot(self.pool, self.chain, self.cursor_name)
            ready = [owner for owner, seen in pending.items() if seen.slot <= processed]
            if ready:
                rows = await _rows(self.pool, ready)
                moved: list[tuple[str, Pubkey, Pubkey]] = []
                for owner in ready:
                    row, seen = rows.get(owner), pending.pop(owner)
                    if row is not None and row.last_slot > seen.slot:  # the row is past the chain read
                        moved.append((owner, row.vault, row.token_account))
                    else:
                        self.findings.extend(differences(row, seen))
                for seen in await self._read(moved) if moved else []:
                    if differences(rows.get(seen.owner), seen):  # not yet at the row's state: wait again
                        pending[seen.owner] = seen
            else:
                await asyncio.sleep(self.pace.poll_seconds)
        if not pending:
            return []
        rows = await _rows(self.pool, list(pending))
        return [f for owner, seen in pending.items() for f in differences(rows.get(owner), seen)]


async def run(pool: asyncpg.Pool, chain: ChainClient, cursor_name: str = "collateral_vault",
              pace: Pace | None = None) -> RunResult:
    started = time.monotonic()
    run_id = await pool.fetchval("INSERT INTO reconciliation_runs DEFAULT VALUES RETURNING id")
    state = _Run(pool, chain, cursor_name, pace or Pace())
    try:
        await state.scan()
        unverified = await state.verify()
        findings = state.findings
        async with pool.acquire() as conn, conn.transaction():
            if findings:
                await conn.executemany(
                    "INSERT INTO reconciliation_findings (owner, run_id, field, chain_value, database_value, "
                    "token_account_value) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    [(f.owner, run_id, f.field, f.chain_value, f.database_value, f.token_account_value)
                     for f in findings])
            await conn.execute(
                "UPDATE reconciliation_runs SET finished_at = now(), vaults_checked = $2, findings = $3, "
                "status = $4 WHERE id = $1", run_id, state.checked, len(findings), "mismatch" if findings else "ok")
    except BaseException:
        await asyncio.shield(pool.execute(
            "UPDATE reconciliation_runs SET finished_at = now(), status = 'failed' WHERE id = $1", run_id))
        raise
    MISMATCHES.set(len(findings))
    UNVERIFIED.set(len(unverified))
    LAST_RUN.set(time.time())
    if findings:
        logger.warning("reconciliation run %d: %d mismatches", run_id, len(findings))
    if unverified:
        logger.warning("reconciliation run %d: %d differences left unverified (the indexer had not passed their "
                       "slot within %.0f s)", run_id, len(unverified), state.pace.verify_seconds)
    return RunResult(run_id, state.checked, findings, unverified, len(state.suspects), time.monotonic() - started)


class AnotherReplicaRuns(ServiceError):
    """A run is going on in another replica."""


class Reconciler:
    """Runs reconciliations one at a time (see the module's docstring)."""

    def __init__(self, pool: asyncpg.Pool, chain: ChainClient, cursor_name: str = "collateral_vault",
                 pace: Pace | None = None) -> None:
        self.pool = pool
        self.chain = chain
        self.cursor_name = cursor_name
        self.pace = pace or Pace()
        self._running: asyncio.Task[RunResult] | None = None

    async def run(self) -> RunResult:
        """The result of a run started now, or of the one going on in this process."""
        if self._running is None:
            self._running = asyncio.create_task(self._exclusive())
            self._running.add_done_callback(self._finished)
        return await asyncio.shield(self._running)  # a caller that gives up does not stop the run

    def _finished(self, task: asyncio.Task[RunResult]) -> None:
        self._running = None
        if not task.cancelled():
            task.exception()  # retrieved: each caller has it raised from `run`

    async def _exclusive(self) -> RunResult:
        async with self.pool.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK_KEY):
                running = await conn.fetchval(
                    "SELECT id FROM reconciliation_runs WHERE finished_at IS NULL ORDER BY id DESC LIMIT 1")
                raise AnotherReplicaRuns(grpc.StatusCode.ABORTED,
                                         f"reconciliation run {running or '?'} is going on in another replica: ask "
                                         "again once it has finished (reconciliation_runs has its result)")
            try:
                return await run(self.pool, self.chain, self.cursor_name, self.pace)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


async def every(reconciler: Reconciler, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await reconciler.run()
        except AnotherReplicaRuns as exc:
            logger.info("scheduled reconciliation skipped: %s", exc)
        except Exception as exc:
            logger.warning("reconciliation run failed: %s", exc)
