"""The monitor's incremental reads (issue 25): events after a cursor on their numbers, in
bounded steps, cursors that never move back, and the in-memory withdrawal window. Real
PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from services.monitor.feed import Cursors, new_events
from services.monitor.withdrawals import WithdrawalWindow

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


async def add_events(pool: asyncpg.Pool, kinds: list[str], first_seq: int) -> None:
    await pool.executemany(
        "INSERT INTO transactions (owner, signature, instruction_index, event_index, kind, amount, slot, block_time, "
        "seq) VALUES ($1, $2, 0, 0, $3, 5, $4, $5, $4)",
        [("o", f"s{first_seq + i}", kind, first_seq + i, T0) for i, kind in enumerate(kinds)])


async def test_each_pass_reads_the_events_after_its_cursor_in_bounded_steps(migrated_pool: asyncpg.Pool) -> None:
    pool = migrated_pool
    await add_events(pool, ["deposit"] * 10 + ["withdraw", "lock"], 1)  # seq 1..12
    events, position = await new_events(pool, 0, ["withdraw", "lock"])
    assert [e["seq"] for e in events] == [11, 12] and position == 12
    assert await new_events(pool, 12, ["withdraw"]) == ([], 12)  # nothing new: nothing read, cursor stays
    events, position = await new_events(pool, 0, ["withdraw", "lock"], page=1)  # a full page: resume after it
    assert [e["seq"] for e in events] == [11] and position == 11
    assert await new_events(pool, 0, ["withdraw"], span=5) == ([], 5)  # at most `span` numbers per pass
    await add_events(pool, ["deposit", "withdraw"], 13)
    events, position = await new_events(pool, 12, ["withdraw"])
    assert [e["seq"] for e in events] == [14] and position == 14

    cursors = Cursors(pool)
    assert await cursors.get("events") == 0
    await cursors.move("events", 14)
    await cursors.move("events", 3)  # another replica behind: the cursor does not move back
    assert await cursors.get("events") == 14


def test_the_withdrawal_window_counts_each_once_and_forgets_the_old() -> None:
    window = WithdrawalWindow(seconds=3600)
    assert window.add(T0, "a", 10, "e1") and window.add(T0 + timedelta(minutes=30), "a", 5, "e2")
    assert not window.add(T0, "a", 10, "e1")  # loaded at start and read again from the feed
    assert window.add(T0 + timedelta(minutes=40), "b", 7, "e3")
    assert (window.by_owner, window.total) == ({"a": 15, "b": 7}, 22)
    window.expire((T0 + timedelta(minutes=70)).timestamp())
    assert (window.by_owner, window.total) == ({"a": 5, "b": 7}, 12)
    window.expire((T0 + timedelta(hours=3)).timestamp())
    assert (window.by_owner, window.total) == ({}, 0)
    assert window.add(T0, "a", 10, "e1")  # forgotten: a new id set
