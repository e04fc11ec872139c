"""Input validation at the gRPC edge: keys, amounts, times and identifiers, with messages
naming the field and quoting at most a short prefix of the input."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

from solders.pubkey import Pubkey

from services.common.errors import invalid
from vault_client.constants import U64_MAX
from vault_client.quoting import quoted


def pubkey(value: str, field: str) -> Pubkey:
    if not value:
        raise invalid(f"{field} is required (a base58 public key)")
    try:
        key = Pubkey.from_string(value)
    except ValueError as exc:
        raise invalid(f"{field} {quoted(value)} is not a valid base58 public key") from exc
    return key


def optional_pubkey(value: str, field: str) -> Pubkey | None:
    return pubkey(value, field) if value else None


def amount(value: int, field: str = "amount") -> int:
    if value <= 0:
        raise invalid(f"{field} must be greater than zero (base units: 1 USDT = 1000000)")
    if value > U64_MAX:
        raise invalid(f"{field} exceeds the u64 range")
    return value


def page_size(value: int, default: int = 100, maximum: int = 500) -> int:
    if value == 0:
        return default
    if value > maximum:
        raise invalid(f"page_size must be at most {maximum}")
    return value


MAX_UNIX_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z, the last second a datetime holds


def unix_time(value: int, field: str) -> datetime | None:
    """A Unix time in seconds as a UTC datetime; 0 means unbounded (None)."""
    if value == 0:
        return None
    if not 0 < value <= MAX_UNIX_SECONDS:
        raise invalid(f"{field} must be Unix seconds from 1 to {MAX_UNIX_SECONDS} (0: unbounded), got {value}")
    return datetime.fromtimestamp(value, UTC)


def printable(value: str, field: str) -> str:
    """`value` unless it holds a control character (NUL, newline, ...), which no key or
    identifier needs and PostgreSQL's text cannot always store."""
    bad = next((c for c in value if unicodedata.category(c) == "Cc"), None)
    if bad is not None:
        raise invalid(f"{field} contains the control character U+{ord(bad):04X} at position {value.index(bad)}")
    return value
