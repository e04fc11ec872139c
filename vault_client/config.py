"""Configuration from the environment (12-factor): one typed object per process, checked
when it is built. Every service reads `Settings`; the gateway reads `GatewayConfig`.

Profiles (`CV_PROFILE`). `development` runs the whole system on one machine against
localnet with embedded defaults (`make up` and the tests set it). Anything else, **unset
included**, is `production`: there the cluster's program ids, USDT mint and genesis hash
have no defaults, the development ids (whose private keys are in this repository) are
refused, and gRPC must be served with TLS and authentication. So a deployment that forgets
the profile fails closed instead of falling into development. docs/configuration.md lists
every setting."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from solders.pubkey import Pubkey

from vault_client import vault_program

DEVELOPMENT, PRODUCTION = "development", "production"
PROFILES = (DEVELOPMENT, PRODUCTION)
DEFAULT_USDT_MINT = "AEUcvcYnF7grG2PvgCtgtXyVPxmpMUdu44DjTDTyfJa2"  # localnet's dev mint

# Public keys whose private keys are committed to this repository (program/keys/,
# localnet/dev_keys/; tests/services/test_config.py keeps this list in step with them).
DEVELOPMENT_KEYS = {
    "EfyqqVByTbyzy15nxcPBGUmNGd6cDHqwq7R9qNXFfk1L": "the development collateral_vault program",
    "B2ckqnrZzVAQcCh85DVEwpCRfpwHs4n7mKr8b4oSRKVp": "the development position_manager program",
    "GyoCE5PbXEXL7jPCGKRA77DNyFMvm2AkkEt56PAgV5Vn": "the test-only unauthorized position_manager",
    "AEUcvcYnF7grG2PvgCtgtXyVPxmpMUdu44DjTDTyfJa2": "localnet's development USDT mint",
    "5sti3ZVBDrn5utZuVnSvLazGtTATFCsAXMXgmErAV6Ns": "the development admin key",
    "2ybx5wHvwtKZ2w7ZWWEcYey3PMs8zpJJndzEPsDbceY8": "the development faucet key",
    "5u9FrDu1mvmqVQfi8rU3nJohhK6LR6QiqJd4nmC5GCBY": "the development exchange operator key",
    "41A1CdD8rmkyZwDAB6qGTRgZh8QwziELvLcHVyoCWTBN": "the development fee vault's owner",
    "GHbRkMREgnFLvcKyfN4QaxSu9rM9Jgn7HyqUioEcYwuA": "the development insurance-fund vault's owner",
}


# --- names and defaults defined once (services, vaultctl, scripts/, bench/ and docs use these) ---
# Each service's well-known gRPC and metrics ports, and the gateway's HTTP port.
SERVICE_PORTS: dict[str, tuple[int, int]] = {
    "vault_manager": (50051, 9101),
    "balance_tracker": (50052, 9102),
    "cpi_manager": (50053, 9103),
    "monitor": (50054, 9104),
}
GATEWAY_PORT = 8080
LOCAL_HOST = "127.0.0.1"
DEFAULT_SOLANA_RPC_URL = "http://127.0.0.1:8899"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_REDIS_PREFIX = "cv:"
# the checkout's .local/spool (make up and the tests; a volume in Kubernetes)
DEFAULT_AUDIT_SPOOL_DIR = str(Path(__file__).resolve().parent.parent / ".local" / "spool")
EVENT_LOOPS = ("uvloop", "asyncio")


def local_address(service: str) -> str:
    """A service's gRPC address on this machine at its well-known port (`make up`)."""
    return f"{LOCAL_HOST}:{SERVICE_PORTS[service][0]}"


def events_channel(prefix: str) -> str:
    """The one Redis channel every indexed event is published on (balance_tracker's
    publisher writes it, each process's fan-out reads it)."""
    return f"{prefix}events"


class ConfigError(ValueError):
    """A configuration a process refuses to start with; the message says what to set."""


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _number(name: str, default: int | float, kind: type[int] | type[float], what: str) -> Any:
    value = os.environ.get(name)
    try:
        return kind(value) if value else default
    except ValueError as exc:
        raise ConfigError(f"{name} must be {what}, got {value!r}") from exc


