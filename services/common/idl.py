"""The one codec for Anchor-style programs, driven by their IDL JSON (legacy Anchor 0.29
format, which anchorpy also reads): instruction encoding, account and event decoding, and
error lookup. Discriminators are `sha256("global:<snake>")`, `sha256("account:<Name>")`,
`sha256("event:<Name>")`, first 8 bytes."""

from __future__ import annotations

import hashlib
import json
import re
import struct
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

IDL_DIR = Path(__file__).resolve().parents[2] / "program" / "idl"

_INTS = {"u8": "<B", "i8": "<b", "u16": "<H", "i16": "<h", "u32": "<I", "i32": "<i", "u64": "<Q", "i64": "<q"}


class CodecError(ValueError):
    """Data that does not match the IDL."""


@cache
def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@cache
def discriminator(namespace: str, name: str) -> bytes:
    return hashlib.sha256(f"{namespace}:{name}".encode()).digest()[:8]


def _decode(ty: Any, data: bytes, offset: int) -> tuple[Any, int]:
    if isinstance(ty, str):
        if ty in _INTS:
            fmt = _INTS[ty]
            size = struct.calcsize(fmt)
            if offset + size > len(data):
                raise CodecError(f"{ty} past the end of {len(data)} bytes")
            return struct.unpack_from(fmt, data, offset)[0], offset + size
        if ty == "bool":
            return data[offset] != 0, offset + 1
        if ty == "publicKey":
            if offset + 32 > len(data):
                raise CodecError(f"publicKey past the end of {len(data)} bytes")
            return Pubkey.from_bytes(data[offset:offset + 32]), offset + 32
    elif isinstance(ty, dict) and "array" in ty:
        inner, count = ty["array"]
        out = []
        for _ in range(count):
            value, offset = _decode(inner, data, offset)
            out.append(value)
        return out, offset
    raise CodecError(f"unsupported IDL type {ty!r}")


def _encode(ty: Any, value: Any) -> bytes:
    if isinstance(ty, str):
        if ty in _INTS:
            try:
                return struct.pack(_INTS[ty], value)
            except struct.error as exc:
                raise CodecError(f"{value!r} does not fit {ty}") from exc
        if ty == "bool":
            return b"\x01" if value else b"\x00"
        if ty == "publicKey":
            return bytes(value)
    raise CodecError(f"unsupported IDL type {ty!r}")


# struct codes for a whole little-endian layout: _INTS without their "<", plus bool and keys
_CODES = {ty: fmt[1:] for ty, fmt in _INTS.items()} | {"bool": "?", "publicKey": "32s"}


@dataclass(frozen=True)
class Layout:
    """A fixed-size field list compiled to one struct format: decoding is one unpack_from
    (plus a Pubkey per key) instead of a call per field. Same results as `_decode`."""

    names: tuple[str, ...]
    shapes: tuple[tuple[str, int], ...]  # (IDL scalar type, array length or 0)
    struct: struct.Struct

    @classmethod
    def compile(cls, fields: list[dict[str, Any]]) -> Layout | None:
        """None when a field is not a fixed-size scalar or array of one."""
        fmt, shapes = "<", []
        for spec in fields:
            ty, count = spec["type"], 0
            if isinstance(ty, dict) and "array" in ty:
                ty, count = ty["array"]
            if not isinstance(ty, str) or ty not in _CODES:
                return None
            fmt += _CODES[ty] * max(count, 1)
            shapes.append((ty, count))
        return cls(tuple(snake(spec["name"]) for spec in fields), tuple(shapes), struct.Struct(fmt))

    def decode(self, data: bytes, offset: int) -> dict[str, Any]:
        try:
            values = self.struct.unpack_from(data, offset)
        except struct.error as exc:
            raise CodecError(f"{self.struct.size} bytes of fields past the end of {len(data)} bytes") from exc
        out: dict[str, Any] = {}
        at = 0
        for name, (ty, count) in zip(self.names, self.shapes, strict=True):
            if count:
                items = values[at:at + count]
                out[name] = [Pubkey.from_bytes(v) for v in items] if ty == "publicKey" else list(items)
                at += count
            else:
                out[name] = Pubkey.from_bytes(values[at]) if ty == "publicKey" else values[at]
                at += 1
        return out


