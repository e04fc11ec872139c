"""Connections to the running system, from the environment (`make up`'s defaults)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import grpc
from collateral_vault.v1 import (
    cpi_manager_pb2_grpc,
    transaction_builder_pb2,
    transaction_builder_pb2_grpc,
    vault_manager_pb2_grpc,
    vault_monitor_pb2_grpc,
)
from solders.keypair import Keypair

from services.common.config import application_database_url
from vaultctl.wallet import sign


@dataclass
class Endpoints:
    rpc_url: str = field(default_factory=lambda: os.environ.get("SOLANA_RPC_URL", "http://127.0.0.1:8899"))
    vault_manager: str = field(default_factory=lambda: os.environ.get("VAULT_MANAGER_ADDR", "127.0.0.1:50051"))
    cpi_manager: str = field(default_factory=lambda: os.environ.get("CPI_MANAGER_ADDR", "127.0.0.1:50053"))
    monitor: str = field(default_factory=lambda: os.environ.get("MONITOR_ADDR", "127.0.0.1:50054"))
    database_url: str = field(default_factory=lambda: application_database_url(os.environ.get(
        "DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")))
    gateway_url: str = field(default_factory=lambda: f"http://127.0.0.1:{os.environ.get('GATEWAY_PORT', '8080')}")


class Clients:
    def __init__(self, endpoints: Endpoints) -> None:
        self.endpoints = endpoints
        self._channels = [grpc.aio.insecure_channel(address) for address in (
            endpoints.vault_manager, endpoints.cpi_manager, endpoints.monitor)]
        self.vaults = vault_manager_pb2_grpc.VaultManagerStub(self._channels[0])
        self.builder = transaction_builder_pb2_grpc.TransactionBuilderStub(self._channels[0])
        self.cpi = cpi_manager_pb2_grpc.CpiManagerStub(self._channels[1])
        self.monitor = vault_monitor_pb2_grpc.VaultMonitorStub(self._channels[2])

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()

    async def sign_and_submit(self, unsigned_base64: str, signer: Keypair) -> str:
        """What a wallet does: sign the built transaction and hand it back for submission."""
        reply = await self.builder.SubmitTransaction(transaction_builder_pb2.SubmitTransactionRequest(
            signed_transaction_base64=sign(unsigned_base64, signer)), timeout=60)
        if reply.status.error:
            raise RuntimeError(f"transaction {reply.status.signature} failed: {reply.status.error}")
        return reply.status.signature