def _int(name: str, default: int) -> int:
    return int(_number(name, default, int, "an integer"))


def _float(name: str, default: float) -> float:
    return float(_number(name, default, float, "a number"))


def _list(name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in os.environ.get(name, "").split(",") if item.strip())


def _pubkey(name: str, default: Pubkey | str) -> Callable[[], Pubkey]:
    def read() -> Pubkey:
        value = os.environ.get(name) or str(default)
        try:
            return Pubkey.from_string(value)
        except ValueError as exc:
            raise ConfigError(f"{name} must be a base58 public key, got {value!r}") from exc
    return read


def profile_from_env() -> str:
    """`CV_PROFILE`; unset means production (fail closed)."""
    value = os.environ.get("CV_PROFILE", "").strip() or PRODUCTION
    if value not in PROFILES:
        raise ConfigError(f"CV_PROFILE must be one of {', '.join(PROFILES)}, got {value!r}")
    return value


def event_loop_name() -> str:
    """`EVENT_LOOP`, lower-cased ("uvloop" when unset or empty); vault_client/event_loop.py
    refuses a name not in EVENT_LOOPS."""
    return _env("EVENT_LOOP", EVENT_LOOPS[0]).strip().lower() or EVENT_LOOPS[0]


def _existing_files(paths: dict[str, str]) -> list[str]:
    return [f"{name}={path} does not exist" for name, path in paths.items() if path and not Path(path).is_file()]


@dataclass(frozen=True)
class ServerSecurity:
    """How a gRPC server protects itself: TLS (`GRPC_TLS_CERT` + `GRPC_TLS_KEY`), optionally
    requiring every caller to present a certificate signed by `GRPC_TLS_CLIENT_CA` (mutual
    TLS), and the principals file (`GRPC_AUTH_FILE`: bearer-token hashes and certificate
    names mapped to roles, services/common/auth.py). `GRPC_HEALTH_PORT` serves only the
    standard health service, in plaintext, for probes that cannot speak TLS (the kubelet)."""

    tls_cert: str = field(default_factory=lambda: _env("GRPC_TLS_CERT", ""))
    tls_key: str = field(default_factory=lambda: _env("GRPC_TLS_KEY", ""))
    client_ca: str = field(default_factory=lambda: _env("GRPC_TLS_CLIENT_CA", ""))
    auth_file: str = field(default_factory=lambda: _env("GRPC_AUTH_FILE", ""))
    health_port: int = field(default_factory=lambda: _int("GRPC_HEALTH_PORT", 0))

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert)

    def problems(self) -> list[str]:
        out = []
        if bool(self.tls_cert) != bool(self.tls_key):
            out.append("GRPC_TLS_CERT and GRPC_TLS_KEY go together")
        if self.client_ca and not self.tls:
            out.append("GRPC_TLS_CLIENT_CA (mutual TLS) needs GRPC_TLS_CERT and GRPC_TLS_KEY")
        return out + _existing_files({"GRPC_TLS_CERT": self.tls_cert, "GRPC_TLS_KEY": self.tls_key,
                                      "GRPC_TLS_CLIENT_CA": self.client_ca, "GRPC_AUTH_FILE": self.auth_file})


