"""The shared Redis vault cache (real Redis): a state from an older slot never replaces a
newer one, whether written alone or queued on a pipeline with others, and queued writes
need no script preloaded."""

from __future__ import annotations

from solders.pubkey import Pubkey

from services.common.vault_cache import VaultCache
from tests.conftest import RedisNamespace
from vault_client.vault_program import Vault


def vault(owner: Pubkey, total: int) -> Vault:
    return Vault(owner=owner, token_account=Pubkey.new_unique(), total_balance=total, locked_balance=0,
                 available_balance=total, total_deposited=total, total_withdrawn=0, created_at=1_700_000_000,
                 bump=254)


async def test_an_older_slot_never_replaces_a_newer_one(redis_ns: RedisNamespace) -> None:
    cache = VaultCache(redis_ns.client, redis_ns.prefix, 60)
    owner = Pubkey.new_unique()
    newer = vault(owner, 10)
    assert await cache.put(newer, 5)
    assert not await cache.put(vault(owner, 7), 4)
    assert await cache.get(owner) == (newer, 5)
    await cache.invalidate(owner)
    assert await cache.get(owner) is None


async def test_queued_writes_keep_the_slot_order_and_survive_a_flushed_script_cache(
        redis_ns: RedisNamespace) -> None:
    cache = VaultCache(redis_ns.client, redis_ns.prefix, 60)
    first, second, closed = Pubkey.new_unique(), Pubkey.new_unique(), Pubkey.new_unique()
    await cache.put(vault(first, 100), 50)
    await cache.put(vault(closed, 1), 1)
    await redis_ns.client.script_flush()  # e.g. Redis restarted: no script is loaded
    pipe = redis_ns.client.pipeline(transaction=False)
    cache.queue_put(pipe, vault(first, 1), 49)  # older: refused
    cache.queue_put(pipe, vault(second, 2), 60)
    cache.queue_put(pipe, vault(second, 3), 61)  # later in the same round trip: wins
    cache.queue_invalidate(pipe, str(closed))
    assert await pipe.execute() == [0, 1, 1, 1]
    got_first, got_second = await cache.get(first), await cache.get(second)
    assert got_first is not None and (got_first[0].total_balance, got_first[1]) == (100, 50)
    assert got_second is not None and (got_second[0].total_balance, got_second[1]) == (3, 61)
    assert got_second[0].owner == second and got_second[0].bump == 254
    assert await cache.get(closed) is None
    assert 0 < await redis_ns.client.ttl(cache.key(second)) <= 60
