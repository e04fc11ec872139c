"""The GetVault server bench_grpc_wrapper measures alone: it answers over a real socket as
vault_manager does from memory (the vault message, its address, source CACHE), through the
services' wrapper (its calls counted like any service's)."""

from __future__ import annotations

import grpc
from collateral_vault.v1 import common_pb2, vault_manager_pb2, vault_manager_pb2_grpc
from solders.pubkey import Pubkey

from bench import echo_server, get_vault_server
from localnet.node_harness import free_port


async def test_it_answers_getvault_from_memory_as_vault_manager_does() -> None:
    owner, port = Pubkey.new_unique(), free_port()
    server = await get_vault_server.spawn(port, owner)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = vault_manager_pb2_grpc.VaultManagerStub(channel)
            answer = await stub.GetVault(vault_manager_pb2.GetVaultRequest(owner=str(owner)))
            assert answer.vault.owner == str(owner) and answer.vault.total_balance == 10**12
            assert answer.vault.source == common_pb2.DATA_SOURCE_CACHE and answer.vault.slot == 1_000
            assert answer.vault.address == str(get_vault_server._NoChain.program.vault(owner))
            try:  # bad input still gets the services' status, not a crash of the server
                await stub.GetVault(vault_manager_pb2.GetVaultRequest(owner="not a key"))
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            else:
                raise AssertionError("an invalid owner was answered")
    finally:
        echo_server.stop(server)
