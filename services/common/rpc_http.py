"""solana-py's AsyncClient over the services' own keep-alive HTTP/1.1 client
(`http_client.py`) instead of httpx.

solana-py's typed requests and responses stay as they are; only the transport changes.
httpx cost about 0.8 ms more CPU per JSON-RPC call than aiohttp on these machines, and
aiohttp about 0.2-0.4 ms more than `HttpClient` (its module docstring has the numbers).
Transport failures and HTTP error statuses surface as `RpcTransportError`, a
`ConnectionError` (so an `OSError`, which the services already treat as the RPC being
unavailable)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from solana.rpc.async_api import AsyncClient
from solana.rpc.async_http_provider import AsyncHTTPProvider
from solana.rpc.commitment import Commitment
from solders.rpc.requests import Body
from solders.rpc.responses import batch_from_json

from services.common.http_client import HttpClient, HttpTransportError


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


async def post(http: HttpClient, content: str) -> _Response:
    """One JSON-RPC POST; transport failures as `RpcTransportError`."""
    try:
        response = await http.post(content.encode())
    except HttpTransportError as exc:
        raise RpcTransportError(str(exc)) from exc
    return _Response(response.status, response.body.decode("utf-8", errors="replace"))


async def call_batch(http: HttpClient, requests: Sequence[Body], parsers: Sequence[type[Any]]) -> list[Any]:
    """Several JSON-RPC requests in one round trip (a JSON-RPC batch; one request goes out
    alone). Each request needs its own id; each result is the parsed response, or the RPC
    error object (e.g. a preflight failure) for that request alone. A batch the endpoint
    refuses as a whole raises `RpcTransportError`."""
    single = len(requests) == 1
    # joined here: solders' batch_to_json took about 270 us for two sendTransaction requests
    response = await post(http, requests[0].to_json() if single else f"[{','.join(r.to_json() for r in requests)}]")
    response.raise_for_status()
    text = response.text
    if single:
        return [_parsed(parsers[0].from_json, text)]
    try:
        answers = json.loads(text)
    except ValueError as exc:
        raise RpcTransportError(f"the RPC answered a batch with invalid JSON: {text[:200]}") from exc
    if not isinstance(answers, list) or len(answers) != len(requests):
        raise RpcTransportError(f"the RPC refused a batch of {len(requests)} requests: {text[:200]} "
                                "(RPC_MAX_BATCH=1 sends every request alone)")
    ids = [answer.get("id") if isinstance(answer, dict) else None for answer in answers]
    wanted = [request.id for request in requests]
    if ids != wanted:  # answers may come in any order: put them in the requests' order
        by_id = {i: answer for i, answer in zip(ids, answers, strict=True)}
        if sorted(by_id, key=str) != sorted(wanted, key=str):
            raise RpcTransportError(f"the RPC's batch answer names ids {ids}, not {wanted}")
        text = json.dumps([by_id[i] for i in wanted])
    return list(_parsed(lambda t: batch_from_json(t, list(parsers)), text))


def _parsed(parse: Callable[[str], Any], text: str) -> Any:
    try:
        return parse(text)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # solders panics on some malformed answers (pyo3's PanicException)
        raise RpcTransportError(f"the RPC's answer could not be read ({exc}): {text[:200]}") from exc


class Http1Provider(AsyncHTTPProvider):
    """AsyncHTTPProvider whose requests go through one `HttpClient` (a keep-alive pool)."""

    def __init__(self, endpoint: str, timeout: float | None = None, http: HttpClient | None = None) -> None:
        super().__init__(endpoint, timeout=timeout, http2=False)
        self._http = http or HttpClient(endpoint, timeout=timeout)

    async def _post_request(self, content: str, headers: dict[str, str]) -> Any:
        # every request solana-py makes is a JSON body, the client's fixed Content-Type
        return await post(self._http, content)

    async def close(self) -> None:
        await self._http.close()
        await super().close()


def rpc_client(url: str, commitment: str | Commitment | None = None, timeout: float | None = 10,
               http: HttpClient | None = None) -> AsyncClient:
    """An AsyncClient for `url` whose HTTP transport is `http` (a new `HttpClient` if None)."""
    client = AsyncClient(url, commitment=Commitment(commitment) if commitment else None, timeout=timeout)
    client._provider = Http1Provider(url, timeout=timeout, http=http)  # the one transport hook solana-py offers
    return client
