"""TLS for a gRPC server, from the paths in the configuration: its credentials (TLS, or
mutual TLS when GRPC_TLS_CLIENT_CA is set). A client's channel is vault_client/grpc_tls.py."""

from __future__ import annotations

from pathlib import Path

import grpc

from vault_client.config import ServerSecurity


def server_credentials(security: ServerSecurity) -> grpc.ServerCredentials | None:
    """None for a plaintext server."""
    if not security.tls:
        return None
    client_ca = Path(security.client_ca).read_bytes() if security.client_ca else None
    key, cert = Path(security.tls_key).read_bytes(), Path(security.tls_cert).read_bytes()
    return grpc.ssl_server_credentials([(key, cert)],
                                       root_certificates=client_ca, require_client_auth=client_ca is not None)
