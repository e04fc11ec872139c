"""No endpoint credential leaves a process (vault_client/redact.py). Reproduces issue 21
finding 5: an RPC URL's user:password or API key used to reach gRPC callers and the public
REST 503 body whole."""

from __future__ import annotations

import dataclasses
import json
import logging

import aiohttp
import grpc
from collateral_vault.v1 import (
    transaction_builder_pb2,
    transaction_builder_pb2_grpc,
    vault_manager_pb2,
    vault_manager_pb2_grpc,
)
from solders.pubkey import Pubkey

from localnet.node_harness import free_port, running_node
from services.common import log
from services.common.chain import ChainClient
from services.common.errors import ServiceError
from services.gateway.app import Gateway
from tests.conftest import RedisNamespace
from tests.support.proxy import TcpProxy
from tests.support.services import settings_for, vault_manager
from vault_client import redact
from vault_client.config import GatewayConfig

SECRETS = ("alice-user", "pw-S3CRET-1", "KEY-S3CRET-2", "PATH-S3CRET-TOKEN-3")


def leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def test_a_url_is_shown_as_scheme_host_and_port() -> None:
    url = f"https://{SECRETS[0]}:{SECRETS[1]}@rpc.example.com:8443/{SECRETS[3]}/?api-key={SECRETS[2]}"
    assert redact.url(url) == "https://rpc.example.com:8443/[redacted]"
    assert redact.url("http://127.0.0.1:8899") == "http://127.0.0.1:8899"
    assert redact.url("ws://[::1]:8900/") == "ws://[::1]:8900"
    assert redact.url("postgresql://vault:pw@db/vault") == "postgresql://db/[redacted]"
    assert redact.url("postgresql://vault:pw@db:5432/vault?sslmode=require", keep_path=True) == \
        "postgresql://db:5432/vault/[redacted]"
    assert redact.url("redis://127.0.0.1:6379/0", keep_path=True) == "redis://127.0.0.1:6379/0"
    assert redact.url("not a url") == "[a URL that does not parse]"
    quoted = f"POST {url} failed: auth {SECRETS[0]}:{SECRETS[1]} refused, token {SECRETS[3]}, key={SECRETS[2]}"
    scrubbed = redact.scrub(quoted, url)
    assert not leaks(scrubbed) and "https://rpc.example.com:8443/[redacted]" in scrubbed


def test_log_lines_carry_no_endpoint_secret() -> None:
    url = f"http://{SECRETS[0]}:{SECRETS[1]}@127.0.0.1:1/{SECRETS[3]}?api-key={SECRETS[2]}"
    formatter = log.JsonFormatter("test", [url])
    try:
        raise ConnectionError(f"cannot reach {url}")
    except ConnectionError:
        import sys

        record = logging.LogRecord("t", logging.WARNING, __file__, 0, "retrying %s", (url,), sys.exc_info())
    line = formatter.format(record)
    assert not leaks(line) and "http://127.0.0.1:1/[redacted]" in json.loads(line)["msg"]


async def test_an_rpc_url_with_credentials_at_a_dead_port() -> None:
    url = f"http://{SECRETS[0]}:{SECRETS[1]}@127.0.0.1:{free_port()}/{SECRETS[3]}/?api-key={SECRETS[2]}"
    async with running_node() as node:
        settings = dataclasses.replace(settings_for("vault_manager", node, "", "", ""), solana_rpc_url=url)
    chain = ChainClient.for_settings(settings)
    try:
        for call in (chain.genesis_hash(), chain.vault(Pubkey.new_unique()), chain.slot()):
            try:
                await call
                raise AssertionError("a dead port answered")
            except ServiceError as exc:
                assert exc.code == grpc.StatusCode.UNAVAILABLE and not leaks(exc.message), exc.message
                assert "http://127.0.0.1:" in exc.message
    finally:
        await chain.close()


async def test_grpc_callers_and_the_rest_api_never_see_the_rpc_credentials(pg_database: str,
                                                                           redis_ns: RedisNamespace) -> None:
    async with running_node() as node:
        proxy = TcpProxy("127.0.0.1", node.config.rpc_port)
        await proxy.start()
        url = f"http://{SECRETS[0]}:{SECRETS[1]}@127.0.0.1:{proxy.port}/?api-key={SECRETS[2]}"
        settings = dataclasses.replace(settings_for("vault_manager", node, pg_database, redis_ns.url,
                                                    redis_ns.prefix), solana_rpc_url=url)
        async with vault_manager(settings) as running, grpc.aio.insecure_channel(running.target) as channel:
            config = GatewayConfig(host="127.0.0.1", port=free_port(), vault_manager=running.target,
                                   balance_tracker=running.target, monitor=running.target)
            gateway = Gateway(config)
            await gateway.start()
            try:
                await proxy.cut()  # the RPC endpoint is gone
                owner = str(Pubkey.new_unique())
                vaults = vault_manager_pb2_grpc.VaultManagerStub(channel)
                builder = transaction_builder_pb2_grpc.TransactionBuilderStub(channel)
                for call in (vaults.GetVault(vault_manager_pb2.GetVaultRequest(owner=owner)),
                             builder.BuildDeposit(transaction_builder_pb2.BuildDepositRequest(owner=owner, amount=1))):
                    try:
                        await call
                        raise AssertionError("answered without the RPC")
                    except grpc.aio.AioRpcError as exc:
                        assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc.details()
                        assert not leaks(exc.details() or ""), exc.details()
                async with aiohttp.ClientSession() as session:
                    for method, path, body in (("GET", f"/vaults/{owner}", None),
                                               ("POST", "/transactions/deposit", {"owner": owner, "amount": "1"})):
                        async with session.request(method, f"http://127.0.0.1:{config.port}{path}",
                                                   json=body) as response:
                            text = await response.text()
                        assert response.status == 503 and "UNAVAILABLE" in text, text
                        assert not leaks(text), text
            finally:
                await gateway.stop()
