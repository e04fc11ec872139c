"""A JSON-RPC proxy in front of a localnet node that misbehaves on purpose, the way a
cluster can:

* `drop_sends`: that many sendTransaction requests are answered with the transaction's
  signature (a node accepted it) but never forwarded (the leader never got it: it cannot
  land, and its blockhash expires);
* `lose_answers`: that many requests that contain a sendTransaction are forwarded (the
  transaction lands) but their answer is lost (HTTP 503 to the client).

Everything else is forwarded as it is. Real HTTP over loopback sockets."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import base58
from aiohttp import web
from solders.transaction import VersionedTransaction

from tests.support.localnet_node import free_port


def _signature_of(request: dict[str, Any]) -> str:
    params = request.get("params") or []
    encoding = (params[1] or {}).get("encoding", "base58") if len(params) > 1 else "base58"
    raw = base64.b64decode(params[0]) if encoding == "base64" else base58.b58decode(params[0])
    return str(VersionedTransaction.from_bytes(raw).signatures[0])


@dataclass
class RpcProxy:
    target: str
    drop_sends: int = 0
    lose_answers: int = 0
    dropped: list[str] = field(default_factory=list)
    lost: int = 0
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
            if item.get("method") == "sendTransaction" and self.drop_sends > 0:
                self.drop_sends -= 1
                signature = _signature_of(item)
                self.dropped.append(signature)
                answers[i] = {"jsonrpc": "2.0", "id": item.get("id"), "result": signature}
            else:
                forward.append((i, item))
        sends = any(item.get("method") == "sendTransaction" for _, item in forward)
        if forward:
            async with aiohttp.ClientSession() as session, session.post(
                    self.target, json=[item for _, item in forward]) as response:
                forwarded = await response.json()
            by_id = {json.dumps(a.get("id")): a for a in forwarded}
            for i, item in forward:
                answers[i] = by_id[json.dumps(item.get("id"))]
        if sends and self.lose_answers > 0:
            self.lose_answers -= 1
            self.lost += 1
            return web.Response(status=503, text="the answer was lost on the way back")
        out = [answers[i] for i in range(len(batch))]
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
