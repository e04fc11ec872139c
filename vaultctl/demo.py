"""`vaultctl demo`: the exchange's story, every step through the gRPC services.

Two traders deposit and grant the exchange once (their wallets sign what the services
build). The matching-engine side (cpi_manager with the operator's credentials) then opens
their positions (locks), settles PnL with a fee to the exchange's fee vault, liquidates bob
to the insurance fund and closes part of alice's position (a release). Alice's own attempt
to unlock what the exchange holds is refused by the chain. Then the operator stops: alice
requests her exit, waits out the delay, exits and withdraws. Ends with each vault's
balances from the chain, the database and gRPC side by side, and every step's outcome
(`ok` or the refusal's program error name)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from collateral_vault.v1 import cpi_manager_pb2, transaction_builder_pb2, vault_manager_pb2
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.core import RPCException
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from localnet.faucet import fund
from vault_client.config import DEFAULT_USDT_MINT
from vault_client.program_errors import error_name
from vault_client.vault_program import POSITION_MANAGER_ID, ExchangeProgram, Vault, VaultProgram, vault_address
from vaultctl.clients import Clients

USDT = 10**6
pb = cpi_manager_pb2


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


class Story:
    """The steps taken, each with its outcome."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.steps: list[dict[str, str]] = []

    async def step(self, name: str, action: Callable[[], Awaitable[str | None]]) -> None:
        """Runs `action` (its result: a refusal's error name, or None for ok)."""
        refusal = await action()
        self.steps.append({"name": name, "outcome": refusal or "ok"})
        say(f"  {name}: {'refused, ' + refusal if refusal else 'ok'}", self.quiet)


async def own_unlock_attempt(rpc: AsyncClient, trader: Trader, amount: int) -> str:
    """The trader signs position_manager's release himself and sends it to the chain
    directly (no service in between): the program's refusal, by name."""
    exchange = ExchangeProgram(VaultProgram(Pubkey.from_string(DEFAULT_USDT_MINT)), POSITION_MANAGER_ID)
    key = trader.keypair.pubkey()
    blockhash = (await rpc.get_latest_blockhash()).value.blockhash
    release = exchange.release(key, key, amount, 2**63)  # the trader as the "operator"
    try:
        await rpc.send_transaction(VersionedTransaction(Message.new_with_blockhash([release], key, blockhash),
                                                        [trader.keypair]))
    except RPCException as exc:
        data = getattr(exc.args[0], "data", None)
        return error_name(getattr(data, "err", None), getattr(data, "logs", None)) or str(exc.args[0])
    raise RuntimeError("the chain accepted a trader's own unlock of what the exchange holds")


async def run(clients: Clients, quiet: bool = False) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    alice, bob = Trader("alice", Keypair()), Trader("bob", Keypair())
    b, engine = clients.builder, clients.engine
    story = Story(quiet)

    async def wallet(trader: Trader, unsigned: Awaitable[Any]) -> None:
        reply = await unsigned
        await clients.sign_and_submit(reply.transaction.transaction_base64, trader.keypair)

    async with AsyncClient(clients.endpoints.rpc_url, commitment=Confirmed) as rpc:
        for t in (alice, bob):
            sig = (await rpc.request_airdrop(t.keypair.pubkey(), 2 * 10**9)).value
            await rpc.confirm_transaction(sig, Confirmed)
            await fund(clients.endpoints.rpc_url, t.keypair.pubkey(), 1_000 * USDT)
            say(f"  {t.name}: wallet {t.owner} funded with 2 SOL and 1,000 test USDT", quiet)

            async def onboard(t: Trader = t) -> None:
                await wallet(t, b.BuildInitializeVault(transaction_builder_pb2.BuildInitializeVaultRequest(
                    owner=t.owner)))
                await wallet(t, b.BuildDeposit(transaction_builder_pb2.BuildDepositRequest(owner=t.owner,
                                                                                           amount=500 * USDT)))
                await wallet(t, clients.cpi.BuildGrant(pb.BuildGrantRequest(
                    trader=t.owner, max_locked=400 * USDT, expires_at=int(time.time()) + 86_400)))

            await story.step(f"{t.name} deposits 500 USDT and grants the exchange up to 400", onboard)

        def operate(call: Callable[..., Awaitable[Any]], request: Any) -> Callable[[], Awaitable[None]]:
            async def action() -> None:
                await call(request, timeout=60)
            return action

        await story.step("the matching engine opens alice's position: 200 USDT locked", operate(
            engine.Lock, pb.LockRequest(trader=alice.owner, amount=200 * USDT, client_request_id=f"{tag}-open-a")))
        await story.step("the matching engine opens bob's position: 100 USDT locked", operate(
            engine.Lock, pb.LockRequest(trader=bob.owner, amount=100 * USDT, client_request_id=f"{tag}-open-b")))
        await story.step("settlement: bob pays alice 60 USDT of PnL, each pays the exchange a 1 USDT fee",
                         operate(engine.Settle, pb.SettleRequest(client_request_id=f"{tag}-fill", pairs=[
                             pb.SettlementPair(payer=bob.owner, receiver=alice.owner, amount=60 * USDT),
                             pb.SettlementPair(payer=bob.owner, to_fee_vault=True, amount=1 * USDT),
                             pb.SettlementPair(payer=alice.owner, to_fee_vault=True, amount=1 * USDT)])))
        await story.step("bob is liquidated: his remaining 39 USDT go to the insurance fund", operate(
            engine.Liquidate, pb.LiquidateRequest(trader=bob.owner, amount=39 * USDT,
                                                  client_request_id=f"{tag}-liquidate-b")))
        await story.step("alice tries to unlock her collateral herself",
                         lambda: own_unlock_attempt(rpc, alice, 199 * USDT))
        await story.step("alice closes half her position: 100 USDT released", operate(
            engine.Release, pb.ReleaseRequest(trader=alice.owner, amount=100 * USDT,
                                              client_request_id=f"{tag}-close-a")))
        say("  the operator stops: no more operator calls", quiet)

        async def exit_after_delay() -> None:
            await wallet(alice, clients.cpi.BuildRequestExit(pb.BuildRequestExitRequest(trader=alice.owner)))
            grant = await clients.cpi.GetGrant(pb.GetGrantRequest(trader=alice.owner))
            say(f"  alice requested her exit at slot {grant.exit_requested_slot}; she may exit from slot "
                f"{grant.exit_deadline_slot}", quiet)
            while (await rpc.get_slot()).value <= grant.exit_deadline_slot:
                await asyncio.sleep(0.2)
            await wallet(alice, clients.cpi.BuildExit(pb.BuildExitRequest(trader=alice.owner,
                                                                          withdraw_amount=400 * USDT)))

        await story.step("alice requests her exit, waits out the delay, exits and withdraws 400 USDT",
                         exit_after_delay)
        traders = await summary(clients, rpc, [alice, bob])
    return {"traders": traders, "steps": story.steps}


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


def print_summary(result: dict[str, Any]) -> None:
    def usdt(values: tuple[int, int, int] | None) -> str:
        return "missing" if values is None else " / ".join(f"{v / USDT:,.2f}" for v in values)

    print("\n  balances (total / locked / available, USDT)")
    print(f"  {'trader':8} {'chain':28} {'database':28} {'gRPC':28} agree")
    for name, row in result["traders"].items():
        print(f"  {name:8} {usdt(row['chain']):28} {usdt(row['database']):28} {usdt(row['grpc']):28} "
              f"{'yes' if row['agree'] else 'NO'}")
