"""How many WebSockets the gateway holds: in total and per client address, refused before the
upgrade (HTTP 429) beyond either. Each open WebSocket holds one StreamEvents stream to
balance_tracker (multiplexed over the gateway's one HTTP/2 channel)."""

from __future__ import annotations


class SocketLimits:
    def __init__(self, total: int, per_client: int) -> None:
        if total < 1 or per_client < 1:
            raise ValueError("WebSocket limits must be at least 1")
        self.total = total
        self.per_client = per_client
        self._open: dict[str, int] = {}
        self._count = 0

    def admit(self, client: str) -> str | None:
        """Counts a new WebSocket of `client`; or, beyond a limit, says why not (and counts
        nothing)."""
        if self._count >= self.total:
            return f"this gateway holds at most {self.total} WebSockets; try again later"
        if self._open.get(client, 0) >= self.per_client:
            return f"a client may hold at most {self.per_client} WebSockets; close one first"
        self._open[client] = self._open.get(client, 0) + 1
        self._count += 1
        return None

    def release(self, client: str) -> None:
        left = self._open.get(client, 0) - 1
        if left > 0:
            self._open[client] = left
        else:
            self._open.pop(client, None)
        self._count = max(0, self._count - 1)

    def __len__(self) -> int:
        return self._count
