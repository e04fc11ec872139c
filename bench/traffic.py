"""Deposit / withdraw traffic through localnet's RPC, with a model of what each vault
must hold afterwards."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.models import TxOpts
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from localnet.faucet import fund
from localnet.node import Node
from localnet.node_harness import RpcUser, funded_user
from vault_client.vault_program import VaultProgram

USDT = 10**6


@dataclass
class Account:
    user: RpcUser
    token_account: Pubkey
    total: int = 0
    deposited: int = 0
    withdrawn: int = 0
    signatures: list[str] = field(default_factory=list)


async def users_with_vaults(node: Node, client: AsyncClient, count: int, usdt: int = 10_000) -> list[Account]:
    assert node.ledger is not None
    program = node.ledger.deployment.program

    async def one() -> Account:
        user = await funded_user(client, 5)
        token_account, _ = await fund(node.rpc_url, user.key, usdt * USDT)
        await user.send([program.initialize_vault(user.key)])
        return Account(user, token_account)

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def burst(program: VaultProgram, client: AsyncClient, accounts: list[Account], operations: int,
                seed: int = 7, on_progress: object = None) -> int:
    """Sends `operations` deposits and withdrawals spread over the accounts (each account's
    transactions in order, accounts in parallel); returns how many were sent."""
    rng = random.Random(seed)
    per_account: dict[int, list[tuple[str, int]]] = {i: [] for i in range(len(accounts))}
    model = [a.total for a in accounts]
    for n in range(operations):
        i = rng.randrange(len(accounts))
        if model[i] > 0 and rng.random() < 0.4:
            amount = rng.randint(1, model[i])
            per_account[i].append(("withdraw", amount))
            model[i] -= amount
        else:
            amount = rng.randint(1, 50) * USDT + n  # distinct amounts: distinct signatures
            per_account[i].append(("deposit", amount))
            model[i] += amount
    sent = 0
    opts = TxOpts(skip_confirmation=True)

    async def run(i: int) -> None:
        nonlocal sent
        account = accounts[i]
        for kind, amount in per_account[i]:
            ix = (program.deposit(account.user.key, account.token_account, amount) if kind == "deposit"
                  else program.withdraw(account.user.key, account.token_account, amount))
            blockhash = (await client.get_latest_blockhash(Confirmed)).value.blockhash
            tx = VersionedTransaction(Message.new_with_blockhash([ix], account.user.key, blockhash),
                                      [account.user.keypair])
            signature = (await client.send_transaction(tx, opts=opts)).value
            account.signatures.append(str(signature))
            if kind == "deposit":
                account.total += amount
                account.deposited += amount
            else:
                account.total -= amount
                account.withdrawn += amount
            sent += 1
            if callable(on_progress):
                await on_progress(sent)

    await asyncio.gather(*(run(i) for i in per_account))
    return sent
