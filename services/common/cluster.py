"""Which chain a service serves, checked before it serves anything.

At start each chain-facing service (vault_manager, balance_tracker, cpi_manager, monitor):
1. asks the cluster for its genesis hash, and refuses a cluster other than GENESIS_HASH
   when that is configured (it must be outside development);
2. checks that VAULT_PROGRAM_ID and POSITION_MANAGER_ID are deployed and executable, and
   that the VaultAuthority is the vault program's and names USDT_MINT as its mint;
3. binds its PostgreSQL database to the chain (`chain_binding`, migration 010: the first
   start records the genesis hash and the vault program id; a database bound to another
   chain is refused: its rows describe vaults that are not on this one);
4. binds its Redis key prefix the same way (`<prefix>chain`): cached vault states and
   submission claims under a prefix belong to one chain.

A refusal is `ClusterMismatch`, whose message names both chains and what to change."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from services.common.chain import ChainClient
from services.common.errors import ServiceError
from vault_client import redact
from vault_client.config import Settings
from vault_client.vault_program import Authority

logger = logging.getLogger("cluster")
IDENTITY_KEY = "chain"  # under the Redis prefix
STARTUP_ATTEMPTS = 30  # about two minutes of waiting for the node or Redis (backoff to 5 s)


class ClusterMismatch(Exception):
    """The configuration, the chain, the database or Redis disagree on which chain this is."""


@dataclass(frozen=True)
class ChainIdentity:
    genesis_hash: str
    vault_program_id: str

    def describe(self) -> str:
        return f"genesis {self.genesis_hash}, vault program {self.vault_program_id}"


async def _retrying(what: str, attempt: Any, errors: tuple[type[BaseException], ...],
                    attempts: int = STARTUP_ATTEMPTS) -> Any:
    delay = 0.2
    for number in range(1, attempts + 1):
        try:
            return await attempt()
        except errors as exc:
            if number == attempts:
                raise ClusterMismatch(f"{what} did not answer at start, so which chain it serves cannot be "
                                      f"checked: {exc}") from exc
            logger.warning("%s not reachable (%s); retrying in %.1f s", what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
    raise AssertionError("unreachable")


async def check_chain(settings: Settings, chain: ChainClient, attempts: int = STARTUP_ATTEMPTS) -> ChainIdentity:
    """Steps 1 and 2: the chain's identity, once it matches the configuration."""
    genesis = await _retrying(f"the Solana RPC at {chain.shown_url}", chain.genesis_hash, (ServiceError,), attempts)
    identity = ChainIdentity(genesis, str(settings.vault_program_id))
    if settings.genesis_hash and genesis != settings.genesis_hash:
        raise ClusterMismatch(f"the Solana RPC at {chain.shown_url} serves the chain with genesis {genesis}, "
                              f"not GENESIS_HASH={settings.genesis_hash}: point SOLANA_RPC_URL at that cluster")
    problems = []
    for name, program in (("VAULT_PROGRAM_ID", settings.vault_program_id),
                          ("POSITION_MANAGER_ID", settings.position_manager_id)):
        account = await chain.account(program)
        if account is None or not account.executable:
            problems.append(f"{name}={program} is not an executable program on this chain "
                            f"({'no such account' if account is None else 'an account that is not executable'})")
    authority_address = settings.program.authority
    account = await chain.account(authority_address)
    if account is None or account.owner != settings.vault_program_id:
        message = (f"the VaultAuthority {authority_address} of VAULT_PROGRAM_ID={settings.vault_program_id} is not "
                   "initialized on this chain")
        if settings.development:
            logger.warning("%s (allowed in the development profile)", message)
        else:
            problems.append(message)
    else:
        mint = Authority.decode(bytes(account.data)).usdt_mint
        if mint != settings.usdt_mint:
            problems.append(f"the VaultAuthority's USDT mint is {mint}, not USDT_MINT={settings.usdt_mint}")
    if problems:
        raise ClusterMismatch(f"the chain at {chain.shown_url} ({identity.describe()}) does not match the "
                              "configuration: " + "; ".join(problems))
    return identity


