"""cpi_manager: the matching engine's operator operations (Lock, Release, Settle, Liquidate)
signed with the exchange's operator key, and the trader's own Build* flows (grant, revoke,
request_exit, exit) submitted through vault_manager; over real gRPC, against localnet and
PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
from collateral_vault.v1 import (
    common_pb2,
    cpi_manager_pb2,
    cpi_manager_pb2_grpc,
    transaction_builder_pb2,
    transaction_builder_pb2_grpc,
    vault_manager_pb2,
    vault_manager_pb2_grpc,
)
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from bench.traffic import Account, users_with_vaults
from localnet.genesis import DEV_EXIT_DELAY_SLOTS, dev_keypair
from localnet.node import Node
from localnet.node_harness import free_port, running_node
from services.cpi_manager.operations import LOCK, Leg, Operation
from services.cpi_manager.request_store import RequestStore
from tests.conftest import RedisNamespace
from tests.support.rpc_proxy import RpcProxy
from tests.support.services import cpi_manager, fund_operator, settings_for, sign, spool_dir, vault_manager
from tests.support.transit_standin import TransitStandIn
from vault_client.config import OperatorSignerSettings, Settings
from vault_client.keyfile import write_key_file
from vault_client.vault_program import ExchangeConfig, Grant, Vault

USDT = 10**6
pb = cpi_manager_pb2


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
    settings: Settings
    vaults: vault_manager_pb2_grpc.VaultManagerStub

    @property
    def pm_id(self) -> Pubkey:
        assert self.node.ledger is not None
        return self.node.ledger.deployment.pm_id

    def conf(self, **changes: Any) -> Settings:
        """Another cpi_manager process's settings (its own ports), on the same database."""
        return dataclasses.replace(self.settings, grpc_port=free_port(), metrics_port=free_port(),
                                   audit_spool_dir=spool_dir(), **changes)


@pytest.fixture
async def stack(node: Node, pg_database: str, redis_ns: RedisNamespace) -> AsyncIterator[Stack]:
    def conf(name: str) -> Settings:
        return settings_for(name, node, pg_database, redis_ns.url, redis_ns.prefix)

    async with vault_manager(conf("vault_manager")) as vm, cpi_manager(conf("cpi_manager")) as cm, \
            grpc.aio.insecure_channel(vm.target) as vm_channel, grpc.aio.insecure_channel(cm.target) as cm_channel, \
            AsyncClient(node.rpc_url, commitment=Confirmed) as client:
        await fund_operator(client)
        yield Stack(node, cpi_manager_pb2_grpc.CpiManagerStub(cm_channel),
                    transaction_builder_pb2_grpc.TransactionBuilderStub(vm_channel), client, pg_database, cm.settings,
                    vault_manager_pb2_grpc.VaultManagerStub(vm_channel))


# --- helpers --------------------------------------------------------------------------------


async def submit(stack: Stack, unsigned: common_pb2.UnsignedTransaction, signer: Keypair) -> str:
    """What the trader's wallet does: sign what was built, submit it through vault_manager."""
    result = await stack.builder.SubmitTransaction(transaction_builder_pb2.SubmitTransactionRequest(
        signed_transaction_base64=sign(unsigned.transaction_base64, signer)))
    assert result.status.error == "", result.status.error
    return result.status.signature


async def trader(stack: Stack, account: Account, deposit: int, max_locked: int, expires_in: int = 86_400) -> str:
    """A trader who deposited and granted the exchange program (both signed by his wallet)."""
    owner = str(account.user.key)
    built = await stack.builder.BuildDeposit(transaction_builder_pb2.BuildDepositRequest(owner=owner, amount=deposit))
    await submit(stack, built.transaction, account.user.keypair)
    granted = await stack.cpi.BuildGrant(pb.BuildGrantRequest(trader=owner, max_locked=max_locked,
                                                              expires_at=int(time.time()) + expires_in))
    await submit(stack, granted.transaction, account.user.keypair)
    return owner


async def chain_vault(stack: Stack, owner: str | Pubkey) -> Vault:
    assert stack.node.ledger is not None
    program = stack.node.ledger.deployment.program
    info = (await stack.client.get_account_info(program.vault(Pubkey.from_string(str(owner))))).value
    assert info is not None
    return Vault.decode(bytes(info.data))


async def chain_grant(stack: Stack, owner: str) -> Grant:
    assert stack.node.ledger is not None
    info = (await stack.client.get_account_info(
        stack.node.ledger.deployment.exchange.grant_account(Pubkey.from_string(owner)))).value
    assert info is not None
    return Grant.decode(bytes(info.data))


async def refused(call: Awaitable[Any], code: grpc.StatusCode, fragment: str) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    details = info.value.details() or ""
    assert info.value.code() == code and fragment in details, (info.value.code(), details)
    return details


def lock(owner: str, amount: int, request_id: str) -> pb.LockRequest:
    return pb.LockRequest(trader=owner, amount=amount, client_request_id=request_id)


