"""A repair from the chain's state against PostgreSQL (services/balance_tracker/indexer/repair.py):
the vault row becomes the account's state with a `repair` audit entry, in one transaction
fenced by the indexer's term, so a deposed leader repairs nothing."""

from __future__ import annotations

import json

import asyncpg
import pytest
from solders.pubkey import Pubkey

from services.balance_tracker.indexer.gaps import Gap
from services.balance_tracker.indexer.repair import ChainState, raise_gap_alert, write_state
from services.balance_tracker.store import Fenced
from vault_client.vault_program import Vault, VaultProgram

PROGRAM = VaultProgram(Pubkey.new_unique())


def chain_vault(owner: Pubkey) -> Vault:
    return Vault(owner=owner, token_account=Pubkey.new_unique(), total_balance=90, locked_balance=30,
                 available_balance=60, total_deposited=150, total_withdrawn=60, created_at=1_700_000_000, bump=255,
                 event_seq=9)


async def held_row(pool: asyncpg.Pool, owner: Pubkey) -> None:
    await pool.execute("INSERT INTO vaults (owner, address, token_account, total_balance, available_balance, "
                       "total_deposited, last_slot, event_seq) VALUES ($1, $2, 't', 10, 10, 10, 5, 2)",
                       str(owner), str(PROGRAM.vault(owner)))


async def test_the_row_becomes_the_chain_state_with_an_audit_entry(migrated_pool: asyncpg.Pool) -> None:
    owner = Pubkey.new_unique()
    await held_row(migrated_pool, owner)
    gap = Gap(str(owner), 3, 4, "sig4", 12, 5)
    assert await raise_gap_alert(migrated_pool, gap)
    assert not await raise_gap_alert(migrated_pool, gap), "deduplicated"
    await write_state(migrated_pool, PROGRAM, gap, ChainState(40, chain_vault(owner)), None)
    row = await migrated_pool.fetchrow("SELECT * FROM vaults WHERE owner = $1", str(owner))
    assert (int(row["total_balance"]), int(row["locked_balance"]), int(row["available_balance"]),
            int(row["total_deposited"]), int(row["total_withdrawn"]), row["event_seq"], row["last_slot"]) == (
        90, 30, 60, 150, 60, 9, 40)
    audit = await migrated_pool.fetchrow("SELECT * FROM audit_log WHERE action = 'repair'")
    details = json.loads(audit["details"])
    assert (audit["owner"], audit["actor"], audit["signature"]) == (str(owner), "indexer", "sig4")
    assert details["method"] == "chain_state" and details["before"]["event_seq"] == 2
    assert details["after"]["event_seq"] == 9 and details["slot"] == 40


async def test_a_vault_gone_from_the_chain_is_closed(migrated_pool: asyncpg.Pool) -> None:
    owner = Pubkey.new_unique()
    await held_row(migrated_pool, owner)
    await write_state(migrated_pool, PROGRAM, Gap(str(owner), 3, 5, "s", 12, 5), ChainState(40, None), None)
    row = await migrated_pool.fetchrow("SELECT * FROM vaults WHERE owner = $1", str(owner))
    assert row["closed_at"] is not None and int(row["total_balance"]) == 0 and row["event_seq"] is None


async def test_a_deposed_leader_repairs_nothing(migrated_pool: asyncpg.Pool) -> None:
    owner = Pubkey.new_unique()
    await held_row(migrated_pool, owner)
    with pytest.raises(Fenced):
        await write_state(migrated_pool, PROGRAM, Gap(str(owner), 3, 4, "s", 12, 5),
                          ChainState(40, chain_vault(owner)), ("collateral_vault", 7))
    row = await migrated_pool.fetchrow("SELECT event_seq, total_balance FROM vaults WHERE owner = $1", str(owner))
    assert (row["event_seq"], int(row["total_balance"])) == (2, 10)
    assert await migrated_pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'repair'") == 0
