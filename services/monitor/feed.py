"""What changed since the monitor's last pass, never the whole history (issue 25).

* `Cursors`: how far each incremental check has read, kept in PostgreSQL
  (`monitor_cursor`, migration 253) so a restart goes on where the last process stopped;
  positions only move forward, whichever replica writes them.
* `new_events`: the program events of the kinds the checks look at, numbered after the
  cursor (the `seq` index), a page at a time. Event numbers are committed in order (the
  indexer numbers each batch before writing it and commits batches in order, migration
  008), so once a page holds fewer rows than asked, the cursor moves to the newest number
  committed when the page was read, past the events of other kinds as well. A pass reads at
  most `SPAN` numbers, so a monitor far behind (a new one: its cursors start at 0) catches up
  a bounded step per pass instead of reading the history at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

PAGE = 2_000
SPAN = 50_000

_READ = "SELECT position FROM monitor_cursor WHERE name = $1"
_MOVE = """
INSERT INTO monitor_cursor (name, position) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET position = GREATEST(monitor_cursor.position, EXCLUDED.position), updated_at = now()
"""

_EVENTS = """
SELECT top.seq AS top, e.*
FROM (SELECT LEAST(COALESCE(max(seq), 0), $1::bigint + $4::bigint) AS seq FROM transactions) AS top
LEFT JOIN LATERAL (
    SELECT seq, owner, signature, instruction_index, event_index, kind, amount::text AS amount, counterparty,
           caller_program, details, COALESCE(block_time, indexed_at) AS at
    FROM transactions WHERE seq > $1 AND seq <= top.seq AND kind = ANY($2::text[]) ORDER BY seq LIMIT $3
) AS e ON TRUE
"""


@dataclass
class Cursors:
    pool: asyncpg.Pool

    async def get(self, name: str) -> int:
        value = await self.pool.fetchval(_READ, name)
        return int(value) if value is not None else 0

    async def move(self, name: str, position: int) -> None:
        await self.pool.execute(_MOVE, name, position)


async def new_events(pool: asyncpg.Pool, after: int, kinds: list[str], page: int = PAGE,
                     span: int = SPAN) -> tuple[list[Any], int]:
    """The events of `kinds` numbered after `after` (at most `page`, within `span` numbers),
    in order, and the position to read from next time."""
    rows = await pool.fetch(_EVENTS, after, kinds, page, span)
    events = [r for r in rows if r["seq"] is not None]
    if len(events) == page:
        return events, int(events[-1]["seq"])
    return events, max(after, int(rows[0]["top"]))
