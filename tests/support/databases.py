"""Throwaway PostgreSQL databases (created and dropped by whoever asked for one): the
benchmarks' own (bench/environment.py), which may not import tests/."""

from __future__ import annotations

from bench.environment import DEFAULT_DATABASE_URL, database_url, temporary_database, with_database

__all__ = ["DEFAULT_DATABASE_URL", "database_url", "temporary_database", "with_database"]
