"""The gateway (aiohttp): REST handlers over the gRPC services, the WebSocket event stream,
the OpenAPI document, per-client rate limiting (bounded, keyed by the client behind trusted
proxies), request size and time limits, a connection limit, allowed browser origins, and
HTTPS when configured. It reaches the services over TLS with its own credential when
configured (GRPC_CA_FILE, GRPC_TOKEN_FILE). gRPC statuses map to HTTP codes with the
backend's message."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from aiohttp import WSMsgType, web
from collateral_vault.v1 import (
    balance_tracker_pb2,
    balance_tracker_pb2_grpc,
    common_pb2,
    transaction_builder_pb2,
    transaction_builder_pb2_grpc,
    vault_manager_pb2,
    vault_manager_pb2_grpc,
    vault_monitor_pb2,
    vault_monitor_pb2_grpc,
)
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from services.common import grpc_tls
from services.common.config import GatewayConfig
from services.common.event_kinds import KIND_NAMES, KIND_VALUES
from services.gateway.client_address import ClientAddress
from services.gateway.listener import listen, tls_context
from services.gateway.openapi import SPEC
from services.gateway.origins import OriginPolicy
from services.gateway.ratelimit import RateLimiter
from services.gateway.ws_limits import SocketLimits
from vault_client.quoting import quoted

logger = logging.getLogger("gateway")
MAX_BODY = 64 * 1024
HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.OUT_OF_RANGE: 400, grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.FAILED_PRECONDITION: 409, grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 409, grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503, grpc.StatusCode.DEADLINE_EXCEEDED: 503,
}
COMMITMENTS = {"processed": common_pb2.COMMITMENT_PROCESSED, "confirmed": common_pb2.COMMITMENT_CONFIRMED,
               "finalized": common_pb2.COMMITMENT_FINALIZED}


# WebSocket close codes for the gRPC status that ended a stream (4000 + the HTTP status)
WS_CLOSE_CODES = {grpc.StatusCode.INVALID_ARGUMENT: 4400, grpc.StatusCode.NOT_FOUND: 4404,
                  grpc.StatusCode.RESOURCE_EXHAUSTED: 4429, grpc.StatusCode.UNAVAILABLE: 4503}
MAX_SINCE = 200  # an event id is "<signature>:<instruction>:<event>", under 110 characters
# Readiness: the core routes (vaults, history, transactions, the WebSocket's replay) need
# these backends; without one of them the gateway is not ready (503). The monitor serves
# only /tvl: without it the gateway stays ready and reports itself degraded. (Live events
# come from balance_tracker's StreamEvents; the gateway holds no Redis connection.)
CORE_BACKENDS = ("vault_manager", "balance_tracker")
OPTIONAL_BACKENDS = ("monitor",)
HEALTH_TIMEOUT_SECONDS = 2.0
LINGER_SECONDS = 1.0




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


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(error_body(code, message), status=status, headers=headers)


def bad_request(message: str) -> web.HTTPBadRequest:
    """A 400 to raise from request parsing, with the same body as `error`."""
    return web.HTTPBadRequest(text=json.dumps(error_body("INVALID_ARGUMENT", message)),
                              content_type="application/json")


def as_json(message: Message) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def _amount(body: dict[str, Any], name: str, required: bool = True) -> int:
    value = body.get(name)
    if value is None:
        if required:
            raise bad_request(f"{name} is required")
        return 0
    # ASCII digits only: str.isdigit() also accepts "²" and other digits int() refuses
    text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if not (0 < len(text) <= 20 and text.isascii() and text.isdigit()) or int(text) >= 2**64:
        raise bad_request(f"{name} must be a u64 integer (string or number)")
    return int(text)


# SubmitTransaction statuses that mean the transaction was not sent; after any other failure
# (the backend unreachable or timed out mid-call included) it may have been
REFUSED = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND,
           grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.OUT_OF_RANGE,
           grpc.StatusCode.UNAUTHENTICATED}


def _first_signature(signed: str) -> str | None:
    """The signature a signed transaction (base64) is known by, if it decodes."""
    try:
        signatures = VersionedTransaction.from_bytes(base64.b64decode(signed, validate=True)).signatures
    except ValueError:
        return None
    return str(signatures[0]) if signatures else None


def _string(body: dict[str, Any], name: str) -> str:
    value = body.get(name, "")
    if not isinstance(value, str):
        raise bad_request(f"{name} must be a string")
    return value


class Gateway:
    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.limiter = RateLimiter(config.rate_per_second, config.burst, config.rate_clients)
        self.clients = ClientAddress(config.trusted_proxies)
        self.origins = OriginPolicy(config.cors_origins)
        self.channels = {name: grpc_tls.channel(addr, config.backends) for name, addr in (
            ("vault_manager", config.vault_manager), ("balance_tracker", config.balance_tracker),
            ("monitor", config.monitor))}
        self.vaults = vault_manager_pb2_grpc.VaultManagerStub(self.channels["vault_manager"])
        self.builder = transaction_builder_pb2_grpc.TransactionBuilderStub(self.channels["vault_manager"])
        self.tracker = balance_tracker_pb2_grpc.BalanceTrackerStub(self.channels["balance_tracker"])
        self.monitor = vault_monitor_pb2_grpc.VaultMonitorStub(self.channels["monitor"])
        self.sockets = SocketLimits(config.ws_max_connections, config.ws_max_per_client)
        self.runner: web.AppRunner | None = None
        self.listener: asyncio.Server | None = None

    # --- plumbing ---------------------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and not self.origins.allowed(origin):
            return error(403, "PERMISSION_DENIED", f"origin {origin[:100]!r} is not allowed (GATEWAY_CORS_ORIGINS)")
        if origin is not None and request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            return self.origins.preflight(origin)
        client = self.clients.of(request.remote, request.headers.get("X-Forwarded-For"))
        wait = self.limiter.allow(client)
        if wait:
            response: web.StreamResponse = error(
                429, "RESOURCE_EXHAUSTED", f"rate limit of {self.config.rate_per_second:g} requests/s exceeded",
                {"Retry-After": str(max(1, round(wait)))})
        else:
            response = await self._handle(request, handler)
        if origin is not None:
            self.origins.decorate(response, origin)
        return response

    async def _handle(self, request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        try:
            if request.body_exists:  # the whole body within the time limit, before any handler waits on it
                try:
                    await asyncio.wait_for(request.read(), self.config.body_timeout_seconds)
                except TimeoutError:
                    late = error(408, "REQUEST_TIMEOUT", f"the request body did not arrive within "
                                 f"{self.config.body_timeout_seconds:g} s")
                    late.force_close()
                    return late
            return await handler(request)
        except grpc.aio.AioRpcError as exc:
            status = HTTP_STATUS.get(exc.code(), 502)
            return error(status, exc.code().name, exc.details() or exc.code().name)
        except web.HTTPRequestEntityTooLarge:
            return error(413, "REQUEST_TOO_LARGE", f"request bodies are limited to {MAX_BODY} bytes")
        except web.HTTPException:
            raise
        except Exception:
            logger.exception("gateway error")
            return error(500, "INTERNAL", "internal error")

    async def _body(self, request: web.Request) -> dict[str, Any]:
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=request.content_length)
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deeply
            raise bad_request("the body must be a JSON object") from None
        if not isinstance(body, dict):
            raise bad_request("the body must be a JSON object")
        return body

    @property
    def timeout(self) -> float:
        return self.config.deadline_seconds

    # --- REST -------------------------------------------------------------------------

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(SPEC)

    async def _backend_status(self, name: str) -> str:
        try:
            reply = await health_pb2_grpc.HealthStub(self.channels[name]).Check(
                health_pb2.HealthCheckRequest(), timeout=HEALTH_TIMEOUT_SECONDS)
            return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        except grpc.aio.AioRpcError as exc:
            return exc.code().name
        except (OSError, TimeoutError):
            return "UNAVAILABLE"

    async def health(self, request: web.Request) -> web.Response:
        """Readiness: 200 while the core backends serve (status "degraded" if an optional
        one does not), 503 when a core backend does not."""
        names = CORE_BACKENDS + OPTIONAL_BACKENDS
        backends = dict(zip(names, await asyncio.gather(*(self._backend_status(n) for n in names)), strict=True))
        ready = all(backends[name] == "SERVING" for name in CORE_BACKENDS)
        status = "unavailable" if not ready else "ok" if all(v == "SERVING" for v in backends.values()) \
            else "degraded"
        return web.json_response({"status": status, "backends": backends, "optional": list(OPTIONAL_BACKENDS)},
                                 status=200 if ready else 503)

    async def tvl(self, request: web.Request) -> web.Response:
        return web.json_response(as_json(await self.monitor.GetTvl(vault_monitor_pb2.GetTvlRequest(),
                                                                   timeout=self.timeout)))

    async def vault(self, request: web.Request) -> web.Response:
        reply = await self.vaults.GetVault(vault_manager_pb2.GetVaultRequest(owner=request.match_info["owner"]),
                                           timeout=self.timeout)
        return web.json_response(as_json(reply.vault))

    async def history(self, request: web.Request) -> web.Response:
        query = request.query
        kinds = []
        if "kind" in query:
            if query["kind"] not in KIND_VALUES:
                return error(400, "INVALID_ARGUMENT", f"kind must be one of {', '.join(KIND_VALUES)}")
            kinds = [KIND_VALUES[query["kind"]]]
        page_size = query.get("page_size", "50")
        if not page_size.isdigit() or not 1 <= int(page_size) <= 500:
            return error(400, "INVALID_ARGUMENT", "page_size must be an integer from 1 to 500")
        reply = await self.tracker.GetHistory(balance_tracker_pb2.GetHistoryRequest(
            owner=request.match_info["owner"], kinds=kinds, page_size=int(page_size),
            page_token=query.get("page_token", "")), timeout=self.timeout)
        out = as_json(reply)
        for event in out["events"]:
            event["kind"] = event["kind"].removeprefix("EVENT_KIND_").lower()
        return web.json_response(out)

    async def deposit(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        reply = await self.builder.BuildDeposit(transaction_builder_pb2.BuildDepositRequest(
            owner=_string(body, "owner"), amount=_amount(body, "amount"),
            source_token_account=_string(body, "source_token_account"),
            priority_fee_micro_lamports=_amount(body, "priority_fee_micro_lamports", False)), timeout=self.timeout)
        return web.json_response(as_json(reply.transaction))

    async def withdraw(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        reply = await self.builder.BuildWithdraw(transaction_builder_pb2.BuildWithdrawRequest(
            owner=_string(body, "owner"), amount=_amount(body, "amount"),
            destination_token_account=_string(body, "destination_token_account"),
            priority_fee_micro_lamports=_amount(body, "priority_fee_micro_lamports", False)), timeout=self.timeout)
        return web.json_response(as_json(reply.transaction))

    async def submit(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        wait_for = _string(body, "wait_for") or "confirmed"
        if wait_for not in COMMITMENTS:
            return error(400, "INVALID_ARGUMENT", "wait_for must be processed, confirmed or finalized")
        signed = _string(body, "signed_transaction_base64")
        try:
            reply = await self.builder.SubmitTransaction(transaction_builder_pb2.SubmitTransactionRequest(
                signed_transaction_base64=signed, wait_for=COMMITMENTS[wait_for]), timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in REFUSED or (signature := _first_signature(signed)) is None:
                raise
            # the transaction may have gone out: the answer names it, and retrying the same
            # signed bytes is safe (it lands at most once) and reports its status
            answer = error_body(exc.code().name, exc.details() or exc.code().name)
            answer["error"]["signature"] = signature
            return web.json_response(answer, status=503, headers={"Retry-After": "1"})
        out = as_json(reply.status)
        out["commitment"] = out["commitment"].removeprefix("COMMITMENT_").lower()
        return web.json_response(out)

    # --- WebSocket --------------------------------------------------------------------

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        """The owner's events: with `since` (an event id), first those committed after it, then
        live ones, with no gap and no duplicate (balance_tracker's StreamEvents does both)."""
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

    # --- lifecycle --------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self.middleware])
        app.router.add_get("/openapi.json", self.openapi)
        app.router.add_get("/healthz", self.health)
        app.router.add_get("/tvl", self.tvl)
        app.router.add_get("/vaults/{owner}", self.vault)
        app.router.add_get("/vaults/{owner}/history", self.history)
        app.router.add_post("/transactions/deposit", self.deposit)
        app.router.add_post("/transactions/withdraw", self.withdraw)
        app.router.add_post("/transactions/submit", self.submit)
        app.router.add_get("/ws", self.websocket)
        return app

    async def start(self) -> None:
        config = self.config
        # aiohttp's keep-alive timeout closes a connection that has not sent a whole request
        # head within it (from connecting or from its last response): the header timeout;
        # the rest of a body a request was answered without (a 408, a 413) is drained for at
        # most LINGER_SECONDS before the connection closes
        self.runner = web.AppRunner(self.app(), access_log=None, keepalive_timeout=config.header_timeout_seconds,
                                    lingering_time=LINGER_SECONDS)
        await self.runner.setup()
        assert self.runner.server is not None
        tls = tls_context(config.tls_cert, config.tls_key) if config.tls_cert else None
        self.listener = await listen(self.runner.server, config.host, config.port,
                                     max_connections=config.max_connections,
                                     handshake_timeout=config.header_timeout_seconds, tls=tls)

    async def stop(self) -> None:
        if self.listener is not None:
            self.listener.close()
        if self.runner:
            await self.runner.cleanup()
        for channel in self.channels.values():
            await channel.close()
