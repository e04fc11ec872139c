"""The gRPC contracts: buf-style lint rules and no breaking reuse of field numbers."""

from __future__ import annotations

import json
import re

from google.protobuf.descriptor import Descriptor, EnumDescriptor
from google.protobuf.descriptor_pb2 import DescriptorProto

from scripts.proto_lock import LOCK, current_fields, files, messages

PASCAL = re.compile(r"^[A-Z][A-Za-z0-9]*$")
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
UPPER_SNAKE = re.compile(r"^[A-Z][A-Z0-9_]*$")


def upper_snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()


def enums() -> list[EnumDescriptor]:
    out = []
    for fd in files():
        out += list(fd.enum_types_by_name.values())
        for m in messages(fd):
            out += list(m.enum_types)
    return out


def _reserved_names(message: Descriptor) -> list[str]:
    """A message's `reserved` field names (the Python descriptor does not expose them)."""
    proto = DescriptorProto()
    message.CopyToProto(proto)
    return list(proto.reserved_name)


def test_package_and_files() -> None:
    for fd in files():
        assert fd.package == "collateral_vault.v1"  # PACKAGE_VERSION_SUFFIX
        assert fd.name.startswith("collateral_vault/v1/") and SNAKE.match(fd.name.rsplit("/", 1)[1][:-6])


def test_naming() -> None:
    for fd in files():
        for m in messages(fd):
            assert PASCAL.match(m.name), m.full_name
            for f in m.fields:
                assert SNAKE.match(f.name), f.full_name
        for service in fd.services_by_name.values():
            assert PASCAL.match(service.name)
            inputs = [method.input_type.name for method in service.methods]
            assert len(set(inputs)) == len(inputs)  # RPC_REQUEST_RESPONSE_UNIQUE
            for method in service.methods:
                assert PASCAL.match(method.name)
                assert method.input_type.name == f"{method.name}Request", method.full_name  # RPC_REQUEST_STANDARD_NAME
                assert method.output_type.name == f"{method.name}Response", method.full_name


def test_enums() -> None:
    for enum in enums():
        prefix = upper_snake(enum.name) + "_"
        assert PASCAL.match(enum.name)
        assert enum.values[0].number == 0 and enum.values[0].name == prefix + "UNSPECIFIED"  # ENUM_ZERO_VALUE_SUFFIX
        for value in enum.values:
            assert UPPER_SNAKE.match(value.name) and value.name.startswith(prefix), value.name  # ENUM_VALUE_PREFIX


def test_no_field_number_is_reused_or_renumbered() -> None:
    lock: dict[str, int] = json.loads(LOCK.read_text())
    current = current_fields()
    for name, number in current.items():
        if name in lock:
            assert lock[name] == number, f"{name} was renumbered from {lock[name]} to {number}"
    by_message: dict[str, dict[int, str]] = {}
    for name, number in lock.items():
        message, field = name.rsplit(".", 1)
        by_message.setdefault(message, {})[number] = field
    for name, number in current.items():
        message, field = name.rsplit(".", 1)
        previous = by_message.get(message, {}).get(number)
        assert previous in (None, field), f"{message}: number {number} was {previous!r}, now reused for {field!r}"
    missing = [name for name in lock if name not in current]
    reserved = {(m.full_name, f) for fd in files() for m in messages(fd) for f in _reserved_names(m)}
    for name in missing:
        message, field = name.rsplit(".", 1)
        assert (message, field) in reserved, f"{name} was removed without `reserved` (number {lock[name]})"
    assert not [name for name in current if name not in lock], "new fields: run `python scripts/proto_lock.py`"
