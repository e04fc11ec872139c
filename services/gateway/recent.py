"""The last N event ids a WebSocket connection delivered: an event replayed from history
and also published live while the replay ran goes out once, and a connection that stays
open for months remembers a bounded number of ids, not every one it ever sent."""

from __future__ import annotations

from collections import OrderedDict


class RecentIds:
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, event_id: str) -> bool:
        """Records `event_id`; False if it is among the last `limit` recorded."""
        if event_id in self._ids:
            return False
        self._ids[event_id] = None
        if len(self._ids) > self.limit:
            self._ids.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._ids)
