"""`vaultctl demo`: two traders through the whole lifecycle, every vault action through the
gRPC services (built there, signed here, submitted there): vaults initialized, deposits,
positions opened, settled and closed through position_manager, a withdrawal. Ends with
each vault's balances from the chain, the database and gRPC side by side."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
from collateral_vault.v1 import cpi_manager_pb2, transaction_builder_pb2, vault_manager_pb2
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair

from localnet.faucet import fund
from services.common.vault_program import Vault, vault_address
from vaultctl.clients import Clients

USDT = 10**6


@dataclass
class Trader:
    name: str
    keypair: Keypair

    @property
    def owner(self) -> str:
        return str(self.keypair.pubkey())


def say(message: str, quiet: bool) -> None:
    if not quiet:
        print(message, flush=True)


async def run(clients: Clients, quiet: bool = False) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    traders = [Trader("alice", Keypair()), Trader("bob", Keypair())]
    b, cpi = clients.builder, clients.cpi
    async with AsyncClient(clients.endpoints.rpc_url, commitment=Confirmed) as rpc:
        for t in traders:
            sig = (await rpc.request_airdrop(t.keypair.pubkey(), 2 * 10**9)).value
            await rpc.confirm_transaction(sig, Confirmed)
            await fund(clients.endpoints.rpc_url, t.keypair.pubkey(), 1_000 * USDT)
            say(f"  {t.name}: wallet {t.owner} funded with 2 SOL and 1,000 test USDT", quiet)
            built = await b.BuildInitializeVault(transaction_builder_pb2.BuildInitializeVaultRequest(owner=t.owner))
            await clients.sign_and_submit(built.transaction.transaction_base64, t.keypair)
            built = await b.BuildDeposit(transaction_builder_pb2.BuildDepositRequest(owner=t.owner,
                                                                                     amount=500 * USDT))
            await clients.sign_and_submit(built.transaction.transaction_base64, t.keypair)
            say(f"  {t.name}: vault initialized, 500 USDT deposited", quiet)
        alice, bob = traders

        async def cpi_step(text: str, call: Any, signer: Trader) -> None:
            reply = await call
            await clients.sign_and_submit(reply.transaction.transaction_base64, signer.keypair)
            say(f"  {text}", quiet)

        await cpi_step("alice opens a position: 200 USDT locked", cpi.BuildLockCollateral(
            cpi_manager_pb2.BuildLockCollateralRequest(owner=alice.owner, amount=200 * USDT,
                                                       client_request_id=f"{tag}-alice-open")), alice)
        await cpi_step("bob opens a position: 100 USDT locked", cpi.BuildLockCollateral(
            cpi_manager_pb2.BuildLockCollateralRequest(owner=bob.owner, amount=100 * USDT,
                                                       client_request_id=f"{tag}-bob-open")), bob)
        await cpi_step("settlement: alice pays bob 50 USDT of PnL", cpi.BuildSettle(
            cpi_manager_pb2.BuildSettleRequest(payer=alice.owner, receiver=bob.owner, amount=50 * USDT,
                                               client_request_id=f"{tag}-settle")), alice)
        await cpi_step("alice closes her position: 150 USDT unlocked", cpi.BuildUnlockCollateral(
            cpi_manager_pb2.BuildUnlockCollateralRequest(owner=alice.owner, amount=150 * USDT,
                                                         client_request_id=f"{tag}-alice-close")), alice)
        await cpi_step("bob closes his position: 100 USDT unlocked", cpi.BuildUnlockCollateral(
            cpi_manager_pb2.BuildUnlockCollateralRequest(owner=bob.owner, amount=100 * USDT,
                                                         client_request_id=f"{tag}-bob-close")), bob)
        built = await b.BuildWithdraw(transaction_builder_pb2.BuildWithdrawRequest(owner=alice.owner,
                                                                                   amount=100 * USDT))
        await clients.sign_and_submit(built.transaction.transaction_base64, alice.keypair)
        say("  alice withdraws 100 USDT", quiet)
        return await summary(clients, rpc, traders)


async def summary(clients: Clients, rpc: AsyncClient, traders: list[Trader]) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    conn = await asyncpg.connect(clients.endpoints.database_url)
    try:
        for t in traders:
            info = (await rpc.get_account_info(vault_address(t.keypair.pubkey()))).value
            assert info is not None
            chain = Vault.decode(bytes(info.data))
            expected = (chain.total_balance, chain.locked_balance, chain.available_balance)
            deadline = time.monotonic() + 15
            while True:  # the indexer follows the chain at confirmed commitment
                row = await conn.fetchrow("SELECT total_balance, locked_balance, available_balance FROM vaults "
                                          "WHERE owner = $1", t.owner)
                db = tuple(int(v) for v in row.values()) if row else None
                if db == expected or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
            vault = (await clients.vaults.GetVault(vault_manager_pb2.GetVaultRequest(owner=t.owner, fresh=True))).vault
            grpc_view = (vault.total_balance, vault.locked_balance, vault.available_balance)
            rows[t.name] = {"owner": t.owner, "chain": expected, "database": db, "grpc": grpc_view,
                            "agree": expected == db == grpc_view}
    finally:
        await conn.close()
    return rows


def print_summary(rows: dict[str, Any]) -> None:
    def usdt(values: tuple[int, int, int] | None) -> str:
        return "missing" if values is None else " / ".join(f"{v / USDT:,.2f}" for v in values)

    print("\n  balances (total / locked / available, USDT)")
    print(f"  {'trader':8} {'chain':28} {'database':28} {'gRPC':28} agree")
    for name, row in rows.items():
        print(f"  {name:8} {usdt(row['chain']):28} {usdt(row['database']):28} {usdt(row['grpc']):28} "
              f"{'yes' if row['agree'] else 'NO'}")
