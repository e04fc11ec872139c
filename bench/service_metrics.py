"""A service's Prometheus counters that explain bench_scale's latencies (issue 25), read from
its metrics port: vault cache lookups by result (Redis hits versus chain reads) and the
garbage collector's pauses by generation (`python_gc_pause_seconds`). `diff` of two
readings says what happened in between."""

from __future__ import annotations

import asyncio
import re
import urllib.request
from typing import Any

_SAMPLE = re.compile(r'^(\w+)\{([^}]*)\} ([0-9.eE+-]+)$')
SLOW_PAUSE = "0.005"  # pauses longer than this many seconds are counted as slow
LAG_BOUNDS = ("0.01", "0.05", "0.25")  # the event loop's lag: looks later than these many seconds are counted
HANDLED_BOUNDS = ("0.01", "0.05")  # GetVault's handler (from its start to its answer): calls longer are counted


def parse(text: str) -> dict[str, float]:
    """The readings bench_scale reports, from a /metrics page."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None:
            continue
        name, value = match.group(1), float(match.group(3))
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
        if name == "vault_cache_lookups_total":
            out[f"cache_{labels['result']}"] = out.get(f"cache_{labels['result']}", 0.0) + value
        elif name == "python_gc_pause_seconds_count":
            out[f"gc_gen{labels['generation']}_pauses"] = value
        elif name == "python_gc_pause_seconds_bucket" and labels.get("le") == SLOW_PAUSE:
            out[f"gc_gen{labels['generation']}_fast"] = value
        elif name == "python_gc_pause_seconds_sum":
            out[f"gc_gen{labels['generation']}_seconds"] = value
        elif name == "event_loop_lag_seconds_bucket" and labels.get("le") in LAG_BOUNDS:
            out[f"loop_lag_le_{labels['le']}"] = value
        elif name == "event_loop_lag_seconds_count":
            out["loop_lag_looks"] = value
        elif name == "grpc_server_handling_seconds_bucket" and labels.get("method") == "GetVault" \
                and labels.get("le") in HANDLED_BOUNDS:
            out[f"get_vault_handled_le_{labels['le']}"] = value
        elif name == "grpc_server_handling_seconds_count" and labels.get("method") == "GetVault":
            out["get_vault_handled"] = value
    return out


async def read(port: str) -> dict[str, float]:
    def fetch() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            return str(answer.read().decode())

    return parse(await asyncio.to_thread(fetch))


def diff(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    """Cache hits and misses, per generation the pauses, those over SLOW_PAUSE s and their
    total seconds, GetVault's handled calls and those longer than each of HANDLED_BOUNDS, and
    the event loop's looks and those later than each of LAG_BOUNDS, between two readings."""
    delta = {name: after[name] - before.get(name, 0.0) for name in after}
    out: dict[str, Any] = {"cache_hits": int(delta.get("cache_hit", 0)),
                           "cache_misses": int(delta.get("cache_miss", 0))}
    for generation in range(3):
        pauses = int(delta.get(f"gc_gen{generation}_pauses", 0))
        out[f"gc_gen{generation}"] = {"pauses": pauses,
                                      f"over_{SLOW_PAUSE}_s": pauses - int(delta.get(f"gc_gen{generation}_fast", 0)),
                                      "seconds": round(delta.get(f"gc_gen{generation}_seconds", 0.0), 3)}
    handled = int(delta.get("get_vault_handled", 0))
    out["get_vault_handler"] = {"calls": handled, **{
        f"over_{bound}_s": handled - int(delta.get(f"get_vault_handled_le_{bound}", 0)) for bound in HANDLED_BOUNDS}}
    looks = int(delta.get("loop_lag_looks", 0))
    out["loop_lag"] = {"looks": looks, **{f"later_than_{bound}_s": looks - int(delta.get(f"loop_lag_le_{bound}", 0))
                                          for bound in LAG_BOUNDS}}
    return out