@dataclass(frozen=True)
class ClientSecurity:
    """How a client (the gateway, vaultctl, up.py) reaches the gRPC services: TLS trusting
    `GRPC_CA_FILE`, and its own credential: a bearer token read from `GRPC_TOKEN_FILE`
    and/or a client certificate (`GRPC_CLIENT_CERT` + `GRPC_CLIENT_KEY`)."""

    ca_file: str = field(default_factory=lambda: _env("GRPC_CA_FILE", ""))
    token_file: str = field(default_factory=lambda: _env("GRPC_TOKEN_FILE", ""))
    cert: str = field(default_factory=lambda: _env("GRPC_CLIENT_CERT", ""))
    key: str = field(default_factory=lambda: _env("GRPC_CLIENT_KEY", ""))

    @property
    def tls(self) -> bool:
        return bool(self.ca_file)

    @property
    def credential(self) -> bool:
        return bool(self.token_file or self.cert)

    def problems(self) -> list[str]:
        out = []
        if bool(self.cert) != bool(self.key):
            out.append("GRPC_CLIENT_CERT and GRPC_CLIENT_KEY go together")
        if (self.token_file or self.cert) and not self.tls:
            out.append("a client credential (GRPC_TOKEN_FILE, GRPC_CLIENT_CERT) is only sent over TLS: "
                       "set GRPC_CA_FILE")
        return out + _existing_files({"GRPC_CA_FILE": self.ca_file, "GRPC_TOKEN_FILE": self.token_file,
                                      "GRPC_CLIENT_CERT": self.cert, "GRPC_CLIENT_KEY": self.key})


KEY_FILE, TRANSIT = "key_file", "transit"
SIGNER_KINDS = (KEY_FILE, TRANSIT)


@dataclass(frozen=True)
class OperatorSignerSettings:
    """How cpi_manager signs the exchange's operator instructions (`OPERATOR_SIGNER`):

    * `key_file`: a Solana keypair file (`OPERATOR_KEY_FILE`, mode 0600; `make up` creates
      one under .local/). Development only: the key sits in the process's memory.
    * `transit`: HashiCorp Vault / OpenBao transit signs (`OPERATOR_TRANSIT_URL`, the key's
      name `OPERATOR_TRANSIT_KEY`, the token read from `OPERATOR_TRANSIT_TOKEN_FILE`,
      optionally `OPERATOR_TRANSIT_CA_FILE`): the key never leaves the signer.

    Unset with OPERATOR_KEY_FILE set means `key_file`; unset without it, no signer: the
    operator RPCs answer FAILED_PRECONDITION."""

    kind: str = field(default_factory=lambda: _env("OPERATOR_SIGNER", "").strip().lower())
    key_file: str = field(default_factory=lambda: _env("OPERATOR_KEY_FILE", ""))
    transit_url: str = field(default_factory=lambda: _env("OPERATOR_TRANSIT_URL", ""))
    transit_key: str = field(default_factory=lambda: _env("OPERATOR_TRANSIT_KEY", ""))
    transit_token_file: str = field(default_factory=lambda: _env("OPERATOR_TRANSIT_TOKEN_FILE", ""))
    transit_ca_file: str = field(default_factory=lambda: _env("OPERATOR_TRANSIT_CA_FILE", ""))

    @property
    def effective_kind(self) -> str:
        return self.kind or (KEY_FILE if self.key_file else "")

    def problems(self, profile: str) -> list[str]:
        kind = self.effective_kind
        out = []
        if kind and kind not in SIGNER_KINDS:
            out.append(f"OPERATOR_SIGNER must be one of {', '.join(SIGNER_KINDS)}, got {self.kind!r}")
        if kind == KEY_FILE:
            if not self.key_file:
                out.append("OPERATOR_SIGNER=key_file needs OPERATOR_KEY_FILE")
            if profile == PRODUCTION:
                out.append("OPERATOR_SIGNER=key_file is for development: in production the operator key stays in "
                           "an external signer (OPERATOR_SIGNER=transit)")
        if kind == TRANSIT:
            missing = [name for name, value in (("OPERATOR_TRANSIT_URL", self.transit_url),
                                                ("OPERATOR_TRANSIT_KEY", self.transit_key),
                                                ("OPERATOR_TRANSIT_TOKEN_FILE", self.transit_token_file))
                       if not value]
            if missing:
                out.append(f"OPERATOR_SIGNER=transit needs {', '.join(missing)}")
            if profile == PRODUCTION and self.transit_url and not self.transit_url.startswith("https://"):
                out.append("OPERATOR_TRANSIT_URL must be https:// in production (the token travels with each call)")
        return out + _existing_files({"OPERATOR_KEY_FILE": self.key_file if kind == KEY_FILE else "",
                                      "OPERATOR_TRANSIT_TOKEN_FILE": self.transit_token_file,
                                      "OPERATOR_TRANSIT_CA_FILE": self.transit_ca_file})


