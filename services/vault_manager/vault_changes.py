"""Keeps the vault cache in step with the chain: a programSubscribe on the vault program
writes every changed vault (with its slot) to Redis; reconnects with backoff."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from solana.rpc.commitment import Commitment
from solana.rpc.websocket_api import SolanaWsClient
from solders.rpc.responses import ProgramNotification

from services.common.chain import VAULT_SIZE
from services.common.vault_cache import VaultCache
from services.common.vault_program import Vault, VaultProgram

logger = logging.getLogger("cache_sync")


async def follow(ws_url: str, program: VaultProgram, cache: VaultCache, commitment: str = "confirmed",
                 ready: asyncio.Event | None = None, on_update: Callable[[Vault, int], None] | None = None) -> None:
    delay = 0.2
    while True:
        try:
            async with SolanaWsClient(ws_url) as ws:
                await ws.program_subscribe(program_id=program.program_id, commitment=Commitment(commitment),
                                           encoding="base64")
                delay = 0.2
                if ready is not None:
                    ready.set()
                while True:
                    note = await ws.recv()
                    if not isinstance(note, ProgramNotification):
                        continue
                    data = bytes(note.result.value.account.data)
                    if len(data) != VAULT_SIZE:
                        if not data:  # a closed vault: we cannot tell whose; entries expire by TTL
                            continue
                        continue
                    vault = Vault.decode(data)
                    await cache.put(vault, note.result.context.slot)
                    if on_update is not None:
                        on_update(vault, note.result.context.slot)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # connection lost or node restarting: retry
            logger.warning("vault cache sync reconnecting after %s", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
