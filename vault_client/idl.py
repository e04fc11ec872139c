"""The one codec for Anchor-style programs, driven by their IDL JSON (legacy Anchor 0.29
format, which anchorpy also reads): instruction encoding, account and event decoding, and
error lookup. Discriminators are `sha256("global:<snake>")`, `sha256("account:<Name>")`,
`sha256("event:<Name>")`, first 8 bytes."""

from __future__ import annotations

import hashlib
import json
import re
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

IDL_DIR = Path(__file__).resolve().parents[1] / "program" / "idl"

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


Types = dict[str, list[dict[str, Any]]]  # defined struct name -> its fields


def _decode(ty: Any, data: bytes, offset: int, types: Types) -> tuple[Any, int]:
    if isinstance(ty, str):
        if ty in _INTS:
            fmt = _INTS[ty]
            size = struct.calcsize(fmt)
            if offset + size > len(data):
                raise CodecError(f"{ty} past the end of {len(data)} bytes")
            return struct.unpack_from(fmt, data, offset)[0], offset + size
        if ty == "bool":
            if offset >= len(data):
                raise CodecError(f"bool past the end of {len(data)} bytes")
            return data[offset] != 0, offset + 1
        if ty == "publicKey":
            if offset + 32 > len(data):
                raise CodecError(f"publicKey past the end of {len(data)} bytes")
            return Pubkey.from_bytes(data[offset:offset + 32]), offset + 32
    elif isinstance(ty, dict) and "array" in ty:
        inner, count = ty["array"]
        out = []
        for _ in range(count):
            value, offset = _decode(inner, data, offset, types)
            out.append(value)
        return out, offset
    elif isinstance(ty, dict) and "vec" in ty:
        count, offset = _decode("u32", data, offset, types)
        items = []
        for _ in range(count):
            value, offset = _decode(ty["vec"], data, offset, types)
            items.append(value)
        return items, offset
    elif isinstance(ty, dict) and "defined" in ty and ty["defined"] in types:
        fields: dict[str, Any] = {}
        for spec in types[ty["defined"]]:
            fields[snake(spec["name"])], offset = _decode(spec["type"], data, offset, types)
        return fields, offset
    raise CodecError(f"unsupported IDL type {ty!r}")


def _encode(ty: Any, value: Any, types: Types) -> bytes:
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
    elif isinstance(ty, dict) and "array" in ty:
        inner, count = ty["array"]
        if len(value) != count:
            raise CodecError(f"{count} items expected, got {len(value)}")
        return b"".join(_encode(inner, item, types) for item in value)
    elif isinstance(ty, dict) and "vec" in ty:
        return struct.pack("<I", len(value)) + b"".join(_encode(ty["vec"], item, types) for item in value)
    elif isinstance(ty, dict) and "defined" in ty and ty["defined"] in types:
        specs = types[ty["defined"]]
        items = ([value[snake(spec["name"])] for spec in specs] if isinstance(value, Mapping) else list(value))
        if len(items) != len(specs):
            raise CodecError(f"{ty['defined']}: {len(specs)} fields expected")
        return b"".join(_encode(spec["type"], item, types) for spec, item in zip(specs, items, strict=True))
    raise CodecError(f"unsupported IDL type {ty!r}")


# struct codes for a whole little-endian layout: _INTS without their "<", plus bool and keys
_CODES = {ty: fmt[1:] for ty, fmt in _INTS.items()} | {"bool": "?", "publicKey": "32s"}

Build = Callable[[Iterator[Any]], Any]


def _scalar(ty: str) -> Build:
    if ty == "publicKey":
        return lambda values: Pubkey.from_bytes(next(values))
    return lambda values: next(values)


def _plan(ty: Any, types: Types) -> tuple[str, Build] | None:
    """The struct format of a fixed-size type and how to rebuild its value from the
    unpacked items; None for a type of variable size (vec) or unknown."""
    if isinstance(ty, str):
        return (_CODES[ty], _scalar(ty)) if ty in _CODES else None
    if isinstance(ty, dict) and "array" in ty:
        inner, count = ty["array"]
        if isinstance(inner, str) and inner in _CODES and inner != "publicKey":
            return _CODES[inner] * count, lambda values: [next(values) for _ in range(count)]
        plan = _plan(inner, types)
        if plan is None:
            return None
        fmt, build = plan
        return fmt * count, lambda values: [build(values) for _ in range(count)]
    if isinstance(ty, dict) and "defined" in ty and ty["defined"] in types:
        return _plan_fields(types[ty["defined"]], types)
    return None