def _refuse_development_keys(values: dict[str, Pubkey]) -> list[str]:
    return [f"{name} must be set to this cluster's own id: {value} is {DEVELOPMENT_KEYS[str(value)]}, whose "
            "private key is public in this repository (CV_PROFILE=production refuses it)"
            for name, value in values.items() if str(value) in DEVELOPMENT_KEYS]


def _raise(problems: list[str]) -> None:
    if problems:
        raise ConfigError("configuration refused: " + "; ".join(problems))


@dataclass(frozen=True)
class Settings:
    service: str
    grpc_host: str = field(default_factory=lambda: _env("GRPC_HOST", LOCAL_HOST))
    grpc_port: int = 0
    metrics_port: int = 0
    solana_rpc_url: str = field(default_factory=lambda: _env("SOLANA_RPC_URL", DEFAULT_SOLANA_RPC_URL))
    solana_ws_url: str = field(default_factory=lambda: _env("SOLANA_WS_URL", "ws://127.0.0.1:8900"))
    commitment: str = field(default_factory=lambda: _env("SOLANA_COMMITMENT", "confirmed"))
    database_url: str = field(default_factory=lambda: _env("DATABASE_URL", DEFAULT_DATABASE_URL))
    redis_url: str = field(default_factory=lambda: _env("REDIS_URL", DEFAULT_REDIS_URL))
    redis_prefix: str = field(default_factory=lambda: _env("REDIS_PREFIX", DEFAULT_REDIS_PREFIX))
    vault_program_id: Pubkey = field(default_factory=_pubkey("VAULT_PROGRAM_ID", vault_program.PROGRAM_ID))
    position_manager_id: Pubkey = field(default_factory=_pubkey("POSITION_MANAGER_ID",
                                                                vault_program.POSITION_MANAGER_ID))
    usdt_mint: Pubkey = field(default_factory=_pubkey("USDT_MINT", DEFAULT_USDT_MINT))
    cache_ttl_seconds: int = field(default_factory=lambda: _int("CACHE_TTL_SECONDS", 86_400))
    # JSON-RPC requests sent together in one batch (1: each alone, for an endpoint without batches)
    rpc_max_batch: int = field(default_factory=lambda: _int("RPC_MAX_BATCH", 100))
    shutdown_grace_seconds: float = field(default_factory=lambda: _float("SHUTDOWN_GRACE_SECONDS", 10))
    log_level: str = field(default_factory=lambda: _env("LOG_LEVEL", "INFO"))
    profile: str = field(default_factory=profile_from_env)
    # the cluster's genesis hash (getGenesisHash); required outside development
    genesis_hash: str = field(default_factory=lambda: _env("GENESIS_HASH", ""))
    security: ServerSecurity = field(default_factory=ServerSecurity)
    # --- added by issue 21 (submission audit, live events, indexer leadership) ---
    # Where a service journals audit entries before acting (one file per service process;
    # in Kubernetes a volume: see deploy/k8s/base/vault-manager.yaml).
    audit_spool_dir: str = field(default_factory=lambda: _env("AUDIT_SPOOL_DIR", DEFAULT_AUDIT_SPOOL_DIR))
    # The indexer's leadership lease (renewed every fifth of it; a standby takes over within
    # about lease + 2 s of the leader vanishing), and how long a leading indexer may stay
    # behind the chain without progress before its health turns NOT_SERVING.
    indexer_lease_seconds: float = field(default_factory=lambda: _float("INDEXER_LEASE_SECONDS", 10))
    indexer_stuck_seconds: float = field(default_factory=lambda: _float("INDEXER_STUCK_SECONDS", 30))
    # Live event streams (StreamEvents) per balance_tracker process: in total, per client
    # address (each gateway replica is one client: at least GATEWAY_WS_MAX_CONNECTIONS), and
    # how far one may fall behind before it is closed.
    stream_max_subscribers: int = field(default_factory=lambda: _int("STREAM_MAX_SUBSCRIBERS", 10_000))
    stream_max_per_client: int = field(default_factory=lambda: _int("STREAM_MAX_PER_CLIENT", 1_000))
    stream_queue_size: int = field(default_factory=lambda: _int("STREAM_QUEUE_SIZE", 10_000))
    # gRPC server keepalive: a peer that does not answer a ping within the timeout is dropped
    # with its streams (a client that vanished without closing).
    grpc_keepalive_seconds: float = field(default_factory=lambda: _float("GRPC_KEEPALIVE_SECONDS", 20))
    grpc_keepalive_timeout_seconds: float = field(default_factory=lambda: float(_env("GRPC_KEEPALIVE_TIMEOUT_SECONDS",
                                                                                     "10")))
    # --- added by issue 22 (cpi_manager's operator RPCs) ---
    operator_signer: OperatorSignerSettings = field(default_factory=OperatorSignerSettings)
    # Traders with an operator operation in flight per cpi_manager process (each holds one
    # PostgreSQL connection for its per-trader lock while it waits for the chain), and the
    # longest one operation may take when its caller set no deadline.
    operator_concurrency: int = field(default_factory=lambda: _int("OPERATOR_CONCURRENCY", 32))
    operator_timeout_seconds: float = field(default_factory=lambda: _float("OPERATOR_TIMEOUT_SECONDS", 60))
    # how long a finished operator request (its client_request_id and answer) is remembered
    operator_request_retention_days: float = field(default_factory=lambda: _float("OPERATOR_REQUEST_RETENTION_DAYS",
                                                                                  30))
    # --- added by issue 25 (answers over every vault from PostgreSQL) ---
    # ListVaults' page tokens are signed (HMAC-SHA256) with the key in this file (at least
    # 32 bytes, shared by every vault_manager replica); unset: a random key per process, so a
    # token is refused (INVALID_ARGUMENT) by any replica but the one that issued it. A token
    # older than the time to live is refused too.
    page_token_key_file: str = field(default_factory=lambda: _env("PAGE_TOKEN_KEY_FILE", ""))
    page_token_ttl_seconds: float = field(default_factory=lambda: _float("PAGE_TOKEN_TTL_SECONDS", 3600))
    # ListVaults' pages are read and built by this many worker processes of vault_manager, each
    # with one PostgreSQL connection (services/vault_manager/page_workers.py)
    list_page_processes: int = field(default_factory=lambda: _int("LIST_PAGE_PROCESSES", 1))
    # balance snapshots: how often a pass writes the vaults that changed, and how often the
    # retention policy thins old ones (docs/snapshots.md); each works in batches of this many rows
    snapshot_interval_seconds: float = field(default_factory=lambda: _float("SNAPSHOT_INTERVAL_SECONDS", 60))
    snapshot_retention_seconds: float = field(default_factory=lambda: _float("SNAPSHOT_RETENTION_INTERVAL_SECONDS",
                                                                             300))
    snapshot_batch_rows: int = field(default_factory=lambda: _int("SNAPSHOT_BATCH_ROWS", 1_000))
    # --- balance_tracker's own (issue 24: read here, not in the service) ---
    # INDEXER_ENABLED=0: serve and reconcile without indexing (another process indexes)
    indexer_enabled: bool = field(default_factory=lambda: _env("INDEXER_ENABLED", "1") != "0")
    reconcile_interval_seconds: float = field(default_factory=lambda: _float("RECONCILE_INTERVAL_SECONDS", 300))
    # when PostgreSQL runs without autovacuum, how often balance_tracker looks for tables
    # autovacuum would analyze or vacuum (services/balance_tracker/table_upkeep.py)
    table_upkeep_seconds: float = field(default_factory=lambda: _float("TABLE_UPKEEP_SECONDS", 30))
    # Redis connections per service process (vault_manager, balance_tracker) at most, and how
    # long a command waits for one when all are busy before it fails as if Redis were down
    # (services/common/pools.py)
    redis_max_connections: int = field(default_factory=lambda: _int("REDIS_MAX_CONNECTIONS", 32))
    redis_pool_wait_seconds: float = field(default_factory=lambda: _float("REDIS_POOL_WAIT_SECONDS", 0.5))

    def __post_init__(self) -> None:
        problems = []
        if self.rpc_max_batch < 1:
            problems.append(f"RPC_MAX_BATCH must be at least 1, got {self.rpc_max_batch}")
        if self.profile not in PROFILES:
            problems.append(f"CV_PROFILE must be one of {', '.join(PROFILES)}, got {self.profile!r}")
        problems += self.security.problems()
        problems += self.operator_signer.problems(self.profile)
        problems += _existing_files({"PAGE_TOKEN_KEY_FILE": self.page_token_key_file})
        for name, value in (("CACHE_TTL_SECONDS", self.cache_ttl_seconds),
                            ("PAGE_TOKEN_TTL_SECONDS", self.page_token_ttl_seconds),
                            ("SNAPSHOT_INTERVAL_SECONDS", self.snapshot_interval_seconds),
                            ("SNAPSHOT_RETENTION_INTERVAL_SECONDS", self.snapshot_retention_seconds),
                            ("SNAPSHOT_BATCH_ROWS", self.snapshot_batch_rows),
                            ("LIST_PAGE_PROCESSES", self.list_page_processes),
                            ("TABLE_UPKEEP_SECONDS", self.table_upkeep_seconds),
                            ("REDIS_MAX_CONNECTIONS", self.redis_max_connections),
                            ("REDIS_POOL_WAIT_SECONDS", self.redis_pool_wait_seconds)):
            if value <= 0:
                problems.append(f"{name} must be positive, got {value}")
        if self.operator_concurrency < 1 or self.operator_timeout_seconds <= 0 \
                or self.operator_request_retention_days <= 0:
            problems.append("OPERATOR_CONCURRENCY must be at least 1, OPERATOR_TIMEOUT_SECONDS and "
                            "OPERATOR_REQUEST_RETENTION_DAYS positive")
        if self.profile == PRODUCTION:
            problems += _refuse_development_keys({"VAULT_PROGRAM_ID": self.vault_program_id,
                                                  "POSITION_MANAGER_ID": self.position_manager_id,
                                                  "USDT_MINT": self.usdt_mint})
            if self.service == "vault_manager" and not self.page_token_key_file:
                problems.append("PAGE_TOKEN_KEY_FILE is required in production: every vault_manager replica must "
                                "sign ListVaults' page tokens with the same key")
            if not self.genesis_hash:
                problems.append("GENESIS_HASH is required (the cluster's getGenesisHash)")
            if not self.security.tls:
                problems.append("gRPC must be served over TLS (GRPC_TLS_CERT, GRPC_TLS_KEY)")
            if not self.security.auth_file:
                problems.append("gRPC needs authentication (GRPC_AUTH_FILE: who may call the RPCs that change "
                                "state or sign)")
        _raise(problems)

    @property
    def development(self) -> bool:
        return self.profile == DEVELOPMENT

    @property
    def endpoint_urls(self) -> tuple[str, ...]:
        """The URLs that may carry credentials: never logged or returned whole."""
        return (self.solana_rpc_url, self.solana_ws_url, self.database_url, self.redis_url)

    @classmethod
    def for_service(cls, service: str, grpc_port: int | None = None, metrics_port: int | None = None) -> Settings:
        """Ports from `<SERVICE>_GRPC_PORT` / `<SERVICE>_METRICS_PORT` (or GRPC_PORT /
        METRICS_PORT), defaulting to the service's well-known ports (SERVICE_PORTS)."""
        upper = service.upper()
        known = SERVICE_PORTS.get(service, (0, 0))
        grpc_port = known[0] if grpc_port is None else grpc_port
        metrics_port = known[1] if metrics_port is None else metrics_port
        return cls(
            service=service,
            grpc_port=_int(f"{upper}_GRPC_PORT", _int("GRPC_PORT", grpc_port)),
            metrics_port=_int(f"{upper}_METRICS_PORT", _int("METRICS_PORT", metrics_port)),
        )

    @property
    def program(self) -> vault_program.VaultProgram:
        return vault_program.VaultProgram(self.usdt_mint, self.vault_program_id)