@dataclass(frozen=True)
class IdlInstruction:
    name: str  # snake_case
    discriminator: bytes
    accounts: list[dict[str, Any]]
    args: list[dict[str, Any]]


@dataclass(frozen=True)
class DecodedEvent:
    name: str
    fields: dict[str, Any]


class Idl:
    """One program's IDL with encoders and decoders derived from it."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.name: str = raw["name"]
        self.address = Pubkey.from_string(raw["metadata"]["address"])
        self.instructions = {
            snake(ix["name"]): IdlInstruction(snake(ix["name"]), discriminator("global", snake(ix["name"])),
                                              ix["accounts"], ix["args"])
            for ix in raw["instructions"]
        }
        self.accounts = {a["name"]: a["type"]["fields"] for a in raw.get("accounts", [])}
        self.events = {e["name"]: e["fields"] for e in raw.get("events", [])}
        self._events_by_disc = {discriminator("event", name): name for name in self.events}
        self._accounts_by_disc = {discriminator("account", name): name for name in self.accounts}
        self._layouts = {("account", name): Layout.compile(fields) for name, fields in self.accounts.items()}
        self._layouts.update({("event", name): Layout.compile(fields) for name, fields in self.events.items()})
        self.errors = {e["code"]: (e["name"], e["msg"]) for e in raw.get("errors", [])}

    @classmethod
    def load(cls, path: Path) -> Idl:
        return cls(json.loads(path.read_text()))

    def instruction(
        self, name: str, accounts: dict[str, Pubkey], program: Pubkey | None = None, /, **args: Any
    ) -> Instruction:
        """Builds instruction ``name`` (snake_case); ``accounts`` and ``args`` by snake_case name."""
        ix = self.instructions[name]
        data = ix.discriminator
        for spec in ix.args:
            key = snake(spec["name"])
            if key not in args:
                raise CodecError(f"{name}: missing argument {key}")
            data += _encode(spec["type"], args[key])
        metas = []
        for spec in ix.accounts:
            key = snake(spec["name"])
            if key not in accounts:
                raise CodecError(f"{name}: missing account {key}")
            metas.append(AccountMeta(accounts[key], spec["isSigner"], spec["isMut"]))
        return Instruction(program or self.address, data, metas)

    def decode_fields(self, fields: list[dict[str, Any]], data: bytes, offset: int = 8) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for spec in fields:
            out[snake(spec["name"])], offset = _decode(spec["type"], data, offset)
        return out

    def _decode_named(self, kind: str, name: str, fields: list[dict[str, Any]], data: bytes) -> dict[str, Any]:
        layout = self._layouts.get((kind, name))
        return layout.decode(data, 8) if layout is not None else self.decode_fields(fields, data)

    def decode_account(self, name: str, data: bytes) -> dict[str, Any]:
        if data[:8] != discriminator("account", name):
            raise CodecError(f"not a {name} account")
        return self._decode_named("account", name, self.accounts[name], data)

    def account_name(self, data: bytes) -> str | None:
        return self._accounts_by_disc.get(bytes(data[:8]))

    def decode_event(self, data: bytes) -> DecodedEvent:
        name = self._events_by_disc.get(bytes(data[:8]))
        if name is None:
            raise CodecError("unknown event discriminator")
        return DecodedEvent(name, self._decode_named("event", name, self.events[name], data))

    def error(self, code: int) -> tuple[str, str] | None:
        return self.errors.get(code)


@cache
def load_idl(name: str) -> Idl:
    """The IDL shipped in program/idl/<name>.json."""
    return Idl.load(IDL_DIR / f"{name}.json")
