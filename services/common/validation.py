"""Input validation at the gRPC edge: keys and amounts, with messages naming the field."""

from __future__ import annotations

from solders.pubkey import Pubkey

from services.common.errors import invalid

U64_MAX = 2**64 - 1


def pubkey(value: str, field: str) -> Pubkey:
    if not value:
        raise invalid(f"{field} is required (a base58 public key)")
    try:
        key = Pubkey.from_string(value)
    except ValueError as exc:
        raise invalid(f"{field} {value!r} is not a valid base58 public key") from exc
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
