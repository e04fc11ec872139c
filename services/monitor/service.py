"""VaultMonitor: GetTvl (one row the indexer keeps up to date, with the verdict of the latest
reconciliation run; no chain read), GetVaultHealth, ListAlerts."""

from __future__ import annotations

import asyncpg
import grpc
from collateral_vault.v1 import vault_monitor_pb2, vault_monitor_pb2_grpc

from services.common import validation, vault_rows
from services.common.chain import ChainClient
from services.common.errors import invalid, not_found


class VaultMonitorService(vault_monitor_pb2_grpc.VaultMonitorServicer):
    def __init__(self, pool: asyncpg.Pool, chain: ChainClient) -> None:
        self.pool = pool
        self.chain = chain

    async def GetTvl(self, request: vault_monitor_pb2.GetTvlRequest,
                     context: grpc.aio.ServicerContext) -> vault_monitor_pb2.GetTvlResponse:
        """O(1): `vault_totals` (maintained in the indexer's transactions) and the latest
        finished reconciliation run (the primary key's last entries). Comparing with the chain
        is reconciliation's job: summing it here read every vault per request."""
        totals = await vault_rows.totals(self.pool)
        run = await self.pool.fetchrow(
            "SELECT status, finished_at FROM reconciliation_runs WHERE status IN ('ok', 'mismatch') "
            "ORDER BY id DESC LIMIT 1")
        return vault_monitor_pb2.GetTvlResponse(
            total=totals.total, locked=totals.locked, available=totals.available, vault_count=totals.vault_count,
            chain_matches=run is not None and run["status"] == "ok", slot=totals.slot,
            reconciled_at=int(run["finished_at"].timestamp()) if run is not None and run["finished_at"] else 0)

    async def GetVaultHealth(self, request: vault_monitor_pb2.GetVaultHealthRequest,
                             context: grpc.aio.ServicerContext) -> vault_monitor_pb2.GetVaultHealthResponse:
        owner = validation.pubkey(request.owner, "owner")
        state = await self.chain.vault(owner)
        if state is None:
            raise not_found(f"no vault for owner {owner}")
        vault = state.vault
        tokens = await self.chain.token_amount(vault.token_account)
        return vault_monitor_pb2.GetVaultHealthResponse(
            owner=str(owner), balanced=vault.total_balance == vault.locked_balance + vault.available_balance,
            token_account_matches=tokens == vault.total_balance,
            locked_ratio=vault.locked_balance / vault.total_balance if vault.total_balance else 0.0)

    async def ListAlerts(self, request: vault_monitor_pb2.ListAlertsRequest,
                         context: grpc.aio.ServicerContext) -> vault_monitor_pb2.ListAlertsResponse:
        limit = validation.page_size(request.limit, default=100, maximum=1000)
        kinds = ("reconciliation_mismatch", "large_withdrawal", "unauthorized_caller", "program_paused",
                 "indexer_lag", "liquidation", "exit_requested", "exit_served_by_trader", "operator_refused",
                 "sequence_gap", "admin_sequence_gap", "admin_change_queued", "admin_change_resolved", "log_truncated")
        if request.kind and request.kind not in kinds:
            raise invalid(f"kind must be one of {', '.join(kinds)}")
        rows = await self.pool.fetch("SELECT * FROM alerts WHERE ($1 = '' OR kind = $1) ORDER BY id DESC LIMIT $2",
                                     request.kind, limit)
        return vault_monitor_pb2.ListAlertsResponse(alerts=[vault_monitor_pb2.Alert(
            id=r["id"], kind=r["kind"], severity=r["severity"], message=r["message"],
            raised_at=int(r["raised_at"].timestamp()), owner=r["owner"]) for r in rows])
