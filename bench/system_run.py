"""What the benchmarks of the whole system share: a temporary database for one run, on
the services' event loop (the load generator runs there too)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bench.environment import temporary_database
from vault_client import event_loop


def on_temporary_database(system: Callable[[str], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """`system(database_url)` against a database made for this run and dropped after."""
    async def main() -> dict[str, Any]:
        async with temporary_database("cvbench") as db:
            return await system(db)

    return event_loop.run(main())
