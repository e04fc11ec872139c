"""Appends to the audit log (who did what, when)."""

from __future__ import annotations

import json
from typing import Any

import asyncpg


async def record(pool: asyncpg.Pool, *, owner: str, actor: str, action: str, signature: str | None = None,
                 details: dict[str, Any] | None = None) -> None:
    await pool.execute(
        "INSERT INTO audit_log (owner, actor, action, signature, details) VALUES ($1, $2, $3, $4, $5::jsonb)",
        owner, actor, action, signature, json.dumps(details or {}, default=str),
    )
