"""HTTP/1.1 message framing on asyncio streams, shared by localnet's JSON-RPC server and the
services' JSON-RPC client (vault_client/http_client.py): header fields, the keep-alive rule, and bodies
framed by Content-Length or chunked transfer coding, each checked strictly (RFC 9112).

A framing error carries the status a server answers it with; a client treats it as a broken
connection."""

from __future__ import annotations

import asyncio
from http import HTTPStatus

from vault_client.quoting import quoted

MAX_HEAD_BYTES = 64 * 1024  # the StreamReader limit: a longer head or chunk line is refused
_HEX_DIGITS = b"0123456789abcdefABCDEF"


class FramingError(Exception):
    """A message whose framing cannot be trusted; `status` is what a server answers."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def parse_fields(lines: list[str]) -> dict[str, str]:
    """Header fields by lower-case name; a repeated field's values joined with ", " (a
    repeated Content-Length must repeat the same value)."""
    fields: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise FramingError(HTTPStatus.BAD_REQUEST, "malformed header line")
        name, value = name.lower(), value.strip()
        if name in fields:
            if name == "content-length":
                if fields[name] != value:
                    raise FramingError(HTTPStatus.BAD_REQUEST, "conflicting Content-Length headers")
                continue
            value = f"{fields[name]}, {value}"
        fields[name] = value
    return fields


def keep_alive(version: str, connection: str) -> bool:
    """Whether a connection stays open after a message of this version and Connection field."""
    tokens = {token.strip().lower() for token in connection.split(",")}
    if version == "HTTP/1.0":
        return "keep-alive" in tokens
    return "close" not in tokens


def content_length(value: str, max_body: int) -> int:
    """A Content-Length value: plain ASCII digits (int() would take "²", "+1" or "1_0")."""
    if not (value.isascii() and value.isdigit()):
        raise FramingError(HTTPStatus.BAD_REQUEST, f"invalid Content-Length {quoted(value)}")
    length = int(value)
    if length > max_body:
        raise FramingError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"bodies are limited to {max_body} bytes")
    return length


def chunked(fields: dict[str, str]) -> bool:
    """Whether the body is chunked; any other transfer coding, or chunked beside a
    Content-Length, is refused."""
    encoding = fields.get("transfer-encoding")
    if encoding is None:
        return False
    if "content-length" in fields:
        raise FramingError(HTTPStatus.BAD_REQUEST, "both Transfer-Encoding and Content-Length")
    if encoding.lower() != "chunked":
        raise FramingError(HTTPStatus.NOT_IMPLEMENTED, f"unsupported transfer-encoding {quoted(encoding)}")
    return True


async def read_chunked(reader: asyncio.StreamReader, max_body: int) -> bytes:
    """A chunked body up to and including its trailer section (extensions and trailer
    fields are read and ignored)."""
    parts: list[bytes] = []
    total = 0
    while True:
        digits = (await read_line(reader)).split(b";", 1)[0].strip()
        if not digits or digits.translate(None, _HEX_DIGITS):  # int() would take "-1", "0x1", "1_0"
            raise FramingError(HTTPStatus.BAD_REQUEST, "invalid chunk size")
        size = int(digits, 16)
        if size == 0:
            while await read_line(reader):  # trailer fields, up to the empty line
                pass
            return b"".join(parts)
        total += size
        if total > max_body:
            raise FramingError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"bodies are limited to {max_body} bytes")
        parts.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise FramingError(HTTPStatus.BAD_REQUEST, "a chunk does not end with CRLF")


async def read_line(reader: asyncio.StreamReader) -> bytes:
    """One CRLF-terminated line, without the CRLF."""
    try:
        return (await reader.readuntil(b"\r\n"))[:-2]
    except asyncio.LimitOverrunError:
        raise FramingError(HTTPStatus.BAD_REQUEST, "line too long") from None
