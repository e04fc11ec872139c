"""SBF programs that ship inside the installed solders binary (LiteSVM embeds them).

LiteSVM deploys the p-token implementation of SPL Token by default; the classic SPL Token
program is embedded too. Extracting it lets the tests and the CU benchmark run against
both implementations (the classic one is the baseline the CU targets were written for)."""

from __future__ import annotations

import struct
from functools import cache
from pathlib import Path

import solders

EM_BPF, EM_SBPF = 247, 263


def _embedded_elfs() -> list[bytes]:
    binary = next(Path(solders.__file__).parent.glob("solders*.so")).read_bytes()
    found = []
    start = 0
    while (i := binary.find(b"\x7fELF\x02\x01\x01", start)) >= 0:
        start = i + 1
        machine = struct.unpack_from("<H", binary, i + 18)[0]
        if machine not in (EM_BPF, EM_SBPF):
            continue
        shoff = struct.unpack_from("<Q", binary, i + 0x28)[0]
        shentsize, shnum = struct.unpack_from("<HH", binary, i + 0x3A)
        found.append(binary[i:i + shoff + shentsize * shnum])
    return found


@cache
def classic_spl_token() -> bytes:
    """The classic SPL Token program's ELF (not p-token, not Token-2022)."""
    for elf in _embedded_elfs():
        if (b"Instruction: TransferChecked" in elf and b"InitializeMint2" in elf
                and b"Token-2022" not in elf and b"pinocchio" not in elf):
            return elf
    raise LookupError("the installed solders does not embed the classic SPL Token program")
