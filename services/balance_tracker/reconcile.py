"""Reconciliation: every vault's state on chain against its database row and its token
account; mismatches are stored (reconciliation_runs / _findings) and reported.

One run at a time (`Reconciler`): callers that ask while a run is going on in this process
share that run and its result; a run going on in another replica (a PostgreSQL advisory
lock marks it) makes the request ABORTED with the running run's id."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import asyncpg
import grpc
from prometheus_client import Gauge

from services.common.chain import ChainClient
from services.common.errors import ServiceError

logger = logging.getLogger("reconcile")
MISMATCHES = Gauge("reconciliation_mismatches", "Findings of the latest reconciliation run")
LAST_RUN = Gauge("reconciliation_last_run_timestamp", "Unix time of the latest reconciliation run")
_LOCK_KEY = 0x6376_7263  # "cvrc": held by the replica whose run is going on


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


async def run(pool: asyncpg.Pool, chain: ChainClient) -> RunResult:
    run_id = await pool.fetchval("INSERT INTO reconciliation_runs DEFAULT VALUES RETURNING id")
    try:
        states = await chain.vaults()
        tokens = await asyncio.gather(*(chain.token_amount(s.vault.token_account) for s in states))
        rows = {r["owner"]: r for r in await pool.fetch("SELECT * FROM vaults WHERE closed_at IS NULL")}
        findings: list[Finding] = []
        on_chain: set[str] = set()
        for state, token in zip(states, tokens, strict=True):
            owner = str(state.vault.owner)
            on_chain.add(owner)
            row = rows.get(owner)
            if token != state.vault.total_balance:
                findings.append(Finding(owner, "token_account", str(state.vault.total_balance), None, str(token)))
            if row is None:
                findings.append(Finding(owner, "missing_in_database", str(state.vault.total_balance), None, None))
                continue
            for name in ("total_balance", "locked_balance", "available_balance", "total_deposited",
                         "total_withdrawn"):
                chain_value, db_value = getattr(state.vault, name), int(row[name])
                if chain_value != db_value:
                    findings.append(Finding(owner, name, str(chain_value), str(db_value), str(token)))
        for owner in rows.keys() - on_chain:
            findings.append(Finding(owner, "missing_on_chain", None, str(rows[owner]["total_balance"]), None))
        async with pool.acquire() as conn, conn.transaction():
            if findings:
                await conn.executemany(
                    "INSERT INTO reconciliation_findings (owner, run_id, field, chain_value, database_value, "
                    "token_account_value) VALUES ($1, $2, $3, $4, $5, $6)",
                    [(f.owner, run_id, f.field, f.chain_value, f.database_value, f.token_account_value)
                     for f in findings])
            await conn.execute(
                "UPDATE reconciliation_runs SET finished_at = now(), vaults_checked = $2, findings = $3, "
                "status = $4 WHERE id = $1", run_id, len(states), len(findings), "mismatch" if findings else "ok")
    except Exception:
        await pool.execute("UPDATE reconciliation_runs SET finished_at = now(), status = 'failed' WHERE id = $1",
                           run_id)
        raise
    MISMATCHES.set(len(findings))
    LAST_RUN.set(time.time())
    if findings:
        logger.warning("reconciliation run %d: %d mismatches", run_id, len(findings))
    return RunResult(run_id, len(states), findings)


class Reconciler:
    """Runs reconciliations one at a time (see the module's docstring)."""

    def __init__(self, pool: asyncpg.Pool, chain: ChainClient) -> None:
        self.pool = pool
        self.chain = chain
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
                raise ServiceError(grpc.StatusCode.ABORTED,
                                   f"reconciliation run {running or '?'} is going on in another replica: ask again "
                                   "once it has finished (reconciliation_runs has its result)")
            try:
                return await run(self.pool, self.chain)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


async def every(reconciler: Reconciler, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await reconciler.run()
        except Exception as exc:
            logger.warning("reconciliation run failed: %s", exc)
