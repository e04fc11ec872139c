"""Encodings of the Solana JSON-RPC API: accounts (base58, base64, jsonParsed for SPL
Token accounts and mints), transactions, and transaction errors."""

from __future__ import annotations

import base64
import struct
from typing import Any

import base58
from solders.account import Account
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction
from solders.transaction_status import (
    InstructionErrorCustom,
    TransactionErrorDuplicateInstruction,
    TransactionErrorInstructionError,
    TransactionErrorInsufficientFundsForRent,
)

from vault_client import spl_token
from vault_client.constants import U64_MAX


class EncodingError(ValueError):
    """A requested encoding or parameter the node cannot serve."""


def b58(data: bytes) -> str:
    return base58.b58encode(data).decode()


def ui_amount(amount: int, decimals: int) -> dict[str, Any]:
    text = str(amount).rjust(decimals + 1, "0")
    ui = f"{text[:-decimals]}.{text[-decimals:]}".rstrip("0").rstrip(".") if decimals else text
    return {"amount": str(amount), "decimals": decimals, "uiAmount": float(ui), "uiAmountString": ui}


def _parsed_token(data: bytes, decimals_of: Any) -> dict[str, Any] | None:
    if len(data) == spl_token.ACCOUNT_SIZE:
        account = spl_token.TokenAccount.decode(data)
        state = {0: "uninitialized", 1: "initialized", 2: "frozen"}.get(data[108], "uninitialized")
        decimals = decimals_of(account.mint)
        return {"program": "spl-token", "space": len(data), "parsed": {"type": "account", "info": {
            "isNative": data[109:113] != b"\0\0\0\0", "mint": str(account.mint), "owner": str(account.owner),
            "state": state, "tokenAmount": ui_amount(account.amount, decimals if decimals is not None else 0)}}}
    if len(data) == spl_token.MINT_SIZE:
        has_authority = struct.unpack_from("<I", data, 0)[0] == 1
        has_freeze = struct.unpack_from("<I", data, 46)[0] == 1
        return {"program": "spl-token", "space": len(data), "parsed": {"type": "mint", "info": {
            "decimals": data[44], "isInitialized": data[45] == 1,
            "mintAuthority": str(Pubkey.from_bytes(data[4:36])) if has_authority else None,
            "freezeAuthority": str(Pubkey.from_bytes(data[50:82])) if has_freeze else None,
            "supply": str(struct.unpack_from("<Q", data, 36)[0])}}}
    return None


def encode_account(
    account: Account, encoding: str = "base64", data_slice: dict[str, int] | None = None, decimals_of: Any = None
) -> dict[str, Any]:
    data = bytes(account.data)
    out: dict[str, Any] = {
        "lamports": account.lamports, "owner": str(account.owner), "executable": account.executable,
        "rentEpoch": account.rent_epoch if account.rent_epoch else U64_MAX, "space": len(data),
    }
    if encoding == "jsonParsed" and account.owner == spl_token.TOKEN_PROGRAM_ID and decimals_of is not None:
        parsed = _parsed_token(data, decimals_of)
        if parsed is not None:
            out["data"] = parsed
            return out
        encoding = "base64"
    elif encoding == "jsonParsed":
        encoding = "base64"
    if data_slice:
        offset, length = int(data_slice.get("offset", 0)), int(data_slice.get("length", 0))
        data = data[offset:offset + length]
    if encoding == "base64":
        out["data"] = [base64.b64encode(data).decode(), "base64"]
    elif encoding in ("base58", "binary"):
        if len(data) > 128:
            raise EncodingError("Encoded binary (base 58) data should be less than 128 bytes, please use Base64 "
                                "encoding.")
        out["data"] = [b58(data), "base58"] if encoding == "base58" else b58(data)
    else:
        raise EncodingError(f"unsupported encoding: {encoding}")
    return out


def tx_error(err: Any) -> Any:
    """A TransactionError in the RPC's JSON form (e.g. {"InstructionError": [0, {"Custom": 6000}]})."""
    if err is None:
        return None
    if isinstance(err, TransactionErrorInstructionError):
        inner = err.err
        if isinstance(inner, InstructionErrorCustom):
            detail: Any = {"Custom": inner.code}
        elif hasattr(inner, "borsh_io_error"):
            detail = {"BorshIoError": str(inner)}
        else:
            detail = str(inner).split(".")[-1]
        return {"InstructionError": [err.index, detail]}
    if isinstance(err, TransactionErrorInsufficientFundsForRent):
        return {"InsufficientFundsForRent": {"account_index": err.account_index}}
    if isinstance(err, TransactionErrorDuplicateInstruction):
        return {"DuplicateInstruction": err.index}
    return str(err).split(".")[-1]


def error_message(err: Any) -> str:
    """The validator's human-readable text for a transaction error."""
    js = tx_error(err)
    if isinstance(js, dict) and "InstructionError" in js:
        index, detail = js["InstructionError"]
        if isinstance(detail, dict) and "Custom" in detail:
            return f"Error processing Instruction {index}: custom program error: {detail['Custom']:#x}"
        return f"Error processing Instruction {index}: {detail}"
    return str(js)


def encode_transaction(tx: VersionedTransaction, encoding: str) -> Any:
    raw = bytes(tx)
    if encoding == "base64":
        return [base64.b64encode(raw).decode(), "base64"]
    if encoding == "base58":
        return [b58(raw), "base58"]
    if encoding not in ("json", "jsonParsed"):
        raise EncodingError(f"unsupported encoding: {encoding}")
    message = tx.message
    header = message.header
    out: dict[str, Any] = {
        "signatures": [str(s) for s in tx.signatures],
        "message": {
            "header": {"numRequiredSignatures": header.num_required_signatures,
                       "numReadonlySignedAccounts": header.num_readonly_signed_accounts,
                       "numReadonlyUnsignedAccounts": header.num_readonly_unsigned_accounts},
            "accountKeys": [str(k) for k in message.account_keys],
            "recentBlockhash": str(message.recent_blockhash),
            "instructions": [{"programIdIndex": ix.program_id_index, "accounts": list(ix.accounts),
                              "data": b58(bytes(ix.data)), "stackHeight": None} for ix in message.instructions],
        },
    }
    if hasattr(message, "address_table_lookups"):
        out["message"]["addressTableLookups"] = []
    return out


def message_version(tx: VersionedTransaction) -> Any:
    return 0 if hasattr(tx.message, "address_table_lookups") else "legacy"
