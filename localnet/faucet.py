"""Test USDT faucet: a real `mint_to` transaction signed by the dev faucet key (the mint
authority), sent through the node's JSON-RPC like any client would."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os

from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from localnet.genesis import dev_keypair
from vault_client import spl_token

USDT_UNITS = 10**6


async def fund(rpc_url: str, owner: Pubkey, amount: int) -> tuple[Pubkey, str]:
    """Mints ``amount`` base units to ``owner``'s USDT account (created if missing)."""
    faucet, mint = dev_keypair("faucet"), dev_keypair("usdt_mint").pubkey()
    destination = spl_token.associated_token_address(owner, mint)
    async with AsyncClient(rpc_url, commitment=Confirmed) as client:
        blockhash = (await client.get_latest_blockhash()).value.blockhash
        message = Message.new_with_blockhash(
            [spl_token.create_associated_token_account(faucet.pubkey(), owner, mint),
             spl_token.mint_to(mint, destination, faucet.pubkey(), amount)], faucet.pubkey(), blockhash)
        tx = VersionedTransaction(message, [faucet])
        signature = (await client.send_transaction(tx)).value
        await client.confirm_transaction(signature, Confirmed)
    return destination, str(signature)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m localnet faucet", description=__doc__)
    parser.add_argument("owner", help="wallet public key (base58)")
    parser.add_argument("amount", type=float, help="USDT to mint (e.g. 100 or 0.5)")
    parser.add_argument("--url", default=os.environ.get("SOLANA_RPC_URL", "http://127.0.0.1:8899"))
    args = parser.parse_args(argv)
    try:
        owner = Pubkey.from_string(args.owner)
    except ValueError:
        parser.error(f"{args.owner!r} is not a valid public key")
    if args.amount <= 0:
        parser.error("amount must be positive")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    account, signature = asyncio.run(fund(args.url, owner, round(args.amount * USDT_UNITS)))
    print(f"minted {args.amount} USDT to {account} ({signature})")
    return 0
