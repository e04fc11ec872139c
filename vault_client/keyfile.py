"""Solana keypair files, the format `solana-keygen` writes and the CLI reads: a JSON array of
the keypair's 64 bytes. The client package's because every side of the project reads or
writes one: localnet's genesis keys, cpi_manager's operator key (its key-file signer adds
the owner-only mode check), `make up`'s development operator key and the benchmarks'
private copy of it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from solders.keypair import Keypair


def read_key_file(path: Path) -> Keypair:
    """The keypair in `path`; ValueError or TypeError if it is not a JSON array of 64 bytes."""
    return Keypair.from_bytes(bytes(json.loads(path.read_text())))


def write_key_file(path: Path, keypair: Keypair | None = None) -> Keypair:
    """Creates a keypair file readable by its owner only (a new keypair unless one is given);
    an existing file is never overwritten (FileExistsError)."""
    keypair = keypair or Keypair()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump(list(bytes(keypair)), out)
    return keypair
