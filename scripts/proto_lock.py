"""Records every protobuf field's number in proto/field_numbers.lock.json, so that a test
can refuse a change that reuses or renumbers a field (the wire-breaking kind of change).

`python scripts/proto_lock.py` adds new fields to the lock; it never rewrites existing
entries (remove a field by marking its number and name `reserved` in the .proto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from google.protobuf.descriptor import Descriptor, FileDescriptor

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "proto" / "field_numbers.lock.json"
MODULES = ["common", "vault_manager", "transaction_builder", "balance_tracker", "cpi_manager", "vault_monitor"]


def files() -> list[FileDescriptor]:
    import importlib

    return [importlib.import_module(f"collateral_vault.v1.{m}_pb2").DESCRIPTOR for m in MODULES]


def messages(descriptor: FileDescriptor | Descriptor) -> Iterator[Descriptor]:
    for message in descriptor.message_types_by_name.values() if isinstance(descriptor, FileDescriptor) \
            else descriptor.nested_types:
        yield message
        yield from messages(message)


def current_fields() -> dict[str, int]:
    return {f"{m.full_name}.{f.name}": f.number for fd in files() for m in messages(fd) for f in m.fields}


def main() -> None:
    lock = json.loads(LOCK.read_text()) if LOCK.exists() else {}
    added = {k: v for k, v in current_fields().items() if k not in lock}
    lock.update(added)
    LOCK.write_text(json.dumps(dict(sorted(lock.items())), indent=1) + "\n")
    print(f"{len(added)} field(s) added to {LOCK.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
