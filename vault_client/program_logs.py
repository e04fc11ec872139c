"""Program log parsing: which program emitted which `Program data:` line.

Logs interleave the frames of nested invocations (`Program X invoke [n]` ...
`Program X success`/`failed`); an event belongs to the program on top of that stack,
so events a CPI'd program emits are never attributed to its caller.

Most lines of a transaction's log repeat from one transaction to the next (`Program
Tokenkeg... invoke [2]`, `... success`, a program's fixed messages): what each line is gets
remembered (FRAME_CACHE lines, none longer than FRAME_CACHE_LINE), so a backfill matches a
line's regular expressions once, not once per transaction (they were most of a backfill's
decoding time, cProfile)."""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

_INVOKE = re.compile(r"^Program (\w+) invoke \[(\d+)\]$")
_EXIT = re.compile(r"^Program (\w+) (success|failed.*)$")
_DATA = "Program data: "
FRAME_CACHE = 4_096  # lines remembered (all forgotten at once when full)
FRAME_CACHE_LINE = 128  # the longest line remembered (an invocation's is about 60 characters)
# a line -> (program invoked, whether at the top level) / ("", False) for an exit / None: neither
Frame = tuple[str, bool] | None
_frames: dict[str, Frame] = {}
_UNSEEN: Frame = ("", True)  # a line not remembered (no line is this)


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


def _parts(data: str) -> tuple[bytes, ...] | None:
    """A data line's base64 fields, or None if one is not base64 (the line is ignored)."""
    try:
        return tuple(binascii.a2b_base64(p) for p in data.split(" ") if p)
    except ValueError:
        return None


def data_lines(logs: Iterable[str]) -> Iterator[DataLine]:
    stack: list[str] = []
    instruction_index = -1
    event_index = 0
    frames = _frames
    for line in logs:
        frame = frames.get(line, _UNSEEN)
        if frame is _UNSEEN:
            if line.startswith(_DATA):
                if stack and (parts := _parts(line[len(_DATA):])) is not None:
                    yield DataLine(stack[-1], instruction_index, event_index, parts)
                    event_index += 1
                continue
            frame = _frame(line)
            if len(line) <= FRAME_CACHE_LINE:
                if len(frames) >= FRAME_CACHE:
                    frames.clear()
                frames[line] = frame
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
