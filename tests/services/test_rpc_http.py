"""The services' typed JSON-RPC client (solders' requests over their HTTP/1.1 transport):
typed answers from a real localnet node, and every way the endpoint can fail surfacing as the services expect
(transport and HTTP failures as UNAVAILABLE, JSON-RPC errors as solana-py's RPCException).
The chain client's shared round trips: concurrent sends as JSON-RPC batches and concurrent
status lookups as one call, each caller answered for itself; a submission's send and status
lookup in one batch; batch answers matched by id."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc
import pytest
from aiohttp import web
from solana.rpc.async_api import AsyncClient
from solana.rpc.core import RPCException
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.rpc.requests import GetSlot
from solders.rpc.responses import GetSlotResp
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction

from localnet.node_harness import Node, RpcUser, free_port, funded_user, running_node
from services.common.chain import ChainClient
from services.common.errors import ServiceError
from vault_client.http_client import HttpClient
from vault_client.rpc_http import RpcTransportError, call_batch, rpc_client
from vault_client.vault_program import VaultProgram


@pytest.fixture(scope="module")
async def node() -> AsyncIterator[Node]:
    async with running_node() as n:
        yield n


async def test_typed_answers_from_a_real_node(node: Node) -> None:
    async with rpc_client(node.rpc_url, "confirmed") as client:
        assert (await client.get_slot()).value >= 0
        assert (await client.get_signature_statuses([Signature.default()])).value == [None]
        assert (await client.get_account_info(Pubkey.new_unique())).value is None


async def test_json_rpc_errors_stay_rpc_errors(node: Node) -> None:
    async with rpc_client(node.rpc_url) as client:
        with pytest.raises(RPCException):
            await client.get_block_time(10**12)  # a slot that does not exist


async def test_an_unreachable_endpoint_is_unavailable() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    async with rpc_client(url, timeout=2) as client:
        with pytest.raises(RpcTransportError, match=r"Connect"):
            await client.get_slot()
    chain = ChainClient(url, VaultProgram(Pubkey.new_unique()), "test")
    try:
        with pytest.raises(ServiceError) as failure:
            await chain.slot()
        assert failure.value.code == grpc.StatusCode.UNAVAILABLE
        assert url in failure.value.message and "getSlot" in failure.value.message
    finally:
        await chain.close()


@asynccontextmanager
async def endpoint(answer: Callable[[web.Request], Awaitable[web.Response]]) -> AsyncIterator[str]:
    """An HTTP server on a free port whose POST / is `answer`; its URL."""
    app = web.Application()
    app.router.add_post("/", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def failing_endpoint() -> AsyncIterator[str]:
    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=503, text="upstream validator is catching up")

    async with endpoint(broken) as url:
        yield url


async def test_an_http_error_is_unavailable_with_its_status(failing_endpoint: str) -> None:
    async with rpc_client(failing_endpoint) as client:
        with pytest.raises(RpcTransportError, match="HTTP 503: upstream validator is catching up"):
            await client.get_slot()


def _transfer(user: RpcUser, blockhash: Hash, lamports: int, payer: Keypair | None = None) -> VersionedTransaction:
    signer = payer or user.keypair
    message = Message.new_with_blockhash([transfer(TransferParams(
        from_pubkey=signer.pubkey(), to_pubkey=Pubkey.new_unique(), lamports=lamports))], signer.pubkey(), blockhash)
    return VersionedTransaction(message, [signer])


async def test_concurrent_sends_and_status_lookups_share_round_trips(node: Node) -> None:
    chain = ChainClient(node.rpc_url, VaultProgram(Pubkey.new_unique()), "test", "processed", max_batch=8)
    try:
        async with AsyncClient(node.rpc_url) as client:
            user = await funded_user(client)
            blockhash = (await client.get_latest_blockhash()).value.blockhash
        txs = [_transfer(user, blockhash, 1_000_000 + i) for i in range(20)]  # rent-exempt amounts
        unfunded = _transfer(user, blockhash, 1, payer=Keypair())  # its fee payer does not exist
        results = await asyncio.gather(*(chain.send(tx) for tx in [*txs[:10], unfunded, *txs[10:]]),
                                       return_exceptions=True)
        sends = chain.http.requests
        # every transaction answered for itself, the refused one with its own error only
        assert results[:10] + results[11:] == [tx.signatures[0] for tx in txs]
        assert isinstance(results[10], ServiceError) and results[10].code == grpc.StatusCode.FAILED_PRECONDITION
        assert "fee payer has no SOL" in results[10].message
        assert 4 <= sends < 21  # the first alone, the rest in batches of at most 8
        unknown = Signature.default()
        statuses = await asyncio.gather(*(chain.status(s) for s in [*(tx.signatures[0] for tx in txs), unknown]))
        assert chain.http.requests - sends < 21
        assert statuses[20] is None
        assert all(s is not None and s[0] > 0 and s[1] in ("processed", "confirmed", "finalized") and s[2] is None
                   for s in statuses[:20])
    finally:
        await chain.close()


async def test_a_submission_sends_and_reads_its_status_in_one_round_trip(node: Node) -> None:
    chain = ChainClient(node.rpc_url, VaultProgram(Pubkey.new_unique()), "test", "processed", max_batch=8)
    alone = ChainClient(node.rpc_url, VaultProgram(Pubkey.new_unique()), "test", "processed", max_batch=1)
    try:
        async with AsyncClient(node.rpc_url) as client:
            user = await funded_user(client)
            blockhash = (await client.get_latest_blockhash()).value.blockhash
        status = await chain.submit(_transfer(user, blockhash, 2_000_000))
        assert chain.http.requests == 1  # sendTransaction and getSignatureStatuses in one batch
        assert status is not None and status[0] > 0 and status[1] == "processed" and status[2] is None
        # concurrent submissions: each answered for itself, batches of at most 7 sends + 1 lookup
        txs = [_transfer(user, blockhash, 3_000_000 + i) for i in range(20)]
        unfunded = _transfer(user, blockhash, 1, payer=Keypair())
        results = await asyncio.gather(*(chain.submit(tx) for tx in [*txs[:10], unfunded, *txs[10:]]),
                                       return_exceptions=True)
        assert isinstance(results[10], ServiceError) and results[10].code == grpc.StatusCode.FAILED_PRECONDITION
        assert all(isinstance(r, tuple) and r[1] == "processed" and r[2] is None for r in results[:10] + results[11:])
        assert 1 + 4 <= chain.http.requests < 1 + 21
        # an endpoint that takes no batches (RPC_MAX_BATCH=1): the same answer in two calls
        status = await alone.submit(_transfer(user, blockhash, 4_000_000))
        assert alone.http.requests == 2 and status is not None and status[1] == "processed"
    finally:
        await chain.close()
        await alone.close()


async def test_a_sent_transaction_whose_status_lookup_fails_is_still_sent() -> None:
    """The status request of a submission's batch fails: the send's success stands (the
    caller asks for the status again) instead of the submission failing after it went out."""
    async def answer(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response([
            {"jsonrpc": "2.0", "result": str(Signature.default()), "id": r["id"]} if r["method"] == "sendTransaction"
            else {"jsonrpc": "2.0", "error": {"code": -32603, "message": "internal error"}, "id": r["id"]}
            for r in body])

    async with endpoint(answer) as url:
        chain = ChainClient(url, VaultProgram(Pubkey.new_unique()), "test", "processed")
        try:
            payer = Keypair()
            tx = VersionedTransaction(Message.new_with_blockhash([transfer(TransferParams(
                from_pubkey=payer.pubkey(), to_pubkey=Pubkey.new_unique(), lamports=1))], payer.pubkey(),
                Hash.default()), [payer])
            assert await chain.submit(tx) is None
            assert chain.http.requests == 1
        finally:
            await chain.close()


@pytest.fixture
async def batch_endpoint() -> AsyncIterator[tuple[str, list[Any]]]:
    """Answers a batch in reverse order, or refuses it when told to."""
    script: list[Any] = []

    async def answer(request: web.Request) -> web.Response:
        body = await request.json()
        if script and script[0] == "refuse":
            return web.json_response({"jsonrpc": "2.0", "error": {"code": -32600, "message": "no batches"}, "id": None})
        if script and script[0] == "unhealthy":  # -32005 without the data a node sends with it
            return web.json_response([{"jsonrpc": "2.0", "error": {"code": -32005, "message": "behind"}, "id": r["id"]}
                                      for r in body])
        if script and script[0] == "drop":
            return web.json_response([{"jsonrpc": "2.0", "result": 1, "id": body[0]["id"]}])
        return web.json_response([{"jsonrpc": "2.0", "result": 100 + r["id"], "id": r["id"]} for r in reversed(body)])

    async with endpoint(answer) as url:
        yield url, script


async def test_batch_answers_are_matched_by_id_and_a_refused_batch_is_an_error(
        batch_endpoint: tuple[str, list[Any]]) -> None:
    url, script = batch_endpoint
    http = HttpClient(url)
    requests = [GetSlot(id=i) for i in range(3)]
    try:
        assert [r.value for r in await call_batch(http, requests, [GetSlotResp] * 3)] == [100, 101, 102]
        script.append("refuse")
        with pytest.raises(RpcTransportError, match=r"refused a batch of 3 requests.*RPC_MAX_BATCH=1"):
            await call_batch(http, requests, [GetSlotResp] * 3)
        script[0] = "drop"
        with pytest.raises(RpcTransportError, match="refused a batch of 3"):
            await call_batch(http, requests, [GetSlotResp] * 3)
        # an answer solders cannot read (it panics on this one) is a transport error, not a crash
        script[0] = "unhealthy"
        with pytest.raises(RpcTransportError, match="could not be read"):
            await call_batch(http, requests, [GetSlotResp] * 3)
    finally:
        await http.close()