def _plan_fields(fields: list[dict[str, Any]], types: Types) -> tuple[str, Build] | None:
    fmt, parts = "", []
    for spec in fields:
        plan = _plan(spec["type"], types)
        if plan is None:
            return None
        fmt += plan[0]
        parts.append((snake(spec["name"]), plan[1]))
    return fmt, lambda values: {name: build(values) for name, build in parts}


@dataclass(frozen=True)
class Layout:
    """A fixed-size field list compiled to one struct format: decoding is one unpack_from
    plus rebuilding the values (keys, nested structs, arrays) instead of a call per field.
    Same results as `_decode`."""

    struct: struct.Struct
    build: Build

    @classmethod
    def compile(cls, fields: list[dict[str, Any]], types: Types | None = None) -> Layout | None:
        """None when a field is not of fixed size (a vec) or of an unknown type."""
        plan = _plan_fields(fields, types or {})
        if plan is None:
            return None
        return cls(struct.Struct("<" + plan[0]), plan[1])

    def decode(self, data: bytes, offset: int) -> dict[str, Any]:
        try:
            values = self.struct.unpack_from(data, offset)
        except struct.error as exc:
            raise CodecError(f"{self.struct.size} bytes of fields past the end of {len(data)} bytes") from exc
        result: dict[str, Any] = self.build(iter(values))
        return result


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
        self.types: Types = {t["name"]: t["type"]["fields"] for t in raw.get("types", [])
                             if t["type"].get("kind") == "struct"}
        self.accounts = {a["name"]: a["type"]["fields"] for a in raw.get("accounts", [])}
        self.events = {e["name"]: e["fields"] for e in raw.get("events", [])}
        self._events_by_disc = {discriminator("event", name): name for name in self.events}
        self._accounts_by_disc = {discriminator("account", name): name for name in self.accounts}
        self._layouts = {("account", name): Layout.compile(fields, self.types)
                         for name, fields in self.accounts.items()}
        self._layouts.update({("event", name): Layout.compile(fields, self.types)
                              for name, fields in self.events.items()})
        self.errors = {e["code"]: (e["name"], e["msg"]) for e in raw.get("errors", [])}

    @classmethod
    def load(cls, path: Path) -> Idl:
        return cls(json.loads(path.read_text()))

    def instruction(
        self, name: str, accounts: dict[str, Pubkey], program: Pubkey | None = None, /,
        *, remaining: list[AccountMeta] | None = None, **args: Any,
    ) -> Instruction:
        """Builds instruction ``name`` (snake_case); ``accounts`` and ``args`` by snake_case name.
        An optional account (``isOptional``) may be left out; ``remaining`` accounts follow
        the named ones."""
        ix = self.instructions[name]
        data = ix.discriminator
        for spec in ix.args:
            key = snake(spec["name"])
            if key not in args:
                raise CodecError(f"{name}: missing argument {key}")
            data += _encode(spec["type"], args[key], self.types)
        metas = []
        for spec in ix.accounts:
            key = snake(spec["name"])
            if key not in accounts:
                if spec.get("isOptional"):
                    continue
                raise CodecError(f"{name}: missing account {key}")
            metas.append(AccountMeta(accounts[key], spec["isSigner"], spec["isMut"]))
        return Instruction(program or self.address, data, metas + list(remaining or []))

    def layout(self, kind: str, name: str) -> Layout | None:
        """The compiled layout of account or event ``name`` (``kind`` "account" or "event")."""
        return self._layouts.get((kind, name))

    def decode_fields(self, fields: list[dict[str, Any]], data: bytes, offset: int = 8) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for spec in fields:
            out[snake(spec["name"])], offset = _decode(spec["type"], data, offset, self.types)
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
