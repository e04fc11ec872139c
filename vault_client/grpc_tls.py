"""TLS for a gRPC client, from the paths in the configuration: a channel trusting
GRPC_CA_FILE, presenting a client certificate and/or a bearer token read from a file (the
server's side is services/common/grpc_tls.py).

A client's bearer token is added to each call's metadata by a client interceptor, and only
on TLS channels: grpc's own token credentials run a Python plugin on a new thread per call."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

from vault_client.config import ClientSecurity


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


def _with_token(details: grpc.aio.ClientCallDetails, entry: tuple[str, str]) -> grpc.aio.ClientCallDetails:
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    metadata.add(*entry)
    return grpc.aio.ClientCallDetails(details.method, details.timeout, metadata, details.credentials,
                                      details.wait_for_ready)


class _Token:
    def __init__(self, token: str) -> None:
        self.entry = ("authorization", f"Bearer {token}")


# two classes: grpc sorts a channel's interceptors by kind, each into one list
class _TokenUnary(_Token, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails,
                                    request: Any) -> Any:
        return await continuation(_with_token(client_call_details, self.entry), request)


class _TokenStream(_Token, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails,
                                     request: Any) -> Any:
        return await continuation(_with_token(client_call_details, self.entry), request)


def read_token(path: str) -> str:
    token = Path(path).read_text().strip()
    if not token:
        raise ValueError(f"the token file {path} is empty")
    return token


def channel(address: str, security: ClientSecurity,
            options: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Channel:
    """A channel to `address` as `security` says: plaintext without GRPC_CA_FILE, else TLS
    with the client's certificate and token, if it has them."""
    if not security.tls:
        return grpc.aio.insecure_channel(address, options=list(options))
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read(security.ca_file),
        private_key=_read(security.key) if security.key else None,
        certificate_chain=_read(security.cert) if security.cert else None)
    interceptors: list[Any] = []
    if security.token_file:
        token = read_token(security.token_file)
        interceptors = [_TokenUnary(token), _TokenStream(token)]
    return grpc.aio.secure_channel(address, credentials, options=list(options), interceptors=interceptors)
