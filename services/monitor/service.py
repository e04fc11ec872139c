"""VaultMonitor: GetTvl (from the database, cross-checked on chain), GetVaultHealth,
ListAlerts."""

from __future__ import annotations

import asyncpg
import grpc
from collateral_vault.v1 import vault_monitor_pb2, vault_monitor_pb2_grpc

from services.common import validation
from services.common.chain import ChainClient
from services.common.errors import invalid, not_found


class VaultMonitorService(vault_monitor_pb2_grpc.VaultMonitorServicer):
    def __init__(self, pool: asyncpg.Pool, chain: ChainClient) -> None:
        self.pool = pool
        self.chain = chain

    async def GetTvl(self, request: vault_monitor_pb2.GetTvlRequest,
                     context: grpc.aio.ServicerContext) -> vault_monitor_pb2.GetTvlResponse:
        row = await self.pool.fetchrow(
            "SELECT count(*) AS n, COALESCE(sum(total_balance), 0) AS total, COALESCE(sum(locked_balance), 0) AS "
            "locked, COALESCE(sum(available_balance), 0) AS available FROM vaults WHERE closed_at IS NULL")
        assert row is not None
        chain_total = sum(state.vault.total_balance for state in await self.chain.vaults())
        return vault_monitor_pb2.GetTvlResponse(
            total=int(row["total"]), locked=int(row["locked"]), available=int(row["available"]),
            vault_count=int(row["n"]), chain_total=chain_total, chain_matches=chain_total == int(row["total"]))

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
                 "sequence_gap", "admin_sequence_gap", "admin_change_queued", "admin_change_resolved")
        if request.kind and request.kind not in kinds:
            raise invalid(f"kind must be one of {', '.join(kinds)}")
        rows = await self.pool.fetch("SELECT * FROM alerts WHERE ($1 = '' OR kind = $1) ORDER BY id DESC LIMIT $2",
                                     request.kind, limit)
        return vault_monitor_pb2.ListAlertsResponse(alerts=[vault_monitor_pb2.Alert(
            id=r["id"], kind=r["kind"], severity=r["severity"], message=r["message"],
            raised_at=int(r["raised_at"].timestamp()), owner=r["owner"]) for r in rows])
