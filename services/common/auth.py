"""Who may call which RPC.

The policy is one table: each RPC that changes server-side state or leads to a signature
names the role its caller needs (`POLICY`); every other RPC of the package is read-only
and open to any caller that reaches the port (`OPEN`). A server refuses to register an RPC
that is in neither, so a new RPC cannot be served before someone decides.

Credentials map to roles in the principals file (`GRPC_AUTH_FILE`, TOML):

    [[principal]]
    name = "gateway"
    roles = ["submitter"]
    token_sha256 = "<hex SHA-256 of the bearer token>"   # and/or:
    certificate = "gateway"                              # a client certificate's common name

A caller is identified by its client certificate (mutual TLS: the server verified it
against GRPC_TLS_CLIENT_CA, so its common name is the identity) or by a bearer token
(`authorization: Bearer <token>`, accepted only over TLS). Only the tokens' hashes are
configured; a presented token is hashed and compared with every configured hash in
constant time. No credential (or an unknown token): UNAUTHENTICATED. A known caller
without the role: PERMISSION_DENIED."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from services.common.errors import ServiceError
from services.common.method_handlers import stream_like, unary_like
from vault_client.config import ConfigError, ServerSecurity

logger = logging.getLogger("auth")

SUBMITTER = "submitter"  # submits signed transactions (the gateway, wallets' backends)
OPERATOR = "operator"  # the matching engine: Lock, Release, Settle, Liquidate (signed with the operator key)
ADMIN = "admin"  # starts reconciliations
ROLES = frozenset({SUBMITTER, OPERATOR, ADMIN})

_P = "collateral_vault.v1"
POLICY: dict[str, str] = {
    f"{_P}.TransactionBuilder/SubmitTransaction": SUBMITTER,
    f"{_P}.CpiManager/Lock": OPERATOR,
    f"{_P}.CpiManager/Release": OPERATOR,
    f"{_P}.CpiManager/Settle": OPERATOR,
    f"{_P}.CpiManager/Liquidate": OPERATOR,
    f"{_P}.BalanceTracker/Reconcile": ADMIN,
}
# Read-only: they build unsigned transactions (the signer authorizes them) or read state.
OPEN = frozenset({
    f"{_P}.VaultManager/GetVault", f"{_P}.VaultManager/ListVaults", f"{_P}.VaultManager/GetVaultAddress",
    f"{_P}.VaultManager/GetAuthority",
    f"{_P}.TransactionBuilder/BuildInitializeVault", f"{_P}.TransactionBuilder/BuildDeposit",
    f"{_P}.TransactionBuilder/BuildWithdraw", f"{_P}.TransactionBuilder/BuildCloseVault",
    f"{_P}.BalanceTracker/GetBalance", f"{_P}.BalanceTracker/GetHistory", f"{_P}.BalanceTracker/GetSnapshots",
    f"{_P}.BalanceTracker/StreamEvents",
    f"{_P}.CpiManager/ListAuthorizedPrograms", f"{_P}.CpiManager/BuildAddAuthorizedProgram",
    f"{_P}.CpiManager/BuildRemoveAuthorizedProgram", f"{_P}.CpiManager/BuildSetPaused",
    f"{_P}.CpiManager/GetLockedBreakdown", f"{_P}.CpiManager/GetGrant",
    f"{_P}.CpiManager/BuildGrant", f"{_P}.CpiManager/BuildRevoke", f"{_P}.CpiManager/BuildRequestExit",
    f"{_P}.CpiManager/BuildExit", f"{_P}.CpiManager/BuildProposeConfigChange",
    f"{_P}.CpiManager/BuildApplyConfigChange", f"{_P}.CpiManager/BuildCancelConfigChange",
    f"{_P}.CpiManager/BuildExecuteChange", f"{_P}.CpiManager/BuildCancelChange",
    f"{_P}.CpiManager/BuildSetTimelockDelay", f"{_P}.CpiManager/BuildSetWithdrawLimits",
    f"{_P}.VaultMonitor/GetTvl", f"{_P}.VaultMonitor/GetVaultHealth", f"{_P}.VaultMonitor/ListAlerts",
})


def required_role(method: str) -> str | None:
    """The role `method` ("package.Service/Method") needs, None if open; an RPC of this
    package that the policy does not classify is a startup error."""
    role = POLICY.get(method)
    if role is None and method.startswith(f"{_P}.") and method not in OPEN:
        raise ConfigError(f"RPC {method} is neither in auth.POLICY nor in auth.OPEN: decide who may call it")
    return role


def token_hash(token: str) -> str:
    """What the principals file holds for a bearer token."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    name: str
    roles: frozenset[str]


