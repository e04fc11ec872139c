"""N vaults on a node, the fastest honest way: real signed transactions, straight to the
node's JSON-RPC, several vaults per transaction.

Each transaction is paid by the development faucet (the USDT mint authority) and signed by
it and by the owners it opens vaults for; per owner it carries: SOL for the owner's rent
(system transfer), the owner's USDT account (CreateIdempotent) and USDT minted to it, the
owner's `initialize_vault` and a `deposit` into the vault. As many owners go into each as
fit in one transaction's 1,232 bytes and in the 10,000 bytes of log a transaction keeps
(`MAX_OWNERS_BY_LOG`): the indexer reads the program's events from the logs, and a third
owner's instructions would push the last event past the cut ("Log truncated").
Transactions go out as JSON-RPC batches of `SENDS_PER_BATCH` sendTransaction requests
(preflight skipped: the signature statuses are checked afterwards, and every transaction
must have landed without error), several batches in flight; the blockhash is renewed every
few seconds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.rpc.config import RpcSendTransactionConfig, RpcSignatureStatusConfig
from solders.rpc.requests import GetSignatureStatuses, SendRawTransaction
from solders.rpc.responses import GetSignatureStatusesResp, SendTransactionResp
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction

from localnet.genesis import dev_keypair
from vault_client import spl_token
from vault_client.http_client import HttpClient
from vault_client.rpc_http import call_batch
from vault_client.vault_program import VaultProgram

USDT = 10**6
MINTED = 1_000 * USDT  # to each owner's USDT account
DEPOSITED = 100 * USDT  # of it, into the vault
OWNER_LAMPORTS = 10_000_000  # 0.01 SOL: the vault's and its token account's rent, and later fees
PACKET_BYTES = 1_232
SENDS_PER_BATCH = 25
BATCHES_IN_FLIGHT = 6
BLOCKHASH_SECONDS = 5.0
AIRDROP_LAMPORTS = 1_000 * 10**9  # localnet's most per request
# one owner's instructions log 3,566 bytes (7,156 for two, 10,006 truncated for three)
MAX_OWNERS_BY_LOG = 2


@dataclass
class Population:
    owners: list[Keypair] = field(default_factory=list)
    transactions: int = 0
    owners_per_transaction: int = 0
    seconds: float = 0.0
    signatures: list[Signature] = field(default_factory=list)

    def token_account(self, owner: Keypair, program: VaultProgram) -> Pubkey:
        return spl_token.associated_token_address(owner.pubkey(), program.mint)

    def report(self) -> dict[str, Any]:
        return {"vaults": len(self.owners), "transactions": self.transactions,
                "vaults_per_transaction": self.owners_per_transaction, "seconds": round(self.seconds, 2),
                "vaults_per_second": round(len(self.owners) / self.seconds, 1) if self.seconds else 0.0}


def _instructions(program: VaultProgram, faucet: Pubkey, owner: Pubkey) -> list[Any]:
    token_account = spl_token.associated_token_address(owner, program.mint)
    return [transfer(TransferParams(from_pubkey=faucet, to_pubkey=owner, lamports=OWNER_LAMPORTS)),
            spl_token.create_associated_token_account(faucet, owner, program.mint),
            spl_token.mint_to(program.mint, token_account, faucet, MINTED),
            program.initialize_vault(owner), program.deposit(owner, token_account, DEPOSITED)]


def _transaction(program: VaultProgram, faucet: Keypair, owners: list[Keypair], blockhash: Hash
                 ) -> VersionedTransaction:
    instructions = [ix for owner in owners for ix in _instructions(program, faucet.pubkey(), owner.pubkey())]
    return VersionedTransaction(Message.new_with_blockhash(instructions, faucet.pubkey(), blockhash),
                                [faucet, *owners])


def owners_per_transaction(program: VaultProgram) -> int:
    """The most owners whose instructions fit in one transaction and its log."""
    faucet, count = dev_keypair("faucet"), 1
    while count < MAX_OWNERS_BY_LOG and len(bytes(_transaction(
            program, faucet, [Keypair() for _ in range(count + 1)], Hash.default()))) <= PACKET_BYTES:
        count += 1
    return count


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


async def _fund_faucet(client: AsyncClient, faucet: Pubkey, count: int) -> None:
    needed = count * (OWNER_LAMPORTS + 3_000_000) + 10 * 10**9  # + its own rent for owners' USDT accounts, fees
    have = (await client.get_balance(faucet)).value
    while have < needed:
        signature = (await client.request_airdrop(faucet, AIRDROP_LAMPORTS)).value
        await client.confirm_transaction(signature, Confirmed)
        have += AIRDROP_LAMPORTS


async def populate(rpc_url: str, count: int, program: VaultProgram) -> Population:
    """`count` new vaults, each with DEPOSITED in it; raises if any transaction failed."""
    faucet = dev_keypair("faucet")
    out = Population(owners=[Keypair() for _ in range(count)], owners_per_transaction=owners_per_transaction(program))
    http = HttpClient(rpc_url, timeout=60)
    config = RpcSendTransactionConfig(skip_preflight=True)
    async with AsyncClient(rpc_url, commitment=Confirmed) as client:
        await _fund_faucet(client, faucet.pubkey(), count)
        started = time.perf_counter()
        blockhash: list[tuple[Hash, float]] = []

        async def fresh() -> Hash:
            if not blockhash or time.monotonic() - blockhash[0][1] > BLOCKHASH_SECONDS:
                value = (await client.get_latest_blockhash(Confirmed)).value.blockhash
                blockhash[:] = [(value, time.monotonic())]
            return blockhash[0][0]

        gate = asyncio.Semaphore(BATCHES_IN_FLIGHT)

        async def send(groups: list[list[Keypair]]) -> list[Signature]:
            async with gate:
                recent = await fresh()
                txs = [_transaction(program, faucet, group, recent) for group in groups]
                requests = [SendRawTransaction(bytes(tx), config, i) for i, tx in enumerate(txs)]
                answers = await call_batch(http, requests, [SendTransactionResp] * len(requests))
                refused = [a for a in answers if not isinstance(a, SendTransactionResp)]
                if refused:
                    raise RuntimeError(f"the node refused a population transaction: {refused[0]}")
                return [tx.signatures[0] for tx in txs]

        groups = list(_chunks(out.owners, out.owners_per_transaction))
        sent = await asyncio.gather(*(send(batch) for batch in _chunks(groups, SENDS_PER_BATCH)))
        out.signatures = [s for batch in sent for s in batch]
        out.transactions = len(out.signatures)
        await _all_landed(http, out.signatures)
        out.seconds = time.perf_counter() - started
    await http.close()
    return out


async def _all_landed(http: HttpClient, signatures: list[Signature], seconds: float = 120.0) -> None:
    """Until every signature is confirmed; raises on a failed or missing transaction."""
    pending = list(signatures)
    deadline = time.monotonic() + seconds
    while pending:
        still: list[Signature] = []
        for chunk in _chunks(pending, 256):
            [answer] = await call_batch(http, [GetSignatureStatuses(chunk, RpcSignatureStatusConfig(False))],
                                        [GetSignatureStatusesResp])
            if not isinstance(answer, GetSignatureStatusesResp):
                raise RuntimeError(f"getSignatureStatuses failed: {answer}")
            for signature, status in zip(chunk, answer.value, strict=True):
                if status is not None and status.err is not None:
                    raise RuntimeError(f"population transaction {signature} failed: {status.err}")
                if status is None or status.confirmation_status is None or \
                        str(status.confirmation_status).rsplit(".", 1)[-1].lower() == "processed":
                    still.append(signature)
        pending = still
        if pending:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(pending)} population transactions did not land")
            await asyncio.sleep(0.2)
