"""vault_client/program_logs.py remembers what each log line is (an invocation, an exit or
neither) instead of matching its regular expressions on every transaction: it must attribute
every `Program data:` line exactly as reading each line afresh does, whatever the lines hold,
and the memory stays bounded."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator

import pytest

from vault_client import program_logs
from vault_client.program_logs import DataLine, data_lines

VAULT = "EfyqqVByTbyzy15nxcPBGUmNGd6cDHqwq7R9qNXFfk1L"
PM = "Pm111111111111111111111111111111111111111111"
TOKEN = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
EVENT = base64.b64encode(b"event").decode()
OTHER = base64.b64encode(b"other").decode()


def reference(logs: list[str]) -> Iterator[DataLine]:
    """The attribution read line by line with the regular expressions (the code before the
    memory of lines, as it was)."""
    invoke_re = re.compile(r"^Program (\w+) invoke \[(\d+)\]$")
    exit_re = re.compile(r"^Program (\w+) (success|failed.*)$")
    stack: list[str] = []
    instruction, index = -1, 0
    for line in logs:
        invoke = invoke_re.match(line) if line.endswith("]") else None
        if invoke:
            if invoke.group(2) == "1":
                instruction, index = instruction + 1, 0
            stack.append(invoke.group(1))
        elif (line.endswith("success") or "failed" in line) and exit_re.match(line) and stack:
            stack.pop()
        elif line.startswith("Program data: ") and stack:
            try:
                parts = tuple(base64.b64decode(p) for p in line[len("Program data: "):].split(" ") if p)
            except ValueError:
                continue
            yield DataLine(stack[-1], instruction, index, parts)
            index += 1


LOGS = [
    f"Program {PM} invoke [1]",
    "Program log: Instruction: Settle invoke [1]",  # a message that looks like a frame is not one
    f"Program {VAULT} invoke [2]",
    f"Program {TOKEN} invoke [3]",
    f"Program data: {OTHER}",  # the token program's (on top), not the vault's
    f"Program {TOKEN} consumed 183 of 1394425 compute units",
    f"Program {TOKEN} success",
    f"Program data: {EVENT} {OTHER}",
    f"Program {VAULT} success",
    f"Program data: {EVENT}",  # position_manager's own
    f"Program log: Program {VAULT} success",
    f"Program {PM} success",
    f"Program {VAULT} invoke [1]",
    "Program data: !!not base64!!",
    f"Program data: {EVENT}",
    f"Program {VAULT} success",
    f"Program {VAULT} success",  # an exit with nothing on the stack
    f"Program data: {EVENT}",  # nobody's: ignored
    f"Program {VAULT} invoke [1]",
    f"Program {VAULT} failed: custom program error: 0x1",
    f"Program {VAULT} invoke [1]\nProgram data: {EVENT}",  # one line, holding a newline
    f"Program {VAULT} invoke [1]\n",
    f"Program data: {EVENT}",
    f"Program {VAULT} success\n",
]


def test_every_data_line_is_attributed_as_reading_each_line_afresh() -> None:
    program_logs._frames.clear()
    expected = list(reference(LOGS))
    assert [(d.program_id, d.instruction_index, d.event_index) for d in expected] == [
        (TOKEN, 0, 0), (VAULT, 0, 1), (PM, 0, 2), (VAULT, 1, 0)]
    assert list(data_lines(LOGS)) == expected  # lines seen for the first time
    assert list(data_lines(LOGS)) == expected  # and remembered
    assert list(data_lines(iter(LOGS))) == expected  # any iterable


def test_the_memory_of_lines_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(program_logs, "FRAME_CACHE", 8)
    program_logs._frames.clear()
    logs = [f"Program {VAULT} invoke [1]", *(f"Program log: message {n}" for n in range(20)),
            "Program log: " + "x" * 1_000, f"Program data: {EVENT}", f"Program {VAULT} success"]
    assert list(data_lines(logs)) == list(reference(logs))
    assert len(program_logs._frames) <= 8
    assert all(len(line) <= program_logs.FRAME_CACHE_LINE for line in program_logs._frames)
