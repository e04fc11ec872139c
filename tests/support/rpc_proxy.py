"""A JSON-RPC proxy in front of a localnet node that misbehaves on purpose, the way a
cluster can:

* `drop_signatures`: every sendTransaction of the first that many transactions (by
  signature, however often each is sent again) is answered with its signature (a node
  accepted it) but never forwarded (the leader never got it: it cannot land, and its
  blockhash expires);
* `drop_sends`: the first that many sendTransaction requests are answered the same way and
  not forwarded (a later send of the same transaction goes through);
* `lose_answers`: that many requests that contain a sendTransaction are forwarded (the
  transaction lands) but their answer is lost (HTTP 503 to the client);
* `refuse(request)`: a request it returns True for is answered with a JSON-RPC error (a node
  that cannot serve it now) and not forwarded;
* `rewrite(request, answer)`: every forwarded request's answer goes through it (a node that
  serves a wrong answer, e.g. a transaction's log with an event missing);
* `delay(request)`: a request (or batch) is answered after the longest delay, in seconds,
  this gives any of its requests (a node slow for some transactions: concurrent requests
  are answered out of order);
* `reverse_batches`: a batch's answers come back in reverse order (JSON-RPC allows any).

Everything else is forwarded as it is, and every request is counted by method (`calls`).
Real HTTP over loopback sockets."""

from __future__ import annotations

import asyncio
import base64
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import base58
from aiohttp import web
from solders.transaction import VersionedTransaction

from localnet.node_harness import free_port


def _signature_of(request: dict[str, Any]) -> str:
    params = request.get("params") or []
    encoding = (params[1] or {}).get("encoding", "base58") if len(params) > 1 else "base58"
    raw = base64.b64decode(params[0]) if encoding == "base64" else base58.b58decode(params[0])
    return str(VersionedTransaction.from_bytes(raw).signatures[0])


@dataclass
class RpcProxy:
    target: str
    drop_signatures: int = 0
    drop_sends: int = 0
    lose_answers: int = 0
    refuse: Callable[[dict[str, Any]], bool] | None = None
    rewrite: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] | None = None
    delay: Callable[[dict[str, Any]], float] | None = None
    reverse_batches: bool = False
    refused: int = 0
    dropped: list[str] = field(default_factory=list)  # the signatures dropped, in order
    drops: int = 0  # sends dropped
    lost: int = 0
    calls: Counter[str] = field(default_factory=Counter)  # requests by JSON-RPC method
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        batch = body if isinstance(body, list) else [body]
        answers: dict[int, Any] = {}
        forward = []
        for i, item in enumerate(batch):
            self.calls[str(item.get("method"))] += 1
            signature = _signature_of(item) if item.get("method") == "sendTransaction" else None
            if signature is not None and signature not in self.dropped and len(self.dropped) < self.drop_signatures:
                self.dropped.append(signature)
            if signature is not None and (signature in self.dropped or self.drops < self.drop_sends):
                self.drops += 1
                answers[i] = {"jsonrpc": "2.0", "id": item.get("id"), "result": signature}
            elif self.refuse is not None and self.refuse(item):
                self.refused += 1
                answers[i] = {"jsonrpc": "2.0", "id": item.get("id"),
                              "error": {"code": -32005, "message": "Node is behind by 100 slots",
                                        "data": {"numSlotsBehind": 100}}}
            else:
                forward.append((i, item))
        sends = any(item.get("method") == "sendTransaction" for _, item in forward)
        if self.delay is not None:
            await asyncio.sleep(max(self.delay(item) for item in batch))
        if forward:
            async with aiohttp.ClientSession() as session, session.post(
                    self.target, json=[item for _, item in forward]) as response:
                forwarded = await response.json()
            by_id = {json.dumps(a.get("id")): a for a in forwarded}
            for i, item in forward:
                answer = by_id[json.dumps(item.get("id"))]
                answers[i] = self.rewrite(item, answer) if self.rewrite is not None else answer
        if sends and self.lose_answers > 0:
            self.lose_answers -= 1
            self.lost += 1
            return web.Response(status=503, text="the answer was lost on the way back")
        out = [answers[i] for i in range(len(batch))]
        if self.reverse_batches:
            out.reverse()
        return web.json_response(out if isinstance(body, list) else out[0])

    @asynccontextmanager
    async def running(self) -> AsyncIterator[RpcProxy]:
        app = web.Application()
        app.router.add_post("/", self._handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port)
        await site.start()
        try:
            yield self
        finally:
            await runner.cleanup()
