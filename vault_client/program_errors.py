"""A failed transaction's program error by name: the custom error code from the error in
any of its forms, the program that failed from the logs, and the name from that program's
IDL. services/common/errors.py maps these to gRPC statuses; vaultctl prints the name."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from vault_client.idl import Idl
from vault_client.vault_program import IDL, PM_IDL

_FAILED = re.compile(r"^Program (\w+) failed: custom program error: 0x([0-9a-fA-F]+)$")


def custom_error_code(err: Any) -> tuple[int, int] | None:
    """(instruction index, custom code) from a transaction error in any of its forms:
    the RPC JSON ({"InstructionError": [i, {"Custom": n}]}), a solders error, or text."""
    if isinstance(err, dict) and "InstructionError" in err:
        index, detail = err["InstructionError"]
        if isinstance(detail, dict) and "Custom" in detail:
            return int(index), int(detail["Custom"])
        return None
    code = getattr(getattr(err, "err", None), "code", None)
    if isinstance(code, int):
        return int(getattr(err, "index", 0)), code
    match = re.search(r"custom program error: 0x([0-9a-fA-F]+)", str(err)) or re.search(r"Custom\((\d+)\)", str(err))
    if match:
        text = match.group(1)
        return 0, int(text, 16) if "0x" in match.group(0) else int(text)
    return None


def failing_program(logs: Iterable[str] | None) -> str | None:
    """The program whose custom error failed a transaction, from its logs: the first
    `failed` line is the innermost frame (a CPI's callee fails before its caller)."""
    for line in logs or ():
        match = _FAILED.match(line)
        if match:
            return match.group(1)
    return None


def program_idl(program: str | None, vault_program: str | None = None) -> Idl | None:
    """The IDL of the program that failed: the vault program's, or position_manager's
    (the only other program the services call). Both number their errors from 6000, so a
    code alone does not say whose it is."""
    if program is None:
        return None
    return IDL if program == (vault_program or str(IDL.address)) else PM_IDL


def error_name(err: Any, logs: Iterable[str] | None = None, vault_program: str | None = None) -> str | None:
    """The program error's name (e.g. "GrantExceeded"), None when it is not one."""
    found = custom_error_code(err)
    if found is None:
        return None
    idl = program_idl(failing_program(logs), vault_program)
    named = idl.error(found[1]) if idl is not None else (IDL.error(found[1]) or PM_IDL.error(found[1]))
    return named[0] if named else None
