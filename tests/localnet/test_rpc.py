"""localnet's JSON-RPC against solana-py's AsyncClient (which parses every response into
solders' typed objects, so a wrong shape fails) and raw JSON for the error shapes."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import base58
import pytest
from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Finalized, Processed
from solana.rpc.core import RPCException
from solana.rpc.models import MemcmpOpts, TokenAccountOpts, TxOpts
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction

from localnet.faucet import fund
from localnet.ledger import Ledger
from localnet.node import Node
from localnet.node_harness import FINALITY_DEPTH, funded_user, running_node
from vault_client import spl_token
from vault_client.vault_program import PROGRAM_ID, VAULT_SIZE, Vault, VaultProgram

USDT = 10**6


@pytest.fixture(scope="module")
async def node() -> AsyncIterator[Node]:
    async with running_node() as n:
        yield n


@pytest.fixture
async def client(node: Node) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(node.rpc_url, commitment=Confirmed) as c:
        yield c


async def raw(node: Node, body: Any) -> Any:
    async with aiohttp.ClientSession() as session, session.post(node.rpc_url, json=body) as response:
        return await response.json()


def program(node: Node) -> VaultProgram:
    assert node.ledger is not None
    return node.ledger.deployment.program


async def test_cluster_methods(node: Node, client: AsyncClient) -> None:
    assert (await raw(node, {"jsonrpc": "2.0", "id": 1, "method": "getHealth"}))["result"] == "ok"
    assert "solana-core" in (await client.get_version()).value.to_json()
    genesis = (await client.get_genesis_hash()).value  # stable for this chain, new for every fresh one
    assert genesis == (await client.get_genesis_hash()).value and len(base58.b58decode(str(genesis))) == 32
    assert Ledger().genesis_hash != genesis
    await asyncio.sleep(0.2)
    processed = (await client.get_slot(Processed)).value
    confirmed = (await client.get_slot(Confirmed)).value
    finalized = (await client.get_slot(Finalized)).value
    assert processed >= confirmed >= finalized and processed - finalized >= FINALITY_DEPTH - 1
    assert (await client.get_block_height(Processed)).value >= processed
    epoch = (await client.get_epoch_info()).value
    assert epoch.slots_in_epoch == 432_000
    latest = (await client.get_latest_blockhash()).value
    assert latest.last_valid_block_height >= 150
    for blockhash, valid in ((latest.blockhash, True), (Hash.new_unique(), False)):  # not in solana-py: raw JSON
        reply = await raw(node, {"jsonrpc": "2.0", "id": 1, "method": "isBlockhashValid", "params": [str(blockhash)]})
        assert reply["result"]["value"] is valid and reply["result"]["context"]["slot"] > 0
    payer = Keypair()
    pay = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=Pubkey.new_unique(), lamports=1))
    message = MessageV0.try_compile(payer.pubkey(), [pay], [], latest.blockhash)
    assert (await client.get_fee_for_message(message)).value == 5000
    assert (await client.get_minimum_balance_for_rent_exemption(165)).value > 0


async def test_airdrop_balance_and_accounts(node: Node, client: AsyncClient) -> None:
    user = await funded_user(client, 3)
    assert (await client.get_balance(user.key)).value == 3 * 10**9
    info = (await client.get_account_info(user.key)).value
    assert info is not None and info.lamports == 3 * 10**9 and info.owner == spl_token.SYSTEM_PROGRAM_ID
    assert (await client.get_account_info(Pubkey.new_unique())).value is None
    many = (await client.get_multiple_accounts([user.key, Pubkey.new_unique()])).value
    assert many[0] is not None and many[1] is None


async def test_token_accounts_and_program_accounts(node: Node, client: AsyncClient) -> None:
    vp = program(node)
    user = await funded_user(client)
    token_account, _ = await fund(node.rpc_url, user.key, 250 * USDT)
    balance = (await client.get_token_account_balance(token_account)).value
    assert (balance.amount, balance.decimals, balance.ui_amount_string) == (str(250 * USDT), 6, "250")
    by_mint = (await client.get_token_accounts_by_owner(user.key, TokenAccountOpts(mint=vp.mint))).value
    by_program = (await client.get_token_accounts_by_owner(
        user.key, TokenAccountOpts(program_id=spl_token.TOKEN_PROGRAM_ID))).value
    assert [a.pubkey for a in by_mint] == [a.pubkey for a in by_program] == [token_account]
    parsed = (await client.get_token_accounts_by_owner_json_parsed(user.key, TokenAccountOpts(mint=vp.mint))).value
    info: Any = parsed[0].account.data.parsed
    assert info["info"]["tokenAmount"]["amount"] == str(250 * USDT)

    await user.send([vp.initialize_vault(user.key)])
    await user.send([vp.deposit(user.key, token_account, 100 * USDT)])
    vaults = (await client.get_program_accounts(
        PROGRAM_ID, encoding="base64", filters=[VAULT_SIZE,
                                                MemcmpOpts(offset=8, bytes=str(user.key))])).value
    assert [v.pubkey for v in vaults] == [vp.vault(user.key)]
    assert Vault.decode(bytes(vaults[0].account.data)).total_balance == 100 * USDT
    sliced = await raw(node, {"jsonrpc": "2.0", "id": 1, "method": "getAccountInfo", "params": [
        str(vp.vault(user.key)), {"encoding": "base64", "commitment": "confirmed",
                                  "dataSlice": {"offset": 8, "length": 32}}]})
    assert base64.b64decode(sliced["result"]["value"]["data"][0]) == bytes(user.key)


async def test_send_and_get_transaction(node: Node, client: AsyncClient) -> None:
    vp = program(node)
    user = await funded_user(client)
    token_account, _ = await fund(node.rpc_url, user.key, 50 * USDT)
    await user.send([vp.initialize_vault(user.key)])
    signature = await user.send([vp.deposit(user.key, token_account, 20 * USDT)])
    tx = (await client.get_transaction(signature, commitment=Confirmed, max_supported_transaction_version=0)).value
    assert tx is not None and tx.transaction.meta is not None
    meta = tx.transaction.meta
    assert meta.err is None and meta.compute_units_consumed and meta.compute_units_consumed > 1000
    assert any("Program data: " in line for line in meta.log_messages or [])
    pre = {b.account_index: int(b.ui_token_amount.amount) for b in meta.pre_token_balances or []}
    post = {b.account_index: int(b.ui_token_amount.amount) for b in meta.post_token_balances or []}
    keys = [str(k) for k in tx.transaction.transaction.message.account_keys]  # type: ignore[union-attr]
    user_index = keys.index(str(token_account))
    assert pre[user_index] - post[user_index] == 20 * USDT
    assert meta.pre_balances[0] - meta.post_balances[0] == meta.fee == 5000
    status = (await client.get_signature_statuses([signature])).value[0]
    assert status is not None and status.err is None

    # history, newest first, with before / until / limit
    second = await user.send([vp.deposit(user.key, token_account, 1 * USDT)])
    third = await user.send([vp.deposit(user.key, token_account, 1 * USDT)])
    history = (await client.get_signatures_for_address(vp.vault(user.key), commitment=Confirmed)).value
    assert [h.signature for h in history[:3]] == [third, second, signature]
    assert [h.signature for h in (await client.get_signatures_for_address(
        vp.vault(user.key), before=third, limit=1, commitment=Confirmed)).value] == [second]
    assert [h.signature for h in (await client.get_signatures_for_address(
        vp.vault(user.key), until=signature, commitment=Confirmed)).value] == [third, second]


async def test_error_paths(node: Node, client: AsyncClient) -> None:
    vp = program(node)
    unknown = Signature.new_unique()
    assert (await client.get_transaction(unknown, commitment=Confirmed)).value is None
    assert (await client.get_signature_statuses([unknown])).value == [None]

    bad = await raw(node, {"jsonrpc": "2.0", "id": 7, "method": "getBalance", "params": ["not-base58!"]})
    assert bad["error"]["code"] == -32602 and bad["id"] == 7
    assert (await raw(node, {"jsonrpc": "2.0", "id": 8, "method": "sendTransaction", "params": ["@@@"]}))[
        "error"]["code"] == -32602
    assert (await raw(node, {"jsonrpc": "2.0", "id": 9, "method": "noSuchMethod"}))["error"]["code"] == -32601
    assert (await raw(node, {"id": 9, "method": "getSlot"}))["error"]["code"] == -32600
    async with aiohttp.ClientSession() as session, session.post(node.rpc_url, data=b"{oops") as response:
        assert (await response.json())["error"]["code"] == -32700
    batch = await raw(node, [{"jsonrpc": "2.0", "id": 1, "method": "getSlot"},
                             {"jsonrpc": "2.0", "id": 2, "method": "nope"}])
    assert "result" in batch[0] and batch[1]["error"]["code"] == -32601

    user = await funded_user(client)
    token_account, _ = await fund(node.rpc_url, user.key, 5 * USDT)
    await user.send([vp.initialize_vault(user.key)])

    # program error in preflight: the validator's message, the logs and the error code
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    tx = VersionedTransaction(Message.new_with_blockhash([vp.withdraw(user.key, token_account, 1)], user.key,
                                                         blockhash), [user.keypair])
    lamports = (await client.get_balance(user.key, Processed)).value
    with pytest.raises(RPCException) as preflight:
        await client.send_transaction(tx)
    error = preflight.value.args[0]
    assert "custom program error: 0x1772" in error.message  # 6002 InsufficientAvailableBalance
    assert any("failed" in line for line in error.data.logs)
    assert error.data.units_consumed and error.data.units_consumed > 0
    # refused at preflight: no fee charged, nothing recorded, and once the vault holds enough
    # the very same signed transaction goes through
    assert (await client.get_balance(user.key, Processed)).value == lamports
    assert (await client.get_signature_statuses([tx.signatures[0]])).value == [None]
    await user.send([vp.deposit(user.key, token_account, 2)])
    assert (await client.send_transaction(tx)).value == tx.signatures[0]
    await client.confirm_transaction(tx.signatures[0], Confirmed, sleep_seconds=0.02)
    withdrawn = (await client.get_signature_statuses([tx.signatures[0]])).value[0]
    assert withdrawn is not None and withdrawn.err is None

    # never-issued and expired blockhashes
    stale = VersionedTransaction(Message.new_with_blockhash([vp.deposit(user.key, token_account, 1)], user.key,
                                                            Hash.new_unique()), [user.keypair])
    with pytest.raises(RPCException, match="Blockhash not found"):
        await client.send_transaction(stale)
    old = (await client.get_latest_blockhash()).value
    while (await client.get_block_height(Processed)).value <= old.last_valid_block_height:
        await asyncio.sleep(0.2)
    expired = VersionedTransaction(Message.new_with_blockhash([vp.deposit(user.key, token_account, 1)], user.key,
                                                              old.blockhash), [user.keypair])
    with pytest.raises(RPCException, match="Blockhash not found"):
        await client.send_transaction(expired)

    # insufficient funds: a system transfer above the balance, sent without preflight, lands as
    # failed, and its fee is charged (as on a validator: why preflight simulates first)
    poor = await funded_user(client, 1)
    before = (await client.get_balance(poor.key, Processed)).value
    signature = await poor.send([transfer(TransferParams(from_pubkey=poor.key, to_pubkey=Pubkey.new_unique(),
                                                         lamports=2 * 10**9))], skip_preflight=True)
    status = (await client.get_signature_statuses([signature])).value[0]
    assert status is not None and status.err is not None
    failed = (await client.get_transaction(signature, commitment=Confirmed)).value
    assert failed is not None and failed.transaction.meta is not None
    assert any("insufficient lamports" in line for line in failed.transaction.meta.log_messages or [])
    assert failed.transaction.meta.fee == 5_000
    assert (await client.get_balance(poor.key, Processed)).value == before - 5_000

    # the same transaction twice
    again = VersionedTransaction(Message.new_with_blockhash([vp.deposit(user.key, token_account, 1)], user.key,
                                                            (await client.get_latest_blockhash()).value.blockhash),
                                 [user.keypair])
    await client.send_transaction(again)
    with pytest.raises(RPCException, match="already been processed"):
        await client.send_transaction(again, opts=TxOpts(skip_preflight=True))


async def test_simulate_transaction(node: Node, client: AsyncClient) -> None:
    vp = program(node)
    user = await funded_user(client)
    token_account, _ = await fund(node.rpc_url, user.key, 5 * USDT)
    await user.send([vp.initialize_vault(user.key)])
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    ok = VersionedTransaction(Message.new_with_blockhash([vp.deposit(user.key, token_account, 1 * USDT)], user.key,
                                                         blockhash), [user.keypair])
    result = (await client.simulate_transaction(ok)).value
    assert result.err is None and result.units_consumed and result.units_consumed > 1000
    assert (await client.get_token_account_balance(token_account)).value.amount == str(5 * USDT)  # unchanged
    refused = VersionedTransaction(Message.new_with_blockhash([vp.withdraw(user.key, token_account, 1)], user.key,
                                                              blockhash), [user.keypair])
    result = (await client.simulate_transaction(refused)).value
    assert result.err is not None and result.logs


async def test_connection_refused_is_a_client_error() -> None:
    async with AsyncClient("http://127.0.0.1:9") as client:
        with pytest.raises(SolanaRpcException):
            await client.get_slot()


async def test_the_same_airdrop_in_one_block_is_one_transfer(node: Node) -> None:
    ledger = node.ledger
    assert ledger is not None
    key = Pubkey.new_unique()
    first, event = ledger.airdrop(key, 10**9)
    again, repeated = ledger.airdrop(key, 10**9)  # same block: the same transaction
    other, _ = ledger.airdrop(key, 2 * 10**9)
    assert first == again and event is not None and repeated is None and other != first
    account = ledger.get_account(key, "processed")
    assert account is not None and account.lamports == 3 * 10**9
