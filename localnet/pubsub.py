"""Solana PubSub over WebSocket: logs, account, program, signature and slot subscriptions.

A transaction's notifications go out at `processed` when it lands, and again to
`confirmed` / `finalized` subscribers when its slot reaches that commitment, in the order
a validator sends them. Notification payloads are built by `Node.call`, like every ledger read."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from solders.account import Account
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from localnet.encoding import EncodingError, encode_account
from localnet.ledger import COMMITMENTS, EMPTY_ACCOUNT, ChainEvent, Ledger
from localnet.rpc import INVALID_PARAMS, METHOD_NOT_FOUND, PARSE_ERROR, RpcMethods, config, pubkey

if TYPE_CHECKING:
    from localnet.node import Node

log = logging.getLogger("localnet.pubsub")
KINDS = ("logs", "account", "program", "signature", "slot")


@dataclass
class Subscription:
    id: int
    kind: str
    ws: ServerConnection
    commitment: str
    target: Any = None  # key / program / signature / mentions filter
    options: dict[str, Any] = field(default_factory=dict)


class PubSub:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.subscriptions: dict[int, Subscription] = {}
        self.next_id = 0

    # --- connections ------------------------------------------------------------------

    async def handle(self, ws: ServerConnection) -> None:
        try:
            async for raw in ws:
                reply = self._request(ws, raw)
                await ws.send(json.dumps(reply))
        except ConnectionClosed:
            pass
        finally:
            for sub_id in [s.id for s in self.subscriptions.values() if s.ws is ws]:
                del self.subscriptions[sub_id]

    def _request(self, ws: ServerConnection, raw: str | bytes) -> dict[str, Any]:
        try:
            request = json.loads(raw)
        except ValueError:
            return {"jsonrpc": "2.0", "error": {"code": PARSE_ERROR, "message": "Parse error"}, "id": None}
        req_id = request.get("id") if isinstance(request, dict) else None
        try:
            method = request["method"]
            params = request.get("params") or []
            if method.endswith("Unsubscribe"):
                sub_id = params[0] if params else None
                sub = self.subscriptions.get(sub_id) if isinstance(sub_id, int) else None
                if sub is None or sub.ws is not ws or method != f"{sub.kind}Unsubscribe":
                    raise ValueError("Invalid subscription id.")
                del self.subscriptions[sub.id]
                return {"jsonrpc": "2.0", "result": True, "id": req_id}
            kind = method[: -len("Subscribe")] if method.endswith("Subscribe") else None
            if kind not in KINDS:
                return {"jsonrpc": "2.0", "error": {"code": METHOD_NOT_FOUND, "message": "Method not found"},
                        "id": req_id}
            sub = self._subscribe(ws, kind, params)
            return {"jsonrpc": "2.0", "result": sub.id, "id": req_id}
        except Exception as exc:  # every bad request gets an error reply, never a dropped socket
            message = getattr(exc, "message", None) or str(exc) or "Invalid params"
            return {"jsonrpc": "2.0", "error": {"code": INVALID_PARAMS, "message": message}, "id": req_id}

    def _subscribe(self, ws: ServerConnection, kind: str, params: list[Any]) -> Subscription:
        options: dict[str, Any] = {}
        target: Any = None
        if kind == "logs":
            selector = params[0] if params else "all"
            if selector in ("all", "allWithVotes"):
                target = None
            elif isinstance(selector, dict) and isinstance(selector.get("mentions"), list) and len(
                    selector["mentions"]) == 1:
                target = str(pubkey(selector["mentions"][0], "mentions"))
            else:
                raise ValueError("Invalid params: logs filter must be \"all\" or {\"mentions\": [one pubkey]}")
            options = config(params, 1)
        elif kind in ("account", "program"):
            target = str(pubkey(params[0] if params else None))
            options = config(params, 1)
        elif kind == "signature":
            target = RpcMethods._signature(params[0] if params else None)
            options = config(params, 1)
        commitment = options.get("commitment", "finalized")
        if commitment not in COMMITMENTS:
            raise ValueError(f"Invalid params: unknown commitment {commitment!r}")
        sub = Subscription(self.next_id, kind, ws, commitment, target, options)
        self.next_id += 1
        self.subscriptions[sub.id] = sub
        return sub

    # --- notifications ----------------------------------------------------------------

    async def publish(self, commitment: str, events: list[ChainEvent]) -> None:
        subs = [s for s in self.subscriptions.values() if s.commitment == commitment and s.kind != "slot"]
        if not events or not subs:
            return
        messages = await self.node.call(lambda ledger: self._build(ledger, subs, events))
        for sub, message in messages:
            if sub.kind == "signature":
                self.subscriptions.pop(sub.id, None)
            await self._send(sub, message)

    async def slot(self, slot: int, root: int) -> None:
        for sub in [s for s in self.subscriptions.values() if s.kind == "slot"]:
            await self._send(sub, {"jsonrpc": "2.0", "method": "slotNotification", "params": {
                "result": {"parent": max(slot - 1, 0), "root": root, "slot": slot}, "subscription": sub.id}})

    async def _send(self, sub: Subscription, message: dict[str, Any]) -> None:
        try:
            await sub.ws.send(json.dumps(message))
        except ConnectionClosed:
            self.subscriptions.pop(sub.id, None)

    def _build(self, ledger: Ledger, subs: list[Subscription], events: list[ChainEvent]
               ) -> list[tuple[Subscription, dict[str, Any]]]:
        out: list[tuple[Subscription, dict[str, Any]]] = []

        def note(sub: Subscription, method: str, slot: int, value: Any) -> None:
            out.append((sub, {"jsonrpc": "2.0", "method": method, "params": {
                "result": {"context": {"slot": slot}, "value": value}, "subscription": sub.id}}))

        def encoded(sub: Subscription, account: Account | None) -> dict[str, Any]:
            try:
                return encode_account(account or EMPTY_ACCOUNT, sub.options.get("encoding", "base58"),
                                      sub.options.get("dataSlice"), ledger.mint_decimals)
            except EncodingError:
                return encode_account(account or EMPTY_ACCOUNT, "base64", None, ledger.mint_decimals)

        for event in events:
            for sub in subs:
                if sub.kind == "logs" and (sub.target is None or sub.target in event.account_keys):
                    note(sub, "logsNotification", event.slot,
                         {"signature": event.signature, "err": event.err, "logs": event.logs})
                elif sub.kind == "signature" and sub.target == event.signature:
                    note(sub, "signatureNotification", event.slot, {"err": event.err})
                elif sub.kind == "account" and sub.target in event.accounts:
                    note(sub, "accountNotification", event.slot, encoded(sub, event.accounts[sub.target]))
                elif sub.kind == "program":
                    for key, account in event.accounts.items():
                        if account is None or str(account.owner) != sub.target:
                            continue
                        if not RpcMethods._matches(bytes(account.data), sub.options.get("filters", [])):
                            continue
                        note(sub, "programNotification", event.slot,
                             {"pubkey": key, "account": encoded(sub, account)})
        return out
