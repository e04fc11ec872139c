"""Connections to the running system, from the environment (`make up`'s defaults).

Credentials: GRPC_CA_FILE, GRPC_TOKEN_FILE, GRPC_CLIENT_CERT/KEY as for any client. When
none of them is set and `make up`'s development CA exists (.local/pki/), vaultctl uses it
and its own token there (`vaultctl` holds the submitter, operator and admin roles in
make up's principals file); set GRPC_CA_FILE= (empty) for a system without TLS. The demo's
operator calls go with make up's matching-engine token (or ENGINE_TOKEN_FILE)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from collateral_vault.v1 import (
    cpi_manager_pb2_grpc,
    transaction_builder_pb2,
    transaction_builder_pb2_grpc,
    vault_manager_pb2_grpc,
    vault_monitor_pb2_grpc,
)
from solders.keypair import Keypair

from vault_client import grpc_tls
from vault_client.config import ClientSecurity, ClientSettings
from vaultctl.wallet import sign

MAKE_UP_PKI = Path(__file__).resolve().parent.parent / ".local" / "pki"


def client_security(token: str = "vaultctl") -> ClientSecurity:
    """The environment's client credentials, else make up's with its `token` (see the
    module docstring)."""
    if not ClientSettings().security_configured and (MAKE_UP_PKI / "ca.crt").is_file():
        return ClientSecurity(ca_file=str(MAKE_UP_PKI / "ca.crt"), token_file=str(MAKE_UP_PKI / f"{token}.token"),
                              cert="", key="")
    return ClientSecurity()


def engine_security() -> ClientSecurity:
    """The matching engine's credentials (the operator role) for the demo's operator
    calls: ENGINE_TOKEN_FILE with the environment's CA, else make up's matching-engine
    token, else the environment's client credentials."""
    token = ClientSettings().engine_token_file
    if token:
        return dataclasses.replace(ClientSecurity(), token_file=token)
    return client_security("matching-engine")


@dataclass
class Endpoints:
    """The addresses from ClientSettings (vault_client/config.py: the environment, else
    make up's)."""

    rpc_url: str
    vault_manager: str
    cpi_manager: str
    monitor: str
    database_url: str
    gateway_url: str
    security: ClientSecurity = field(default_factory=client_security)
    engine_security: ClientSecurity = field(default_factory=engine_security)

    @classmethod
    def from_settings(cls, settings: ClientSettings | None = None) -> Endpoints:
        s = settings or ClientSettings()
        return cls(rpc_url=s.rpc_url, vault_manager=s.vault_manager, cpi_manager=s.cpi_manager, monitor=s.monitor,
                   database_url=s.database_url, gateway_url=s.gateway_url)


class Clients:
    def __init__(self, endpoints: Endpoints) -> None:
        self.endpoints = endpoints
        self._channels = [grpc_tls.channel(address, endpoints.security) for address in (
            endpoints.vault_manager, endpoints.cpi_manager, endpoints.monitor)]
        self._channels.append(grpc_tls.channel(endpoints.cpi_manager, endpoints.engine_security))
        self.vaults = vault_manager_pb2_grpc.VaultManagerStub(self._channels[0])
        self.builder = transaction_builder_pb2_grpc.TransactionBuilderStub(self._channels[0])
        self.cpi = cpi_manager_pb2_grpc.CpiManagerStub(self._channels[1])
        self.monitor = vault_monitor_pb2_grpc.VaultMonitorStub(self._channels[2])
        #: cpi_manager as the matching engine calls it (the operator role)
        self.engine = cpi_manager_pb2_grpc.CpiManagerStub(self._channels[3])

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
