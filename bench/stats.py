"""Statistics the benchmarks share."""

from __future__ import annotations


def pct(values: list[float], q: float, digits: int = 2) -> float:
    """The q-quantile (nearest rank) of latencies in seconds, in milliseconds."""
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, digits)
