"""A service's settings for a benchmark or a test run in-process against a localnet node:
free loopback ports, a private audit spool, and cpi_manager's operator key (tests/support
re-exports these; the benchmarks do not import tests/)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from localnet import genesis
from localnet.node import Node
from localnet.node_harness import free_port
from vault_client.config import DEFAULT_USDT_MINT, OperatorSignerSettings, Settings
from vault_client.keyfile import write_key_file


def settings_for(service: str, node: Node, database_url: str, redis_url: str, redis_prefix: str) -> Settings:
    """A service's settings against `node`; cpi_manager signs with the operator key of
    localnet's genesis (a private copy of the development key file, mode 0600)."""
    from solders.pubkey import Pubkey

    signer = OperatorSignerSettings(kind="", key_file=operator_key_file() if service == "cpi_manager" else "",
                                    transit_url="", transit_key="", transit_token_file="", transit_ca_file="")
    return Settings(service=service, grpc_host="127.0.0.1", grpc_port=free_port(), metrics_port=free_port(),
                    solana_rpc_url=node.rpc_url, solana_ws_url=node.ws_url, database_url=database_url,
                    redis_url=redis_url, redis_prefix=redis_prefix, usdt_mint=Pubkey.from_string(DEFAULT_USDT_MINT),
                    shutdown_grace_seconds=1.0, audit_spool_dir=spool_dir(), operator_signer=signer)


_SPOOLS: list[str] = []
_OPERATOR_KEY: list[str] = []


def operator_key_file() -> str:
    """localnet's development operator key, copied to a file only its owner may read (a
    checkout leaves the committed one readable by all, which the key-file signer refuses)."""
    if not _OPERATOR_KEY:
        directory = tempfile.mkdtemp(prefix="cvoperator-")
        atexit.register(shutil.rmtree, directory, True)
        path = Path(directory) / "operator-keypair.json"
        write_key_file(path, genesis.dev_keypair("operator"))
        _OPERATOR_KEY.append(str(path))
    return _OPERATOR_KEY[0]


def spool_dir() -> str:
    """A private audit spool directory (each service instance its own), removed at exit."""
    if not _SPOOLS:
        _SPOOLS.append(tempfile.mkdtemp(prefix="cvspool-"))
        atexit.register(shutil.rmtree, _SPOOLS[0], True)
    return tempfile.mkdtemp(dir=_SPOOLS[0])
