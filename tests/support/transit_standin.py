"""A stand-in for HashiCorp Vault / OpenBao's transit secrets engine, for tests.

OpenBao cannot be installed on this machine (its Go module is refused by the package
registry), so cpi_manager's transit client is tested against this small HTTP server that
speaks the same API for what the client uses:

* `GET /v1/transit/keys/<name>` -> {"data": {"type": "ed25519", "latest_version": 1,
  "keys": {"1": {"public_key": "<base64>"}}}};
* `POST /v1/transit/sign/<name>` with {"input": "<base64>"} -> {"data": {"signature":
  "vault:v1:<base64>", "key_version": 1}};

both requiring the `X-Vault-Token` header (403 otherwise), as the real server does. The key
stays in this process: the client only ever sees the public key and signatures."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web
from solders.keypair import Keypair

from localnet.node_harness import free_port


@dataclass
class TransitStandIn:
    keys: dict[str, Keypair]
    token: str = "s.test-token"
    key_type: str = "ed25519"
    corrupt_signatures: bool = False
    signed: int = 0
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _authorized(self, request: web.Request) -> None:
        if request.headers.get("X-Vault-Token") != self.token:
            raise web.HTTPForbidden(text='{"errors":["permission denied"]}', content_type="application/json")

    def _key(self, request: web.Request) -> Keypair:
        key = self.keys.get(request.match_info["name"])
        if key is None:
            raise web.HTTPBadRequest(text='{"errors":["encryption key not found"]}', content_type="application/json")
        return key

    async def _read_key(self, request: web.Request) -> web.Response:
        self._authorized(request)
        key = self._key(request)
        return web.json_response({"data": {"type": self.key_type, "latest_version": 1, "keys": {
            "1": {"public_key": base64.b64encode(bytes(key.pubkey())).decode(), "creation_time": "2026-01-01T00:00:00Z"}
        }}})

    async def _sign(self, request: web.Request) -> web.Response:
        self._authorized(request)
        key = self._key(request)
        message = base64.b64decode((await request.json())["input"])
        signature = bytes(key.sign_message(message))
        if self.corrupt_signatures:
            signature = bytes(64 - 1) + b"\x01"
        self.signed += 1
        return web.json_response({"data": {"signature": "vault:v1:" + base64.b64encode(signature).decode(),
                                           "key_version": 1}})

    @asynccontextmanager
    async def running(self) -> AsyncIterator[TransitStandIn]:
        app = web.Application()
        app.router.add_get("/v1/transit/keys/{name}", self._read_key)
        app.router.add_post("/v1/transit/sign/{name}", self._sign)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        try:
            yield self
        finally:
            await runner.cleanup()
