"""A localnet node for tests: in-process on free loopback ports, fast slots."""

from __future__ import annotations

import asyncio
import random
import socket
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.models import TxOpts
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from localnet.node import Node, NodeConfig

SLOT_MS = 20
FINALITY_DEPTH = 4


async def wait_healthy(url: str, process: subprocess.Popen[bytes], seconds: float = 20.0) -> None:
    """Waits until a `python -m localnet` process answers /health; fails if it exits."""
    for _ in range(int(seconds * 10)):
        if process.poll() is not None:
            raise AssertionError(f"localnet exited: {process.stdout.read() if process.stdout else b''!r}")
        try:
            async with aiohttp.ClientSession() as session, session.get(url + "/health") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("localnet did not become healthy")


_handed_out: set[int] = set()


def _ephemeral_start() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ports:
            return int(ports.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port nothing listens on, below the kernel's ephemeral range: a port the kernel
    picked itself (bind to 0) can be taken by any outgoing connection's local end before
    its server binds it, and the benchmarks and the e2e test make thousands of those."""
    upper = min(_ephemeral_start(), 65536)
    lower = 20000 if upper > 25000 else 1024
    for _ in range(200):
        port = random.randrange(lower, upper)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port found in {lower}-{upper - 1}")


@asynccontextmanager
async def running_node(**overrides: object) -> AsyncIterator[Node]:
    config = NodeConfig(rpc_port=free_port(), ws_port=free_port(), slot_ms=SLOT_MS, finality_depth=FINALITY_DEPTH)
    for key, value in overrides.items():
        setattr(config, key, value)
    node = Node(config)
    await node.start()
    try:
        yield node
    finally:
        await node.stop()


@dataclass
class RpcUser:
    """A wallet funded through the RPC (airdrop) for sending transactions."""

    client: AsyncClient
    keypair: Keypair

    @property
    def key(self) -> Pubkey:
        return self.keypair.pubkey()

    async def send(self, instructions: list[Instruction], *signers: Keypair, skip_preflight: bool = False) -> Signature:
        blockhash = (await self.client.get_latest_blockhash()).value.blockhash
        message = Message.new_with_blockhash(instructions, self.key, blockhash)
        tx = VersionedTransaction(message, [self.keypair, *signers])
        signature = (await self.client.send_transaction(tx, opts=TxOpts(skip_preflight=skip_preflight))).value
        await self.client.confirm_transaction(signature, Confirmed, sleep_seconds=0.02)
        return signature


async def funded_user(client: AsyncClient, sol: int = 10) -> RpcUser:
    keypair = Keypair()
    signature = (await client.request_airdrop(keypair.pubkey(), sol * 10**9)).value
    await client.confirm_transaction(signature, Confirmed, sleep_seconds=0.02)
    return RpcUser(client, keypair)