def balance(result: pb.OperationResult, owner: str) -> tuple[int, int, int]:
    [b] = [b for b in result.balances if b.trader == owner]
    return b.locked, b.available, b.total


async def requests(database_url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return list(await conn.fetch("SELECT * FROM operator_requests ORDER BY created_at"))
    finally:
        await conn.close()


# --- operations ---------------------------------------------------------------------------


async def test_lock_settle_with_a_fee_release_and_liquidate(stack: Stack) -> None:
    alice_account, bob_account = await users_with_vaults(stack.node, stack.client, 2)
    alice = await trader(stack, alice_account, 500 * USDT, 400 * USDT)
    bob = await trader(stack, bob_account, 100 * USDT, 100 * USDT)
    assert stack.node.ledger is not None
    fee_owner = str(stack.node.ledger.deployment.setup.fee_owner.pubkey())
    insurance_owner = str(stack.node.ledger.deployment.setup.insurance_owner.pubkey())

    locked = (await stack.cpi.Lock(lock(alice, 300 * USDT, "open-alice"))).result
    assert balance(locked, alice) == (300 * USDT, 200 * USDT, 500 * USDT)
    assert locked.commitment == common_pb2.COMMITMENT_CONFIRMED and locked.slot > 0 and not locked.replayed
    assert list(locked.signatures_tried) == [locked.signature] and locked.balances[0].op_id == 1
    await stack.cpi.Lock(lock(bob, 80 * USDT, "open-bob"))
    breakdown = await stack.cpi.GetLockedBreakdown(pb.GetLockedBreakdownRequest(owner=alice))
    assert breakdown.locked_total == 300 * USDT
    assert [(b.program_id, b.locked) for b in breakdown.by_program] == [(str(stack.pm_id), 300 * USDT)]

    # one batch: alice pays bob 50 of PnL and the exchange a 1 USDT fee; bob pays alice 10
    settled = (await stack.cpi.Settle(pb.SettleRequest(client_request_id="fill-1", pairs=[
        pb.SettlementPair(payer=alice, receiver=bob, amount=50 * USDT),
        pb.SettlementPair(payer=alice, to_fee_vault=True, amount=1 * USDT),
        pb.SettlementPair(payer=bob, receiver=alice, amount=10 * USDT)]))).result
    assert balance(settled, alice) == (249 * USDT, 200 * USDT + 10 * USDT, 459 * USDT)
    assert balance(settled, bob) == (70 * USDT, 20 * USDT + 50 * USDT, 140 * USDT)
    assert balance(settled, fee_owner)[2] == 1 * USDT
    assert {b.trader: b.op_id for b in settled.balances} == {alice: 3, bob: 2, fee_owner: 0}  # alice: 2 pairs
    assert (await chain_grant(stack, alice)).last_op_id == 3

    liquidated = (await stack.cpi.Liquidate(pb.LiquidateRequest(trader=bob, amount=70 * USDT,
                                                                client_request_id="liq-bob"))).result
    assert balance(liquidated, bob) == (0, 70 * USDT, 70 * USDT)
    assert balance(liquidated, insurance_owner)[2] == 70 * USDT
    released = (await stack.cpi.Release(pb.ReleaseRequest(trader=alice, amount=249 * USDT,
                                                          client_request_id="close-alice"))).result
    assert balance(released, alice) == (0, 459 * USDT, 459 * USDT)
    a = await chain_vault(stack, alice)
    assert (a.total_balance, a.locked_balance, a.locks) == (459 * USDT, 0, ())
    rows = await requests(stack.database_url)
    assert [(r["operation"], r["state"], list(r["op_ids"])) for r in rows] == [
        ("lock", "landed", [1]), ("lock", "landed", [1]), ("settle", "landed", [2, 3, 2]),
        ("liquidate", "landed", [3]), ("release", "landed", [4])]


async def test_every_refusal_is_a_status_and_changes_nothing(stack: Stack) -> None:
    accounts = await users_with_vaults(stack.node, stack.client, 3)
    alice = await trader(stack, accounts[0], 100 * USDT, 50 * USDT)
    bob = await trader(stack, accounts[1], 100 * USDT, 200 * USDT, expires_in=3)
    carol = str(accounts[2].user.key)  # a vault, no deposit, no grant
    await stack.cpi.Lock(lock(alice, 40 * USDT, "a-1"))
    before = await chain_vault(stack, alice)
    cpi = stack.cpi

    await refused(cpi.Lock(lock(alice, 11 * USDT, "a-2")), grpc.StatusCode.FAILED_PRECONDITION, "GrantExceeded")
    await refused(cpi.Settle(pb.SettleRequest(client_request_id="a-3", pairs=[
        pb.SettlementPair(payer=alice, receiver=carol, amount=41 * USDT)])),
        grpc.StatusCode.FAILED_PRECONDITION, "InsufficientLockedBalance")
    await refused(cpi.Release(pb.ReleaseRequest(trader=alice, amount=41 * USDT, client_request_id="a-4")),
                  grpc.StatusCode.FAILED_PRECONDITION, "InsufficientLockedBalance")
    # settle to an account that is not a vault
    await refused(cpi.Settle(pb.SettleRequest(client_request_id="a-5", pairs=[
        pb.SettlementPair(payer=alice, receiver=str(Pubkey.new_unique()), amount=1)])),
        grpc.StatusCode.INVALID_ARGUMENT, "has no vault")
    await refused(cpi.Settle(pb.SettleRequest(client_request_id="a-6", pairs=[
        pb.SettlementPair(payer=alice, receiver=alice, amount=1)])), grpc.StatusCode.INVALID_ARGUMENT, "same vault")
    await refused(cpi.Settle(pb.SettleRequest(client_request_id="a-7", pairs=[
        pb.SettlementPair(payer=alice, receiver=carol, amount=1)] * 7)), grpc.StatusCode.INVALID_ARGUMENT, "1 to 6")
    await refused(cpi.Lock(lock(carol, 1, "c-1")), grpc.StatusCode.FAILED_PRECONDITION, "has not granted")
    await refused(cpi.Lock(lock(str(Pubkey.new_unique()), 1, "x-1")), grpc.StatusCode.NOT_FOUND, "no vault")
    # the same id with other parameters; no id; a control character in it
    await refused(cpi.Lock(lock(alice, 1, "a-1")), grpc.StatusCode.ALREADY_EXISTS, "different request")
    await refused(cpi.Lock(lock(alice, 1, "")), grpc.StatusCode.INVALID_ARGUMENT, "client_request_id")
    await refused(cpi.Lock(lock(alice, 1, "a\x00b")), grpc.StatusCode.INVALID_ARGUMENT, "control character")
    await refused(cpi.Lock(lock(alice, 0, "a-8")), grpc.StatusCode.INVALID_ARGUMENT, "amount")
    after = await chain_vault(stack, alice)
    assert (after.locked_balance, after.available_balance, after.event_seq) == (
        before.locked_balance, before.available_balance, before.event_seq)

    # above available: bob granted 200 but holds 100, of which 60 locked
    await stack.cpi.Lock(lock(bob, 60 * USDT, "b-1"))
    await refused(cpi.Lock(lock(bob, 41 * USDT, "b-2")), grpc.StatusCode.FAILED_PRECONDITION,
                  "InsufficientAvailableBalance")
    # after the grant's expiry: no new lock, but a release still works
    await asyncio.sleep(max(0.0, (await chain_grant(stack, bob)).expires_at - time.time() + 1.2))
    await refused(cpi.Lock(lock(bob, 1, "b-3")), grpc.StatusCode.FAILED_PRECONDITION, "GrantExpired")
    await stack.cpi.Release(pb.ReleaseRequest(trader=bob, amount=10 * USDT, client_request_id="b-4"))
    # after revocation: no new lock; what is held stays held
    revoke = await cpi.BuildRevoke(pb.BuildRevokeRequest(trader=alice))
    await submit(stack, revoke.transaction, accounts[0].user.keypair)
    await refused(cpi.Lock(lock(alice, 1, "a-9")), grpc.StatusCode.FAILED_PRECONDITION, "GrantRevoked")
    assert (await chain_vault(stack, alice)).locked_balance == 40 * USDT
    # a refusal is recorded: the same id again answers the same refusal, with nothing sent
    details = await refused(cpi.Lock(lock(alice, 1, "a-9")), grpc.StatusCode.FAILED_PRECONDITION, "GrantRevoked")
    assert "(6014)" in details  # position_manager's code, named from its own IDL (the vault's 6014 is another)
    states = {r["request_id"]: (r["state"], r["error_name"]) for r in await requests(stack.database_url)}
    assert states["a-2"] == ("refused", "GrantExceeded") and states["a-9"] == ("refused", "GrantRevoked")
    assert "a-5" not in states and "c-1" not in states  # refused before anything was recorded or signed


async def test_a_settlement_too_large_for_one_transaction_is_refused_before_anything_is_recorded(
        stack: Stack) -> None:
    accounts = await users_with_vaults(stack.node, stack.client, 12)
    owners = [str(a.user.key) for a in accounts]
    pairs = [pb.SettlementPair(payer=owners[i], receiver=owners[6 + i], amount=1) for i in range(6)]
    await refused(stack.cpi.Settle(pb.SettleRequest(client_request_id="big", pairs=pairs)),
                  grpc.StatusCode.INVALID_ARGUMENT, "too many distinct accounts")
    assert await requests(stack.database_url) == []


async def test_exit_after_the_delay_with_the_operator_offline(stack: Stack) -> None:
    [account] = await users_with_vaults(stack.node, stack.client, 1)
    alice = await trader(stack, account, 100 * USDT, 100 * USDT)
    await stack.cpi.Lock(lock(alice, 70 * USDT, "e-1"))
    wallet = account.user.keypair
    requested = await stack.cpi.BuildRequestExit(pb.BuildRequestExitRequest(trader=alice))
    await submit(stack, requested.transaction, wallet)
    grant = await stack.cpi.GetGrant(pb.GetGrantRequest(trader=alice))
    assert grant.exit_deadline_slot == grant.exit_requested_slot + DEV_EXIT_DELAY_SLOTS and grant.locked == 70 * USDT
    # exit pending: no new lock; before the deadline the trader cannot exit yet
    await refused(stack.cpi.Lock(lock(alice, 1, "e-2")), grpc.StatusCode.FAILED_PRECONDITION, "ExitPending")
    await refused(stack.cpi.BuildExit(pb.BuildExitRequest(trader=alice)), grpc.StatusCode.FAILED_PRECONDITION,
                  "ExitNotDue")
    # the operator stays silent (no operator call from here on); the delay passes
    while (await stack.client.get_slot()).value <= grant.exit_deadline_slot:
        await asyncio.sleep(0.05)
    # past the deadline the operator can no longer take collateral away (a late attempt, refused)
    await refused(stack.cpi.Settle(pb.SettleRequest(client_request_id="e-3", pairs=[
        pb.SettlementPair(payer=alice, to_fee_vault=True, amount=1)])), grpc.StatusCode.FAILED_PRECONDITION, "ExitDue")
    built = await stack.cpi.BuildExit(pb.BuildExitRequest(trader=alice, withdraw_amount=100 * USDT))
    await submit(stack, built.transaction, wallet)
    vault = await chain_vault(stack, alice)
    assert (vault.total_balance, vault.locked_balance, vault.locks) == (0, 0, ())
    assert (await stack.client.get_token_account_balance(account.token_account)).value.amount == str(10_000 * USDT)
    after = await stack.cpi.GetGrant(pb.GetGrantRequest(trader=alice))
    assert after.revoked and after.exit_requested_slot == 0 and after.locked == 0


async def test_a_request_id_has_one_effect_across_retries_restarts_and_replicas(stack: Stack) -> None:
    [account] = await users_with_vaults(stack.node, stack.client, 1)
    alice = await trader(stack, account, 500 * USDT, 500 * USDT)
    first = (await stack.cpi.Lock(lock(alice, 10 * USDT, "once"))).result
    again = (await stack.cpi.Lock(lock(alice, 10 * USDT, "once"))).result
    assert again.replayed and (again.signature, again.slot) == (first.signature, first.slot)
    assert list(again.balances) == list(first.balances)

    # a new cpi_manager process on the same database: the recorded result, no new effect
    async with cpi_manager(stack.conf()) as restarted, grpc.aio.insecure_channel(restarted.target) as channel:
        after_restart = (await cpi_manager_pb2_grpc.CpiManagerStub(channel).Lock(lock(alice, 10 * USDT, "once")))
        assert after_restart.result.signature == first.signature and after_restart.result.replayed

    # two replicas racing on new ids: each id lands once
    async with cpi_manager(stack.conf()) as one, cpi_manager(stack.conf()) as two, \
            grpc.aio.insecure_channel(one.target) as c1, grpc.aio.insecure_channel(two.target) as c2:
        stubs = [cpi_manager_pb2_grpc.CpiManagerStub(c) for c in (c1, c2)]
        calls = [stubs[i % 2].Lock(lock(alice, 1 * USDT, f"race-{i // 4}")) for i in range(16)]
        results = [r.result for r in await asyncio.gather(*calls)]
    for n in range(4):
        same = {r.signature for r in results[n * 4:(n + 1) * 4]}
        assert len(same) == 1, same
    assert (await chain_vault(stack, alice)).locked_balance == (10 + 4) * USDT
    assert (await chain_grant(stack, alice)).last_op_id == 5
    rows = await requests(stack.database_url)
    assert sorted(next(iter(r["op_ids"])) for r in rows) == [1, 2, 3, 4, 5]


async def test_an_expired_blockhash_is_signed_again_with_the_same_op_id(stack: Stack) -> None:
    """Issue 21 finding 7: a transaction whose blockhash expired before it landed used to
    be answered again and again for the same client_request_id (the caller had to pick a
    new id and risked a double lock if the first had landed after all). Now the same
    operation (same op id) is signed again with a fresh blockhash: it lands exactly once.
    The node in front of the chain drops the first transaction (a proxy that answers its
    signature without forwarding it, as a node whose leader never got it)."""
    [account] = await users_with_vaults(stack.node, stack.client, 1)
    alice = await trader(stack, account, 100 * USDT, 100 * USDT)
    async with RpcProxy(stack.node.rpc_url, drop_signatures=1).running() as proxy, \
            cpi_manager(stack.conf(solana_rpc_url=proxy.url)) as cm, \
            grpc.aio.insecure_channel(cm.target) as channel:
        result = (await cpi_manager_pb2_grpc.CpiManagerStub(channel).Lock(lock(alice, 25 * USDT, "stale"))).result
    assert len(proxy.dropped) == 1 and list(result.signatures_tried) == [proxy.dropped[0], result.signature]
    assert proxy.drops > 1  # the first was sent again while its blockhash could land, and dropped again
    assert (await chain_vault(stack, alice)).locked_balance == 25 * USDT
    assert (await chain_grant(stack, alice)).last_op_id == 1  # the one op id, landed once
    [row] = await requests(stack.database_url)
    assert (list(row["op_ids"]), row["state"], len(row["signatures"])) == ([1], "landed", 2)
    dropped = (await stack.client.get_signature_statuses([Signature.from_string(proxy.dropped[0])],
                                                         search_transaction_history=True)).value
    assert dropped == [None]  # never landed, and never can (its blockhash expired)


async def test_a_dropped_transaction_is_sent_again_while_it_can_land(stack: Stack) -> None:
    """A node dropped the first send; the same transaction (same signature) is sent again
    before its blockhash expires, and lands: no second signature was needed."""
    [account] = await users_with_vaults(stack.node, stack.client, 1)
    alice = await trader(stack, account, 100 * USDT, 100 * USDT)
    async with RpcProxy(stack.node.rpc_url, drop_sends=1).running() as proxy, \
            cpi_manager(stack.conf(solana_rpc_url=proxy.url)) as cm, grpc.aio.insecure_channel(cm.target) as channel:
        result = (await cpi_manager_pb2_grpc.CpiManagerStub(channel).Lock(lock(alice, 7 * USDT, "resent"))).result
    assert proxy.drops == 1 and list(result.signatures_tried) == [result.signature]
    assert (await chain_vault(stack, alice)).locked_balance == 7 * USDT


async def test_a_landed_operation_whose_answer_was_lost_is_not_applied_again(stack: Stack) -> None:
    """The transaction landed but the answer never reached cpi_manager (UNAVAILABLE to the
    caller); the same id again finds the landed signature and answers its result."""
    [account] = await users_with_vaults(stack.node, stack.client, 1)
    alice = await trader(stack, account, 100 * USDT, 100 * USDT)
    async with RpcProxy(stack.node.rpc_url, lose_answers=1).running() as proxy, \
            cpi_manager(stack.conf(solana_rpc_url=proxy.url)) as cm, \
            grpc.aio.insecure_channel(cm.target) as channel:
        stub = cpi_manager_pb2_grpc.CpiManagerStub(channel)
        await refused(stub.Lock(lock(alice, 30 * USDT, "lost")), grpc.StatusCode.UNAVAILABLE, "did not answer")
        assert proxy.lost == 1
        for _ in range(100):  # it did land (confirmed a slot later)
            if (await chain_vault(stack, alice)).locked_balance == 30 * USDT:
                break
            await asyncio.sleep(0.02)
        assert (await chain_vault(stack, alice)).locked_balance == 30 * USDT
        result = (await stub.Lock(lock(alice, 30 * USDT, "lost"))).result
    assert list(result.signatures_tried) == [result.signature]  # not signed again
    assert balance(result, alice)[0] == 30 * USDT
    assert (await chain_vault(stack, alice)).locked_balance == 30 * USDT and \
        (await chain_grant(stack, alice)).last_op_id == 1


async def test_an_op_id_taken_by_another_operator_client_is_surfaced(stack: Stack) -> None:
    """A pending request (its first transaction dropped, the caller's deadline passed)
    whose op id another operator client used meanwhile: OperationReplayed, nothing done."""
    assert stack.node.ledger is not None
    [account] = await users_with_vaults(stack.node, stack.client, 1)
    alice = await trader(stack, account, 100 * USDT, 100 * USDT)
    async with RpcProxy(stack.node.rpc_url, drop_signatures=100).running() as proxy, \
            cpi_manager(stack.conf(solana_rpc_url=proxy.url)) as cm, \
            grpc.aio.insecure_channel(cm.target) as channel:
        await refused(cpi_manager_pb2_grpc.CpiManagerStub(channel).Lock(lock(alice, 5 * USDT, "pending"),
                                                                          timeout=1.0),
                      grpc.StatusCode.DEADLINE_EXCEEDED, "")
    # another client of the operator key uses op id 7 directly on chain
    operator = dev_keypair("operator")
    exchange = stack.node.ledger.deployment.exchange
    blockhash = (await stack.client.get_latest_blockhash()).value.blockhash
    message = Message.new_with_blockhash([exchange.lock(operator.pubkey(), account.user.key, 1 * USDT, 7)],
                                         operator.pubkey(), blockhash)
    taken = (await stack.client.send_transaction(VersionedTransaction(message, [operator]))).value
    await stack.client.confirm_transaction(taken, Confirmed, sleep_seconds=0.02)
    details = await refused(stack.cpi.Lock(lock(alice, 5 * USDT, "pending")), grpc.StatusCode.FAILED_PRECONDITION,
                            "OperationReplayed")
    assert "had no effect" in details
    assert (await chain_vault(stack, alice)).locked_balance == 1 * USDT
    # a new request gets an id above the chain's
    result = (await stack.cpi.Lock(lock(alice, 2 * USDT, "next"))).result
    assert result.balances[0].op_id == 8


async def test_operations_signed_by_the_transit_signer(stack: Stack, tmp_path: Path) -> None:
    """cpi_manager with OPERATOR_SIGNER=transit: the operator key stays in the signer (a
    stand-in speaking the transit API: OpenBao cannot be installed here)."""
    [account] = await users_with_vaults(stack.node, stack.client, 1)
    alice = await trader(stack, account, 100 * USDT, 100 * USDT)
    token = tmp_path / "transit.token"
    token.write_text("s.test-token")
    async with TransitStandIn({"exchange-operator": dev_keypair("operator")}).running() as standin:
        signer = OperatorSignerSettings(kind="transit", key_file="", transit_url=standin.url,
                                        transit_key="exchange-operator", transit_token_file=str(token),
                                        transit_ca_file="")
        async with cpi_manager(stack.conf(operator_signer=signer)) as cm, \
                grpc.aio.insecure_channel(cm.target) as channel:
            result = (await cpi_manager_pb2_grpc.CpiManagerStub(channel).Lock(lock(alice, 9 * USDT, "t-1"))).result
    assert standin.signed == 1 and balance(result, alice)[0] == 9 * USDT


async def test_a_signer_that_is_not_the_exchange_operator_is_refused_before_sending(stack: Stack,
                                                                                   tmp_path: Path) -> None:
    [account] = await users_with_vaults(stack.node, stack.client, 1)
    alice = await trader(stack, account, 100 * USDT, 100 * USDT)
    path = tmp_path / "not-the-operator.json"
    write_key_file(path)
    signer = OperatorSignerSettings(kind="key_file", key_file=str(path), transit_url="", transit_key="",
                                    transit_token_file="", transit_ca_file="")
    async with cpi_manager(stack.conf(operator_signer=signer)) as cm, grpc.aio.insecure_channel(cm.target) as channel:
        await refused(cpi_manager_pb2_grpc.CpiManagerStub(channel).Lock(lock(alice, 1, "w-1")),
                      grpc.StatusCode.FAILED_PRECONDITION, "not the exchange's operator")
    assert (await chain_vault(stack, alice)).locked_balance == 0


async def test_finished_requests_are_forgotten_after_the_retention_pending_ones_never(
        migrated_pool: asyncpg.Pool) -> None:
    store = RequestStore(migrated_pool, migrated_pool)
    op = Operation(LOCK, (Leg(Pubkey.new_unique(), 1),))
    for name in ("old-landed", "old-refused", "old-pending", "new-landed"):
        assert await store.create(name, op, op.fingerprint(), {}) is not None
    await store.landed("old-landed", "sig", 1, b"x")
    await store.refused("old-refused", "FAILED_PRECONDITION", "GrantExceeded", "refused")
    await store.landed("new-landed", "sig2", 2, b"y")
    await migrated_pool.execute("UPDATE operator_requests SET finished_at = now() - interval '31 days', "
                                "created_at = now() - interval '31 days' WHERE request_id LIKE 'old-%'")
    assert await store.prune(30) == 2
    assert sorted(r["request_id"] for r in await migrated_pool.fetch("SELECT request_id FROM operator_requests")) \
        == ["new-landed", "old-pending"]


async def test_the_exchange_admin_proposes_and_cancels_a_configuration_change(stack: Stack) -> None:
    """position_manager's delayed configuration changes, built here, signed by the exchange's
    admin and submitted through vault_manager; a malformed one is refused before building."""
    assert stack.node.ledger is not None
    admin = dev_keypair("admin")
    new_operator = str(Pubkey.new_unique())
    proposed = await stack.cpi.BuildProposeConfigChange(pb.BuildProposeConfigChangeRequest(
        admin=str(admin.pubkey()), kind=pb.CONFIG_CHANGE_KIND_OPERATOR, key=new_operator))
    await submit(stack, proposed.transaction, admin)
    exchange = stack.node.ledger.deployment.exchange
    info = (await stack.client.get_account_info(exchange.config)).value
    assert info is not None
    pending = ExchangeConfig.decode(bytes(info.data)).pending[1]  # the operator's slot
    assert str(pending.key) == new_operator and pending.eta_slot > 0
    # not due yet: applying is refused by the program (ChangeNotDue), anyone may try
    await refused(stack.cpi.BuildApplyConfigChange(pb.BuildApplyConfigChangeRequest(
        payer=str(admin.pubkey()), kind=pb.CONFIG_CHANGE_KIND_OPERATOR)), grpc.StatusCode.FAILED_PRECONDITION,
        "ChangeNotDue")
    cancelled = await stack.cpi.BuildCancelConfigChange(pb.BuildCancelConfigChangeRequest(
        admin=str(admin.pubkey()), kind=pb.CONFIG_CHANGE_KIND_OPERATOR))
    await submit(stack, cancelled.transaction, admin)
    info = (await stack.client.get_account_info(exchange.config)).value
    assert info is not None and ExchangeConfig.decode(bytes(info.data)).pending[1].eta_slot == 0
    await refused(stack.cpi.BuildProposeConfigChange(pb.BuildProposeConfigChangeRequest(
        admin=str(admin.pubkey()), kind=pb.CONFIG_CHANGE_KIND_EXIT_DELAY, key=new_operator)),
        grpc.StatusCode.INVALID_ARGUMENT, "delay change gives its value")
    await refused(stack.cpi.BuildProposeConfigChange(pb.BuildProposeConfigChangeRequest(admin=str(admin.pubkey()))),
                  grpc.StatusCode.INVALID_ARGUMENT, "kind is required")
    await refused(stack.cpi.BuildProposeConfigChange(pb.BuildProposeConfigChangeRequest(
        admin=str(dev_keypair("operator").pubkey()), kind=pb.CONFIG_CHANGE_KIND_EXIT_DELAY, value=5)),
        grpc.StatusCode.PERMISSION_DENIED, "NotAdmin")  # a key with SOL that is not the admin


async def test_the_vault_admin_runs_the_timelock_through_built_transactions(stack: Stack) -> None:
    """collateral_vault's timelock (issue 23): each change built here, signed by the vault's
    admin (anyone for an execution) and submitted through vault_manager; GetAuthority shows
    what is queued; what the program would refuse is refused before building, saying why."""
    assert stack.node.ledger is not None
    deployment = stack.node.ledger.deployment
    admin, operator = dev_keypair("admin"), dev_keypair("operator")
    key = str(admin.pubkey())

    async def authority() -> vault_manager_pb2.GetAuthorityResponse:
        return await stack.vaults.GetAuthority(vault_manager_pb2.GetAuthorityRequest())

    state = await authority()
    assert (state.timelock_delay, list(state.pending_changes)) == (0, [])
    limits = state.withdraw_limits
    assert (limits.max_outflow_bps, limits.window_slots, limits.min_budget, limits.exempt_amount) == (
        1_000, 216_000, 100_000 * USDT, 1_000 * USDT)
    assert state.outflow_budget == 100_000 * USDT and state.last_refill_slot > 0

    # the delay: queued (always), then executed by anyone once due (at once: the delay was 0)
    built = await stack.cpi.BuildSetTimelockDelay(pb.BuildSetTimelockDelayRequest(admin=key, seconds=3600))
    await submit(stack, built.transaction, admin)
    [change] = (await authority()).pending_changes
    assert (change.kind, list(change.values), change.target) == ("set_delay", [3600, 0, 0, 0],
                                                                  "11111111111111111111111111111111")
    execute = await stack.cpi.BuildExecuteChange(pb.BuildExecuteChangeRequest(payer=str(operator.pubkey()),
                                                                              change_id=change.change_id))
    await submit(stack, execute.transaction, operator)
    state = await authority()
    assert (state.timelock_delay, list(state.pending_changes)) == (3600, [])

    # an authorization now waits an hour: executing it is refused saying when it is due
    added = await stack.cpi.BuildAddAuthorizedProgram(pb.BuildAddAuthorizedProgramRequest(
        admin=key, program_id=str(deployment.rogue_pm_id)))
    await submit(stack, added.transaction, admin)
    [change] = (await authority()).pending_changes
    assert (change.kind, change.target) == ("authorize_program", str(deployment.rogue_pm_id))
    due = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(change.eta))
    await refused(stack.cpi.BuildExecuteChange(pb.BuildExecuteChangeRequest(payer=key, change_id=change.change_id)),
                  grpc.StatusCode.FAILED_PRECONDITION, f"change {change.change_id} (authorize_program) is due at {due}")
    await refused(stack.cpi.BuildExecuteChange(pb.BuildExecuteChangeRequest(payer=key, change_id=999)),
                  grpc.StatusCode.NOT_FOUND, f"change 999 is not queued (executed, cancelled or never queued); "
                  f"queued now: {change.change_id} (authorize_program)")
    await refused(stack.cpi.BuildExecuteChange(pb.BuildExecuteChangeRequest(payer=key)),
                  grpc.StatusCode.INVALID_ARGUMENT, "change_id is required")
    await refused(stack.cpi.BuildExecuteChange(pb.BuildExecuteChangeRequest(payer="nope", change_id=1)),
                  grpc.StatusCode.INVALID_ARGUMENT, "payer")

    # withdrawal limits: raising one is queued, lowering all applies at once
    raised = await stack.cpi.BuildSetWithdrawLimits(pb.BuildSetWithdrawLimitsRequest(
        admin=key, max_outflow_bps=2_000, window_slots=216_000, min_budget=100_000 * USDT, exempt_amount=1_000 * USDT))
    assert raised.queued
    await submit(stack, raised.transaction, admin)
    assert [c.kind for c in (await authority()).pending_changes] == ["authorize_program", "raise_withdraw_limits"]
    lowered = await stack.cpi.BuildSetWithdrawLimits(pb.BuildSetWithdrawLimitsRequest(
        admin=key, max_outflow_bps=500, window_slots=432_000, min_budget=50_000 * USDT, exempt_amount=500 * USDT))
    assert not lowered.queued
    await submit(stack, lowered.transaction, admin)
    limits = (await authority()).withdraw_limits
    assert (limits.max_outflow_bps, limits.window_slots, limits.min_budget, limits.exempt_amount) == (
        500, 432_000, 50_000 * USDT, 500 * USDT)

    # an admin transfer is applied by the new admin's accept_admin, never by an execution
    signature = (await stack.client.send_transaction(VersionedTransaction(Message.new_with_blockhash(
        [deployment.program.transfer_admin(admin.pubkey(), operator.pubkey())], admin.pubkey(),
        (await stack.client.get_latest_blockhash()).value.blockhash), [admin]))).value
    await stack.client.confirm_transaction(signature, Confirmed)
    transfer = (await authority()).pending_changes[-1]
    assert (transfer.kind, transfer.target) == ("admin_transfer", str(operator.pubkey()))
    await refused(stack.cpi.BuildExecuteChange(pb.BuildExecuteChangeRequest(payer=key, change_id=transfer.change_id)),
                  grpc.StatusCode.FAILED_PRECONDITION, "only the new admin")

    # bad input: nothing is built
    for request, fragment in ((pb.BuildSetTimelockDelayRequest(admin=key, seconds=-1), "seconds must be 0 to"),
                              (pb.BuildSetTimelockDelayRequest(admin=key, seconds=30 * 86_400 + 1), "30 days"),
                              (pb.BuildSetTimelockDelayRequest(admin="", seconds=60), "admin")):
        await refused(stack.cpi.BuildSetTimelockDelay(request), grpc.StatusCode.INVALID_ARGUMENT, fragment)
    for limits_request, fragment in (
            (pb.BuildSetWithdrawLimitsRequest(admin=key, max_outflow_bps=10_001, window_slots=1), "max_outflow_bps"),
            (pb.BuildSetWithdrawLimitsRequest(admin=key, max_outflow_bps=1, window_slots=0), "window_slots"),
            (pb.BuildSetWithdrawLimitsRequest(admin=key, max_outflow_bps=1, window_slots=2**32), "window_slots")):
        await refused(stack.cpi.BuildSetWithdrawLimits(limits_request), grpc.StatusCode.INVALID_ARGUMENT, fragment)
    # a key that is not the admin: the program's refusal, from the simulation
    await refused(stack.cpi.BuildCancelChange(pb.BuildCancelChangeRequest(admin=str(operator.pubkey()),
                                                                          change_id=change.change_id)),
                  grpc.StatusCode.PERMISSION_DENIED, "Unauthorized")

    # cancelled: gone, and a second cancel is NOT_FOUND; the program was never authorized
    for queued in list((await authority()).pending_changes):
        cancel = await stack.cpi.BuildCancelChange(pb.BuildCancelChangeRequest(admin=key, change_id=queued.change_id))
        await submit(stack, cancel.transaction, admin)
    state = await authority()
    assert list(state.pending_changes) == [] and str(deployment.rogue_pm_id) not in state.authorized_programs
    assert state.pending_admin == "11111111111111111111111111111111", "a cancelled transfer clears pending_admin"
    await refused(stack.cpi.BuildCancelChange(pb.BuildCancelChangeRequest(admin=key, change_id=change.change_id)),
                  grpc.StatusCode.NOT_FOUND, f"change {change.change_id} is not queued")

    # SubmitTransaction checks an execution account for account, like every instruction
    ix = deployment.program.execute_change(change.change_id, deployment.rogue_pm_id)
    forged = Instruction(ix.program_id, ix.data, [*ix.accounts, AccountMeta(Pubkey.new_unique(), False, True)])
    blockhash = (await stack.client.get_latest_blockhash()).value.blockhash
    tx = VersionedTransaction(Message.new_with_blockhash([forged], operator.pubkey(), blockhash), [operator])
    await refused(stack.builder.SubmitTransaction(transaction_builder_pb2.SubmitTransactionRequest(
        signed_transaction_base64=base64.b64encode(bytes(tx)).decode())), grpc.StatusCode.INVALID_ARGUMENT,
        "instruction 0 (execute_change): account #2 is not the one expected")
