"""vault_manager's programSubscribe on the vault program: every vault change, with its slot,
goes to the in-process mirror (`mirror.py`); every (re)subscription expires the mirror's
answers, since changes may have been missed while the connection was down. Reconnects
with backoff.

The Redis vault cache is not written here: balance_tracker's indexer writes it, once per
change however many vault_manager replicas run."""

from __future__ import annotations

import asyncio
import logging

from solana.rpc.commitment import Commitment
from solana.rpc.websocket_api import SolanaWsClient
from solders.rpc.responses import ProgramNotification

from services.common.chain import VAULT_SIZE
from services.vault_manager.mirror import VaultMirror
from vault_client.vault_program import Vault, VaultProgram

logger = logging.getLogger("vault_changes")


async def follow(ws_url: str, program: VaultProgram, mirror: VaultMirror, commitment: str = "confirmed",
                 ready: asyncio.Event | None = None) -> None:
    delay = 0.2
    while True:
        try:
            async with SolanaWsClient(ws_url) as ws:
                await ws.program_subscribe(program_id=program.program_id, commitment=Commitment(commitment),
                                           encoding="base64")
                mirror.expire()
                delay = 0.2
                if ready is not None:
                    ready.set()
                while True:
                    note = await ws.recv()
                    if not isinstance(note, ProgramNotification):
                        continue
                    data, slot = bytes(note.result.value.account.data), note.result.context.slot
                    if len(data) == VAULT_SIZE:
                        mirror.remember(Vault.decode(data), slot)
                    elif not data:  # closed: the notification names the vault's address only
                        mirror.closed(str(note.result.value.pubkey), slot)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # connection lost or node restarting: retry
            logger.warning("vault change subscription reconnecting after %s", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
