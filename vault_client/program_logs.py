"""Program log parsing: which program emitted which `Program data:` line.

Logs interleave the frames of nested invocations (`Program X invoke [n]` ...
`Program X success`/`failed`); an event belongs to the program on top of that stack,
so events a CPI'd program emits are never attributed to its caller.

Most lines of a transaction's log repeat from one transaction to the next (`Program
Tokenkeg... invoke [2]`, `... success`, a program's fixed messages): what each line is gets
remembered (FRAME_CACHE lines, none longer than FRAME_CACHE_LINE), so a backfill matches a
line's regular expressions once, not once per transaction (they were most of a backfill's
decoding time, cProfile).

Most transactions also repeat whole shapes (the same instructions, so the same frames in the
same order, only their data lines differ): a log's shape is the code of each of its lines
(neither, an exit, which invocation, or not remembered: every data line), one byte each,
looked up in C in one pass. What the frames make of a shape (for each line not remembered:
the program on top then, and the top-level instruction) is worked out once by walking it line
by line, remembered (PLAN_CACHE shapes), and a log of a known shape is read from that alone:
only its data lines reach Python."""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import repeat

_INVOKE = re.compile(r"^Program (\w+) invoke \[(\d+)\]$")
_EXIT = re.compile(r"^Program (\w+) (success|failed.*)$")
_DATA = "Program data: "
FRAME_CACHE = 4_096  # lines remembered (all forgotten at once when full)
FRAME_CACHE_LINE = 128  # the longest line remembered (an invocation's is about 60 characters)
PLAN_CACHE = 1_024  # log shapes remembered (all forgotten at once when full)
# a line -> (program invoked, whether at the top level) / ("", False) for an exit / None: neither
Frame = tuple[str, bool] | None
# A remembered line's code: NEITHER, EXIT, or FIRST_INVOCATION + its invocation's number in
# _invocations (at most UNKNOWN - FIRST_INVOCATION of them before everything is forgotten);
# UNKNOWN for a line not remembered.
NEITHER, EXIT, FIRST_INVOCATION, UNKNOWN = 0, 1, 2, 255
_frames: dict[str, int] = {}
_invocations: list[tuple[str, bool]] = []
_invocation_codes: dict[tuple[str, bool], int] = {}
# a shape -> for each of its lines not remembered, in order: (its position, the program on
# top of the stack there or None, the top-level instruction's index)
Step = tuple[int, str | None, int]
_plans: dict[bytes, tuple[Step, ...]] = {}


@dataclass(frozen=True)
class DataLine:
    program_id: str
    #: top-level instruction index and the event's index within it (the indexer's key)
    instruction_index: int
    event_index: int
    parts: tuple[bytes, ...]


def _frame(line: str) -> Frame:
    # the regexes run only on lines that can match them (an invocation ends with "]", an
    # exit with "success" or has "failed")
    invoke = _INVOKE.match(line) if line.endswith("]") else None
    if invoke:
        return invoke.group(1), invoke.group(2) == "1"
    if (line.endswith("success") or "failed" in line) and _EXIT.match(line):
        return "", False
    return None


def _code(frame: Frame) -> int:
    if frame is None:
        return NEITHER
    if not frame[0]:
        return EXIT
    code = _invocation_codes.get(frame)
    if code is None:
        if FIRST_INVOCATION + len(_invocations) >= UNKNOWN:  # out of codes: start again
            forget()
        code = _invocation_codes[frame] = FIRST_INVOCATION + len(_invocations)
        _invocations.append(frame)
    return code


def forget() -> None:
    """Forgets every line and shape remembered."""
    _frames.clear()
    _invocations.clear()
    _invocation_codes.clear()
    _plans.clear()


def _parts(data: str) -> tuple[bytes, ...] | None:
    """A data line's base64 fields, or None if one is not base64 (the line is ignored)."""
    try:
        if " " not in data:  # one field (an event), or none
            return (binascii.a2b_base64(data),) if data else ()
        return tuple(binascii.a2b_base64(p) for p in data.split(" ") if p)
    except ValueError:
        return None


def _shape(lines: list[str]) -> bytes:
    return bytes(map(_frames.get, lines, repeat(UNKNOWN)))


def data_lines(logs: Iterable[str]) -> Iterator[DataLine]:
    lines = logs if isinstance(logs, list) else list(logs)
    plan = _plans.get(_shape(lines))
    if plan is None or not all(lines[at].startswith(_DATA) for at, _, _ in plan):
        # a new shape, or a line not remembered that is no data line (too long to remember)
        return _walk(lines)
    return _planned(lines, plan)


def _planned(lines: list[str], plan: tuple[Step, ...]) -> Iterator[DataLine]:
    """The data lines of a log of a known shape. The event index counts the lines yielded in
    the same top-level instruction (the walk restarts it at each top-level invocation, the
    only place the instruction's index moves)."""
    event_index, current = 0, None
    for at, program, instruction_index in plan:
        if program is None or (parts := _parts(lines[at][len(_DATA):])) is None:
            continue
        if instruction_index != current:
            event_index, current = 0, instruction_index
        yield DataLine(program, instruction_index, event_index, parts)
        event_index += 1


def _walk(lines: list[str]) -> Iterator[DataLine]:
    """The data lines read line by line; the lines' kinds and the log's shape are remembered."""
    stack: list[str] = []
    instruction_index = -1
    event_index = 0
    frames = _frames
    steps: list[Step] = []
    plannable = True  # every line not remembered is a data line
    for at, line in enumerate(lines):
        code = frames.get(line)
        if code is None:
            if line.startswith(_DATA):
                steps.append((at, stack[-1] if stack else None, instruction_index))
                if stack and (parts := _parts(line[len(_DATA):])) is not None:
                    yield DataLine(stack[-1], instruction_index, event_index, parts)
                    event_index += 1
                continue
            frame = _frame(line)
            if len(line) <= FRAME_CACHE_LINE:
                if len(frames) >= FRAME_CACHE:
                    frames.clear()
                frames[line] = _code(frame)
            else:
                plannable = False
        elif code == NEITHER:
            continue
        elif code == EXIT:
            frame = "", False
        else:
            frame = _invocations[code - FIRST_INVOCATION]
        if frame is None:
            continue
        program, top_level = frame
        if program:
            if top_level:
                instruction_index += 1
                event_index = 0
            stack.append(program)
        elif stack:
            stack.pop()
    if plannable:
        shape = _shape(lines)
        # the steps stand for this shape only if its lines not remembered are exactly the
        # data lines (a line forgotten meanwhile, when the memory was full, is not)
        if [at for at, code in enumerate(shape) if code == UNKNOWN] == [at for at, _, _ in steps]:
            if len(_plans) >= PLAN_CACHE:
                _plans.clear()
            _plans[shape] = tuple(steps)
