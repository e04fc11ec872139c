"""vault_client/program_logs.py remembers what each log line is (an invocation, an exit or
neither) instead of matching its regular expressions on every transaction, and what a whole
log's shape makes of its data lines: it must attribute every `Program data:` line exactly as
reading each line afresh does, whatever the lines hold, and the memory stays bounded."""

from __future__ import annotations

import base64
import random
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
    program_logs.forget()
    expected = list(reference(LOGS))
    assert [(d.program_id, d.instruction_index, d.event_index) for d in expected] == [
        (TOKEN, 0, 0), (VAULT, 0, 1), (PM, 0, 2), (VAULT, 1, 0)]
    assert list(data_lines(LOGS)) == expected  # lines seen for the first time
    assert list(data_lines(LOGS)) == expected  # and remembered
    assert list(data_lines(iter(LOGS))) == expected  # any iterable


def test_the_memory_of_lines_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(program_logs, "FRAME_CACHE", 8)
    program_logs.forget()
    logs = [f"Program {VAULT} invoke [1]", *(f"Program log: message {n}" for n in range(20)),
            "Program log: " + "x" * 1_000, f"Program data: {EVENT}", f"Program {VAULT} success"]
    assert list(data_lines(logs)) == list(reference(logs))
    assert len(program_logs._frames) <= 8
    assert all(len(line) <= program_logs.FRAME_CACHE_LINE for line in program_logs._frames)


def _random_log(rng: random.Random, programs: list[str]) -> list[str]:
    """A log of random frames (balanced mostly, sometimes not), messages and data lines,
    valid or not, including lines too long to remember and lines holding a newline."""
    out: list[str] = []
    depth = 0
    for _ in range(rng.randrange(1, 40)):
        roll = rng.random()
        program = rng.choice(programs)
        if roll < 0.25:
            depth += 1
            out.append(f"Program {program} invoke [{depth if rng.random() < 0.95 else rng.randrange(1, 4)}]")
        elif roll < 0.45:
            depth = max(0, depth - 1)
            out.append(f"Program {program} " + rng.choice(["success", "failed: custom program error: 0x1"]))
        elif roll < 0.75:
            payload = " ".join(base64.b64encode(rng.randbytes(rng.randrange(0, 40))).decode()
                               for _ in range(rng.randrange(1, 3)))
            out.append(f"Program data: {payload}" if rng.random() < 0.95 else "Program data: !!bad!!")
        elif roll < 0.85:
            out.append(f"Program {program} consumed {rng.randrange(10)} of 200000 compute units")
        elif roll < 0.9:
            out.append("Program log: " + "x" * rng.choice([10, 200]))
        elif roll < 0.95:
            out.append(f"Program log: Program {program} success")
        else:
            out.append(f"Program {program} invoke [1]\nProgram data: {EVENT}")
    return out


@pytest.mark.parametrize("seed", range(6))
def test_logs_of_known_shapes_are_read_from_their_plan_as_the_walk_reads_them(seed: int) -> None:
    """Random logs, many sharing a shape (the same frames, other data), each read three times:
    the first reading walks it, the next ones come from the remembered shape; all as reading
    each line afresh."""
    program_logs.forget()
    rng = random.Random(seed)
    programs = [VAULT, PM, TOKEN]
    shapes = [_random_log(rng, programs) for _ in range(30)]
    for _ in range(300):
        log = list(rng.choice(shapes))
        for i, line in enumerate(log):  # other data, same shape
            if line.startswith("Program data: ") and rng.random() < 0.5:
                log[i] = f"Program data: {base64.b64encode(rng.randbytes(rng.randrange(1, 30))).decode()}"
        expected = list(reference(log))
        for _ in range(3):
            assert list(data_lines(log)) == expected
    assert program_logs._plans  # shapes were remembered (and used)


def test_plans_stay_right_when_the_memory_fills_or_the_codes_run_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """More invoked programs than a line's code can name, and small memories: lines, shapes
    and codes are forgotten and learnt again, never mixed up."""
    monkeypatch.setattr(program_logs, "FRAME_CACHE", 50)
    monkeypatch.setattr(program_logs, "PLAN_CACHE", 7)
    program_logs.forget()
    rng = random.Random(11)
    programs = [base64.b32encode(rng.randbytes(10)).decode().rstrip("=") for _ in range(400)]
    logs = [_random_log(rng, programs) for _ in range(80)]
    for _ in range(4):
        for log in logs:
            assert list(data_lines(log)) == list(reference(log))
    assert len(program_logs._frames) <= 50 and len(program_logs._plans) <= 7
    assert len(program_logs._invocations) < program_logs.UNKNOWN - program_logs.FIRST_INVOCATION