@dataclass
class GatewayConfig:
    """The gateway's settings (`GATEWAY_*`, the backends' addresses and the client
    credential it presents to them)."""

    host: str = field(default_factory=lambda: _env("GATEWAY_HOST", LOCAL_HOST))
    port: int = field(default_factory=lambda: _int("GATEWAY_PORT", GATEWAY_PORT))
    vault_manager: str = field(default_factory=lambda: _env("VAULT_MANAGER_ADDR", local_address("vault_manager")))
    balance_tracker: str = field(default_factory=lambda: _env("BALANCE_TRACKER_ADDR",
                                                              local_address("balance_tracker")))
    monitor: str = field(default_factory=lambda: _env("MONITOR_ADDR", local_address("monitor")))
    rate_per_second: float = field(default_factory=lambda: _float("GATEWAY_RATE_PER_SECOND", 20))
    burst: float = field(default_factory=lambda: _float("GATEWAY_RATE_BURST", 40))
    deadline_seconds: float = 35.0
    profile: str = field(default_factory=profile_from_env)
    # HTTPS (certificate chain and key by path); empty: plain HTTP (TLS ends at the ingress)
    tls_cert: str = field(default_factory=lambda: _env("GATEWAY_TLS_CERT", ""))
    tls_key: str = field(default_factory=lambda: _env("GATEWAY_TLS_KEY", ""))
    backends: ClientSecurity = field(default_factory=ClientSecurity)
    # a connection must deliver a request's headers within this (from connecting, or from
    # its previous response), and a request's body within body_timeout_seconds
    header_timeout_seconds: float = field(default_factory=lambda: _float("GATEWAY_HEADER_TIMEOUT_SECONDS", 10))
    body_timeout_seconds: float = field(default_factory=lambda: _float("GATEWAY_BODY_TIMEOUT_SECONDS", 10))
    max_connections: int = field(default_factory=lambda: _int("GATEWAY_MAX_CONNECTIONS", 1024))
    rate_clients: int = field(default_factory=lambda: _int("GATEWAY_RATE_CLIENTS", 100_000))
    # proxies (addresses or CIDR networks) whose X-Forwarded-For names the client
    trusted_proxies: tuple[str, ...] = field(default_factory=lambda: _list("GATEWAY_TRUSTED_PROXIES"))
    # browser origins allowed by CORS and for WebSocket upgrades (none by default)
    cors_origins: tuple[str, ...] = field(default_factory=lambda: _list("GATEWAY_CORS_ORIGINS"))
    # WebSockets held at once, in total and per client address
    ws_max_connections: int = field(default_factory=lambda: _int("GATEWAY_WS_MAX_CONNECTIONS", 1_000))
    ws_max_per_client: int = field(default_factory=lambda: _int("GATEWAY_WS_MAX_PER_CLIENT", 10))

    def __post_init__(self) -> None:
        problems = self.backends.problems() + _existing_files({"GATEWAY_TLS_CERT": self.tls_cert,
                                                               "GATEWAY_TLS_KEY": self.tls_key})
        if bool(self.tls_cert) != bool(self.tls_key):
            problems.append("GATEWAY_TLS_CERT and GATEWAY_TLS_KEY go together")
        if self.profile not in PROFILES:
            problems.append(f"CV_PROFILE must be one of {', '.join(PROFILES)}, got {self.profile!r}")
        if self.profile == PRODUCTION and not (self.backends.tls and self.backends.credential):
            problems.append("the gateway must reach the services over TLS with its own credential "
                            "(GRPC_CA_FILE and GRPC_TOKEN_FILE or GRPC_CLIENT_CERT/GRPC_CLIENT_KEY)")
        for name, value in (("GATEWAY_HEADER_TIMEOUT_SECONDS", self.header_timeout_seconds),
                            ("GATEWAY_BODY_TIMEOUT_SECONDS", self.body_timeout_seconds),
                            ("GATEWAY_MAX_CONNECTIONS", self.max_connections),
                            ("GATEWAY_RATE_CLIENTS", self.rate_clients)):
            if value <= 0:
                problems.append(f"{name} must be positive, got {value}")
        if "*" in self.cors_origins:
            problems.append("GATEWAY_CORS_ORIGINS lists origins; '*' is not allowed")
        _raise(problems)

    @property
    def endpoint_urls(self) -> tuple[str, ...]:
        return ()  # the gateway reaches only the services (host:port addresses, no credentials in them)


