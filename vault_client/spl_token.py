"""SPL Token wire formats: the instructions this project sends and the account layouts it
reads (classic Token program; 165-byte accounts, 82-byte mints)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

TOKEN_PROGRAM_ID = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
ASSOCIATED_TOKEN_PROGRAM_ID = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")
SYSTEM_PROGRAM_ID = Pubkey.from_string("11111111111111111111111111111111")

MINT_SIZE = 82
ACCOUNT_SIZE = 165

_INITIALIZE_MINT2 = 20
_INITIALIZE_ACCOUNT3 = 18
_MINT_TO = 7
_TRANSFER = 3


def initialize_mint2(mint: Pubkey, decimals: int, mint_authority: Pubkey) -> Instruction:
    data = struct.pack("<BB", _INITIALIZE_MINT2, decimals) + bytes(mint_authority) + b"\0"
    return Instruction(TOKEN_PROGRAM_ID, data, [AccountMeta(mint, False, True)])


def initialize_account3(account: Pubkey, mint: Pubkey, owner: Pubkey) -> Instruction:
    data = bytes([_INITIALIZE_ACCOUNT3]) + bytes(owner)
    return Instruction(TOKEN_PROGRAM_ID, data, [AccountMeta(account, False, True), AccountMeta(mint, False, False)])


def mint_to(mint: Pubkey, destination: Pubkey, authority: Pubkey, amount: int) -> Instruction:
    return Instruction(
        TOKEN_PROGRAM_ID,
        struct.pack("<BQ", _MINT_TO, amount),
        [AccountMeta(mint, False, True), AccountMeta(destination, False, True), AccountMeta(authority, True, False)],
    )


def transfer(source: Pubkey, destination: Pubkey, owner: Pubkey, amount: int) -> Instruction:
    return Instruction(
        TOKEN_PROGRAM_ID,
        struct.pack("<BQ", _TRANSFER, amount),
        [AccountMeta(source, False, True), AccountMeta(destination, False, True), AccountMeta(owner, True, False)],
    )


def associated_token_address(owner: Pubkey, mint: Pubkey) -> Pubkey:
    return Pubkey.find_program_address(
        [bytes(owner), bytes(TOKEN_PROGRAM_ID), bytes(mint)], ASSOCIATED_TOKEN_PROGRAM_ID
    )[0]


def create_associated_token_account(payer: Pubkey, owner: Pubkey, mint: Pubkey) -> Instruction:
    """The ATA program's `CreateIdempotent` (works for off-curve owners such as PDAs)."""
    return Instruction(
        ASSOCIATED_TOKEN_PROGRAM_ID,
        bytes([1]),
        [
            AccountMeta(payer, True, True),
            AccountMeta(associated_token_address(owner, mint), False, True),
            AccountMeta(owner, False, False),
            AccountMeta(mint, False, False),
            AccountMeta(SYSTEM_PROGRAM_ID, False, False),
            AccountMeta(TOKEN_PROGRAM_ID, False, False),
        ],
    )


@dataclass(frozen=True)
class TokenAccount:
    mint: Pubkey
    owner: Pubkey
    amount: int

    @classmethod
    def decode(cls, data: bytes) -> TokenAccount:
        if len(data) < ACCOUNT_SIZE:
            raise ValueError(f"token account data is {len(data)} bytes, expected {ACCOUNT_SIZE}")
        return cls(Pubkey.from_bytes(data[0:32]), Pubkey.from_bytes(data[32:64]),
                   struct.unpack_from("<Q", data, 64)[0])