class Principals:
    """The principals file, read once at start."""

    def __init__(self, tokens: list[tuple[bytes, Principal]], certificates: dict[str, Principal]) -> None:
        self._tokens = tokens
        self._certificates = certificates

    @classmethod
    def load(cls, path: str, security: ServerSecurity) -> Principals:
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"GRPC_AUTH_FILE {path} cannot be read: {exc}") from None
        tokens: list[tuple[bytes, Principal]] = []
        certificates: dict[str, Principal] = {}
        names: set[str] = set()
        for entry in data.get("principal", []):
            name, roles = entry.get("name"), entry.get("roles", [])
            where = f"GRPC_AUTH_FILE {path}, principal {name!r}"
            if not isinstance(name, str) or not name or name in names:
                raise ConfigError(f"{where}: every principal needs a unique name")
            if not isinstance(roles, list) or not set(roles) <= ROLES:
                raise ConfigError(f"{where}: roles must be a list of {', '.join(sorted(ROLES))}")
            principal = Principal(name, frozenset(roles))
            names.add(name)
            digest, certificate = entry.get("token_sha256"), entry.get("certificate")
            if digest is None and certificate is None:
                raise ConfigError(f"{where}: give token_sha256 or certificate")
            if digest is not None:
                if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
                    raise ConfigError(f"{where}: token_sha256 must be 64 lower-case hex digits")
                if not security.tls:
                    raise ConfigError(f"{where}: bearer tokens are accepted only over TLS (set GRPC_TLS_CERT)")
                tokens.append((bytes.fromhex(digest), principal))
            if certificate is not None:
                if not isinstance(certificate, str) or not certificate:
                    raise ConfigError(f"{where}: certificate must be a common name")
                if not security.client_ca:
                    raise ConfigError(f"{where}: a certificate identity needs mutual TLS (GRPC_TLS_CLIENT_CA)")
                certificates[certificate] = principal
        logger.info("authentication: %d token and %d certificate principals", len(tokens), len(certificates))
        return cls(tokens, certificates)

    def _by_token(self, token: str) -> Principal | None:
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        for expected, principal in self._tokens:  # every hash compared: the time says nothing
            if hmac.compare_digest(expected, digest):
                found = principal
        return found

    def identify(self, context: grpc.aio.ServicerContext) -> Principal | None:
        """The caller, or None when it presented no credential; an unknown token is refused."""
        common_names = (context.auth_context() or {}).get("x509_common_name")
        certified = common_names[0].decode(errors="replace") if common_names else None
        if certified is not None and certified in self._certificates:
            return self._certificates[certified]
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
                scheme, _, token = text.partition(" ")
                principal = self._by_token(token.strip()) if scheme.lower() == "bearer" else None
                if principal is None:
                    raise ServiceError(grpc.StatusCode.UNAUTHENTICATED, "the bearer token is not recognized")
                return principal
        if certified is not None:  # a certificate the cluster's CA issued, without a principal
            return Principal(f"certificate {certified!r}", frozenset())
        return None


class Guard:
    """Wraps the handlers of RPCs that need a role with the check; open RPCs are left as
    they are (no cost). Without principals (the development profile without
    GRPC_AUTH_FILE) nothing is checked, but the policy still classifies every RPC."""

    def __init__(self, principals: Principals | None) -> None:
        self.principals = principals

    @classmethod
    def for_security(cls, security: ServerSecurity) -> Guard:
        return cls(Principals.load(security.auth_file, security) if security.auth_file else None)

    def check(self, context: grpc.aio.ServicerContext, method: str, role: str) -> Principal:
        assert self.principals is not None
        principal = self.principals.identify(context)
        short = method.rsplit("/", 1)[-1]
        if principal is None:
            raise ServiceError(grpc.StatusCode.UNAUTHENTICATED,
                               f"{short} needs the {role} role: call with a bearer token or a client certificate")
        if role not in principal.roles:
            raise ServiceError(grpc.StatusCode.PERMISSION_DENIED,
                               f"{principal.name} lacks the {role} role {short} needs")
        return principal

    def wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        role = required_role(method)
        if role is None or self.principals is None:
            return handler
        check = self.check
        if handler.unary_unary:
            inner = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                check(context, method, role)
                return await inner(request, context)

            return unary_like(handler, unary)
        if handler.unary_stream:
            inner_stream = handler.unary_stream

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                check(context, method, role)
                async for item in inner_stream(request, context):
                    yield item

            return stream_like(handler, stream)
        raise ConfigError(f"{method}: only unary and server-streaming RPCs can be guarded")
