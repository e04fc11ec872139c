"""The services' typed Solana JSON-RPC client: solders' typed requests and responses over
the services' own keep-alive HTTP/1.1 client (`http_client.py`).

solana-py's AsyncClient takes no transport and no provider (0.41: it builds its own
`AsyncHTTPProvider` over httpx), so plugging ours in meant overriding a private method and
assigning `client._provider`. Instead `RpcClient` builds the same requests solana-py builds
(solders' `GetSlot`, `GetAccountInfo`, ... with the same defaults: base64 accounts, the
client's commitment, else finalized) for the calls the services make, and parses the answers
with solders' response types. JSON-RPC errors raise solana-py's public `RPCException`, as
AsyncClient's do. httpx cost about 0.8 ms more CPU per JSON-RPC call than aiohttp on these
machines, and aiohttp about 0.2-0.4 ms more than `HttpClient` (bench/bench_rpc_client.py;
its module docstring has the numbers). Transport failures and HTTP error statuses surface as
`RpcTransportError`, a `ConnectionError` (so an `OSError`, which the services already treat
as the RPC being unavailable)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import cached_property
from types import TracebackType
from typing import Any, Protocol, TypeVar

from solana.rpc.commitment import Commitment, Confirmed, Finalized, Processed
from solana.rpc.core import RPCException
from solana.rpc.models import MemcmpOpts
from solders.account_decoder import UiAccountEncoding
from solders.commitment_config import CommitmentLevel
from solders.pubkey import Pubkey
from solders.rpc.config import (
    RpcAccountInfoConfig,
    RpcContextConfig,
    RpcProgramAccountsConfig,
    RpcSignaturesForAddressConfig,
    RpcSignatureStatusConfig,
    RpcSimulateTransactionConfig,
    RpcTransactionConfig,
)
from solders.rpc.filter import Memcmp
from solders.rpc.requests import (
    Body,
    GetAccountInfo,
    GetBlockHeight,
    GetBlockTime,
    GetGenesisHash,
    GetLatestBlockhash,
    GetMultipleAccounts,
    GetProgramAccounts,
    GetSignaturesForAddress,
    GetSignatureStatuses,
    GetSlot,
    GetTransaction,
    SimulateVersionedTransaction,
)
from solders.rpc.responses import (
    GetAccountInfoResp,
    GetBlockHeightResp,
    GetBlockTimeResp,
    GetGenesisHashResp,
    GetLatestBlockhashResp,
    GetMultipleAccountsResp,
    GetProgramAccountsResp,
    GetSignaturesForAddressResp,
    GetSignatureStatusesResp,
    GetSlotResp,
    GetTransactionResp,
    RPCError,
    SimulateTransactionResp,
    batch_from_json,
)
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from solders.transaction_status import UiTransactionEncoding

from vault_client.http_client import HttpClient, HttpTransportError


class RpcTransportError(ConnectionError):
    """The RPC endpoint could not be reached or answered with an HTTP error."""


class _Response:
    """An HTTP answer's status, its body as it came, and its text (decoded when first read:
    a parser that reads bytes needs no decoded copy)."""

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body

    @cached_property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def raise_for_status(self) -> None:
        if self.status >= 400:
            raise RpcTransportError(f"HTTP {self.status}: {self.text[:200]}")


async def post(http: HttpClient, content: str | bytes) -> _Response:
    """One JSON-RPC POST (a body as text, or as bytes already encoded); transport failures as
    `RpcTransportError`."""
    try:
        response = await http.post(content.encode() if isinstance(content, str) else content)
    except HttpTransportError as exc:
        raise RpcTransportError(str(exc)) from exc
    return _Response(response.status, response.body)


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


_LEVELS = {Processed: CommitmentLevel.Processed, Confirmed: CommitmentLevel.Confirmed,
           Finalized: CommitmentLevel.Finalized}
_ENCODINGS = {"base64": UiAccountEncoding.Base64, "base58": UiAccountEncoding.Base58,
              "base64+zstd": UiAccountEncoding.Base64Zstd, "jsonParsed": UiAccountEncoding.JsonParsed}
_RPC_ERRORS = RPCError.__args__  # type: ignore[attr-defined]  # the error answers solders parses into
T = TypeVar("T")


class SolanaRpc(Protocol):
    """The reads the indexer makes: `RpcClient`, or solana-py's AsyncClient where a test
    holds one."""

    async def get_slot(self, commitment: Commitment | None = None) -> GetSlotResp: ...

    async def get_account_info(self, pubkey: Pubkey, commitment: Commitment | None = None,
                               encoding: str = "base64") -> GetAccountInfoResp: ...

    async def get_signature_statuses(self, signatures: list[Signature], search_transaction_history: bool = False
                                     ) -> GetSignatureStatusesResp: ...

    async def get_signatures_for_address(self, account: Pubkey, before: Signature | None = None,
                                         until: Signature | None = None, limit: int | None = None,
                                         commitment: Commitment | None = None) -> GetSignaturesForAddressResp: ...

    async def get_transaction(self, tx_sig: Signature, encoding: str = "json", commitment: Commitment | None = None,
                              max_supported_transaction_version: int | None = None) -> GetTransactionResp: ...


class RpcClient:
    """Typed JSON-RPC calls to one endpoint over one `HttpClient` (a keep-alive pool): the
    calls the services make, named and defaulted as solana-py's AsyncClient names them."""

    def __init__(self, url: str, commitment: Commitment | None = None, timeout: float | None = 10,
                 http: HttpClient | None = None) -> None:
        self.url = url
        self.commitment = commitment or Finalized
        self.http = http or HttpClient(url, timeout=timeout)

    async def __aenter__(self) -> RpcClient:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        await self.http.close()

    async def request(self, body: Body, parser: type[T]) -> T:
        """One typed request; a JSON-RPC error answer raises `RPCException`."""
        response = await post(self.http, body.to_json())
        response.raise_for_status()
        parsed = _parsed(parser.from_json, response.text)  # type: ignore[attr-defined]
        if isinstance(parsed, _RPC_ERRORS):
            raise RPCException(parsed)
        return parsed

    def _level(self, commitment: Commitment | None) -> CommitmentLevel:
        return _LEVELS[commitment or self.commitment]

    def _accounts(self, commitment: Commitment | None, encoding: str = "base64") -> RpcAccountInfoConfig:
        return RpcAccountInfoConfig(encoding=_ENCODINGS[encoding], commitment=self._level(commitment))

    async def get_slot(self, commitment: Commitment | None = None) -> GetSlotResp:
        return await self.request(GetSlot(RpcContextConfig(self._level(commitment))), GetSlotResp)

    async def get_block_height(self, commitment: Commitment | None = None) -> GetBlockHeightResp:
        return await self.request(GetBlockHeight(RpcContextConfig(self._level(commitment))), GetBlockHeightResp)

    async def get_block_time(self, slot: int) -> GetBlockTimeResp:
        return await self.request(GetBlockTime(slot), GetBlockTimeResp)

    async def get_genesis_hash(self) -> GetGenesisHashResp:
        return await self.request(GetGenesisHash(), GetGenesisHashResp)

    async def get_latest_blockhash(self, commitment: Commitment | None = None) -> GetLatestBlockhashResp:
        return await self.request(GetLatestBlockhash(RpcContextConfig(self._level(commitment))),
                                  GetLatestBlockhashResp)

    async def get_account_info(self, pubkey: Pubkey, commitment: Commitment | None = None,
                               encoding: str = "base64") -> GetAccountInfoResp:
        return await self.request(GetAccountInfo(pubkey, self._accounts(commitment, encoding)), GetAccountInfoResp)

    async def get_multiple_accounts(self, pubkeys: list[Pubkey], commitment: Commitment | None = None,
                                    encoding: str = "base64") -> GetMultipleAccountsResp:
        return await self.request(GetMultipleAccounts(pubkeys, self._accounts(commitment, encoding)),
                                  GetMultipleAccountsResp)

    async def get_program_accounts(self, pubkey: Pubkey, commitment: Commitment | None = None,
                                   encoding: str = "base64", filters: Sequence[int | MemcmpOpts] | None = None
                                   ) -> GetProgramAccountsResp:
        chosen = None if filters is None else [f if isinstance(f, int) else Memcmp(offset=f.offset, bytes_=f.bytes)
                                               for f in filters]
        config = RpcProgramAccountsConfig(self._accounts(commitment, encoding), chosen)
        return await self.request(GetProgramAccounts(pubkey, config), GetProgramAccountsResp)

    async def get_signature_statuses(self, signatures: list[Signature], search_transaction_history: bool = False
                                     ) -> GetSignatureStatusesResp:
        return await self.request(GetSignatureStatuses(signatures, RpcSignatureStatusConfig(
            search_transaction_history)), GetSignatureStatusesResp)

    async def get_signatures_for_address(self, account: Pubkey, before: Signature | None = None,
                                         until: Signature | None = None, limit: int | None = None,
                                         commitment: Commitment | None = None) -> GetSignaturesForAddressResp:
        config = RpcSignaturesForAddressConfig(before=before, until=until, limit=limit,
                                               commitment=self._level(commitment))
        return await self.request(GetSignaturesForAddress(account, config), GetSignaturesForAddressResp)

    async def get_transaction(self, tx_sig: Signature, encoding: str = "json", commitment: Commitment | None = None,
                              max_supported_transaction_version: int | None = None) -> GetTransactionResp:
        config = RpcTransactionConfig(encoding=UiTransactionEncoding.Json if encoding == "json"
                                      else UiTransactionEncoding.Base64, commitment=self._level(commitment),
                                      max_supported_transaction_version=max_supported_transaction_version)
        return await self.request(GetTransaction(tx_sig, config), GetTransactionResp)

    async def simulate_transaction(self, tx: VersionedTransaction, sig_verify: bool = False,
                                   commitment: Commitment | None = None) -> SimulateTransactionResp:
        config = RpcSimulateTransactionConfig(sig_verify=sig_verify, commitment=self._level(commitment))
        return await self.request(SimulateVersionedTransaction(tx, config), SimulateTransactionResp)


def rpc_client(url: str, commitment: str | Commitment | None = None, timeout: float | None = 10,
               http: HttpClient | None = None) -> RpcClient:
    """A typed JSON-RPC client for `url` whose HTTP transport is `http` (a new `HttpClient`
    if None)."""
    return RpcClient(url, Commitment(commitment) if commitment else None, timeout, http)
