"""The servers the gRPC benchmarks measure, services' measurement entry points started as
bench/ starts them (bench/echo_server.py, bench/get_vault_server.py: a process of their own).
The GetVault server bench_grpc_wrapper measures alone
(services/vault_manager/perf_get_vault_server.py) answers over a real socket as vault_manager
does from memory (the vault message, its address, source CACHE), through the services'
wrapper (its calls counted like any service's); the echo server answers the method the
benchmarks call."""

from __future__ import annotations

import grpc
from collateral_vault.v1 import common_pb2, vault_manager_pb2, vault_manager_pb2_grpc
from solders.pubkey import Pubkey

from bench import echo_server, get_vault_server
from localnet.node_harness import free_port
from services.common import perf_echo_server
from services.vault_manager import perf_get_vault_server


async def test_it_answers_getvault_from_memory_as_vault_manager_does() -> None:
    owner, port = Pubkey.new_unique(), free_port()
    server = await get_vault_server.spawn(port, owner)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = vault_manager_pb2_grpc.VaultManagerStub(channel)
            answer = await stub.GetVault(vault_manager_pb2.GetVaultRequest(owner=str(owner)))
            assert answer.vault.owner == str(owner) and answer.vault.total_balance == 10**12
            assert answer.vault.source == common_pb2.DATA_SOURCE_CACHE and answer.vault.slot == 1_000
            assert answer.vault.address == str(perf_get_vault_server._NoChain.program.vault(owner))
            try:  # bad input still gets the services' status, not a crash of the server
                await stub.GetVault(vault_manager_pb2.GetVaultRequest(owner="not a key"))
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            else:
                raise AssertionError("an invalid owner was answered")
    finally:
        echo_server.stop(server)


async def test_the_echo_server_answers_the_method_the_benchmarks_call() -> None:
    """bench/ names the echo's method without importing the server's module: the two agree,
    and the server started as the benchmarks start it (observed) echoes over a socket."""
    assert (echo_server.SERVICE, echo_server.METHOD) == (perf_echo_server.SERVICE, perf_echo_server.METHOD)
    port = free_port()
    server = await echo_server.spawn(port, observed=True)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            echo = channel.unary_unary(echo_server.METHOD)
            assert await echo(b"\x01\x02") == b"\x01\x02"
    finally:
        echo_server.stop(server)