@dataclass
class MonitorSettings:
    """monitor's alert thresholds (`ALERT_*`) and how often its watcher runs
    (`MONITOR_INTERVAL_SECONDS`); services/monitor/watcher.py's WatcherConfig extends it."""

    vault_share: float = field(default_factory=lambda: _float("ALERT_WITHDRAWAL_VAULT_SHARE", 0.5))
    tvl_share: float = field(default_factory=lambda: _float("ALERT_WITHDRAWAL_TVL_SHARE", 0.2))
    window_seconds: float = field(default_factory=lambda: _float("ALERT_WITHDRAWAL_WINDOW_SECONDS", 3600))
    max_lag_slots: int = field(default_factory=lambda: int(_float("ALERT_INDEXER_LAG_SLOTS", 150)))
    interval_seconds: float = field(default_factory=lambda: _float("MONITOR_INTERVAL_SECONDS", 2))


# the variables naming a client's own credentials (ClientSecurity); vaultctl uses make up's
# development ones only when none of them is set (set and empty counts as set)
CLIENT_SECURITY_VARIABLES = ("GRPC_CA_FILE", "GRPC_TOKEN_FILE", "GRPC_CLIENT_CERT", "GRPC_CLIENT_KEY")


@dataclass(frozen=True)
class ClientSettings:
    """Where vaultctl finds the running system (`make up`'s defaults) and which credentials
    the environment gives it (vaultctl/clients.py)."""

    rpc_url: str = field(default_factory=lambda: _env("SOLANA_RPC_URL", DEFAULT_SOLANA_RPC_URL))
    vault_manager: str = field(default_factory=lambda: _env("VAULT_MANAGER_ADDR", local_address("vault_manager")))
    cpi_manager: str = field(default_factory=lambda: _env("CPI_MANAGER_ADDR", local_address("cpi_manager")))
    monitor: str = field(default_factory=lambda: _env("MONITOR_ADDR", local_address("monitor")))
    database_url: str = field(default_factory=lambda: application_database_url(_env("DATABASE_URL",
                                                                                    DEFAULT_DATABASE_URL)))
    gateway_port: int = field(default_factory=lambda: _int("GATEWAY_PORT", GATEWAY_PORT))
    # the matching engine's token for the demo's operator calls (empty: make up's)
    engine_token_file: str = field(default_factory=lambda: _env("ENGINE_TOKEN_FILE", ""))
    # whether any of CLIENT_SECURITY_VARIABLES is set
    security_configured: bool = field(default_factory=lambda: any(name in os.environ
                                                                  for name in CLIENT_SECURITY_VARIABLES))

    @property
    def gateway_url(self) -> str:
        return f"http://{LOCAL_HOST}:{self.gateway_port}"


APPLICATION_DATABASE = "collateral_vault"


def application_database_url(url: str) -> str:
    """`make up`'s rule: a URL naming the server's default `postgres` database (as found or
    started by the dev tooling) means the system's own `collateral_vault` database."""
    parts = urlsplit(url)
    if parts.path.strip("/") not in ("", "postgres"):
        return url
    return urlunsplit((parts.scheme, parts.netloc, f"/{APPLICATION_DATABASE}", parts.query, parts.fragment))
