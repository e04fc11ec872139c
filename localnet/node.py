"""The localnet node: the Ledger, JSON-RPC over HTTP (`http_server`), PubSub over WebSocket, and
the slot clock, all on one event loop."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any, TypeVar

from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction
from websockets.asyncio.server import Server, serve

from localnet import genesis
from localnet.http_server import HttpServer, Request, Response
from localnet.ledger import Ledger, RpcFailure
from localnet.persistence import LedgerStore
from localnet.pubsub import PubSub
from localnet.rpc import INTERNAL, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR, RpcMethods

log = logging.getLogger("localnet")
T = TypeVar("T")
MAX_BODY = 2 * 1024 * 1024
MAX_BATCH = 100


@dataclass
class NodeConfig:
    host: str = "127.0.0.1"
    rpc_port: int = 8899
    ws_port: int = 8900
    slot_ms: int = 400
    finality_depth: int = 32
    ledger_dir: Path | None = None
    token: str = "p-token"
    #: the exchange operator's public key (base58); the development key when None
    operator: str | None = None
    exit_delay_slots: int = genesis.DEV_EXIT_DELAY_SLOTS
    config_delay_slots: int = genesis.DEV_CONFIG_DELAY_SLOTS

    def exchange_setup(self) -> genesis.ExchangeSetup:
        setup = genesis.ExchangeSetup(exit_delay_slots=self.exit_delay_slots,
                                      config_delay_slots=self.config_delay_slots)
        if self.operator:
            setup.operator = Pubkey.from_string(self.operator)
        return setup


class Node:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.ledger: Ledger | None = None
        self.methods = RpcMethods(self)
        self.pubsub = PubSub(self)
        self._http_server: HttpServer | None = None
        self._ws: Server | None = None
        self._ticker: asyncio.Task[None] | None = None

    # --- the chain ------------------------------------------------------------------

    async def call(self, fn: Callable[[Ledger], T]) -> T:
        """Runs ``fn(ledger)`` on the event loop's thread, the only one that touches LiteSVM.
        LiteSVM is synchronous and holds the GIL, so a worker thread would only add a thread
        hand-off (and GIL contention) to every call without letting anything run meanwhile;
        each ledger call is short (one transaction, one lookup)."""
        ledger = self.ledger
        assert ledger is not None, "node not started"
        return fn(ledger)

    async def send(self, tx: VersionedTransaction, *, skip_preflight: bool) -> str:
        signature, event = await self.call(lambda ledger: ledger.send(tx, skip_preflight=skip_preflight))
        await self.pubsub.publish("processed", [event])
        return signature

    async def airdrop(self, key: Pubkey, lamports: int) -> str:
        signature, event = await self.call(lambda ledger: ledger.airdrop(key, lamports))
        if event is not None:
            await self.pubsub.publish("processed", [event])
        return signature

    async def _tick(self) -> None:
        interval = self.config.slot_ms / 1000
        while True:
            await asyncio.sleep(interval)
            released = await self.call(lambda ledger: ledger.advance_slot())
            slot, root = await self.call(lambda ledger: (ledger.slot, ledger.commitment_slot("finalized")))
            await self.pubsub.slot(slot, root)
            for commitment in ("confirmed", "finalized"):
                await self.pubsub.publish(commitment, released[commitment])

    # --- HTTP -------------------------------------------------------------------------

    async def _dispatch(self, request: Any) -> dict[str, Any]:
        req_id = request.get("id") if isinstance(request, dict) else None
        if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" or not isinstance(
                request.get("method"), str):
            return {"jsonrpc": "2.0", "error": {"code": INVALID_REQUEST, "message": "Invalid request"}, "id": req_id}
        method = self.methods.table.get(request["method"])
        if method is None:
            return {"jsonrpc": "2.0", "error": {"code": METHOD_NOT_FOUND, "message": "Method not found"},
                    "id": req_id}
        params = request.get("params") or []
        if not isinstance(params, list):
            params = [params]
        try:
            return {"jsonrpc": "2.0", "result": await method(params), "id": req_id}
        except RpcFailure as failure:
            error: dict[str, Any] = {"code": failure.code, "message": failure.message}
            if failure.data is not None:
                error["data"] = failure.data
            return {"jsonrpc": "2.0", "error": error, "id": req_id}
        except Exception:
            log.exception("internal error in %s", request["method"])
            return {"jsonrpc": "2.0", "error": {"code": INTERNAL, "message": "Internal error"}, "id": req_id}

    async def _http(self, request: Request) -> Response:
        if request.path == "/health":
            if request.method != "GET":
                return Response(HTTPStatus.METHOD_NOT_ALLOWED, b"GET /health", "text/plain")
            return Response(HTTPStatus.OK, b"ok", "text/plain")
        if request.path.partition("?")[0] != "/":  # a query (a provider's ?api-key=) is ignored
            return Response(HTTPStatus.NOT_FOUND, b"JSON-RPC is served at /", "text/plain")
        if request.method != "POST":
            return Response(HTTPStatus.METHOD_NOT_ALLOWED, b"JSON-RPC takes a POST", "text/plain")
        return Response(HTTPStatus.OK, json.dumps(await self._json_rpc(request.body)).encode())

    async def _json_rpc(self, raw: bytes) -> Any:
        try:
            body = json.loads(raw)
        except ValueError:
            return {"jsonrpc": "2.0", "error": {"code": PARSE_ERROR, "message": "Parse error"}, "id": None}
        if isinstance(body, list):
            if not body or len(body) > MAX_BATCH:
                return {"jsonrpc": "2.0", "error": {
                    "code": INVALID_REQUEST, "message": f"Invalid request: batch of 1 to {MAX_BATCH}"}, "id": None}
            return [await self._dispatch(item) for item in body]
        return await self._dispatch(body)

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        store = LedgerStore(self.config.ledger_dir) if self.config.ledger_dir else None
        self.ledger = Ledger(finality_depth=self.config.finality_depth, token=self.config.token, store=store,
                             setup=self.config.exchange_setup())
        self._http_server = HttpServer(self._http, MAX_BODY)
        await self._http_server.start(self.config.host, self.config.rpc_port)
        # no per-message deflate: on loopback it costs CPU per notification and saves nothing
        self._ws = await serve(self.pubsub.handle, self.config.host, self.config.ws_port, max_size=MAX_BODY,
                               compression=None)
        self._ticker = asyncio.create_task(self._tick())

    async def stop(self) -> None:
        if self._ticker:
            self._ticker.cancel()
        if self._ws:
            self._ws.close()
            await self._ws.wait_closed()
        if self._http_server:
            await self._http_server.stop()
        ledger = self.ledger
        if ledger is not None and ledger.store is not None:
            await self.call(lambda lg: lg.store.close() if lg.store else None)

    @property
    def rpc_url(self) -> str:
        return f"http://{self.config.host}:{self.config.rpc_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.config.host}:{self.config.ws_port}"
