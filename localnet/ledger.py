"""The chain state behind localnet. One `Ledger` owns the LiteSVM; the node calls its
methods from its event loop's thread only (LiteSVM is synchronous and holds the GIL).

What it adds to LiteSVM, as a validator would have it:
* slots advancing on a clock, a new blockhash per slot, each valid for 150 blocks;
* commitment: a transaction landed in slot S is `processed` at once, `confirmed` from the
  next slot, `finalized` `finality_depth` slots later; account reads at a commitment see
  the state of that slot (before-images of every changed account are kept until final);
* the transaction history (meta with logs, balances, token balances, CU, inner
  instructions), signature statuses and the per-address signature index;
* events for the PubSub server, released per commitment level as slots advance;
* optional persistence to a directory (accounts and history in SQLite).
"""

from __future__ import annotations

import base64
import bisect
import os
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from solders.account import Account
from solders.clock import Clock
from solders.pubkey import Pubkey
from solders.transaction import Transaction, VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata, SimulatedTransactionInfo, TransactionMetadata

from localnet import genesis
from localnet.encoding import b58, error_message, message_version, tx_error, ui_amount
from localnet.persistence import LedgerStore
from localnet.svm import Chain
from vault_client import spl_token

COMMITMENTS = ("processed", "confirmed", "finalized")
BLOCKHASH_VALIDITY = 150
LAMPORTS_PER_SIGNATURE = 5000


def _existing(account: Account | None) -> Account | None:
    """None for an account that does not exist (LiteSVM returns an empty one)."""
    if account is None or (account.lamports == 0 and not account.data and not account.executable):
        return None
    return account


def _image_slot(entry: tuple[int, Account | None]) -> int:
    return entry[0]


EMPTY_ACCOUNT = Account(lamports=0, data=b"", owner=Pubkey.default())  # an account that does not exist


def _return_data(meta: TransactionMetadata) -> dict[str, Any] | None:
    data = meta.return_data()
    if not bytes(data.data):
        return None
    return {"programId": str(data.program_id), "data": [base64.b64encode(bytes(data.data)).decode(), "base64"]}


def _simulation(meta: TransactionMetadata, raw: Any) -> dict[str, Any]:
    """A transaction's result as simulateTransaction (and a failed preflight) reports it."""
    return {"err": tx_error(raw), "logs": list(meta.logs()), "accounts": None,
            "unitsConsumed": meta.compute_units_consumed(), "returnData": _return_data(meta),
            "innerInstructions": None}


