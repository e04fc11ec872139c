"""Reads over every vault, from the rows the indexer keeps in PostgreSQL (never the chain):
a keyset page of open vaults in address order, and the totals (migration 251's
`vault_totals`, maintained in the indexer's own transactions). Each answer comes with the
slot it is valid at, read in the same statement (the same snapshot) as its rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
from collateral_vault.v1 import common_pb2

CURSOR_NAME = "collateral_vault"  # the indexer's stream (balance_tracker's IndexerConfig.cursor_name)

_PAGE = """
SELECT indexed_through($3) AS at_slot, p.*
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
    SELECT owner, address, token_account, total_balance::text AS total, locked_balance::text AS locked,
           available_balance::text AS available, total_deposited::text AS deposited,
           total_withdrawn::text AS withdrawn, created_at, last_slot
    FROM vaults WHERE closed_at IS NULL AND address > $1 ORDER BY address LIMIT $2
) AS p ON TRUE
"""

_TOTALS = """
SELECT t.total_balance::text AS total, t.locked_balance::text AS locked, t.available_balance::text AS available,
       t.vault_count, indexed_through($1) AS at_slot
FROM vault_totals AS t
"""


def row_message(row: Any) -> common_pb2.Vault:
    return common_pb2.Vault(
        owner=row["owner"], address=row["address"], token_account=row["token_account"],
        total_balance=int(row["total"]), locked_balance=int(row["locked"]), available_balance=int(row["available"]),
        total_deposited=int(row["deposited"]), total_withdrawn=int(row["withdrawn"]),
        created_at=int(row["created_at"].timestamp()) if row["created_at"] else 0, slot=int(row["last_slot"]),
        source=common_pb2.DATA_SOURCE_DATABASE)


async def page(pool: asyncpg.Pool, after: str, size: int, cursor_name: str = CURSOR_NAME
               ) -> tuple[list[common_pb2.Vault], bool, int]:
    """Up to `size` open vaults whose address sorts after `after`, whether more follow, and
    the slot the page is valid at. One indexed range read of size + 1 rows. Building a page
    of 500 is a few milliseconds of CPU: vault_manager runs it in a worker process
    (`services/vault_manager/page_workers.py`), not on the loop that serves its calls."""
    rows = await pool.fetch(_PAGE, after, size + 1, cursor_name)
    present = [r for r in rows if r["owner"] is not None]  # none at all: the one row of at_slot
    return [row_message(r) for r in present[:size]], len(present) > size, int(rows[0]["at_slot"])


@dataclass(frozen=True)
class Totals:
    total: int
    locked: int
    available: int
    vault_count: int
    slot: int


async def totals(pool: asyncpg.Pool, cursor_name: str = CURSOR_NAME) -> Totals:
    """The TVL over the open vaults: one row, whatever their number."""
    row = await pool.fetchrow(_TOTALS, cursor_name)
    if row is None:  # migration 251 creates the row; nothing deletes it
        raise RuntimeError("vault_totals has no row: the database was not migrated")
    return Totals(int(row["total"]), int(row["locked"]), int(row["available"]), int(row["vault_count"]),
                  int(row["at_slot"]))
