"""solana-py's AsyncClient over the aiohttp transport: typed answers from a real localnet
node, and every way the endpoint can fail surfacing as the services expect (transport and
HTTP failures as UNAVAILABLE, JSON-RPC errors as solana-py's RPCException)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from aiohttp import web
from solana.rpc.core import RPCException
from solders.pubkey import Pubkey
from solders.signature import Signature

from services.common.chain import ChainClient
from services.common.errors import ServiceError
from services.common.rpc_http import RpcTransportError, rpc_client
from services.common.vault_program import VaultProgram
from tests.support.localnet_node import Node, free_port, running_node


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


@pytest.fixture
async def failing_endpoint() -> AsyncIterator[str]:
    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=503, text="upstream validator is catching up")

    app = web.Application()
    app.router.add_post("/", broken)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_an_http_error_is_unavailable_with_its_status(failing_endpoint: str) -> None:
    async with rpc_client(failing_endpoint) as client:
        with pytest.raises(RpcTransportError, match="HTTP 503: upstream validator is catching up"):
            await client.get_slot()
