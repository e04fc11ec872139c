"""Page tokens a client cannot forge: the keyset position a page ended at, when the token was
issued and what it pages (`purpose`), signed with HMAC-SHA256 under a key from the
configuration (`PAGE_TOKEN_KEY_FILE`). A token that was altered, signed under another key,
issued for another listing, or older than its time to live is INVALID_ARGUMENT, and nothing
is read for it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from pathlib import Path

from services.common.errors import ServiceError, invalid

TAG_BYTES = 16  # 128 bits of HMAC-SHA256
MAX_TOKEN_CHARACTERS = 512
MIN_KEY_BYTES = 32
CLOCK_SKEW_SECONDS = 60.0  # replicas' clocks may differ this much


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def read_key(path: str) -> bytes:
    """The key in `path` (its bytes, surrounding whitespace stripped); empty path: a random
    key for this process alone (its tokens are refused by every other replica)."""
    if not path:
        return secrets.token_bytes(MIN_KEY_BYTES)
    key = Path(path).read_bytes().strip()
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the page token key in {path} has {len(key)} bytes; at least {MIN_KEY_BYTES} are needed")
    return key


class PageTokens:
    def __init__(self, key: bytes, purpose: str, ttl_seconds: float) -> None:
        self._key = key
        self.purpose = purpose
        self.ttl_seconds = ttl_seconds

    def _tag(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:TAG_BYTES]

    def issue(self, position: list[str | int], now: float | None = None) -> str:
        payload = json.dumps([self.purpose, int(now if now is not None else time.time()), position],
                             separators=(",", ":")).encode()
        return f"{_b64(payload)}.{_b64(self._tag(payload))}"

    def read(self, token: str, now: float | None = None) -> list[str | int]:
        """The position `token` names; INVALID_ARGUMENT unless this service issued it under
        its key, for this listing, within its time to live."""
        try:
            if len(token) > MAX_TOKEN_CHARACTERS or token.count(".") != 1:
                raise ValueError("malformed")
            body, tag = token.split(".")
            payload = _unb64(body)
            if not hmac.compare_digest(_unb64(tag), self._tag(payload)):
                raise ValueError("bad signature")
            purpose, issued, position = json.loads(payload)
        except (ValueError, TypeError) as exc:  # binascii.Error and JSON errors are ValueErrors
            raise invalid("page_token is not a token this service issued; start from the first page "
                          "(an empty page_token)") from exc
        if purpose != self.purpose or type(issued) is not int or not isinstance(position, list):
            raise invalid("page_token was issued for another listing; start from the first page")
        age = (now if now is not None else time.time()) - issued
        if age > self.ttl_seconds or age < -CLOCK_SKEW_SECONDS:
            raise stale(self.ttl_seconds)
        return position


def stale(ttl_seconds: float) -> ServiceError:
    return invalid(f"page_token has expired (tokens are valid for {ttl_seconds:.0f} s); start again from the "
                   "first page (an empty page_token)")
