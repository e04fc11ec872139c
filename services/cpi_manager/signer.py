"""The operator key's signer: what cpi_manager signs the exchange's operator instructions
with. A `Signer` is a public key and `sign(message) -> signature`; two kinds exist:

* `KeyFileSigner`: a Solana keypair file (a JSON array of 64 bytes, read and written by
  vault_client/keyfile.py) readable by its owner only (mode 0600). For development (`make up`
  creates one under .local/): the key is in the process's memory.
* `TransitSigner`: HashiCorp Vault / OpenBao's transit engine signs with an ed25519 key it
  never exports: `POST /v1/transit/sign/<key>` with the message in base64 answers
  `vault:v1:<base64 signature>`; the public key comes from `GET /v1/transit/keys/<key>`.
  The token is read from a file at each call (an agent may rotate it) and never logged.
  Every signature is verified against the public key before it is used.

`signer_for(settings)` makes the configured one (None: no signer configured)."""

from __future__ import annotations

import base64
import binascii
import json
import os
import ssl
import stat
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp
from solders.pubkey import Pubkey
from solders.signature import Signature

from services.common.errors import unavailable
from vault_client import redact
from vault_client.config import KEY_FILE, TRANSIT, ConfigError, OperatorSignerSettings
from vault_client.keyfile import read_key_file

TRANSIT_TIMEOUT_SECONDS = 10.0


class Signer(Protocol):
    @property
    def public_key(self) -> Pubkey: ...

    async def sign(self, message: bytes) -> Signature: ...

    async def close(self) -> None: ...


class KeyFileSigner:
    """A keypair file, refused unless only its owner can read it."""

    def __init__(self, path: str) -> None:
        mode = os.stat(path).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"OPERATOR_KEY_FILE {path} is readable by others (mode {stat.S_IMODE(mode):o}): "
                              "chmod 600 it")
        try:
            self._keypair = read_key_file(Path(path))
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"OPERATOR_KEY_FILE {path} is not a Solana keypair file (a JSON array of 64 "
                              "bytes)") from exc

    @property
    def public_key(self) -> Pubkey:
        return self._keypair.pubkey()

    async def sign(self, message: bytes) -> Signature:
        return self._keypair.sign_message(message)

    async def close(self) -> None:
        return None


class TransitSigner:
    """A client of the transit secrets engine (HashiCorp Vault, OpenBao). Call `start()`
    once: it reads the key's public key (and checks it is an ed25519 key)."""

    def __init__(self, url: str, key: str, token_file: str, ca_file: str = "",
                 timeout: float = TRANSIT_TIMEOUT_SECONDS) -> None:
        self.url = url.rstrip("/")
        self.key = key
        self.token_file = token_file
        self._ssl = ssl.create_default_context(cafile=ca_file) if ca_file else None
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._public_key: Pubkey | None = None

    @property
    def public_key(self) -> Pubkey:
        if self._public_key is None:
            raise RuntimeError("TransitSigner.start() was not called")
        return self._public_key

    def _where(self) -> str:
        return f"the transit signer at {redact.url(self.url)} (key {self.key!r})"

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            token = Path(self.token_file).read_text().strip()
        except OSError as exc:
            raise unavailable(f"{self._where()}: the token file cannot be read ({exc.strerror})") from None
        try:
            async with self._session.request(method, f"{self.url}{path}", json=body, ssl=self._ssl or True,
                                             headers={"X-Vault-Token": token}) as response:
                text = await response.text()
                if response.status != 200:
                    raise unavailable(f"{self._where()} answered HTTP {response.status} to {method} {path}: "
                                      f"{text[:200]}")
                data = json.loads(text).get("data")
        except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError, AttributeError) as exc:
            raise unavailable(f"{self._where()} did not answer {method} {path}: {type(exc).__name__}") from None
        if not isinstance(data, dict):
            raise unavailable(f"{self._where()} answered {method} {path} without data")
        return data

    async def start(self) -> None:
        data = await self._call("GET", f"/v1/transit/keys/{quote(self.key, safe='')}")
        if data.get("type") != "ed25519":
            raise ConfigError(f"{self._where()} is a {data.get('type')!r} key: Solana signs with ed25519")
        keys = data.get("keys") or {}
        latest = keys.get(str(data.get("latest_version"))) or {}
        try:
            self._public_key = Pubkey.from_bytes(base64.b64decode(latest["public_key"], validate=True))
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise ConfigError(f"{self._where()} has no readable ed25519 public key") from exc

    async def sign(self, message: bytes) -> Signature:
        data = await self._call("POST", f"/v1/transit/sign/{quote(self.key, safe='')}",
                                {"input": base64.b64encode(message).decode()})
        text = str(data.get("signature", ""))
        prefix, _, encoded = text.rpartition(":")
        try:
            if not prefix.startswith("vault:v"):
                raise ValueError(text[:40])
            signature = Signature.from_bytes(base64.b64decode(encoded, validate=True))
        except (ValueError, binascii.Error):
            raise unavailable(f"{self._where()} answered a signature that is not vault:v<n>:<base64>") from None
        if not signature.verify(self.public_key, message):
            raise unavailable(f"{self._where()} answered a signature that does not verify against its public key "
                              f"{self.public_key} (was the key rotated? restart cpi_manager)")
        return signature

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


async def signer_for(settings: OperatorSignerSettings) -> Signer | None:
    kind = settings.effective_kind
    if kind == KEY_FILE:
        return KeyFileSigner(settings.key_file)
    if kind == TRANSIT:
        signer = TransitSigner(settings.transit_url, settings.transit_key, settings.transit_token_file,
                               settings.transit_ca_file)
        try:
            await signer.start()
        except BaseException:
            await signer.close()
            raise
        return signer
    return None
