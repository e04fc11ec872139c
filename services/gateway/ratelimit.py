"""Per-client token buckets, bounded: at most `max_clients` buckets, the least recently
seen client's dropped first (a dropped client starts again with a full bucket)."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field


@dataclass
class RateLimiter:
    rate_per_second: float
    burst: float
    max_clients: int = 100_000
    _buckets: OrderedDict[str, tuple[float, float]] = field(default_factory=OrderedDict)  # client -> (tokens, at)

    def allow(self, client: str) -> float:
        """0.0 when allowed; otherwise the seconds to wait."""
        now = time.monotonic()
        buckets = self._buckets
        tokens, updated = buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - updated) * self.rate_per_second)
        allowed = tokens >= 1.0
        buckets[client] = (tokens - 1.0 if allowed else tokens, now)
        buckets.move_to_end(client)
        while len(buckets) > self.max_clients:
            buckets.popitem(last=False)
        return 0.0 if allowed else (1.0 - tokens) / self.rate_per_second

    def __len__(self) -> int:
        return len(self._buckets)