class RpcFailure(Exception):
    """A request the node refuses, with Solana's JSON-RPC error code and data."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data


class TxRecord:
    """A landed transaction: what getSignatureStatuses, getTransaction and the signature index
    answer from. Its `meta` (balances, token balances, inner instructions, ...) and encoded
    transaction may be given as a function, run on first use: most transactions are never
    read back with getTransaction, and building them cost every send (about a tenth of
    localnet's time per deposit in bench/bench_mesh.py)."""

    __slots__ = ("_build", "_meta", "_tx", "_tx_b64", "account_keys", "block_time", "err", "signature", "slot")

    def __init__(self, signature: str, slot: int, block_time: int, tx: str | VersionedTransaction,
                 meta: dict[str, Any] | Callable[[], dict[str, Any]], account_keys: list[str],
                 err: Any = None) -> None:
        self.signature, self.slot, self.block_time, self.account_keys = signature, slot, block_time, account_keys
        self._tx: VersionedTransaction | None = tx if isinstance(tx, VersionedTransaction) else None
        self._tx_b64: str | None = None if isinstance(tx, VersionedTransaction) else tx
        self._meta: dict[str, Any] | None = meta if isinstance(meta, dict) else None
        self._build: Callable[[], dict[str, Any]] | None = None if isinstance(meta, dict) else meta
        self.err: Any = meta["err"] if isinstance(meta, dict) else err

    @property
    def meta(self) -> dict[str, Any]:
        if self._meta is None:
            assert self._build is not None
            self._meta, self._build = self._build(), None
        return self._meta

    @property
    def tx_b64(self) -> str:
        if self._tx_b64 is None:
            assert self._tx is not None
            self._tx_b64, self._tx = base64.b64encode(bytes(self._tx)).decode(), None
        return self._tx_b64

    @property
    def status(self) -> dict[str, Any]:
        return {"Ok": None} if self.err is None else {"Err": self.err}


@dataclass
class ChainEvent:
    """Something subscribers may hear about, at the slot it happened."""

    slot: int
    signature: str
    err: Any
    logs: list[str]
    account_keys: list[str]
    accounts: dict[str, Account | None] = field(default_factory=dict)  # post-state of writable accounts


class Ledger:
    def __init__(
        self, *, finality_depth: int = 32, token: str = "p-token", store: LedgerStore | None = None,
        setup: genesis.ExchangeSetup | None = None,
    ) -> None:
        # The ledger checks blockhashes, signatures and duplicates itself (simulations skip
        # signatures; a transaction refused at preflight must not count as processed).
        self.chain = Chain(token, blockhash_check=False, sigverify=False, history=False)
        self.svm = self.chain.svm
        self.finality_depth = finality_depth
        self.store = store
        self.slot = 0
        self.blockhashes: dict[str, int] = {}  # blockhash -> last valid block height
        self.latest_blockhash = ""
        self.transactions: dict[str, TxRecord] = {}
        self.by_address: dict[str, list[str]] = defaultdict(list)  # newest last
        self.before_images: dict[str, list[tuple[int, Account | None]]] = defaultdict(list)
        self.pending: dict[str, list[ChainEvent]] = {"confirmed": [], "finalized": []}
        self.airdrops: dict[tuple[str, int], str] = {}  # this block's airdrops: one transfer per (key, lamports)
        self.transaction_count = 0
        self.chain.journal = []
        self.deployment = genesis.create_dev(self.chain, setup)
        landed, self.chain.journal = self.chain.journal, None
        if store is None or store.load_slot() is None:  # a new chain: genesis is its first history
            self._record_genesis(landed)
        # what getGenesisHash answers: new for every fresh chain, kept with a --ledger
        # directory (a cluster's genesis hash names it; the services bind to it)
        self.genesis_hash = b58(os.urandom(32))
        if store is not None:
            self._restore(store)
        self._new_block()

    # --- slots ------------------------------------------------------------------------

    def commitment_slot(self, commitment: str | None) -> int:
        if commitment in (None, "finalized", "max", "root"):
            return max(self.slot - self.finality_depth, 0)
        if commitment in ("confirmed", "single", "singleGossip"):
            return max(self.slot - 1, 0)
        if commitment in ("processed", "recent"):
            return self.slot
        raise RpcFailure(-32602, f"Invalid params: unknown commitment {commitment!r}")

    @property
    def block_height(self) -> int:
        return self.slot

    def _new_block(self) -> None:
        self.airdrops.clear()
        self.svm.warp_to_slot(self.slot)
        self.svm.expire_blockhash()
        self.latest_blockhash = str(self.svm.latest_blockhash())
        self.blockhashes[self.latest_blockhash] = self.block_height + BLOCKHASH_VALIDITY
        clock = self.svm.get_clock()
        self.svm.set_clock(Clock(slot=self.slot, epoch_start_timestamp=clock.epoch_start_timestamp,
                                 epoch=clock.epoch, leader_schedule_epoch=clock.leader_schedule_epoch,
                                 unix_timestamp=int(time.time())))

    def advance_slot(self) -> dict[str, list[ChainEvent]]:
        """Moves to the next slot; returns the events that became confirmed / finalized."""
        self.slot += 1
        self._new_block()
        for blockhash, last_valid in list(self.blockhashes.items()):
            if last_valid < self.block_height:
                del self.blockhashes[blockhash]
        released: dict[str, list[ChainEvent]] = {}
        for commitment in ("confirmed", "finalized"):
            bound = self.commitment_slot(commitment)
            ready = [e for e in self.pending[commitment] if e.slot <= bound]
            self.pending[commitment] = [e for e in self.pending[commitment] if e.slot > bound]
            released[commitment] = ready
        final = self.commitment_slot("finalized")
        for key in list(self.before_images):
            kept = [(s, a) for s, a in self.before_images[key] if s > final]
            if kept:
                self.before_images[key] = kept
            else:
                del self.before_images[key]
        if self.store is not None:
            self.store.save_slot(self.slot)
        return released

    def blockhash_valid(self, blockhash: str) -> bool:
        last_valid = self.blockhashes.get(blockhash)
        return last_valid is not None and last_valid >= self.block_height

    # --- accounts ---------------------------------------------------------------------

    def get_account(self, key: Pubkey, commitment: str | None = None) -> Account | None:
        images = self.before_images.get(str(key))
        if images:
            # the first image kept after the bound is the state at the bound (images are in slot order)
            index = bisect.bisect_right(images, self.commitment_slot(commitment), key=_image_slot)
            if index < len(images):
                return images[index][1]
        return _existing(self.svm.get_account(key))

    def _current(self, keys: list[Pubkey]) -> list[Account | None]:
        """The accounts at `processed` (LiteSVM's state), each read once."""
        return [_existing(self.svm.get_account(key)) for key in keys]

    def program_accounts(self, program: Pubkey, commitment: str | None = None) -> list[tuple[Pubkey, Account]]:
        keys = {k for k, _ in self.svm.get_program_accounts(program)}
        keys |= {Pubkey.from_string(k) for k in self.before_images}
        out = []
        for key in keys:
            account = self.get_account(key, commitment)
            if account is not None and account.owner == program:
                out.append((key, account))
        return sorted(out, key=lambda pair: bytes(pair[0]))

    def mint_decimals(self, mint: Pubkey) -> int | None:
        account = self.svm.get_account(mint)
        if account is None or account.owner != spl_token.TOKEN_PROGRAM_ID or len(account.data) != spl_token.MINT_SIZE:
            return None
        return bytes(account.data)[44]

    @staticmethod
    def _token_accounts(accounts: list[Account | None]) -> list[tuple[int, bytes]]:
        """(index, data) of the token accounts among a transaction's accounts: all a
        transaction's token balances are built from, later (the accounts themselves are not
        kept: a program's account can hold its whole executable)."""
        out = []
        for index, account in enumerate(accounts):
            if account is not None and account.owner == spl_token.TOKEN_PROGRAM_ID:
                data = bytes(account.data)
                if len(data) == spl_token.ACCOUNT_SIZE:
                    out.append((index, data))
        return out

    def _token_balances(self, accounts: list[tuple[int, bytes]]) -> list[dict[str, Any]]:
        out = []
        decimals: dict[Pubkey, int] = {}
        for index, data in accounts:
            token = spl_token.TokenAccount.decode(data)
            if token.mint not in decimals:
                decimals[token.mint] = self.mint_decimals(token.mint) or 0
            out.append({"accountIndex": index, "mint": str(token.mint), "owner": str(token.owner),
                        "programId": str(spl_token.TOKEN_PROGRAM_ID),
                        "uiTokenAmount": ui_amount(token.amount, decimals[token.mint])})
        return out

    # --- transactions -----------------------------------------------------------------

    def _check(self, tx: VersionedTransaction) -> str:
        signature = str(tx.signatures[0])
        if signature in self.transactions:
            raise RpcFailure(-32002, "Transaction simulation failed: This transaction has already been processed",
                             {"err": "AlreadyProcessed", "logs": [], "accounts": None, "unitsConsumed": 0,
                              "returnData": None, "innerInstructions": None})
        if not self.blockhash_valid(str(tx.message.recent_blockhash)):
            raise RpcFailure(-32002, "Transaction simulation failed: Blockhash not found",
                             {"err": "BlockhashNotFound", "logs": [], "accounts": None, "unitsConsumed": 0,
                              "returnData": None, "innerInstructions": None})
        return signature

    def simulate(self, tx: VersionedTransaction, *, sig_verify: bool = False) -> tuple[dict[str, Any], Any]:
        """The `value` of simulateTransaction, and the raw error (None on success)."""
        if sig_verify and not all(tx.verify_with_results()):
            raise RpcFailure(-32003, "Transaction signature verification failure")
        result = self.svm.simulate_transaction(tx)
        if isinstance(result, FailedTransactionMetadata):
            meta, raw = result.meta(), result.err()
        else:
            assert isinstance(result, SimulatedTransactionInfo)
            meta, raw = result.meta(), None
        return _simulation(meta, raw), raw

    def send(self, tx: VersionedTransaction, *, skip_preflight: bool = False) -> tuple[str, ChainEvent]:
        """Executes `tx` once. With preflight, a transaction that fails is refused as its
        simulation would have been: the accounts it may have changed (its fee payer's fee) are
        put back and nothing of it is kept, so the same transaction can be sent again. That is
        what a preflight simulation followed by the execution gives, for one execution."""
        signature = self._check(tx)
        if not all(tx.verify_with_results()):
            raise RpcFailure(-32003, "Transaction signature verification failure")
        keys = list(tx.message.account_keys)
        header = tx.message.header
        signed, unsigned_end = header.num_required_signatures, len(keys) - header.num_readonly_unsigned_accounts
        writable = [k for i, k in enumerate(keys)
                    if i < signed - header.num_readonly_signed_accounts or signed <= i < unsigned_end]
        before = self._current(keys)
        is_writable = set(writable)
        images = {str(k): account for k, account in zip(keys, before, strict=True) if k in is_writable}
        result = self.svm.send_transaction(tx)
        if isinstance(result, FailedTransactionMetadata):
            if not skip_preflight:
                for key, account in zip(keys, before, strict=True):
                    if key in is_writable:
                        self.svm.set_account(key, account or EMPTY_ACCOUNT)
                raise RpcFailure(-32002, "Transaction simulation failed: " + error_message(result.err()),
                                 _simulation(result.meta(), result.err()))
            meta, err = result.meta(), tx_error(result.err())
        else:
            meta, err = result, None
        pre_balances = [account.lamports if account else 0 for account in before]
        return self._record(signature, tx, keys, images, meta, err, pre_balances, self._token_accounts(before))

    def _record(self, signature: str, tx: VersionedTransaction, keys: list[Pubkey],
                images: dict[str, Account | None], meta: TransactionMetadata, err: Any,
                pre_balances: list[int], pre_tokens: list[tuple[int, bytes]]) -> tuple[str, ChainEvent]:
        after = self._current(keys)
        post_balances = [account.lamports if account else 0 for account in after]
        post_tokens = self._token_accounts(after)
        logs = list(meta.logs())

        def record_meta() -> dict[str, Any]:  # run when the transaction is first read back
            inner = [{"index": i, "instructions": [
                {"programIdIndex": ii.instruction().program_id_index, "accounts": list(ii.instruction().accounts),
                 "data": b58(bytes(ii.instruction().data)), "stackHeight": ii.stack_height()} for ii in group]}
                for i, group in enumerate(meta.inner_instructions()) if group]
            return {
                "err": err, "status": {"Ok": None} if err is None else {"Err": err},
                "fee": LAMPORTS_PER_SIGNATURE * len(tx.signatures),
                "preBalances": pre_balances, "postBalances": post_balances,
                "innerInstructions": inner, "logMessages": logs,
                "preTokenBalances": self._token_balances(pre_tokens),
                "postTokenBalances": self._token_balances(post_tokens),
                "rewards": [], "loadedAddresses": {"writable": [], "readonly": []},
                "computeUnitsConsumed": meta.compute_units_consumed(), "returnData": _return_data(meta),
                "version": message_version(tx),
            }

        record = TxRecord(signature, self.slot, int(time.time()), tx, record_meta, [str(k) for k in keys], err)
        self.transaction_count += 1
        changed = {str(k): account for k, account in zip(keys, after, strict=True) if str(k) in images}
        return signature, self._commit(record, images, changed, logs)

    def _commit(self, record: TxRecord, images: dict[str, Account | None],
                changed: dict[str, Account | None], logs: list[str]) -> ChainEvent:
        """Keeps a landed transaction: history, the per-address index, the before-images of
        the accounts it may have changed (`images`; `changed` holds their states after it),
        the event per commitment, and the ledger store."""
        self.transactions[record.signature] = record
        for key in record.account_keys:
            self.by_address[key].append(record.signature)
        for key, image in images.items():
            self.before_images[key].append((self.slot, image))
        event = ChainEvent(self.slot, record.signature, record.err, logs, record.account_keys, changed)
        self.pending["confirmed"].append(event)
        self.pending["finalized"].append(event)
        if self.store is not None:
            self.store.save_transaction(record, changed)
        return event

    def airdrop(self, key: Pubkey, lamports: int) -> tuple[str, ChainEvent | None]:
        """requestAirdrop: a real transfer from LiteSVM's airdrop account. The same request
        again in the same block is the same transaction (same blockhash, same signature), so
        it is answered with that signature and nothing happens (no event)."""
        done = self.airdrops.get((str(key), lamports))
        if done is not None:
            return done, None
        image = self.get_account(key, "processed")
        result = self.svm.airdrop(key, lamports)
        if isinstance(result, FailedTransactionMetadata):
            raise RpcFailure(-32603, f"airdrop failed: {tx_error(result.err())}")
        signature = str(result.signature())
        self.airdrops[(str(key), lamports)] = signature
        record = TxRecord(signature, self.slot, int(time.time()), "", {
            "err": None, "status": {"Ok": None}, "fee": LAMPORTS_PER_SIGNATURE, "preBalances": [],
            "postBalances": [], "innerInstructions": [], "logMessages": list(result.logs()),
            "preTokenBalances": [], "postTokenBalances": [], "rewards": [],
            "loadedAddresses": {"writable": [], "readonly": []},
            "computeUnitsConsumed": result.compute_units_consumed(), "returnData": None, "version": "legacy",
        }, [str(key)])
        return signature, self._commit(record, {str(key): image}, {str(key): self._current([key])[0]},
                                       record.meta["logMessages"])

    def confirmation(self, slot: int) -> str:
        if slot <= self.commitment_slot("finalized"):
            return "finalized"
        if slot <= self.commitment_slot("confirmed"):
            return "confirmed"
        return "processed"

    def signature_status(self, signature: str) -> dict[str, Any] | None:
        record = self.transactions.get(signature)
        if record is None:
            return None
        status = self.confirmation(record.slot)
        return {"slot": record.slot, "confirmations": None if status == "finalized" else self.slot - record.slot,
                "err": record.err, "status": record.status, "confirmationStatus": status}

    def transaction(self, signature: str, commitment: str | None) -> TxRecord | None:
        record = self.transactions.get(signature)
        if record is None or record.slot > self.commitment_slot(commitment):
            return None
        return record

    def signatures_for_address(self, address: str, limit: int, before: str | None, until: str | None,
                               commitment: str | None) -> list[dict[str, Any]]:
        bound = self.commitment_slot(commitment)
        out: list[dict[str, Any]] = []
        started = before is None
        for signature in reversed(self.by_address.get(address, [])):
            if not started:
                started = signature == before
                continue
            if signature == until:
                break
            record = self.transactions[signature]
            if record.slot > bound:
                continue
            out.append({"signature": signature, "slot": record.slot, "err": record.err, "memo": None,
                        "blockTime": record.block_time, "confirmationStatus": self.confirmation(record.slot)})
            if len(out) >= limit:
                break
        return out

    # --- persistence ------------------------------------------------------------------

    def _restore(self, store: LedgerStore) -> None:
        """Re-applies a saved ledger over the fresh genesis (programs are redeployed from
        the built .so files at the same ids; everything else comes from the store)."""
        saved_slot = store.load_slot()
        saved_genesis = store.load_value("genesis_hash")
        if saved_genesis is None:
            store.save_value("genesis_hash", self.genesis_hash)
        else:
            self.genesis_hash = saved_genesis
        for key, account in store.load_accounts():
            self.svm.set_account(key, account)
        for record in store.load_transactions():
            self.transactions[record.signature] = record
            for address in record.account_keys:
                self.by_address[address].append(record.signature)
        self.transaction_count = len(self.transactions)
        if saved_slot is not None:
            self.slot = saved_slot
        else:  # first start with this directory: keep what genesis created
            store.save_accounts({str(k): self.svm.get_account(k) for k in self._genesis_accounts()})

    def _record_genesis(self, landed: list[tuple[Transaction, TransactionMetadata]]) -> None:
        """Genesis' transactions that call the vault programs (the VaultAuthority, the
        exchange and its fee and insurance-fund vaults), kept as slot 0's history, so an
        indexer backfilling from the start sees those accounts created, as it would on a
        cluster prepared by cluster_setup. They are recorded after the fact: their
        pre-balances are their post-balances, and they cannot be rolled back."""
        d = self.deployment
        programs = {d.vault_id, d.pm_id}
        for tx, meta in landed:
            keys = list(tx.message.account_keys)
            if not programs & set(keys):
                continue
            after = [account.lamports if account else 0 for account in self._current(keys)]
            self._record(str(tx.signatures[0]), VersionedTransaction.from_legacy(tx), keys, {}, meta, None, after,
                         self._token_accounts(self._current(keys)))

    def _genesis_accounts(self) -> list[Pubkey]:
        d = self.deployment
        owners = [d.setup.fee_owner.pubkey(), d.setup.insurance_owner.pubkey()]
        return [d.admin.pubkey(), d.faucet.pubkey(), d.mint, d.program.authority, d.exchange.config, *owners,
                *(d.program.vault(o) for o in owners), *(d.program.vault_token(o) for o in owners)]

    def latest_blockhash_info(self) -> tuple[str, int]:
        return self.latest_blockhash, self.blockhashes[self.latest_blockhash]

    def fee_for(self, num_signatures: int, blockhash: str) -> int | None:
        return LAMPORTS_PER_SIGNATURE * num_signatures if self.blockhash_valid(blockhash) else None
