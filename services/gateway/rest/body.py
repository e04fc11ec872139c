"""Request bodies of the REST API: a JSON object within the size limit, u64 amounts and
string fields, each refused with a 400 naming the field."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from services.gateway.responses import MAX_BODY, bad_request


async def read(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=request.content_length)
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deeply
        raise bad_request("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object")
    return body


def amount(body: dict[str, Any], name: str, required: bool = True) -> int:
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


def string(body: dict[str, Any], name: str) -> str:
    value = body.get(name, "")
    if not isinstance(value, str):
        raise bad_request(f"{name} must be a string")
    return value
