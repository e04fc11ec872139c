"""Constants of the programs' data model that every user of the client shares (defined once)."""

from __future__ import annotations

U64_MAX = 2**64 - 1
