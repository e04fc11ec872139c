"""Configuration fails closed (vault_client/config.py). Reproduces issue 21 finding 9:
without VAULT_PROGRAM_ID, POSITION_MANAGER_ID and USDT_MINT every service used to start on
the development ids (whose private keys are in this repository) and the dev mint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from localnet.svm import ROOT
from vault_client.config import (
    DEVELOPMENT_KEYS,
    ConfigError,
    GatewayConfig,
    Settings,
    profile_from_env,
)

CLUSTER = {"VAULT_PROGRAM_ID": str(Pubkey.new_unique()), "POSITION_MANAGER_ID": str(Pubkey.new_unique()),
           "USDT_MINT": "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB",
           "GENESIS_HASH": "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdpKuc147dw2N9d"}
ENV_NAMES = ("CV_PROFILE", *CLUSTER, "GRPC_TLS_CERT", "GRPC_TLS_KEY", "GRPC_TLS_CLIENT_CA", "GRPC_AUTH_FILE",
             "GRPC_CA_FILE", "GRPC_TOKEN_FILE", "GRPC_CLIENT_CERT", "GRPC_CLIENT_KEY", "PAGE_TOKEN_KEY_FILE")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_development_keys_are_every_key_committed_to_the_repository() -> None:
    files = [*(ROOT / "program" / "keys").glob("*.json"), *(ROOT / "localnet" / "dev_keys").glob("*.json")]
    committed = {str(Keypair.from_bytes(bytes(json.loads(f.read_text()))).pubkey()) for f in files}
    assert len(files) >= 6 and committed == set(DEVELOPMENT_KEYS)


def test_an_unset_profile_is_production_and_refuses_the_development_defaults(clean_env: pytest.MonkeyPatch) -> None:
    assert profile_from_env() == "production"
    with pytest.raises(ConfigError) as refused:
        Settings(service="vault_manager")
    message = str(refused.value)
    for needed in ("VAULT_PROGRAM_ID must be set", "POSITION_MANAGER_ID must be set", "USDT_MINT must be set",
                   "GENESIS_HASH is required", "TLS", "GRPC_AUTH_FILE"):
        assert needed in message, message
    clean_env.setenv("CV_PROFILE", "staging")
    with pytest.raises(ConfigError, match="CV_PROFILE must be one of development, production"):
        profile_from_env()


def test_production_accepts_a_cluster_of_its_own_and_refuses_any_development_id(
        clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("cert.pem", "key.pem", "auth.toml"):
        (tmp_path / name).write_text("x")
    for name, value in {**CLUSTER, "CV_PROFILE": "production", "GRPC_TLS_CERT": str(tmp_path / "cert.pem"),
                        "GRPC_TLS_KEY": str(tmp_path / "key.pem"), "GRPC_AUTH_FILE": str(tmp_path / "auth.toml")
                        }.items():
        clean_env.setenv(name, value)
    settings = Settings(service="cpi_manager")
    assert settings.profile == "production" and str(settings.usdt_mint) == CLUSTER["USDT_MINT"]
    for name, dev_id in (("VAULT_PROGRAM_ID", "EfyqqVByTbyzy15nxcPBGUmNGd6cDHqwq7R9qNXFfk1L"),
                         ("POSITION_MANAGER_ID", "B2ckqnrZzVAQcCh85DVEwpCRfpwHs4n7mKr8b4oSRKVp"),
                         ("USDT_MINT", "AEUcvcYnF7grG2PvgCtgtXyVPxmpMUdu44DjTDTyfJa2")):
        with clean_env.context() as env:
            env.setenv(name, dev_id)
            with pytest.raises(ConfigError, match=f"{name} must be set to this cluster's own id: {dev_id}"):
                Settings(service="cpi_manager")
    # vault_manager's replicas must share the key that signs ListVaults' page tokens: a random
    # key per process made a token from one replica INVALID_ARGUMENT at the next
    with pytest.raises(ConfigError, match="PAGE_TOKEN_KEY_FILE is required in production"):
        Settings(service="vault_manager")
    (tmp_path / "page-token.key").write_bytes(os.urandom(32))
    clean_env.setenv("PAGE_TOKEN_KEY_FILE", str(tmp_path / "page-token.key"))
    assert Settings(service="vault_manager").page_token_key_file == str(tmp_path / "page-token.key")
    clean_env.setenv("GRPC_TLS_CERT", str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match=r"missing\.pem does not exist"):
        Settings(service="cpi_manager")


def test_the_gateway_reaches_the_services_over_tls_with_a_credential_in_production(
        clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("CV_PROFILE", "production")
    with pytest.raises(ConfigError, match="over TLS with its own credential"):
        GatewayConfig()
    (tmp_path / "ca.pem").write_text("x")
    (tmp_path / "token").write_text("x")
    clean_env.setenv("GRPC_CA_FILE", str(tmp_path / "ca.pem"))
    clean_env.setenv("GRPC_TOKEN_FILE", str(tmp_path / "token"))
    assert GatewayConfig().backends.credential
    with pytest.raises(ConfigError, match="'\\*' is not allowed"):
        GatewayConfig(cors_origins=("*",))


def test_a_service_started_without_a_profile_or_cluster_refuses_with_a_clear_message() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run([sys.executable, "-m", "services.cpi_manager"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 2, done.stderr
    assert "cpi_manager: refusing to start: configuration refused" in done.stderr
    assert "VAULT_PROGRAM_ID must be set to this cluster's own id" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_audit_spool_defaults_to_the_checkouts_local_folder(clean_env: pytest.MonkeyPatch) -> None:
    """Moving the configuration module into vault_client/ left its default one folder too high
    (the checkout's parent), away from the spool `make up` sets aside on a chain reset."""
    clean_env.delenv("AUDIT_SPOOL_DIR", raising=False)
    clean_env.setenv("CV_PROFILE", "development")
    assert Settings(service="vault_manager").audit_spool_dir == str(ROOT / ".local" / "spool")
