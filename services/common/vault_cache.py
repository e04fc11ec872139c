"""The Redis cache of vault state, shared by the services: one JSON value per owner,
written with the chain slot it reflects; an older slot never overwrites a newer one.

Entries live long (`CACHE_TTL_SECONDS`, a day by default: an idle vault's entry stays
correct however long nothing happens to it), so their age says nothing about whether they
are current. What does is the indexer: its leader keeps `{prefix}indexer:current` set only
while it has processed every program transaction confirmed up to a few seconds ago
(`services/balance_tracker/indexer/progress.py`), and the key expires a trust window (three
progress checks: 15 s) after the moment it vouches for. `get_if_current` reads an entry and
that key in one round trip and answers the entry only with the key: an entry it answers
misses no change confirmed more than the trust window earlier, whether the indexer died,
fell behind, or lost cache writes."""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

import redis.asyncio as aioredis
from pydantic_core import to_json
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError
from solders.pubkey import Pubkey

from vault_client.vault_program import ProgramLock, Vault

logger = logging.getLogger("cache")

# Set only if the stored slot is not newer (atomic compare in Redis).
_SET_IF_NEWER = """
local current = redis.call('GET', KEYS[1])
if current then
  local slot = tonumber(cjson.decode(current)['slot'])
  if slot and slot > tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return 1
"""


_FIELDS = tuple(f.name for f in dataclasses.fields(Vault))
CURRENT_KEY = "indexer:current"  # after the prefix: the slot the indexer vouches for, while it does


def encode(vault: Vault, slot: int) -> str:
    """The cached JSON of a vault at a slot (keys are public keys as base58 strings)."""
    values = {name: getattr(vault, name) for name in _FIELDS}
    values["owner"], values["token_account"] = str(vault.owner), str(vault.token_account)
    values["locks"] = [[str(lock.program), lock.amount] for lock in vault.locks]
    return encode_values(values, slot)


def encode_values(values: dict[str, Any], slot: int) -> str:
    """The cached JSON of a vault's fields as `encode` states them (every field of `Vault`,
    in its order, keys as text): for a writer that has them as text already (the indexer's
    vault rows) and need not build a Vault. Compact JSON, serialized in Rust (pydantic_core;
    the same values for every reader as json.dumps gave)."""
    return to_json({"vault": values, "slot": slot}).decode()


def decode(raw: str | bytes) -> tuple[Vault, int]:
    """(vault, slot) from a cached JSON value (`encode`)."""
    data = json.loads(raw)
    fields: dict[str, Any] = data["vault"]
    fields["owner"] = Pubkey.from_string(fields["owner"])
    fields["token_account"] = Pubkey.from_string(fields["token_account"])
    fields["locks"] = tuple(ProgramLock(Pubkey.from_string(program), amount)
                            for program, amount in fields.get("locks", ()))
    return Vault(**fields), int(data["slot"])


class VaultCache:
    def __init__(self, client: aioredis.Redis, prefix: str, ttl_seconds: int) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl = ttl_seconds
        self._set_if_newer = client.register_script(_SET_IF_NEWER)

    def key(self, owner: Pubkey | str) -> str:
        return f"{self.prefix}vault:{owner}"

    def current_key(self) -> str:
        return f"{self.prefix}{CURRENT_KEY}"

    async def get(self, owner: Pubkey) -> tuple[Vault, int] | None:
        """(vault, slot) or None, however old the entry is (for readers that state the
        indexer's own progress beside it); Redis being down counts as a miss."""
        try:
            raw = await self.client.get(self.key(owner))
        except RedisError as exc:
            logger.warning("vault cache unavailable: %s", exc)
            return None
        return None if raw is None else decode(raw)

    async def get_if_current(self, owner: Pubkey) -> tuple[Vault, int] | None:
        """(vault, slot) only while the indexer vouches for the cache (the key is set), read
        with the entry in one MGET; else None, as when Redis is down."""
        try:
            raw, current = await self.client.mget([self.key(owner), self.current_key()])
        except RedisError as exc:
            logger.warning("vault cache unavailable: %s", exc)
            return None
        return None if raw is None or current is None else decode(raw)

    async def vouch(self, slot: int, milliseconds: int) -> None:
        """The indexer has processed every program transaction up to `slot`: entries are
        trusted for `milliseconds` more (the caller's staleness bound). The caller handles
        RedisError."""
        await self.client.set(self.current_key(), slot, px=milliseconds)

    async def withdraw_trust(self) -> None:
        """Entries are no longer trusted (the indexer is behind or lost cache writes)."""
        await self.client.delete(self.current_key())

    async def put(self, vault: Vault, slot: int) -> bool:
        try:
            return bool(await self._set_if_newer(keys=[self.key(vault.owner)],
                                                 args=[encode(vault, slot), slot, self.ttl]))
        except RedisError as exc:
            logger.warning("vault cache unavailable: %s", exc)
            return False

    async def invalidate(self, owner: Pubkey) -> None:
        try:
            await self.client.delete(self.key(owner))
        except RedisError as exc:
            logger.warning("vault cache unavailable: %s", exc)

    # Queued on a caller's pipeline (one round trip for many vaults); the caller handles
    # RedisError. EVAL carries the script itself, so a Redis that lost its script cache
    # (restart, SCRIPT FLUSH) needs no reload; Redis compiles it once and reuses it.
    def queue_put(self, pipe: Pipeline, vault: Vault, slot: int) -> None:
        pipe.eval(_SET_IF_NEWER, 1, self.key(vault.owner), encode(vault, slot), slot, self.ttl)

    def queue_invalidate(self, pipe: Pipeline, owner: Pubkey | str) -> None:
        pipe.delete(self.key(owner))


# Many vaults in one command (the indexer's batch, after it commits): each entry under the
# same rule as _SET_IF_NEWER, set only if the stored slot is not newer. KEYS are the vaults'
# keys; ARGV[1] the TTL, then each key's value and slot. One EVAL instead of one per vault:
# redis-py packs every command in Python, which was most of a catch-up's Redis cost.
_SET_MANY_IF_NEWER = """
local ttl = ARGV[1]
local written = 0
for i, key in ipairs(KEYS) do
  local slot = tonumber(ARGV[2 * i + 1])
  local current = redis.call('GET', key)
  local stored = current and tonumber(cjson.decode(current)['slot'])
  if not (stored and stored > slot) then
    redis.call('SET', key, ARGV[2 * i], 'EX', ttl)
    written = written + 1
  end
end
return written
"""
# Vaults per EVAL: a script holds Redis while it runs (every GetVault's read waits behind it),
# so it stays short. With 1,000, Redis's SLOWLOG of a 100,000-vault catch-up held 65 scripts
# of 10-65 ms each (each stored entry is JSON-decoded for its slot); 100 is a tenth of that.
PUT_MANY_CHUNK = 100


def queue_put_encoded(cache: VaultCache, pipe: Pipeline, entries: list[tuple[str, str, int]]) -> None:
    """`VaultCache.queue_put` for many vaults, PUT_MANY_CHUNK per command (the caller handles
    RedisError), each entry encoded already: (owner, its `encode`d JSON, slot). The keys must
    be distinct: each is compared with what Redis holds, not with the others of the same call."""
    for start in range(0, len(entries), PUT_MANY_CHUNK):
        chunk = entries[start:start + PUT_MANY_CHUNK]
        args: list[Any] = [cache.ttl]
        for _, value, slot in chunk:
            args += (value, slot)
        pipe.eval(_SET_MANY_IF_NEWER, len(chunk), *(cache.key(owner) for owner, _, _ in chunk), *args)
