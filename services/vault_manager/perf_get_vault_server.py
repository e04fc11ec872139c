"""GetVault served as vault_manager serves it (the services' GrpcService with health,
reflection and the per-call wrapper; the real VaultManager servicer), alone in its process:
no chain, Redis, PostgreSQL or subscription, its in-process mirror holding one owner's vault
so every call is answered from memory, as the mesh benchmark's GetVault calls are.
bench/bench_grpc_wrapper.py compares it with the echo server, bare and wrapped, to show what
the handler path costs apart from the rest of the system (it starts it through
bench/get_vault_server.py). `python -m services.vault_manager.perf_get_vault_server PORT OWNER`."""

from __future__ import annotations

import asyncio
import sys

from collateral_vault.v1 import vault_manager_pb2, vault_manager_pb2_grpc
from solders.pubkey import Pubkey

from services.common.grpc_server import GrpcService, registration
from services.vault_manager.vault_service import VaultManagerService
from vault_client import event_loop
from vault_client.config import Settings
from vault_client.heap import freeze_startup_heap
from vault_client.vault_program import Vault, VaultProgram


class _NoChain:
    """All the servicer reads of its chain client on a memory hit: the program."""

    program = VaultProgram(Pubkey.new_unique())


def servicer_holding(owner: Pubkey) -> VaultManagerService:
    """vault_manager's servicer with `owner`'s vault in its mirror: every GetVault of it is
    answered from memory."""
    servicer = VaultManagerService(_NoChain(), None, "vault_manager")  # type: ignore[arg-type]
    servicer.mirror.ttl = float("inf")  # no subscription here to confirm the answer, nor need of one
    servicer.mirror.remember(Vault(owner=owner, token_account=Pubkey.new_unique(), total_balance=10**12,
                                   locked_balance=10**9, available_balance=10**12 - 10**9, total_deposited=10**13,
                                   total_withdrawn=9 * 10**12, created_at=1_700_000_000, bump=254), 1_000)
    return servicer


async def main(port: int, owner: Pubkey) -> None:
    servicer = servicer_holding(owner)
    server = GrpcService(Settings(service="vault_manager", grpc_port=port, metrics_port=0),
                         [registration(servicer, vault_manager_pb2, vault_manager_pb2_grpc, "VaultManager")])
    await server.start(metrics=False)
    freeze_startup_heap()  # as the services do
    await asyncio.Event().wait()


if __name__ == "__main__":
    event_loop.run(main(int(sys.argv[1]), Pubkey.from_string(sys.argv[2])))
