"""localnet's PubSub through solana-py's SolanaWsClient: logs (all, mentions), account,
program, signature and slot subscriptions, unsubscribe, and commitment ordering."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Finalized, Processed
from solana.rpc.websocket_api import RpcTransactionLogsFilterMentions, SolanaWsClient

from localnet.faucet import fund
from localnet.node import Node
from localnet.node_harness import funded_user, running_node
from vault_client.vault_program import PROGRAM_ID, Vault

USDT = 10**6


@pytest.fixture(scope="module")
async def node() -> AsyncIterator[Node]:
    async with running_node() as n:
        yield n


async def next_of(ws: SolanaWsClient, kind: type, timeout: float = 5.0) -> Any:
    """The next notification of ``kind`` (others, e.g. slot ticks, are skipped)."""
    async def wait() -> Any:
        while True:
            note = await ws.recv()
            if isinstance(note, kind):
                return note
    return await asyncio.wait_for(wait(), timeout)


async def test_vault_activity_is_streamed(node: Node) -> None:
    from solders.rpc.responses import (
        AccountNotification,
        LogsNotification,
        ProgramNotification,
        SignatureNotification,
    )

    assert node.ledger is not None
    vp = node.ledger.deployment.program
    async with AsyncClient(node.rpc_url, commitment=Confirmed) as client:
        user = await funded_user(client)
        token_account, _ = await fund(node.rpc_url, user.key, 10 * USDT)
        await user.send([vp.initialize_vault(user.key)])
        async with SolanaWsClient(node.ws_url) as ws:
            logs = await ws.logs_subscribe(filter_=RpcTransactionLogsFilterMentions(PROGRAM_ID), commitment=Confirmed)
            account = await ws.account_subscribe(pubkey=vp.vault(user.key), commitment=Confirmed, encoding="base64")
            prog = await ws.program_subscribe(program_id=PROGRAM_ID, commitment=Confirmed, encoding="base64")
            signature = await user.send([vp.deposit(user.key, token_account, 3 * USDT)])

            note = await next_of(ws, LogsNotification)
            assert note.result.value.signature == signature and note.result.value.err is None
            assert any(line.startswith("Program data: ") for line in note.result.value.logs)
            note = await next_of(ws, AccountNotification)
            assert Vault.decode(bytes(note.result.value.data)).total_balance == 3 * USDT
            # a deposit also writes the VaultAuthority (the throttle's TVL): one notification each
            changed = {(await next_of(ws, ProgramNotification)).result.value.pubkey for _ in range(2)}
            assert changed == {vp.vault(user.key), vp.authority}

            for sub in (logs, account, prog):
                await ws.unsubscribe(sub)
            blockhash = (await client.get_latest_blockhash()).value.blockhash
            from solders.message import Message
            from solders.transaction import VersionedTransaction

            tx = VersionedTransaction(Message.new_with_blockhash(
                [vp.deposit(user.key, token_account, 1 * USDT)], user.key, blockhash), [user.keypair])
            sig = await ws.signature_subscribe(signature=tx.signatures[0], commitment=Confirmed)
            await client.send_transaction(tx)
            note = await next_of(ws, SignatureNotification)
            assert note.result.value.err is None
            assert sig.subscription_id >= 0


async def test_commitment_order_and_slots(node: Node) -> None:
    from solders.rpc.responses import LogsNotification, SlotNotification

    async with AsyncClient(node.rpc_url, commitment=Confirmed) as client, SolanaWsClient(node.ws_url) as ws:
        user = await funded_user(client)
        await ws.slot_subscribe()
        first = await next_of(ws, SlotNotification)
        second = await next_of(ws, SlotNotification)
        assert second.result.slot == first.result.slot + 1 and second.result.root <= second.result.slot
        seen: list[str] = []
        for commitment, name in ((Finalized, "finalized"), (Confirmed, "confirmed"), (Processed, "processed")):
            await ws.logs_subscribe(filter_=RpcTransactionLogsFilterMentions(user.key), commitment=commitment)
            seen.append(name)
        from solders.system_program import TransferParams, transfer

        await user.send([transfer(TransferParams(from_pubkey=user.key, to_pubkey=user.key, lamports=1))])
        order: list[int] = []
        while len(order) < 3:
            note = await next_of(ws, LogsNotification)
            order.append(note.subscription)
        # subscription ids were handed out finalized, confirmed, processed: they arrive reversed
        assert order == sorted(order, reverse=True)


async def test_bad_subscriptions_get_errors() -> None:
    import json

    import websockets

    async with running_node() as node, websockets.connect(node.ws_url) as ws:
        for request, code in (
            ({"jsonrpc": "2.0", "id": 1, "method": "accountSubscribe", "params": ["nope"]}, -32602),
            ({"jsonrpc": "2.0", "id": 2, "method": "fooSubscribe", "params": []}, -32601),
            ({"jsonrpc": "2.0", "id": 3, "method": "logsUnsubscribe", "params": [999]}, -32602),
            ({"jsonrpc": "2.0", "id": 4, "method": "logsSubscribe", "params": ["all", {"commitment": "bogus"}]},
             -32602),
        ):
            await ws.send(json.dumps(request))
            reply = json.loads(await ws.recv())
            while "method" in reply:  # skip notifications
                reply = json.loads(await ws.recv())
            assert reply["error"]["code"] == code and reply["id"] == request["id"]
        await ws.send("{not json")
        assert json.loads(await ws.recv())["error"]["code"] == -32700
