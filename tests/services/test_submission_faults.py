"""SubmitTransaction under faults, over real gRPC against localnet, PostgreSQL and Redis, with
vault_manager's links to PostgreSQL and to the node running through TCP proxies: the answer
is true (a landed deposit is never reported as a failure; an unknown status names the
signature and says it may have landed), and the audit entry is stored exactly once."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import asyncpg
import grpc
import pytest
from collateral_vault.v1 import common_pb2, transaction_builder_pb2, transaction_builder_pb2_grpc
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed

from bench.traffic import Account, users_with_vaults
from localnet.node import Node
from localnet.node_harness import free_port, running_node
from services.gateway.app import Gateway, GatewayConfig
from tests.conftest import RedisNamespace
from tests.support.proxy import TcpProxy
from tests.support.services import Running, settings_for, sign, vault_manager

USDT = 10**6


@pytest.fixture(scope="module")
async def node() -> AsyncIterator[Node]:
    async with running_node() as n:
        yield n


@dataclass
class Env:
    node: Node
    service: Running
    builder: transaction_builder_pb2_grpc.TransactionBuilderStub
    client: AsyncClient
    database_url: str
    postgres: TcpProxy
    rpc: TcpProxy
    redis: RedisNamespace


@pytest.fixture
async def env(node: Node, pg_database: str, redis_ns: RedisNamespace) -> AsyncIterator[Env]:
    postgres = TcpProxy.to(pg_database, 5432)
    chain = TcpProxy.to(node.rpc_url, 8899)
    await postgres.start()
    await chain.start()
    settings = dataclasses.replace(settings_for("vault_manager", node, postgres.url(pg_database), redis_ns.url,
                                                redis_ns.prefix), solana_rpc_url=chain.url(node.rpc_url))
    try:
        async with vault_manager(settings) as running, grpc.aio.insecure_channel(running.target) as channel, \
                AsyncClient(node.rpc_url, commitment=Confirmed) as client:
            yield Env(node, running, transaction_builder_pb2_grpc.TransactionBuilderStub(channel), client,
                      pg_database, postgres, chain, redis_ns)
    finally:
        await postgres.close()
        await chain.close()


async def signed_deposit(env: Env, account: Account, amount: int) -> str:
    built = await env.builder.BuildDeposit(transaction_builder_pb2.BuildDepositRequest(
        owner=str(account.user.key), amount=amount))
    return sign(built.transaction.transaction_base64, account.user.keypair)


async def submit(env: Env, signed: str) -> transaction_builder_pb2.SubmitTransactionResponse:
    return await env.builder.SubmitTransaction(transaction_builder_pb2.SubmitTransactionRequest(
        signed_transaction_base64=signed, wait_for=common_pb2.COMMITMENT_CONFIRMED))


async def audit_rows(env: Env, signature: str) -> int:
    conn = await asyncpg.connect(env.database_url)  # not through the proxy
    try:
        return int(await conn.fetchval("SELECT count(*) FROM audit_log WHERE signature = $1", signature))
    finally:
        await conn.close()


async def vault_total(env: Env, account: Account, expected: int) -> int:
    """The vault's confirmed total once it is `expected` (a landing confirms a slot later), or
    what it is after a few seconds."""
    from vault_client.vault_program import Vault

    address = env.node.ledger.deployment.program.vault(account.user.key)  # type: ignore[union-attr]
    for _ in range(50):
        info = (await env.client.get_account_info(address)).value
        assert info is not None
        total = Vault.decode(bytes(info.data)).total_balance
        if total == expected:
            break
        await asyncio.sleep(0.1)
    return total


async def rows_become(env: Env, signature: str, expected: int, timeout: float = 20.0) -> int:
    deadline = asyncio.get_running_loop().time() + timeout
    count = await audit_rows(env, signature)
    while count != expected and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
        count = await audit_rows(env, signature)
    return count


async def test_a_deposit_sent_while_postgres_is_cut_is_answered_and_audited_once(env: Env) -> None:
    """Reproduces issue 21's first finding: the deposit landed, the caller got INTERNAL, and
    the audit row was lost for good (a retry took the already-submitted path)."""
    [alice] = await users_with_vaults(env.node, env.client, 1)
    signed = await signed_deposit(env, alice, 5 * USDT)
    await env.postgres.cut()
    reply = await submit(env, signed)
    status = reply.status
    assert status.error == "" and status.commitment >= common_pb2.COMMITMENT_CONFIRMED and status.signature
    assert await vault_total(env, alice, 5 * USDT) == 5 * USDT
    assert await audit_rows(env, status.signature) == 0  # journaled on disk, PostgreSQL unreachable
    again = await submit(env, signed)
    assert again.status.already_submitted and again.status.signature == status.signature
    await env.postgres.restore()
    assert await rows_become(env, status.signature, 1) == 1
    await submit(env, signed)
    await asyncio.sleep(0.3)
    assert await audit_rows(env, status.signature) == 1 and await vault_total(env, alice, 5 * USDT) == 5 * USDT


async def test_an_unanswered_send_names_the_signature_and_a_resubmission_reports_it(env: Env) -> None:
    [alice] = await users_with_vaults(env.node, env.client, 1)
    signed = await signed_deposit(env, alice, 7 * USDT)
    env.rpc.drop_answers()  # the node executes the send; its answer is lost
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await submit(env, signed)
    env.rpc.drop_answers(False)
    details = info.value.details() or ""
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE, details
    assert "may have landed" in details and "getSignatureStatuses" in details
    signature = details.split("transaction ", 1)[1].split(" ", 1)[0]
    assert await vault_total(env, alice, 7 * USDT) == 7 * USDT  # it did land
    reply = await submit(env, signed)
    assert reply.status.signature == signature and reply.status.error == ""
    assert reply.status.already_submitted and reply.status.commitment >= common_pb2.COMMITMENT_CONFIRMED
    assert await rows_become(env, signature, 1) == 1 and await vault_total(env, alice, 7 * USDT) == 7 * USDT


async def test_duplicate_submissions_land_once_and_are_audited_once(env: Env) -> None:
    [alice] = await users_with_vaults(env.node, env.client, 1)
    signed = await signed_deposit(env, alice, 3 * USDT)
    replies = await asyncio.gather(*(submit(env, signed) for _ in range(6)))
    assert len({r.status.signature for r in replies}) == 1
    assert [r.status.already_submitted for r in replies].count(False) == 1
    signature = replies[0].status.signature
    # Redis lost the claim: the chain answers AlreadyProcessed, still one row
    await env.redis.client.delete(f"{env.service.settings.redis_prefix}submitted:{signature}")
    assert (await submit(env, signed)).status.already_submitted
    await asyncio.sleep(0.3)
    assert await audit_rows(env, signature) == 1 and await vault_total(env, alice, 3 * USDT) == 3 * USDT


async def test_the_gateway_answers_a_status_it_cannot_learn_with_the_signature(env: Env) -> None:
    config = GatewayConfig(host="127.0.0.1", port=free_port(), vault_manager=env.service.target,
                           balance_tracker=f"127.0.0.1:{free_port()}", monitor=f"127.0.0.1:{free_port()}",
                           rate_per_second=1000, burst=1000)
    gateway = Gateway(config)
    await gateway.start()
    [alice] = await users_with_vaults(env.node, env.client, 1)
    signed = await signed_deposit(env, alice, 2 * USDT)
    try:
        env.rpc.drop_answers()
        async with aiohttp.ClientSession() as session, session.post(
                f"http://127.0.0.1:{config.port}/transactions/submit",
                json={"signed_transaction_base64": signed}) as response:
            body = await response.json()
            assert response.status == 503 and response.headers["Retry-After"], body
        env.rpc.drop_answers(False)
        error = body["error"]
        assert error["code"] == "UNAVAILABLE" and "may have landed" in error["message"]
        reply = await submit(env, signed)
        assert error["signature"] == reply.status.signature and reply.status.already_submitted
    finally:
        await gateway.stop()
