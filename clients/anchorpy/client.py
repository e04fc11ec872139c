"""Acceptance client for issue 23: anchorpy (0.21, the last release; it reads the legacy
Anchor 0.29 IDL), driven only by program/idl/*.json, against a running `python -m localnet`.

    clients/anchorpy/.venv/bin/python clients/anchorpy/client.py <rpc-url> <owner-keypair.json> <amount>

Runs in its own virtualenv (clients/anchorpy/requirements.lock): anchorpy pins solana-py
0.36 / solders 0.26 / construct-typing 0.5, which the project's solana 0.41 excludes. The
owner must hold SOL for fees and `amount` test USDT in its associated token account. Creates
the owner's vault, deposits `amount`, decodes the vault account and the events, withdraws
`amount + 1` and reports what anchorpy raised. Output: one JSON object on stdout.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from anchorpy import Context, EventParser, Idl, Program, Provider, Wallet
from anchorpy.error import ProgramError
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import ID as SYSTEM_PROGRAM

IDL_DIR = Path(__file__).resolve().parents[2] / "program" / "idl"
TOKEN_PROGRAM = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
ATA_PROGRAM = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")


def load(name: str, provider: Provider) -> Program:
    text = (IDL_DIR / f"{name}.json").read_text()
    address = Pubkey.from_string(json.loads(text)["metadata"]["address"])
    return Program(Idl.from_json(text), address, provider)


def ata(owner: Pubkey, mint: Pubkey) -> Pubkey:
    return Pubkey.find_program_address([bytes(owner), bytes(TOKEN_PROGRAM), bytes(mint)], ATA_PROGRAM)[0]


def plain(value: Any) -> Any:
    """Decoded values as JSON (pubkeys and integers as strings, as the TS client writes them)."""
    if isinstance(value, Pubkey):
        return str(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "__dataclass_fields__") or hasattr(value, "__dict__"):
        return {k: plain(v) for k, v in vars(value).items() if not k.startswith("_")}
    return value


async def events_of(client: AsyncClient, parser: EventParser, signature: Signature) -> list[dict[str, Any]]:
    tx = await client.get_transaction(signature, commitment=Confirmed, max_supported_transaction_version=0)
    assert tx.value is not None and tx.value.transaction.meta is not None
    found: list[dict[str, Any]] = []
    parser.parse_logs(tx.value.transaction.meta.log_messages or [],
                      lambda event: found.append({"name": event.name, "data": plain(event.data)}))
    return found


async def main(url: str, keypair_path: str, amount: int) -> dict[str, Any]:
    owner = Keypair.from_bytes(bytes(json.loads(Path(keypair_path).read_text())))
    async with AsyncClient(url, commitment=Confirmed) as client:
        provider = Provider(client, Wallet(owner))
        vault_program = load("collateral_vault", provider)
        exchange_program = load("position_manager", provider)
        pid = vault_program.program_id
        authority = Pubkey.find_program_address([b"vault_authority"], pid)[0]
        vault = Pubkey.find_program_address([b"vault", bytes(owner.pubkey())], pid)[0]
        mint = (await vault_program.account["VaultAuthority"].fetch(authority)).usdt_mint
        vault_token, owner_token = ata(vault, mint), ata(owner.pubkey(), mint)
        exchange = Pubkey.find_program_address([b"exchange"], exchange_program.program_id)[0]
        config = await exchange_program.account["ExchangeConfig"].fetch(exchange)

        init_sig = await vault_program.rpc["initialize_vault"](ctx=Context(accounts={
            "owner": owner.pubkey(), "vault": vault, "vault_token_account": vault_token, "usdt_mint": mint,
            "authority": authority, "system_program": SYSTEM_PROGRAM, "token_program": TOKEN_PROGRAM,
            "associated_token_program": ATA_PROGRAM}))
        await client.confirm_transaction(init_sig, Confirmed)
        deposit_sig = await vault_program.rpc["deposit"](amount, ctx=Context(accounts={
            "owner": owner.pubkey(), "vault": vault, "user_token_account": owner_token,
            "vault_token_account": vault_token, "authority": authority, "token_program": TOKEN_PROGRAM}))
        await client.confirm_transaction(deposit_sig, Confirmed)
        decoded = await vault_program.account["CollateralVault"].fetch(vault)
        parser = EventParser(pid, vault_program.coder)
        events = await events_of(client, parser, init_sig) + await events_of(client, parser, deposit_sig)

        overdraw: dict[str, Any]
        try:
            await vault_program.rpc["withdraw"](amount + 1, ctx=Context(accounts={
                "owner": owner.pubkey(), "vault": vault, "vault_token_account": vault_token,
                "destination": owner_token, "authority": authority, "token_program": TOKEN_PROGRAM}))
            overdraw = {"raised": "nothing"}
        except ProgramError as err:
            # anchorpy 0.21 raises ProgramError(code, msg from the IDL); the name is the IDL's.
            names = {e.code: e.name for e in vault_program.idl.errors or []}
            overdraw = {"raised": "ProgramError", "code": names.get(err.code), "number": err.code, "message": err.msg,
                        "anchorLine": next((line for line in err.logs or [] if "AnchorError" in line), None)}
        except Exception as err:  # reported: the test fails on anything but ProgramError
            overdraw = {"raised": type(err).__name__, "message": str(err)}
        return {"vaultAddress": str(vault), "vault": plain(decoded), "exchangeOperator": str(config.operator),
                "events": events, "overdraw": overdraw}


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))))
