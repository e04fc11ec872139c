"""GET /ws?owner=<key>[&since=<event id>]: the owner's events as JSON messages. With `since`,
first those committed after it, then live ones, with no gap and no duplicate (balance_tracker's
StreamEvents does both). A stream ended by the backend sends an error message and closes
with 4000 + the HTTP status of its gRPC status."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import grpc
from aiohttp import WSMsgType, web
from collateral_vault.v1 import balance_tracker_pb2, balance_tracker_pb2_grpc
from solders.pubkey import Pubkey

from services.common.event_kinds import KIND_NAMES
from services.gateway.client_address import ClientAddress
from services.gateway.responses import error
from services.gateway.websocket.limits import SocketLimits
from vault_client.quoting import quoted

# WebSocket close codes for the gRPC status that ended a stream (4000 + the HTTP status)
WS_CLOSE_CODES = {grpc.StatusCode.INVALID_ARGUMENT: 4400, grpc.StatusCode.NOT_FOUND: 4404,
                  grpc.StatusCode.RESOURCE_EXHAUSTED: 4429, grpc.StatusCode.UNAVAILABLE: 4503}
MAX_SINCE = 200  # an event id is "<signature>:<instruction>:<event>", under 110 characters


def _ws_event(e: balance_tracker_pb2.VaultEvent) -> dict[str, Any]:
    """An event as the WebSocket sends it: amounts, slots and numbers as strings (as the
    protobuf JSON mapping has them; built by hand, at a fraction of MessageToDict's cost)."""
    return {"id": e.id, "kind": KIND_NAMES.get(e.kind, "unspecified"), "owner": e.owner, "counterparty": e.counterparty,
            "amount": str(e.amount), "slot": str(e.slot), "block_time": str(e.block_time), "signature": e.signature,
            "total_balance": str(e.total_balance), "locked_balance": str(e.locked_balance),
            "available_balance": str(e.available_balance), "caller_program": e.caller_program, "seq": str(e.seq),
            "program_locked": str(e.program_locked), "vault_seq": str(e.vault_seq), "op_id": str(e.op_id),
            "exit_deadline_slot": str(e.exit_deadline_slot), "by_operator": e.by_operator,
            "expires_at": str(e.expires_at)}


async def _until_closed(ws: web.WebSocketResponse) -> None:
    """Reads the client's side (aiohttp answers its pings there) until it closes; clients
    send nothing the stream acts on."""
    while True:
        incoming = await ws.receive()
        if incoming.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
            return


async def _until_either(*work: Awaitable[None]) -> None:
    """Runs `work` concurrently until one of them ends, cancels the rest, and re-raises what
    the finished one raised."""
    tasks = [asyncio.ensure_future(item) for item in work]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        task.result()


class EventSocket:
    def __init__(self, tracker: balance_tracker_pb2_grpc.BalanceTrackerStub, clients: ClientAddress,
                 sockets: SocketLimits) -> None:
        self.tracker = tracker
        self.clients = clients
        self.sockets = sockets

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/ws", self.websocket)

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        owner = request.query.get("owner", "")
        since = request.query.get("since", "")
        if not owner:
            return error(400, "INVALID_ARGUMENT", "owner is required: /ws?owner=<key>[&since=<event id>]")
        try:
            Pubkey.from_string(owner)
        except ValueError:
            return error(400, "INVALID_ARGUMENT", f"owner {quoted(owner)} is not a base58 public key")
        if len(since) > MAX_SINCE:
            return error(400, "INVALID_ARGUMENT", f"since {quoted(since)} is not an event id")
        client = self.clients.of(request.remote, request.headers.get("X-Forwarded-For"))
        refused = self.sockets.admit(client)
        if refused is not None:
            return error(429, "RESOURCE_EXHAUSTED", refused, {"Retry-After": "5"})
        try:
            ws = web.WebSocketResponse(heartbeat=20, max_msg_size=4096)
            await ws.prepare(request)
            stream = self.tracker.StreamEvents(balance_tracker_pb2.StreamEventsRequest(owner=owner, since=since))

            async def forward() -> None:
                async for reply in stream:
                    await ws.send_json({"type": "event", "event": _ws_event(reply.event)})

            try:
                await _until_either(forward(), _until_closed(ws))
            except grpc.aio.AioRpcError as exc:
                if not ws.closed:
                    await ws.send_json({"type": "error", "code": exc.code().name, "message": exc.details() or ""})
                    await ws.close(code=WS_CLOSE_CODES.get(exc.code(), 1011), message=exc.code().name.encode())
            except ConnectionResetError:
                pass  # the client went away while an event was being sent
            finally:
                stream.cancel()
                if not ws.closed:
                    await ws.close()
            return ws
        finally:
            self.sockets.release(client)
