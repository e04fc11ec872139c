"""vault_manager over real gRPC sockets, against localnet, PostgreSQL and Redis: the
deposit / withdraw cycle signed by a test wallet, idempotent submission, answers that follow
the chain and never go back (a submission read back at once, a stale Redis entry passed
over), every bad-input path, health, reflection, metrics."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import asyncpg
import grpc
import pytest
import redis.asyncio as aioredis
from collateral_vault.v1 import (
    common_pb2,
    transaction_builder_pb2,
    transaction_builder_pb2_grpc,
    vault_manager_pb2,
    vault_manager_pb2_grpc,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction

from localnet.faucet import fund
from localnet.node import Node
from localnet.node_harness import RpcUser, funded_user, running_node
from services.common.vault_cache import VaultCache
from services.vault_manager.vault_service import LOCAL_TTL_SECONDS
from tests.conftest import RedisNamespace
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
    vaults: vault_manager_pb2_grpc.VaultManagerStub
    builder: transaction_builder_pb2_grpc.TransactionBuilderStub
    channel: grpc.aio.Channel
    client: AsyncClient
    database_url: str
    redis: aioredis.Redis


@pytest.fixture
async def env(node: Node, pg_database: str, redis_ns: RedisNamespace) -> AsyncIterator[Env]:
    settings = settings_for("vault_manager", node, pg_database, redis_ns.url, redis_ns.prefix)
    async with vault_manager(settings) as running, grpc.aio.insecure_channel(running.target) as channel, \
            AsyncClient(node.rpc_url, commitment=Confirmed) as client:
        yield Env(node, running, vault_manager_pb2_grpc.VaultManagerStub(channel),
                  transaction_builder_pb2_grpc.TransactionBuilderStub(channel), channel, client, pg_database,
                  redis_ns.client)


async def wallet(env: Env, usdt: int = 1_000) -> tuple[RpcUser, Pubkey]:
    user = await funded_user(env.client)
    token_account, _ = await fund(env.node.rpc_url, user.key, usdt * USDT)
    return user, token_account


async def submit(env: Env, unsigned: common_pb2.UnsignedTransaction, signer: Keypair
                 ) -> transaction_builder_pb2.SubmitTransactionResponse:
    return await env.builder.SubmitTransaction(transaction_builder_pb2.SubmitTransactionRequest(
        signed_transaction_base64=sign(unsigned.transaction_base64, signer), wait_for=common_pb2.COMMITMENT_CONFIRMED))


async def with_vault(env: Env, usdt: int = 1_000) -> tuple[RpcUser, Pubkey]:
    user, token_account = await wallet(env, usdt)
    built = await env.builder.BuildInitializeVault(transaction_builder_pb2.BuildInitializeVaultRequest(
        owner=str(user.key)))
    result = await submit(env, built.transaction, user.keypair)
    assert result.status.error == "" and result.status.commitment >= common_pb2.COMMITMENT_CONFIRMED
    return user, token_account


async def test_deposit_withdraw_cycle(env: Env) -> None:
    user, token_account = await with_vault(env)
    owner = str(user.key)
    vault = (await env.vaults.GetVault(vault_manager_pb2.GetVaultRequest(owner=owner))).vault
    assert vault.total_balance == 0 and vault.address == str(env.node.ledger.deployment.program.vault(user.key))  # type: ignore[union-attr]

    built = await env.builder.BuildDeposit(transaction_builder_pb2.BuildDepositRequest(owner=owner, amount=250 * USDT))
    unsigned = built.transaction
    assert unsigned.fee_payer == owner and unsigned.compute_unit_limit > unsigned.simulated_compute_units > 1000
    result = await submit(env, unsigned, user.keypair)
    assert result.status.error == "" and not result.status.already_submitted

    built = await env.builder.BuildWithdraw(transaction_builder_pb2.BuildWithdrawRequest(owner=owner,
                                                                                          amount=100 * USDT))
    await submit(env, built.transaction, user.keypair)
    vault = (await env.vaults.GetVault(vault_manager_pb2.GetVaultRequest(owner=owner, fresh=True))).vault
    assert (vault.total_balance, vault.available_balance, vault.total_withdrawn) == (150 * USDT, 150 * USDT,
                                                                                       100 * USDT)
    assert vault.source == common_pb2.DATA_SOURCE_CHAIN
    assert (await env.client.get_token_account_balance(token_account)).value.amount == str(850 * USDT)

    # priority fee is honoured in the built transaction
    built = await env.builder.BuildDeposit(transaction_builder_pb2.BuildDepositRequest(
        owner=owner, amount=1, priority_fee_micro_lamports=5_000))
    assert built.transaction.priority_fee_micro_lamports == 5_000

    conn = await asyncpg.connect(env.database_url)
    try:
        actions = [r["action"] for r in await conn.fetch("SELECT action FROM audit_log WHERE owner = $1", owner)]
    finally:
        await conn.close()
    assert actions == ["submit:initialize_vault", "submit:deposit", "submit:withdraw"]


async def test_submission_is_idempotent(env: Env) -> None:
    user, _ = await with_vault(env)
    built = await env.builder.BuildDeposit(transaction_builder_pb2.BuildDepositRequest(owner=str(user.key),
                                                                                        amount=10 * USDT))
    signed = sign(built.transaction.transaction_base64, user.keypair)
    request = transaction_builder_pb2.SubmitTransactionRequest(signed_transaction_base64=signed)
    first, second = await env.builder.SubmitTransaction(request), await env.builder.SubmitTransaction(request)
    assert first.status.signature == second.status.signature
    assert not first.status.already_submitted and second.status.already_submitted
    # Redis lost the claim: the chain itself recognizes the signature
    await env.redis.delete(f"{env.service.settings.redis_prefix}submitted:{first.status.signature}")
    third = await env.builder.SubmitTransaction(request)
    assert third.status.already_submitted and third.status.signature == first.status.signature
    vault = (await env.vaults.GetVault(vault_manager_pb2.GetVaultRequest(owner=str(user.key), fresh=True))).vault
    assert vault.total_balance == 10 * USDT


async def test_answers_follow_the_chain_and_never_go_back(env: Env) -> None:
    user, token_account = await with_vault(env)
    owner = str(user.key)
    first = (await env.vaults.GetVault(vault_manager_pb2.GetVaultRequest(owner=owner, fresh=True))).vault
    cached = (await env.vaults.GetVault(vault_manager_pb2.GetVaultRequest(owner=owner))).vault
    assert first.source == common_pb2.DATA_SOURCE_CHAIN and cached.source == common_pb2.DATA_SOURCE_CACHE
    assert cached.total_balance == first.total_balance == 0
    cache = VaultCache(env.redis, env.service.settings.redis_prefix, 60)
    in_redis = await cache.get(user.key)
    assert in_redis is not None and in_redis[0].total_balance == 0  # the chain read filled Redis
    # the chain changes behind the service's back (a deposit sent straight to the RPC)
    program = env.node.ledger.deployment.program  # type: ignore[union-attr]
    await user.send([program.deposit(user.key, token_account, 7 * USDT)])
    for _ in range(100):
        vault = (await env.vaults.GetVault(vault_manager_pb2.GetVaultRequest(owner=owner))).vault
        if vault.total_balance == 7 * USDT:
            break
        await asyncio.sleep(0.02)
    assert vault.total_balance == 7 * USDT and vault.source == common_pb2.DATA_SOURCE_CACHE  # its notification
    # vault_manager does not write Redis on a notification (balance_tracker's indexer does,
    # and none runs here): the entry is now older than the change the service has seen
    assert await cache.get(user.key) == in_redis
    await asyncio.sleep(LOCAL_TTL_SECONDS + 0.1)  # the answer in memory has expired
    vault = (await env.vaults.GetVault(vault_manager_pb2.GetVaultRequest(owner=owner))).vault
    assert vault.total_balance == 7 * USDT and vault.source == common_pb2.DATA_SOURCE_CHAIN  # not the stale entry
    refreshed = await cache.get(user.key)
    assert refreshed is not None and refreshed[0].total_balance == 7 * USDT


@pytest.mark.parametrize("subscribed", [True, False])
async def test_a_submission_is_read_back_at_once(env: Env, subscribed: bool) -> None:
    user, _ = await with_vault(env)
    owner = str(user.key)
    assert (await env.vaults.GetVault(vault_manager_pb2.GetVaultRequest(owner=owner))).vault.total_balance == 0
    if not subscribed:  # no notification will come: the submission's own landing slot must do
        env.service.app.sync_task.cancel()
    for amount in (3, 4, 5):
        built = await env.builder.BuildDeposit(transaction_builder_pb2.BuildDepositRequest(owner=owner,
                                                                                            amount=amount * USDT))
        await submit(env, built.transaction, user.keypair)
        vault = (await env.vaults.GetVault(vault_manager_pb2.GetVaultRequest(owner=owner))).vault
        assert vault.total_balance == {3: 3, 4: 7, 5: 12}[amount] * USDT
        if not subscribed:  # the chain's: the Redis entry the last read left is from before the landing
            assert vault.source == common_pb2.DATA_SOURCE_CHAIN


async def expect(call: object, code: grpc.StatusCode, *fragments: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    assert info.value.code() == code, info.value.details()
    for fragment in fragments:
        assert fragment in (info.value.details() or ""), info.value.details()


async def test_bad_input_gets_clear_statuses(env: Env) -> None:
    user, token_account = await with_vault(env, 50)
    owner = str(user.key)
    stranger = str(Keypair().pubkey())
    b = transaction_builder_pb2
    invalid, precondition, missing = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION,
                                      grpc.StatusCode.NOT_FOUND)
    await expect(env.vaults.GetVault(vault_manager_pb2.GetVaultRequest(owner="not a key")), invalid, "owner")
    await expect(env.vaults.GetVault(vault_manager_pb2.GetVaultRequest(owner="")), invalid, "required")
    await expect(env.vaults.GetVault(vault_manager_pb2.GetVaultRequest(owner=stranger)), missing, "no vault")
    await expect(env.vaults.ListVaults(vault_manager_pb2.ListVaultsRequest(page_size=10_000)), invalid, "page_size")
    await expect(env.builder.BuildDeposit(b.BuildDepositRequest(owner=owner, amount=0)), invalid, "greater than zero")
    await expect(env.builder.BuildDeposit(b.BuildDepositRequest(owner=stranger, amount=1)), missing, "no vault")
    await expect(env.builder.BuildDeposit(b.BuildDepositRequest(owner=owner, amount=51 * USDT)), precondition,
                 "less than the deposit")
    await expect(env.builder.BuildDeposit(b.BuildDepositRequest(owner=owner, amount=1, source_token_account="x")),
                 invalid, "source_token_account")
    await expect(env.builder.BuildWithdraw(b.BuildWithdrawRequest(owner=owner, amount=1)), precondition,
                 "exceeds the available balance")
    await expect(env.builder.BuildInitializeVault(b.BuildInitializeVaultRequest(owner=owner)), precondition,
                 "already has a vault")
    built = await env.builder.BuildDeposit(b.BuildDepositRequest(owner=owner, amount=5 * USDT))
    await submit(env, built.transaction, user.keypair)
    await expect(env.builder.BuildDeposit(b.BuildDepositRequest(owner=owner, amount=2**64 - 1)), invalid, "overflow")
    await expect(env.builder.BuildCloseVault(b.BuildCloseVaultRequest(owner=owner)), precondition, "withdraw")

    submit_req = b.SubmitTransactionRequest
    await expect(env.builder.SubmitTransaction(submit_req(signed_transaction_base64="")), invalid, "required")
    await expect(env.builder.SubmitTransaction(submit_req(signed_transaction_base64="%%%")), invalid, "base64")
    junk = base64.b64encode(b"junk").decode()
    await expect(env.builder.SubmitTransaction(submit_req(signed_transaction_base64=junk)), invalid,
                 "serialized transaction")
    unsigned = (await env.builder.BuildWithdraw(b.BuildWithdrawRequest(owner=owner, amount=1))).transaction
    await expect(env.builder.SubmitTransaction(submit_req(signed_transaction_base64=unsigned.transaction_base64)),
                 invalid, "signature")
    # a transaction that calls another program
    blockhash = (await env.client.get_latest_blockhash()).value.blockhash
    other = VersionedTransaction(Message.new_with_blockhash(
        [transfer(TransferParams(from_pubkey=user.key, to_pubkey=Pubkey.new_unique(), lamports=1))], user.key,
        blockhash), [user.keypair])
    await expect(env.builder.SubmitTransaction(submit_req(signed_transaction_base64=base64.b64encode(
        bytes(other)).decode())), invalid, "only the vault program")
    # a withdrawal to someone else's token account, built by hand
    thief, thief_tokens = await wallet(env, 1)
    program = env.node.ledger.deployment.program  # type: ignore[union-attr]
    rogue = program.withdraw(user.key, thief_tokens, 1)
    tx = VersionedTransaction(Message.new_with_blockhash([rogue], user.key, blockhash), [user.keypair])
    # accounts match the builder (destination is free), so the program itself refuses it
    await expect(env.builder.SubmitTransaction(submit_req(signed_transaction_base64=base64.b64encode(
        bytes(tx)).decode())), grpc.StatusCode.INVALID_ARGUMENT, "InvalidTokenAccount")
    # a vault instruction naming another owner's vault
    victim_vault = program.vault(thief.key)
    ix = program.deposit(user.key, token_account, 1)
    metas = list(ix.accounts)
    from solders.instruction import AccountMeta, Instruction

    metas[1] = AccountMeta(victim_vault, False, True)
    tx = VersionedTransaction(Message.new_with_blockhash([Instruction(ix.program_id, ix.data, metas)], user.key,
                                                         blockhash), [user.keypair])
    await expect(env.builder.SubmitTransaction(submit_req(signed_transaction_base64=base64.b64encode(
        bytes(tx)).decode())), invalid, "account #1")


async def test_health_reflection_and_metrics(env: Env) -> None:
    health = health_pb2_grpc.HealthStub(env.channel)
    for name in ("", "collateral_vault.v1.VaultManager", "collateral_vault.v1.TransactionBuilder"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=name))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(env.channel)
    replies = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = {s.name async for r in replies for s in r.list_services_response.service}
    assert {"collateral_vault.v1.VaultManager", "collateral_vault.v1.TransactionBuilder",
            "grpc.health.v1.Health"} <= names

    url = f"http://127.0.0.1:{env.service.settings.metrics_port}/metrics"

    async def scrape() -> str:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert response.status == 200
            return await response.text()

    def count(text: str, code: str) -> float:
        for line in text.splitlines():
            if line.startswith("grpc_server_requests_total{") and 'method="GetAuthority"' in line \
                    and f'code="{code}"' in line and 'service="vault_manager"' in line:
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = await scrape()
    authority = await env.vaults.GetAuthority(vault_manager_pb2.GetAuthorityRequest())
    assert authority.authorized_programs == [str(env.node.ledger.deployment.pm_id)]  # type: ignore[union-attr]
    await expect(env.vaults.GetVault(vault_manager_pb2.GetVaultRequest(owner="bad")), grpc.StatusCode.INVALID_ARGUMENT)
    after = await scrape()
    assert count(after, "OK") == count(before, "OK") + 1
    assert "grpc_server_handling_seconds_bucket" in after
    assert 'code="INVALID_ARGUMENT"' in after


def _signed_raw(message: Message, *signers: Keypair) -> str:
    """A legacy transaction's wire form signed by `signers`, built by hand (solders would
    refuse to build some of these)."""
    payload = bytes(message)
    signatures = b"".join(bytes(k.sign_message(payload)) for k in signers)
    return base64.b64encode(bytes([len(signers)]) + signatures + payload).decode()


async def test_signed_but_malformed_transactions_are_invalid_argument(env: Env) -> None:
    """Each of these was INTERNAL with a traceback (an IndexError in the checks)."""
    from solders.hash import Hash
    from solders.instruction import CompiledInstruction

    program = env.node.ledger.deployment.program  # type: ignore[union-attr]
    signer = Keypair()
    deposit = program.deposit(signer.pubkey(), Pubkey.new_unique(), 1)
    keys = [signer.pubkey(), program.program_id]
    data = bytes(deposit.data)

    def message(required: int, instruction: CompiledInstruction, count: int = 2) -> Message:
        return Message.new_with_compiled_instructions(required, 0, 1, keys[:count], Hash.default(), [instruction])

    cases = {
        "no signature": _signed_raw(message(0, CompiledInstruction(1, data, bytes([0])))),
        "too few accounts": _signed_raw(message(1, CompiledInstruction(1, data, bytes([0, 0]))), signer),
        "program index out of range": _signed_raw(message(1, CompiledInstruction(7, data, bytes([0]))), signer),
        "account index out of range": _signed_raw(message(1, CompiledInstruction(1, data, bytes([0, 1, 9, 0, 0]))),
                                                  signer),
    }
    expected = {"no signature": "no signature", "too few accounts": "names 2 accounts; it takes 6",
                "program index out of range": "program index 7", "account index out of range": "account index 9"}
    for case, raw in cases.items():
        await expect(env.builder.SubmitTransaction(transaction_builder_pb2.SubmitTransactionRequest(
            signed_transaction_base64=raw)), grpc.StatusCode.INVALID_ARGUMENT, expected[case])


async def test_errors_quote_only_a_prefix_of_the_input(env: Env) -> None:
    """A 1 MiB owner came back whole in the status message."""
    huge = "x" * (1 << 20)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await env.vaults.GetVault(vault_manager_pb2.GetVaultRequest(owner=huge))
    details = info.value.details() or ""
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(details) < 200 and f"({len(huge)} characters)" in details, details[:300]
