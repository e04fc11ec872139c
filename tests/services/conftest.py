"""Fixtures shared by the services' tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from solders.pubkey import Pubkey

from services.balance_tracker.indexer.follower import Indexer, IndexerConfig
from services.balance_tracker.indexer.publisher import Publisher
from services.common.vault_cache import VaultCache
from tests.conftest import RedisNamespace
from vault_client.vault_program import VaultProgram


@pytest.fixture
async def idle_indexer(migrated_pool: asyncpg.Pool, redis_ns: RedisNamespace) -> AsyncIterator[Indexer]:
    """A real Indexer object (its follower not running) over a real pool and Redis: what the
    progress look (`progress.check`, `vouch`) reads."""
    program = VaultProgram(Pubkey.new_unique())
    cache = VaultCache(redis_ns.client, redis_ns.prefix, 60)
    config = IndexerConfig("http://127.0.0.1:1", "ws://127.0.0.1:1", "", program)
    yield Indexer(config, migrated_pool, Publisher(redis_ns.client, cache, program, redis_ns.prefix))
