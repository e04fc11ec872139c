"""The services' view of the chain, over solana-py's AsyncClient and the standard Solana
JSON-RPC API (localnet or a real cluster: only the URL differs)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import base58
from solana.exceptions import SolanaRpcException
from solana.rpc.commitment import Commitment
from solana.rpc.core import RPCException
from solana.rpc.models import MemcmpOpts
from solders.account import Account
from solders.commitment_config import CommitmentLevel
from solders.hash import Hash
from solders.pubkey import Pubkey
from solders.rpc.config import RpcSendTransactionConfig, RpcSignatureStatusConfig
from solders.rpc.requests import Body, GetSignatureStatuses, SendRawTransaction
from solders.rpc.responses import GetSignatureStatusesResp, RPCError, SendTransactionResp
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from services.common.coalesce import Coalescer
from services.common.errors import ServiceError, program_error, unavailable
from services.common.metrics import CHAIN_CALLS
from vault_client import redact, spl_token
from vault_client.config import Settings
from vault_client.http_client import HttpClient
from vault_client.idl import discriminator
from vault_client.rpc_http import call_batch, rpc_client
from vault_client.vault_program import VAULT_SIZE as VAULT_SIZE
from vault_client.vault_program import Authority, Vault, VaultProgram

CLOCK_SYSVAR = Pubkey.from_string("SysvarC1ock11111111111111111111111111111111")
MAX_STATUSES = 256  # getSignatureStatuses' limit per call
Status = tuple[int, str, Any]  # (slot, confirmation status, error)


@dataclass(frozen=True)
class VaultState:
    address: Pubkey
    vault: Vault
    slot: int


@dataclass(frozen=True)
class Listed:
    """One transaction of a getSignaturesForAddress page."""

    slot: int
    signature: str
    succeeded: bool


@dataclass(frozen=True)
class Simulation:
    units: int
    err: Any
    logs: list[str]


class ChainClient:
    """Typed calls to the cluster's JSON-RPC. Transactions sent and signature statuses asked
    for by concurrent callers share round trips (`coalesce.py`): sends as one JSON-RPC batch
    of up to `max_batch` requests (1: each alone, for an endpoint that takes no batches),
    statuses as one getSignatureStatuses of up to 256 signatures. `submit` sends and asks
    for the status in the same batch (one round trip where there were two)."""

    def __init__(self, rpc_url: str, program: VaultProgram, service: str, commitment: str = "confirmed",
                 max_batch: int = 100) -> None:
        self.rpc_url = rpc_url
        self.program = program
        self.service = service
        self.commitment = Commitment(commitment)
        self.http = HttpClient(rpc_url, timeout=10)
        self.client = rpc_client(rpc_url, self.commitment, timeout=10, http=self.http)
        self._send_config = RpcSendTransactionConfig(skip_preflight=False,
                                                     preflight_commitment=CommitmentLevel.from_string(commitment))
        self._sends: Coalescer[VersionedTransaction, Signature] = Coalescer(self._send_batch, max_batch)
        self._statuses: Coalescer[Signature, Status | None] = Coalescer(self._status_batch, MAX_STATUSES)
        # n sends and the one getSignatureStatuses naming them, at most max_batch requests
        self._submits: Coalescer[VersionedTransaction, Status | None] | None = (
            Coalescer(self._submit_batch, min(max_batch - 1, MAX_STATUSES)) if max_batch > 1 else None)

    @classmethod
    def for_settings(cls, settings: Settings) -> ChainClient:
        return cls(settings.solana_rpc_url, settings.program, settings.service, settings.commitment,
                   settings.rpc_max_batch)

    async def close(self) -> None:
        await self.client.close()  # closes `http` too

    async def _call(self, method: str, coro: Any) -> Any:
        try:
            result = await coro
        except (SolanaRpcException, OSError) as exc:
            CHAIN_CALLS.labels(self.service, method, "unavailable").inc()
            raise self._unavailable(method, exc) from exc
        except RPCException:
            CHAIN_CALLS.labels(self.service, method, "error").inc()
            raise
        CHAIN_CALLS.labels(self.service, method, "ok").inc()
        return result

    @property
    def shown_url(self) -> str:
        """The RPC's URL as errors and logs may show it (no credentials, path or query)."""
        return redact.url(self.rpc_url)

    def _unavailable(self, method: str, exc: BaseException) -> ServiceError:
        detail = redact.scrub(str(exc), self.rpc_url)
        return unavailable(f"the Solana RPC at {self.shown_url} did not answer {method}: {detail}")

    async def vault(self, owner: Pubkey, commitment: str | None = None) -> VaultState | None:
        """A vault as the node holds it at the client's commitment (or `commitment`)."""
        address = self.program.vault(owner)
        response = await self._call("getAccountInfo", self.client.get_account_info(
            address, commitment=Commitment(commitment) if commitment else None))
        account = response.value
        if account is None or account.owner != self.program.program_id:
            return None
        return VaultState(address, Vault.decode(bytes(account.data)), response.context.slot)

    async def vaults_of(self, owners: list[Pubkey], commitment: str | None = None) -> list[VaultState | None]:
        """Several owners' vaults in one getMultipleAccounts, read at one slot."""
        response = await self._call("getMultipleAccounts", self.client.get_multiple_accounts(
            [self.program.vault(owner) for owner in owners], commitment=Commitment(commitment) if commitment else None))
        slot = response.context.slot
        return [VaultState(self.program.vault(owner), Vault.decode(bytes(account.data)), slot)
                if account is not None and account.owner == self.program.program_id else None
                for owner, account in zip(owners, response.value, strict=True)]

    async def accounts(self, addresses: list[Pubkey]) -> tuple[int, list[Account | None]]:
        """Up to 100 accounts in one getMultipleAccounts, all as of one slot (returned with them)."""
        response = await self._call("getMultipleAccounts", self.client.get_multiple_accounts(addresses,
                                                                                             encoding="base64"))
        return response.context.slot, list(response.value)

    async def newest_transactions(self, address: Pubkey, limit: int = 10) -> list[Listed]:
        """The newest `limit` transactions naming `address` (failed ones too), newest first, at
        the client's commitment (at least confirmed: history serves no less)."""
        commitment = Commitment("confirmed") if self.commitment == "processed" else self.commitment
        page = (await self._call("getSignaturesForAddress", self.client.get_signatures_for_address(
            address, limit=limit, commitment=commitment))).value
        return [Listed(s.slot, str(s.signature), s.err is None) for s in page]

    async def vaults(self) -> list[VaultState]:
        response = await self._call("getProgramAccounts", self.client.get_program_accounts(
            self.program.program_id, encoding="base64",
            filters=[VAULT_SIZE, MemcmpOpts(offset=0, bytes=_b58(discriminator("account", "CollateralVault")))]))
        slot = await self.slot()
        return [VaultState(item.pubkey, Vault.decode(bytes(item.account.data)), slot) for item in response.value]

    async def genesis_hash(self) -> str:
        """The cluster's genesis hash: which chain this is."""
        return str((await self._call("getGenesisHash", self.client.get_genesis_hash())).value)

    async def account(self, address: Pubkey) -> Account | None:
        """An account as the cluster holds it (None if it does not exist)."""
        return (await self._call("getAccountInfo", self.client.get_account_info(address))).value

    async def authority(self) -> Authority | None:
        response = await self._call("getAccountInfo", self.client.get_account_info(self.program.authority))
        if response.value is None:
            return None
        return Authority.decode(bytes(response.value.data))

    async def unix_time(self) -> int:
        """The cluster's Clock `unix_timestamp`: the time the program compares a queued
        change's eta with."""
        account = await self.account(CLOCK_SYSVAR)
        if account is None or len(account.data) < 40:
            raise unavailable("the cluster answered no Clock sysvar")
        return int(struct.unpack_from("<q", bytes(account.data), 32)[0])

    async def token_amount(self, account: Pubkey) -> int | None:
        response = await self._call("getAccountInfo", self.client.get_account_info(account))
        if response.value is None or response.value.owner != spl_token.TOKEN_PROGRAM_ID:
            return None
        return spl_token.TokenAccount.decode(bytes(response.value.data)).amount

    async def slot(self) -> int:
        return int((await self._call("getSlot", self.client.get_slot(self.commitment))).value)

    async def block_height(self) -> int:
        return int((await self._call("getBlockHeight", self.client.get_block_height(self.commitment))).value)

    async def statuses_in_history(self, signatures: list[Signature]) -> list[Status | None]:
        """Like `status`, for signatures that may be older than the node's recent status
        cache (searchTransactionHistory)."""
        response = await self._call("getSignatureStatuses", self.client.get_signature_statuses(
            signatures, search_transaction_history=True))
        return [_status(value) for value in response.value]

    async def transaction_logs(self, signature: Signature) -> list[str]:
        """The log of a transaction that landed ([] when the node has none)."""
        response = await self._call("getTransaction", self.client.get_transaction(
            signature, max_supported_transaction_version=0))
        meta = response.value.transaction.meta if response.value is not None else None
        return list(meta.log_messages or []) if meta is not None else []

    async def latest_blockhash(self) -> tuple[Hash, int]:
        value = (await self._call("getLatestBlockhash", self.client.get_latest_blockhash(self.commitment))).value
        return value.blockhash, value.last_valid_block_height

    async def simulate(self, tx: VersionedTransaction) -> Simulation:
        value = (await self._call("simulateTransaction", self.client.simulate_transaction(tx, sig_verify=False))).value
        return Simulation(int(value.units_consumed or 0), value.err, list(value.logs or []))

    async def send(self, tx: VersionedTransaction) -> Signature:
        """Sends with preflight at the client's commitment; a refusal is a `ServiceError`."""
        return await self._sends(tx)

    async def status(self, signature: Signature) -> Status | None:
        """(slot, confirmation status, error) of a signature, or None if unknown."""
        return await self._statuses(signature)

    async def submit(self, tx: VersionedTransaction) -> Status | None:
        """Sends like `send` and returns the transaction's status as the node knew it just
        after (None if not yet known: a cluster's node forwards a transaction to the leader
        and answers at once, localnet executes it first). The send and the status lookup
        share one JSON-RPC batch; with RPC_MAX_BATCH=1 they are two calls."""
        if self._submits is None:
            await self.send(tx)
            return await self.status(tx.signatures[0])
        return await self._submits(tx)

    async def _send_batch(self, txs: list[VersionedTransaction]) -> list[Signature | BaseException]:
        return self._sent(await self._batch(txs, with_statuses=False))

    async def _submit_batch(self, txs: list[VersionedTransaction]) -> list[Status | BaseException | None]:
        answers = await self._batch(txs, with_statuses=True)
        try:
            statuses = self._statuses_of(answers[-1], len(txs), count_call=True)
        except ServiceError:  # the sends went out: their statuses are asked for again by `status`
            statuses = [None] * len(txs)
        return [status if not isinstance(sent, BaseException) else sent
                for sent, status in zip(self._sent(answers[:-1]), statuses, strict=True)]

    async def _batch(self, txs: list[VersionedTransaction], with_statuses: bool) -> list[Any]:
        """sendTransaction for each of `txs` (ids 0..n-1), then, `with_statuses`, one
        getSignatureStatuses naming them all (id n), in one batch; an unreachable node fails
        them all."""
        requests: list[Body] = [SendRawTransaction(bytes(tx), self._send_config, i) for i, tx in enumerate(txs)]
        parsers: list[type[Any]] = [SendTransactionResp] * len(txs)
        if with_statuses:
            requests.append(GetSignatureStatuses([tx.signatures[0] for tx in txs], RpcSignatureStatusConfig(False),
                                                 len(txs)))
            parsers.append(GetSignatureStatusesResp)
        try:
            return await call_batch(self.http, requests, parsers)
        except OSError as exc:
            CHAIN_CALLS.labels(self.service, "sendTransaction", "unavailable").inc(len(txs))
            if with_statuses:
                CHAIN_CALLS.labels(self.service, "getSignatureStatuses", "unavailable").inc()
            raise self._unavailable("sendTransaction", exc) from exc

    def _sent(self, answers: list[Any]) -> list[Signature | BaseException]:
        out: list[Signature | BaseException] = []
        for answer in answers:  # each request counts, whether batched or not
            if isinstance(answer, SendTransactionResp):
                CHAIN_CALLS.labels(self.service, "sendTransaction", "ok").inc()
                out.append(answer.value)
            else:
                CHAIN_CALLS.labels(self.service, "sendTransaction", "error").inc()
                out.append(_rpc_failure(answer))
        return out

    async def _status_batch(self, signatures: list[Signature]) -> list[Status | BaseException | None]:
        request = GetSignatureStatuses(signatures, RpcSignatureStatusConfig(False))
        [answer] = await self._call("getSignatureStatuses",
                                    call_batch(self.http, [request], [GetSignatureStatusesResp]))
        return self._statuses_of(answer, len(signatures), count_call=False)

    def _statuses_of(self, answer: Any, count: int, count_call: bool) -> list[Status | BaseException | None]:
        """The statuses in a getSignatureStatuses answer for `count` signatures (`count_call`:
        the call is counted in the calls metric here, its caller has not)."""
        if count_call:
            CHAIN_CALLS.labels(self.service, "getSignatureStatuses",
                               "ok" if isinstance(answer, GetSignatureStatusesResp) else "error").inc()
        if not isinstance(answer, GetSignatureStatusesResp):
            raise unavailable(f"the Solana RPC at {self.shown_url} refused getSignatureStatuses: "
                              f"{redact.scrub(str(answer), self.rpc_url)}")
        if len(answer.value) != count:
            raise unavailable(f"the Solana RPC at {self.shown_url} answered {len(answer.value)} statuses "
                              f"for {count} signatures")
        return [_status(value) for value in answer.value]


def _status(value: Any) -> Status | None:
    """One entry of a getSignatureStatuses answer as (slot, confirmation status, error)."""
    if value is None:
        return None
    status = str(value.confirmation_status).rsplit(".", 1)[-1].lower() if value.confirmation_status else "processed"
    return value.slot, status, value.err


def _b58(data: bytes) -> str:
    return base58.b58encode(data).decode()


def _rpc_failure(error: RPCError | str) -> ServiceError:
    """A JSON-RPC error as the services' status: a failed preflight by its program error."""
    data = getattr(error, "data", None)
    err = getattr(data, "err", None)
    logs = getattr(data, "logs", None)
    message = getattr(error, "message", str(error))
    return program_error(err if err is not None else message, logs)
