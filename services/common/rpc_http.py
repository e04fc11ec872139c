"""solana-py's AsyncClient over aiohttp instead of httpx.

solana-py's typed requests and responses stay as they are; only the transport changes.
httpx cost about 0.8 ms more CPU per JSON-RPC call than aiohttp on these machines (1.3 vs
0.5 ms per getSlot against localnet), most of the vault_manager's time under 200 deposits/s
(bench/bench_mesh.py). Transport failures and HTTP error statuses surface as
`RpcTransportError`, a `ConnectionError` (so an `OSError`, which the services already treat
as the RPC being unavailable)."""

from __future__ import annotations

from typing import Any

import aiohttp
from solana.rpc.async_api import AsyncClient
from solana.rpc.async_http_provider import AsyncHTTPProvider
from solana.rpc.commitment import Commitment

_HEADERS = {"Content-Type": "application/json"}


class RpcTransportError(ConnectionError):
    """The RPC endpoint could not be reached or answered with an HTTP error."""


class _Response:
    """The two things solana-py reads from an httpx response."""

    def __init__(self, status: int, text: str) -> None:
        self.status = status
        self.text = text

    def raise_for_status(self) -> None:
        if self.status >= 400:
            raise RpcTransportError(f"HTTP {self.status}: {self.text[:200]}")


class AiohttpProvider(AsyncHTTPProvider):
    """AsyncHTTPProvider whose requests go through one aiohttp session (keep-alive pool)."""

    def __init__(self, endpoint: str, timeout: float | None = None) -> None:
        super().__init__(endpoint, timeout=timeout, http2=False)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._aiohttp: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        if self._aiohttp is None or self._aiohttp.closed:
            self._aiohttp = aiohttp.ClientSession(timeout=self._timeout, connector=aiohttp.TCPConnector(limit=64))
        return self._aiohttp

    async def _post_request(self, content: str, headers: dict[str, str]) -> Any:
        try:
            async with self._session().post(self.endpoint_uri, data=content.encode(),
                                            headers=headers or _HEADERS) as response:
                return _Response(response.status, await response.text())
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise RpcTransportError(f"{type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        if self._aiohttp is not None:
            await self._aiohttp.close()
        await super().close()


def rpc_client(url: str, commitment: str | Commitment | None = None, timeout: float | None = 10) -> AsyncClient:
    """An AsyncClient for `url` whose HTTP transport is aiohttp."""
    client = AsyncClient(url, commitment=Commitment(commitment) if commitment else None, timeout=timeout)
    client._provider = AiohttpProvider(url, timeout=timeout)  # the one transport hook solana-py offers
    return client
