"""Configuration from the environment (12-factor), with embedded defaults that run the
whole system on one machine against localnet. Every service reads the same `Settings`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from solders.pubkey import Pubkey

from services.common import vault_program

DEFAULT_USDT_MINT = "AEUcvcYnF7grG2PvgCtgtXyVPxmpMUdu44DjTDTyfJa2"  # localnet's dev mint


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    try:
        return int(value) if value else default
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {value!r}") from exc


@dataclass(frozen=True)
class Settings:
    service: str
    grpc_host: str = field(default_factory=lambda: _env("GRPC_HOST", "127.0.0.1"))
    grpc_port: int = 0
    metrics_port: int = 0
    solana_rpc_url: str = field(default_factory=lambda: _env("SOLANA_RPC_URL", "http://127.0.0.1:8899"))
    solana_ws_url: str = field(default_factory=lambda: _env("SOLANA_WS_URL", "ws://127.0.0.1:8900"))
    commitment: str = field(default_factory=lambda: _env("SOLANA_COMMITMENT", "confirmed"))
    database_url: str = field(default_factory=lambda: _env("DATABASE_URL",
                                                           "postgresql://postgres@127.0.0.1:5432/postgres"))
    redis_url: str = field(default_factory=lambda: _env("REDIS_URL", "redis://127.0.0.1:6379/0"))
    redis_prefix: str = field(default_factory=lambda: _env("REDIS_PREFIX", "cv:"))
    vault_program_id: Pubkey = field(default_factory=lambda: Pubkey.from_string(
        _env("VAULT_PROGRAM_ID", str(vault_program.PROGRAM_ID))))
    position_manager_id: Pubkey = field(default_factory=lambda: Pubkey.from_string(
        _env("POSITION_MANAGER_ID", str(vault_program.POSITION_MANAGER_ID))))
    usdt_mint: Pubkey = field(default_factory=lambda: Pubkey.from_string(_env("USDT_MINT", DEFAULT_USDT_MINT)))
    cache_ttl_seconds: int = field(default_factory=lambda: _int("CACHE_TTL_SECONDS", 30))
    # JSON-RPC requests sent together in one batch (1: each alone, for an endpoint without batches)
    rpc_max_batch: int = field(default_factory=lambda: _int("RPC_MAX_BATCH", 100))
    shutdown_grace_seconds: float = field(default_factory=lambda: float(_env("SHUTDOWN_GRACE_SECONDS", "10")))
    log_level: str = field(default_factory=lambda: _env("LOG_LEVEL", "INFO"))
    # --- added by issue 21 (submission audit, live events, indexer leadership) ---
    # Where a service journals audit entries before acting (one file per service process;
    # in Kubernetes a volume: see deploy/k8s/base/vault-manager.yaml).
    audit_spool_dir: str = field(default_factory=lambda: _env("AUDIT_SPOOL_DIR", os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), ".local", "spool")))
    # The indexer's leadership lease (renewed every fifth of it; a standby takes over within
    # about lease + 2 s of the leader vanishing), and how long a leading indexer may stay
    # behind the chain without progress before its health turns NOT_SERVING.
    indexer_lease_seconds: float = field(default_factory=lambda: float(_env("INDEXER_LEASE_SECONDS", "10")))
    indexer_stuck_seconds: float = field(default_factory=lambda: float(_env("INDEXER_STUCK_SECONDS", "30")))
    # Live event streams (StreamEvents) per balance_tracker process: in total, per client
    # address (each gateway replica is one client: at least GATEWAY_WS_MAX_CONNECTIONS), and
    # how far one may fall behind before it is closed.
    stream_max_subscribers: int = field(default_factory=lambda: _int("STREAM_MAX_SUBSCRIBERS", 10_000))
    stream_max_per_client: int = field(default_factory=lambda: _int("STREAM_MAX_PER_CLIENT", 1_000))
    stream_queue_size: int = field(default_factory=lambda: _int("STREAM_QUEUE_SIZE", 10_000))
    # gRPC server keepalive: a peer that does not answer a ping within the timeout is dropped
    # with its streams (a client that vanished without closing).
    grpc_keepalive_seconds: float = field(default_factory=lambda: float(_env("GRPC_KEEPALIVE_SECONDS", "20")))
    grpc_keepalive_timeout_seconds: float = field(default_factory=lambda: float(_env("GRPC_KEEPALIVE_TIMEOUT_SECONDS",
                                                                                     "10")))
    # The gateway's WebSockets: in total per gateway process and per client address.
    ws_max_connections: int = field(default_factory=lambda: _int("GATEWAY_WS_MAX_CONNECTIONS", 1_000))
    ws_max_per_client: int = field(default_factory=lambda: _int("GATEWAY_WS_MAX_PER_CLIENT", 10))

    def __post_init__(self) -> None:
        if self.rpc_max_batch < 1:
            raise ValueError(f"RPC_MAX_BATCH must be at least 1, got {self.rpc_max_batch}")

    @classmethod
    def for_service(cls, service: str, grpc_port: int, metrics_port: int) -> Settings:
        """Ports from `<SERVICE>_GRPC_PORT` / `<SERVICE>_METRICS_PORT` (or GRPC_PORT /
        METRICS_PORT), defaulting to the service's well-known ports."""
        upper = service.upper()
        return cls(
            service=service,
            grpc_port=_int(f"{upper}_GRPC_PORT", _int("GRPC_PORT", grpc_port)),
            metrics_port=_int(f"{upper}_METRICS_PORT", _int("METRICS_PORT", metrics_port)),
        )

    @property
    def program(self) -> vault_program.VaultProgram:
        return vault_program.VaultProgram(self.usdt_mint, self.vault_program_id)


APPLICATION_DATABASE = "collateral_vault"


def application_database_url(url: str) -> str:
    """`make up`'s rule: a URL naming the server's default `postgres` database (as found or
    started by the dev tooling) means the system's own `collateral_vault` database."""
    parts = urlsplit(url)
    if parts.path.strip("/") not in ("", "postgres"):
        return url
    return urlunsplit((parts.scheme, parts.netloc, f"/{APPLICATION_DATABASE}", parts.query, parts.fragment))
