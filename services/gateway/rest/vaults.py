"""GET /vaults/{owner} (VaultManager.GetVault) and GET /vaults/{owner}/history (the
indexer's BalanceTracker.GetHistory, filtered by kind, in pages)."""

from __future__ import annotations

from aiohttp import web
from collateral_vault.v1 import (
    balance_tracker_pb2,
    balance_tracker_pb2_grpc,
    vault_manager_pb2,
    vault_manager_pb2_grpc,
)

from services.common.event_kinds import KIND_VALUES
from services.gateway.responses import as_json, error
from vault_client.config import GatewayConfig


class Vaults:
    def __init__(self, vaults: vault_manager_pb2_grpc.VaultManagerStub,
                 tracker: balance_tracker_pb2_grpc.BalanceTrackerStub, config: GatewayConfig) -> None:
        self.vaults = vaults
        self.tracker = tracker
        self.config = config

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/vaults/{owner}", self.vault)
        router.add_get("/vaults/{owner}/history", self.history)

    async def vault(self, request: web.Request) -> web.Response:
        reply = await self.vaults.GetVault(vault_manager_pb2.GetVaultRequest(owner=request.match_info["owner"]),
                                           timeout=self.config.deadline_seconds)
        return web.json_response(as_json(reply.vault))

    async def history(self, request: web.Request) -> web.Response:
        query = request.query
        kinds = []
        if "kind" in query:
            if query["kind"] not in KIND_VALUES:
                return error(400, "INVALID_ARGUMENT", f"kind must be one of {', '.join(KIND_VALUES)}")
            kinds = [KIND_VALUES[query["kind"]]]
        page_size = query.get("page_size", "50")
        if not page_size.isdigit() or not 1 <= int(page_size) <= 500:
            return error(400, "INVALID_ARGUMENT", "page_size must be an integer from 1 to 500")
        reply = await self.tracker.GetHistory(balance_tracker_pb2.GetHistoryRequest(
            owner=request.match_info["owner"], kinds=kinds, page_size=int(page_size),
            page_token=query.get("page_token", "")), timeout=self.config.deadline_seconds)
        out = as_json(reply)
        for event in out["events"]:
            event["kind"] = event["kind"].removeprefix("EVENT_KIND_").lower()
        return web.json_response(out)
