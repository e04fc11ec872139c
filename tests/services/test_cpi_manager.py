"""cpi_manager with vault_manager (submission) and balance_tracker (indexing), over real
gRPC, against localnet, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import grpc
import pytest
from collateral_vault.v1 import (
    common_pb2,
    cpi_manager_pb2,
    cpi_manager_pb2_grpc,
    transaction_builder_pb2,
    transaction_builder_pb2_grpc,
)
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed

from localnet.genesis import dev_keypair
from localnet.node import Node
from services.common.config import Settings
from services.common.vault_program import Vault
from tests.conftest import RedisNamespace
from tests.support.localnet_node import running_node
from tests.support.services import balance_tracker, cpi_manager, settings_for, sign, vault_manager, wait_for_rows
from tests.support.traffic import Account, users_with_vaults

USDT = 10**6


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    async with running_node() as n:
        yield n


@dataclass
class Stack:
    node: Node
    cpi: cpi_manager_pb2_grpc.CpiManagerStub
    builder: transaction_builder_pb2_grpc.TransactionBuilderStub
    client: AsyncClient
    database_url: str
    cpi_settings: Settings


@pytest.fixture
async def stack(node: Node, pg_database: str, redis_ns: RedisNamespace) -> AsyncIterator[Stack]:
    def conf(name: str) -> Settings:
        return settings_for(name, node, pg_database, redis_ns.url, redis_ns.prefix)

    async with balance_tracker(conf("balance_tracker")), vault_manager(conf("vault_manager")) as vm, \
            cpi_manager(conf("cpi_manager")) as cm, grpc.aio.insecure_channel(vm.target) as vm_channel, \
            grpc.aio.insecure_channel(cm.target) as cm_channel, AsyncClient(node.rpc_url, commitment=Confirmed) as c:
        yield Stack(node, cpi_manager_pb2_grpc.CpiManagerStub(cm_channel),
                    transaction_builder_pb2_grpc.TransactionBuilderStub(vm_channel), c, pg_database, cm.settings)


async def submit(stack: Stack, unsigned: common_pb2.UnsignedTransaction, account: Account) -> None:
    result = await stack.builder.SubmitTransaction(transaction_builder_pb2.SubmitTransactionRequest(
        signed_transaction_base64=sign(unsigned.transaction_base64, account.user.keypair)))
    assert result.status.error == "", result.status.error


async def deposit(stack: Stack, account: Account, amount: int) -> None:
    built = await stack.builder.BuildDeposit(transaction_builder_pb2.BuildDepositRequest(
        owner=str(account.user.key), amount=amount))
    await submit(stack, built.transaction, account)


async def chain_vault(stack: Stack, account: Account) -> Vault:
    assert stack.node.ledger is not None
    info = (await stack.client.get_account_info(stack.node.ledger.deployment.program.vault(account.user.key))).value
    assert info is not None
    return Vault.decode(bytes(info.data))


async def db_locked(stack: Stack, account: Account, expected: int) -> int:
    conn = await asyncpg.connect(stack.database_url)
    try:
        for _ in range(100):
            value = await conn.fetchval("SELECT locked_balance FROM vaults WHERE owner = $1", str(account.user.key))
            if value is not None and int(value) == expected:
                break
            await asyncio.sleep(0.05)
        return int(value or 0)
    finally:
        await conn.close()


async def test_position_lifecycle_moves_locked_balances(stack: Stack) -> None:
    alice, bob = await users_with_vaults(stack.node, stack.client, 2)
    await deposit(stack, alice, 500 * USDT)
    await deposit(stack, bob, 100 * USDT)
    pm = str(stack.node.ledger.deployment.pm_id)  # type: ignore[union-attr]

    lock = await stack.cpi.BuildLockCollateral(cpi_manager_pb2.BuildLockCollateralRequest(
        owner=str(alice.user.key), amount=300 * USDT, client_request_id="order-1"))
    await submit(stack, lock.transaction, alice)
    assert (await chain_vault(stack, alice)).locked_balance == 300 * USDT
    assert await db_locked(stack, alice, 300 * USDT) == 300 * USDT
    breakdown = await stack.cpi.GetLockedBreakdown(cpi_manager_pb2.GetLockedBreakdownRequest(owner=str(alice.user.key)))
    assert breakdown.locked_total == 300 * USDT
    assert [(b.program_id, b.locked) for b in breakdown.by_program] == [(pm, 300 * USDT)]

    settle = await stack.cpi.BuildSettle(cpi_manager_pb2.BuildSettleRequest(
        payer=str(alice.user.key), receiver=str(bob.user.key), amount=50 * USDT, client_request_id="fill-1"))
    await submit(stack, settle.transaction, alice)
    unlock = await stack.cpi.BuildUnlockCollateral(cpi_manager_pb2.BuildUnlockCollateralRequest(
        owner=str(alice.user.key), amount=250 * USDT, client_request_id="order-1-close"))
    await submit(stack, unlock.transaction, alice)
    a, b = await chain_vault(stack, alice), await chain_vault(stack, bob)
    assert (a.total_balance, a.locked_balance) == (450 * USDT, 0)
    assert (b.total_balance, b.available_balance) == (150 * USDT, 150 * USDT)
    assert await db_locked(stack, alice, 0) == 0
    await wait_for_rows(stack.database_url, 2 + 2 + 3)  # inits, deposits, lock/settle/unlock
    breakdown = await stack.cpi.GetLockedBreakdown(cpi_manager_pb2.GetLockedBreakdownRequest(owner=str(alice.user.key)))
    assert breakdown.locked_total == 0 and list(breakdown.by_program) == []


async def test_idempotency_and_refusals(stack: Stack) -> None:
    [alice] = await users_with_vaults(stack.node, stack.client, 1)
    await deposit(stack, alice, 100 * USDT)
    owner = str(alice.user.key)
    request = cpi_manager_pb2.BuildLockCollateralRequest(owner=owner, amount=10 * USDT, client_request_id="o-7")
    first, again = await stack.cpi.BuildLockCollateral(request), await stack.cpi.BuildLockCollateral(request)
    assert first.transaction.transaction_base64 == again.transaction.transaction_base64

    async def refused(call: object, code: grpc.StatusCode, fragment: str) -> None:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call  # type: ignore[misc]
        assert info.value.code() == code and fragment in (info.value.details() or ""), info.value.details()

    lock, unlock = cpi_manager_pb2.BuildLockCollateralRequest, cpi_manager_pb2.BuildUnlockCollateralRequest
    await refused(stack.cpi.BuildLockCollateral(lock(owner=owner, amount=11 * USDT, client_request_id="o-7")),
                  grpc.StatusCode.ALREADY_EXISTS, "different request")
    await refused(stack.cpi.BuildLockCollateral(lock(owner=owner, amount=101 * USDT, client_request_id="o-8")),
                  grpc.StatusCode.FAILED_PRECONDITION, "available")
    await refused(stack.cpi.BuildUnlockCollateral(unlock(owner=owner, amount=1, client_request_id="o-9")),
                  grpc.StatusCode.FAILED_PRECONDITION, "locked")
    await refused(stack.cpi.BuildLockCollateral(lock(owner=owner, amount=1)), grpc.StatusCode.INVALID_ARGUMENT,
                  "client_request_id")
    # a NUL (PostgreSQL's text cannot hold it: INTERNAL before) or any control character
    for bad in ("o\x00-1", "o-\n2", "\x7f"):
        await refused(stack.cpi.BuildLockCollateral(lock(owner=owner, amount=1, client_request_id=bad)),
                      grpc.StatusCode.INVALID_ARGUMENT, "control character")
    await refused(stack.cpi.BuildLockCollateral(lock(owner="x", amount=1, client_request_id="a")),
                  grpc.StatusCode.INVALID_ARGUMENT, "owner")
    await refused(stack.cpi.BuildLockCollateral(lock(owner=str(stack.node.ledger.deployment.pm_id),  # type: ignore[union-attr]
                                                     amount=1, client_request_id="b")),
                  grpc.StatusCode.NOT_FOUND, "no vault")
    await refused(stack.cpi.BuildSettle(cpi_manager_pb2.BuildSettleRequest(payer=owner, receiver=owner, amount=1,
                                                                           client_request_id="c")),
                  grpc.StatusCode.INVALID_ARGUMENT, "same vault")
    # admin transactions: the admin's is built, anyone else's is refused by the program's own check
    admin = dev_keypair("admin")
    built = await stack.cpi.BuildSetPaused(cpi_manager_pb2.BuildSetPausedRequest(admin=str(admin.pubkey()),
                                                                                  pause_flags=2))
    assert built.transaction.fee_payer == str(admin.pubkey())
    await refused(stack.cpi.BuildSetPaused(cpi_manager_pb2.BuildSetPausedRequest(admin=owner, pause_flags=2)),
                  grpc.StatusCode.PERMISSION_DENIED, "Unauthorized")
    programs = await stack.cpi.ListAuthorizedPrograms(cpi_manager_pb2.ListAuthorizedProgramsRequest())
    assert [p.program_id for p in programs.programs] == [str(stack.node.ledger.deployment.pm_id)]  # type: ignore[union-attr]


async def test_unauthorized_program_is_refused(node: Node, pg_database: str, redis_ns: RedisNamespace) -> None:
    """A cpi_manager pointed at a position manager the vault does not list cannot build a
    lock (the simulation is refused), and vault_manager will not submit its instructions."""
    assert node.ledger is not None
    rogue = node.ledger.deployment.rogue_pm_id
    settings = dataclasses.replace(settings_for("cpi_manager", node, pg_database, redis_ns.url, redis_ns.prefix),
                                   position_manager_id=rogue)
    async with cpi_manager(settings) as cm, grpc.aio.insecure_channel(cm.target) as channel, \
            AsyncClient(node.rpc_url, commitment=Confirmed) as client:
        [alice] = await users_with_vaults(node, client, 1)
        stub = cpi_manager_pb2_grpc.CpiManagerStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.BuildLockCollateral(cpi_manager_pb2.BuildLockCollateralRequest(
                owner=str(alice.user.key), amount=0 + 1, client_request_id="r"))
        # the vault is empty, so the service refuses before simulating; fund it and retry
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        await alice.user.send([node.ledger.deployment.program.deposit(alice.user.key, alice.token_account, 5 * USDT)])
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.BuildLockCollateral(cpi_manager_pb2.BuildLockCollateralRequest(
                owner=str(alice.user.key), amount=1, client_request_id="r2"))
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "UnauthorizedCaller" in (info.value.details() or "")
