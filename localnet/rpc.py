"""Solana JSON-RPC 2.0 methods over the Ledger, with a validator's response shapes and
error codes. Every ledger call goes through `Node.call`."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import base58
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from localnet.encoding import EncodingError, encode_account, encode_transaction, ui_amount
from localnet.ledger import Ledger, RpcFailure
from vault_client import spl_token

if TYPE_CHECKING:
    from localnet.node import Node

API_VERSION = "2.2.0"
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL = -32700, -32600, -32601, -32602, -32603

Method = Callable[[list[Any]], Awaitable[Any]]


def invalid(message: str) -> RpcFailure:
    return RpcFailure(INVALID_PARAMS, message)


def param(params: list[Any], index: int, name: str) -> Any:
    if len(params) <= index or params[index] is None:
        raise invalid(f"Invalid params: missing {name}")
    return params[index]


def pubkey(value: Any, name: str = "pubkey") -> Pubkey:
    if not isinstance(value, str):
        raise invalid(f"Invalid param: {name} must be a base-58 string")
    try:
        return Pubkey.from_string(value)
    except ValueError as exc:
        raise invalid(f"Invalid param: {name} {value!r} is not a valid public key") from exc


def config(params: list[Any], index: int) -> dict[str, Any]:
    value = params[index] if len(params) > index else None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid("Invalid params: configuration must be an object")
    return {k: v for k, v in value.items() if v is not None}  # solana-py sends explicit nulls


def decode_transaction(value: Any, encoding: str) -> VersionedTransaction:
    if not isinstance(value, str):
        raise invalid("Invalid params: transaction must be a string")
    try:
        raw = base64.b64decode(value, validate=True) if encoding == "base64" else base58.b58decode(value)
    except ValueError as exc:
        raise invalid(f"invalid transaction: failed to decode {encoding} string") from exc
    try:
        return VersionedTransaction.from_bytes(raw)
    except ValueError as exc:
        raise invalid(f"invalid transaction: failed to deserialize solana_transaction: {exc}") from exc


class _Latest:
    """No commitment applies: the context names the latest slot."""


LATEST = _Latest()


class RpcMethods:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.table: dict[str, Method] = {
            name[len("m_"):]: getattr(self, name) for name in dir(self) if name.startswith("m_")
        }

    def _context(self, ledger: Ledger, commitment: str | _Latest | None = LATEST) -> dict[str, Any]:
        """A response's context: the slot of the state it read (that commitment's slot, as a
        validator answers from that commitment's bank), else the latest slot."""
        slot = ledger.slot if isinstance(commitment, _Latest) else ledger.commitment_slot(commitment)
        return {"apiVersion": API_VERSION, "slot": slot}

    async def _with_context(self, fn: Callable[[Ledger], Any],
                            commitment: str | _Latest | None = LATEST) -> dict[str, Any]:
        def run(ledger: Ledger) -> dict[str, Any]:
            return {"context": self._context(ledger, commitment), "value": fn(ledger)}

        return await self.node.call(run)

    # --- cluster ----------------------------------------------------------------------

    async def m_getHealth(self, params: list[Any]) -> str:
        return "ok"

    async def m_getVersion(self, params: list[Any]) -> dict[str, Any]:
        return {"solana-core": API_VERSION, "feature-set": 0}

    async def m_getGenesisHash(self, params: list[Any]) -> str:
        return await self.node.call(lambda ledger: ledger.genesis_hash)

    async def m_getSlot(self, params: list[Any]) -> int:
        commitment = config(params, 0).get("commitment")
        return await self.node.call(lambda ledger: ledger.commitment_slot(commitment))

    async def m_getBlockHeight(self, params: list[Any]) -> int:
        commitment = config(params, 0).get("commitment")
        return await self.node.call(lambda ledger: ledger.commitment_slot(commitment))

    async def m_getEpochInfo(self, params: list[Any]) -> dict[str, Any]:
        commitment = config(params, 0).get("commitment")

        def run(ledger: Ledger) -> dict[str, Any]:
            slot = ledger.commitment_slot(commitment)
            return {"absoluteSlot": slot, "blockHeight": slot, "epoch": 0, "slotIndex": slot,
                    "slotsInEpoch": 432_000, "transactionCount": ledger.transaction_count}

        return await self.node.call(run)

    async def m_getLatestBlockhash(self, params: list[Any]) -> dict[str, Any]:
        def value(ledger: Ledger) -> dict[str, Any]:
            blockhash, last_valid = ledger.latest_blockhash_info()
            return {"blockhash": blockhash, "lastValidBlockHeight": last_valid}

        return await self._with_context(value)

    async def m_isBlockhashValid(self, params: list[Any]) -> dict[str, Any]:
        blockhash = param(params, 0, "blockhash")
        return await self._with_context(lambda ledger: ledger.blockhash_valid(blockhash))

    async def m_getFeeForMessage(self, params: list[Any]) -> dict[str, Any]:
        raw = param(params, 0, "message")
        try:
            data = base64.b64decode(raw, validate=True)
            message: Message | MessageV0 = (MessageV0.from_bytes(data[1:]) if data[0] & 0x80
                                            else Message.from_bytes(data))
        except (ValueError, IndexError) as exc:
            raise invalid("Invalid params: message is not a base64 serialized message") from exc
        signatures = message.header.num_required_signatures
        blockhash = str(message.recent_blockhash)
        return await self._with_context(lambda ledger: ledger.fee_for(signatures, blockhash))

    async def m_getMinimumBalanceForRentExemption(self, params: list[Any]) -> int:
        size = param(params, 0, "data length")
        if not isinstance(size, int) or size < 0:
            raise invalid("Invalid params: data length must be a non-negative integer")
        return await self.node.call(lambda ledger: ledger.svm.minimum_balance_for_rent_exemption(size))

    # --- accounts ---------------------------------------------------------------------

    def _account(self, ledger: Ledger, key: Pubkey, cfg: dict[str, Any]) -> dict[str, Any] | None:
        account = ledger.get_account(key, cfg.get("commitment"))
        if account is None:
            return None
        try:
            return encode_account(account, cfg.get("encoding", "base58"), cfg.get("dataSlice"), ledger.mint_decimals)
        except EncodingError as exc:
            raise invalid(str(exc)) from exc

    async def m_getBalance(self, params: list[Any]) -> dict[str, Any]:
        key, cfg = pubkey(param(params, 0, "pubkey")), config(params, 1)

        def value(ledger: Ledger) -> int:
            account = ledger.get_account(key, cfg.get("commitment"))
            return account.lamports if account else 0

        return await self._with_context(value, cfg.get("commitment"))

    async def m_getAccountInfo(self, params: list[Any]) -> dict[str, Any]:
        key, cfg = pubkey(param(params, 0, "pubkey")), config(params, 1)
        return await self._with_context(lambda ledger: self._account(ledger, key, cfg), cfg.get("commitment"))

    async def m_getMultipleAccounts(self, params: list[Any]) -> dict[str, Any]:
        raw = param(params, 0, "pubkeys")
        if not isinstance(raw, list) or len(raw) > 100:
            raise invalid("Invalid params: pubkeys must be a list of at most 100 keys")
        keys, cfg = [pubkey(k) for k in raw], config(params, 1)
        return await self._with_context(lambda ledger: [self._account(ledger, k, cfg) for k in keys],
                                        cfg.get("commitment"))

    @staticmethod
    def _matches(data: bytes, filters: list[dict[str, Any]]) -> bool:
        for f in filters:
            if "dataSize" in f:
                if len(data) != f["dataSize"]:
                    return False
            elif "memcmp" in f:
                spec = f["memcmp"]
                offset = int(spec.get("offset", 0))
                try:
                    expected = (base64.b64decode(spec["bytes"]) if spec.get("encoding") == "base64"
                                else base58.b58decode(spec["bytes"]))
                except (ValueError, KeyError) as exc:
                    raise invalid("Invalid params: bad memcmp bytes") from exc
                if data[offset:offset + len(expected)] != expected:
                    return False
            else:
                raise invalid(f"Invalid params: unsupported filter {f}")
        return True

    async def m_getProgramAccounts(self, params: list[Any]) -> Any:
        program, cfg = pubkey(param(params, 0, "program id")), config(params, 1)
        filters = cfg.get("filters", [])

        def run(ledger: Ledger) -> Any:
            out = []
            for key, account in ledger.program_accounts(program, cfg.get("commitment")):
                if self._matches(bytes(account.data), filters):
                    try:
                        encoded = encode_account(account, cfg.get("encoding", "base58"), cfg.get("dataSlice"),
                                                 ledger.mint_decimals)
                    except EncodingError as exc:
                        raise invalid(str(exc)) from exc
                    out.append({"pubkey": str(key), "account": encoded})
            return {"context": self._context(ledger, cfg.get("commitment")), "value": out} if cfg.get(
                "withContext") else out

        return await self.node.call(run)

    async def m_getTokenAccountBalance(self, params: list[Any]) -> dict[str, Any]:
        key, cfg = pubkey(param(params, 0, "pubkey")), config(params, 1)

        def value(ledger: Ledger) -> dict[str, Any]:
            account = ledger.get_account(key, cfg.get("commitment"))
            if account is None or account.owner != spl_token.TOKEN_PROGRAM_ID or len(account.data) != 165:
                raise invalid("Invalid param: not a Token account")
            token = spl_token.TokenAccount.decode(bytes(account.data))
            return ui_amount(token.amount, ledger.mint_decimals(token.mint) or 0)

        return await self._with_context(value, cfg.get("commitment"))

    async def m_getTokenAccountsByOwner(self, params: list[Any]) -> dict[str, Any]:
        owner = pubkey(param(params, 0, "owner"))
        selector = param(params, 1, "mint or programId filter")
        cfg = config(params, 2)
        mint = pubkey(selector["mint"], "mint") if isinstance(selector, dict) and "mint" in selector else None
        if not isinstance(selector, dict) or (mint is None and "programId" not in selector):
            raise invalid("Invalid params: expected {mint} or {programId}")
        if mint is None and pubkey(selector["programId"], "programId") != spl_token.TOKEN_PROGRAM_ID:
            raise invalid("Invalid param: unrecognized Token program id")

        def value(ledger: Ledger) -> list[dict[str, Any]]:
            out = []
            for key, account in ledger.program_accounts(spl_token.TOKEN_PROGRAM_ID, cfg.get("commitment")):
                data = bytes(account.data)
                if len(data) != 165 or data[32:64] != bytes(owner) or (mint and data[0:32] != bytes(mint)):
                    continue
                out.append({"pubkey": str(key), "account": encode_account(
                    account, cfg.get("encoding", "base64"), cfg.get("dataSlice"), ledger.mint_decimals)})
            return out

        return await self._with_context(value, cfg.get("commitment"))

    # --- transactions -----------------------------------------------------------------

    async def m_sendTransaction(self, params: list[Any]) -> str:
        cfg = config(params, 1)
        tx = decode_transaction(param(params, 0, "transaction"), cfg.get("encoding", "base58"))
        skip = bool(cfg.get("skipPreflight", False))
        return await self.node.send(tx, skip_preflight=skip)

    async def m_simulateTransaction(self, params: list[Any]) -> dict[str, Any]:
        cfg = config(params, 1)
        tx = decode_transaction(param(params, 0, "transaction"), cfg.get("encoding", "base58"))
        verify = bool(cfg.get("sigVerify", False))
        replace = bool(cfg.get("replaceRecentBlockhash", False))

        def value(ledger: Ledger) -> dict[str, Any]:
            if not replace and not ledger.blockhash_valid(str(tx.message.recent_blockhash)):
                return {"err": "BlockhashNotFound", "logs": [], "accounts": None, "unitsConsumed": 0,
                        "returnData": None, "innerInstructions": None}
            result, _ = ledger.simulate(tx, sig_verify=verify)
            return result

        return await self._with_context(value)

    async def m_getSignatureStatuses(self, params: list[Any]) -> dict[str, Any]:
        signatures = param(params, 0, "signatures")
        if not isinstance(signatures, list) or len(signatures) > 256:
            raise invalid("Invalid params: signatures must be a list of at most 256")
        for s in signatures:
            self._signature(s)
        return await self._with_context(lambda ledger: [ledger.signature_status(s) for s in signatures])

    @staticmethod
    def _signature(value: Any) -> str:
        try:
            if not isinstance(value, str):
                raise ValueError
            Signature.from_string(value)  # base58 of exactly 64 bytes
        except ValueError as exc:
            raise invalid(f"Invalid param: {value!r} is not a valid signature") from exc
        return value

    async def m_getTransaction(self, params: list[Any]) -> dict[str, Any] | None:
        signature = self._signature(param(params, 0, "signature"))
        cfg = params[1] if len(params) > 1 and isinstance(params[1], dict) else {"encoding": params[1]} if (
            len(params) > 1 and isinstance(params[1], str)) else {}
        cfg = {k: v for k, v in cfg.items() if v is not None}
        commitment = cfg.get("commitment", "finalized")
        if commitment == "processed":
            raise invalid("Method does not support commitment below `confirmed`")
        encoding = cfg.get("encoding", "json")

        def run(ledger: Ledger) -> dict[str, Any] | None:
            record = ledger.transaction(signature, commitment)
            if record is None:
                return None
            version = record.meta["version"]
            if version != "legacy" and cfg.get("maxSupportedTransactionVersion") is None:
                raise RpcFailure(-32015, "Transaction version (0) is not supported by the requesting client. "
                                 "Please try the request again with the following configuration parameter: "
                                 "\"maxSupportedTransactionVersion\": 0")
            meta = {k: v for k, v in record.meta.items() if k != "version"}
            if record.tx_b64:
                tx = VersionedTransaction.from_bytes(base64.b64decode(record.tx_b64))
                try:
                    encoded = encode_transaction(tx, encoding)
                except EncodingError as exc:
                    raise invalid(str(exc)) from exc
            else:  # an airdrop: no client transaction to show
                return None
            out = {"slot": record.slot, "blockTime": record.block_time, "transaction": encoded, "meta": meta}
            if cfg.get("maxSupportedTransactionVersion") is not None:
                out["version"] = version
            return out

        return await self.node.call(run)

    async def m_getSignaturesForAddress(self, params: list[Any]) -> list[dict[str, Any]]:
        address = str(pubkey(param(params, 0, "address"), "address"))
        cfg = config(params, 1)
        limit = cfg.get("limit", 1000)
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise invalid("Invalid param: limit must be between 1 and 1000")
        before = self._signature(cfg["before"]) if "before" in cfg else None
        until = self._signature(cfg["until"]) if "until" in cfg else None
        commitment = cfg.get("commitment", "finalized")
        return await self.node.call(
            lambda ledger: ledger.signatures_for_address(address, limit, before, until, commitment))

    async def m_requestAirdrop(self, params: list[Any]) -> str:
        key = pubkey(param(params, 0, "pubkey"))
        lamports = param(params, 1, "lamports")
        if not isinstance(lamports, int) or not 0 < lamports <= 1_000 * 10**9:
            raise invalid("Invalid params: lamports must be between 1 and 1,000 SOL")
        return await self.node.airdrop(key, lamports)

