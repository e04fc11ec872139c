"""Program log parsing: which program emitted which `Program data:` line.

Logs interleave the frames of nested invocations (`Program X invoke [n]` ...
`Program X success`/`failed`); an event belongs to the program on top of that stack,
so events a CPI'd program emits are never attributed to its caller."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

_INVOKE = re.compile(r"^Program (\w+) invoke \[(\d+)\]$")
_EXIT = re.compile(r"^Program (\w+) (success|failed.*)$")
_DATA = "Program data: "


@dataclass(frozen=True)
class DataLine:
    program_id: str
    #: top-level instruction index and the event's index within it (the indexer's key)
    instruction_index: int
    event_index: int
    parts: tuple[bytes, ...]


def data_lines(logs: Iterable[str]) -> Iterator[DataLine]:
    stack: list[str] = []
    instruction_index = -1
    event_index = 0
    for line in logs:
        # most lines are neither: the regexes run only on lines that can match them (an
        # invocation ends with "]", an exit with "success" or has "failed"): matching every
        # line against both was most of a backfill's decoding time (cProfile)
        invoke = _INVOKE.match(line) if line.endswith("]") else None
        if invoke:
            if invoke.group(2) == "1":
                instruction_index += 1
                event_index = 0
            stack.append(invoke.group(1))
            continue
        if (line.endswith("success") or "failed" in line) and _EXIT.match(line) and stack:
            stack.pop()
            continue
        if line.startswith(_DATA) and stack:
            try:
                parts = tuple(base64.b64decode(p) for p in line[len(_DATA):].split(" ") if p)
            except ValueError:
                continue
            yield DataLine(stack[-1], instruction_index, event_index, parts)
            event_index += 1
