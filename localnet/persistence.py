"""`--ledger DIR`: accounts and transaction history written to SQLite, so a restarted node
keeps balances and history. Write-through: every transaction's changed accounts and its
record are committed before the node answers."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from solders.account import Account
from solders.pubkey import Pubkey

if TYPE_CHECKING:
    from localnet.ledger import TxRecord

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    pubkey TEXT PRIMARY KEY, lamports INTEGER NOT NULL, data BLOB NOT NULL, owner TEXT NOT NULL,
    executable INTEGER NOT NULL, rent_epoch TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS transactions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, signature TEXT UNIQUE NOT NULL, slot INTEGER NOT NULL,
    block_time INTEGER NOT NULL, tx TEXT NOT NULL, meta TEXT NOT NULL, account_keys TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS node (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class LedgerStore:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(directory / "ledger.sqlite3", check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    def save_accounts(self, accounts: dict[str, Account | None]) -> None:
        with self.db:
            self._write_accounts(accounts)

    def _write_accounts(self, accounts: dict[str, Account | None]) -> None:
        for key, account in accounts.items():
            if account is None:
                self.db.execute("DELETE FROM accounts WHERE pubkey = ?", (key,))
            else:
                self.db.execute(
                    "INSERT OR REPLACE INTO accounts VALUES (?, ?, ?, ?, ?, ?)",
                    (key, account.lamports, bytes(account.data), str(account.owner), int(account.executable),
                     str(account.rent_epoch)),
                )

    def save_transaction(self, record: TxRecord, accounts: dict[str, Account | None]) -> None:
        with self.db:
            self._write_accounts(accounts)
            self.db.execute(
                "INSERT OR IGNORE INTO transactions (signature, slot, block_time, tx, meta, account_keys) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (record.signature, record.slot, record.block_time, record.tx_b64, json.dumps(record.meta),
                 json.dumps(record.account_keys)),
            )

    def save_slot(self, slot: int) -> None:
        self.save_value("slot", str(slot))

    def load_slot(self) -> int | None:
        value = self.load_value("slot")
        return int(value) if value is not None else None

    def save_value(self, key: str, value: str) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO node VALUES (?, ?)", (key, value))

    def load_value(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM node WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def load_accounts(self) -> Iterator[tuple[Pubkey, Account]]:
        for key, lamports, data, owner, executable, rent_epoch in self.db.execute("SELECT * FROM accounts"):
            yield Pubkey.from_string(key), Account(lamports=lamports, data=bytes(data),
                                                   owner=Pubkey.from_string(owner), executable=bool(executable),
                                                   rent_epoch=int(rent_epoch))

    def load_transactions(self) -> Iterator[TxRecord]:
        from localnet.ledger import TxRecord

        for signature, slot, block_time, tx, meta, keys in self.db.execute(
            "SELECT signature, slot, block_time, tx, meta, account_keys FROM transactions ORDER BY seq"
        ):
            yield TxRecord(signature, slot, block_time, tx, json.loads(meta), json.loads(keys))
