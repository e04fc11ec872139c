"""Per-client token buckets (by remote address)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class RateLimiter:
    rate_per_second: float
    burst: float
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # client -> (tokens, updated)

    def allow(self, client: str) -> float:
        """0.0 when allowed; otherwise the seconds to wait."""
        now = time.monotonic()
        tokens, updated = self._buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - updated) * self.rate_per_second)
        if tokens >= 1.0:
            self._buckets[client] = (tokens - 1.0, now)
            return 0.0
        self._buckets[client] = (tokens, now)
        if len(self._buckets) > 100_000:  # forget idle clients
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60}
        return (1.0 - tokens) / self.rate_per_second