async def bind_database(pool: asyncpg.Pool, identity: ChainIdentity, settings: Settings) -> None:
    """Step 3: the first start records the chain; later starts must find the same one."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "INSERT INTO chain_binding (genesis_hash, vault_program_id, position_manager_id, usdt_mint, profile) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (singleton) DO NOTHING RETURNING *",
            identity.genesis_hash, identity.vault_program_id, str(settings.position_manager_id),
            str(settings.usdt_mint), settings.profile)
        if row is not None:
            if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM vaults) OR EXISTS (SELECT 1 FROM transactions)"):
                logger.warning("bound a database that already held indexed rows to %s: they are taken to be this "
                               "chain's (reconciliation reports any that are not)", identity.describe())
            else:
                logger.info("database bound to %s", identity.describe())
            return
        row = await conn.fetchrow("SELECT * FROM chain_binding")
    bound = ChainIdentity(row["genesis_hash"], row["vault_program_id"])
    if bound != identity:
        raise ClusterMismatch(
            f"the database at {redact.url(settings.database_url, keep_path=True)} indexes another chain "
            f"({bound.describe()}, bound {row['bound_at']:%Y-%m-%d %H:%M:%S} UTC) than the one at "
            f"{redact.url(settings.solana_rpc_url)} ({identity.describe()}): its vaults and events are not "
            "this chain's. Point DATABASE_URL at this chain's database (make up resets its development "
            "database itself)")


def redis_identity(identity: ChainIdentity, profile: str) -> str:
    return json.dumps({"genesis_hash": identity.genesis_hash, "vault_program_id": identity.vault_program_id,
                       "profile": profile}, sort_keys=True)


async def bind_redis(redis: aioredis.Redis, prefix: str, identity: ChainIdentity, settings: Settings,
                     attempts: int = STARTUP_ATTEMPTS) -> None:
    """Step 4: the key prefix's chain, recorded by the first service to start on it."""
    key = prefix + IDENTITY_KEY

    async def claim() -> Any:
        await redis.set(key, redis_identity(identity, settings.profile), nx=True)
        return await redis.get(key)

    stored = await _retrying(f"Redis at {redact.url(settings.redis_url, keep_path=True)}", claim,
                             (RedisError, OSError), attempts)
    try:
        data = json.loads(stored)
        bound = ChainIdentity(str(data["genesis_hash"]), str(data["vault_program_id"]))
    except (TypeError, ValueError, KeyError):
        raise ClusterMismatch(f"Redis key {key} holds {stored!r}, not a chain identity") from None
    if bound != identity:
        raise ClusterMismatch(
            f"the Redis prefix {prefix!r} holds the state of another chain ({bound.describe()}) than this service's "
            f"({identity.describe()}): set REDIS_PREFIX to one of this chain's own, or delete that prefix's keys "
            "(make up does so for its development chain)")


async def verify(settings: Settings, chain: ChainClient, pool: asyncpg.Pool,
                 redis: aioredis.Redis | None = None) -> ChainIdentity:
    """Every step, in order; raises `ClusterMismatch` at the first disagreement."""
    identity = await check_chain(settings, chain)
    await bind_database(pool, identity, settings)
    if redis is not None:
        await bind_redis(redis, settings.redis_prefix, identity, settings)
    return identity


async def verify_or_close(settings: Settings, chain: ChainClient, pool: asyncpg.Pool,
                          redis: aioredis.Redis | None = None) -> ChainIdentity:
    """`verify`, closing the service's connections when it refuses (the service stops)."""
    try:
        return await verify(settings, chain, pool, redis)
    except BaseException:
        await chain.close()
        if redis is not None:
            await redis.aclose()
        await pool.close()
        raise
