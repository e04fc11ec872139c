"""`python -m localnet.cluster_setup --url RPC`: prepares a real validator (e.g.
solana-test-validator started with the programs at their ids and the dev admin as their
upgrade authority) the way localnet's genesis prepares LiteSVM: funds the dev admin and
faucet, creates the test USDT mint, initializes the VaultAuthority, authorizes
position_manager, creates the fee and insurance-fund vaults and initializes the exchange
(`--operator`, development delays). Idempotent: what exists is left as it is. Development
keys only."""

from __future__ import annotations

import argparse
import asyncio
import logging

from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account
from solders.transaction import VersionedTransaction

from localnet.genesis import DEV_TIMELOCK_DELAY, USDT_DECIMALS, ExchangeSetup, dev_keypair
from vault_client import spl_token
from vault_client.vault_program import POSITION_MANAGER_ID, PROGRAM_ID, Authority, ExchangeProgram, VaultProgram

SOL = 10**9


async def _send(client: AsyncClient, instructions: list[Instruction], *signers: Keypair) -> None:
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    tx = VersionedTransaction(Message.new_with_blockhash(instructions, signers[0].pubkey(), blockhash), list(signers))
    signature = (await client.send_transaction(tx)).value
    await client.confirm_transaction(signature, Confirmed)


async def setup(url: str, exchange_setup: ExchangeSetup) -> None:
    admin, faucet, mint = dev_keypair("admin"), dev_keypair("faucet"), dev_keypair("usdt_mint")
    program = VaultProgram(mint.pubkey(), PROGRAM_ID)
    owners = (exchange_setup.fee_owner, exchange_setup.insurance_owner)
    async with AsyncClient(url, commitment=Confirmed) as client:
        for key in (admin.pubkey(), faucet.pubkey(), *(o.pubkey() for o in owners)):
            if (await client.get_balance(key)).value < SOL:
                await client.confirm_transaction((await client.request_airdrop(key, 100 * SOL)).value, Confirmed)
        if (await client.get_account_info(mint.pubkey())).value is None:
            rent = (await client.get_minimum_balance_for_rent_exemption(spl_token.MINT_SIZE)).value
            await _send(client, [
                create_account(CreateAccountParams(from_pubkey=admin.pubkey(), to_pubkey=mint.pubkey(), lamports=rent,
                                                   space=spl_token.MINT_SIZE, owner=spl_token.TOKEN_PROGRAM_ID)),
                spl_token.initialize_mint2(mint.pubkey(), USDT_DECIMALS, faucet.pubkey())], admin, mint)
        authority = (await client.get_account_info(program.authority)).value
        if authority is None:
            await _send(client, [program.initialize_authority(admin.pubkey(), DEV_TIMELOCK_DELAY)], admin)
            authority = (await client.get_account_info(program.authority)).value
        assert authority is not None
        state = Authority.decode(bytes(authority.data))
        if POSITION_MANAGER_ID not in state.programs:
            # a delay of 0 (development): queued and executed in one transaction
            await _send(client, program.authorize_program_now(admin.pubkey(), POSITION_MANAGER_ID,
                                                              state.next_change_id + 1), admin)
        for owner in owners:
            if (await client.get_account_info(program.vault(owner.pubkey()))).value is None:
                await _send(client, [program.initialize_vault(owner.pubkey())], owner)
        exchange = ExchangeProgram(program, POSITION_MANAGER_ID)
        if (await client.get_account_info(exchange.config)).value is None:
            await _send(client, [exchange.initialize_exchange(
                admin.pubkey(), exchange_setup.operator, owners[0].pubkey(), owners[1].pubkey(),
                exchange_setup.exit_delay_slots, exchange_setup.config_delay_slots)], admin)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(prog="python -m localnet.cluster_setup", description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8899")
    parser.add_argument("--operator", default=None,
                        help="the exchange operator's public key (default: the development key)")
    args = parser.parse_args()
    exchange_setup = ExchangeSetup()
    if args.operator:
        exchange_setup.operator = Pubkey.from_string(args.operator)
    asyncio.run(setup(args.url, exchange_setup))
    print("cluster ready: USDT mint, VaultAuthority, position_manager authorized, exchange initialized")


if __name__ == "__main__":
    main()
