"""Typed client for the collateral_vault program (instruction builders, PDAs, account
decoding), on the IDL codec. The services and the tests build every instruction here."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from solders.instruction import Instruction
from solders.pubkey import Pubkey

from services.common import spl_token
from services.common.idl import load_idl

IDL = load_idl("collateral_vault")
PM_IDL = load_idl("position_manager")
PROGRAM_ID = IDL.address
POSITION_MANAGER_ID = PM_IDL.address
LOADER_V3 = Pubkey.from_string("BPFLoaderUpgradeab1e11111111111111111111111")

VAULT_SEED = b"vault"
AUTHORITY_SEED = b"vault_authority"
CALLER_SEED = b"vault_caller"


class Pause:
    WITHDRAW = 1
    LOCK = 2
    UNLOCK = 4
    TRANSFER = 8
    LIFECYCLE = 16
    ALL = 31


@lru_cache(maxsize=262_144)
def vault_pda(owner: Pubkey, program_id: Pubkey = PROGRAM_ID) -> tuple[Pubkey, int]:
    """The vault PDA and its bump (derivations are cached: each costs a curve check per bump tried)."""
    return Pubkey.find_program_address([VAULT_SEED, bytes(owner)], program_id)


def vault_address(owner: Pubkey, program_id: Pubkey = PROGRAM_ID) -> Pubkey:
    return vault_pda(owner, program_id)[0]


def authority_address(program_id: Pubkey = PROGRAM_ID) -> Pubkey:
    return Pubkey.find_program_address([AUTHORITY_SEED], program_id)[0]


def caller_authority(caller_program: Pubkey) -> tuple[Pubkey, int]:
    """The PDA an authorized program signs with, and its bump."""
    address, bump = Pubkey.find_program_address([CALLER_SEED], caller_program)
    return address, bump


@lru_cache(maxsize=262_144)
def vault_token_address(owner: Pubkey, mint: Pubkey, program_id: Pubkey = PROGRAM_ID) -> Pubkey:
    return spl_token.associated_token_address(vault_address(owner, program_id), mint)


@dataclass(frozen=True)
class Vault:
    owner: Pubkey
    token_account: Pubkey
    total_balance: int
    locked_balance: int
    available_balance: int
    total_deposited: int
    total_withdrawn: int
    created_at: int
    bump: int

    @classmethod
    def decode(cls, data: bytes) -> Vault:
        return cls(**IDL.decode_account("CollateralVault", data))


@dataclass(frozen=True)
class Authority:
    admin: Pubkey
    pending_admin: Pubkey
    usdt_mint: Pubkey
    authorized_programs: list[Pubkey]
    caller_authorities: list[Pubkey]
    authorized_count: int
    pause_flags: int
    bump: int

    @classmethod
    def decode(cls, data: bytes) -> Authority:
        return cls(**IDL.decode_account("VaultAuthority", data))

    @property
    def programs(self) -> list[Pubkey]:
        return self.authorized_programs[: self.authorized_count]


class VaultProgram:
    """Instruction builders for one deployment (program id and USDT mint)."""

    def __init__(self, mint: Pubkey, program_id: Pubkey = PROGRAM_ID) -> None:
        self.mint = mint
        self.program_id = program_id
        self.authority = authority_address(program_id)

    def vault(self, owner: Pubkey) -> Pubkey:
        return vault_address(owner, self.program_id)

    def vault_token(self, owner: Pubkey) -> Pubkey:
        return vault_token_address(owner, self.mint, self.program_id)

    def _ix(self, name: str, accounts: dict[str, Pubkey], **args: object) -> Instruction:
        return IDL.instruction(name, accounts, self.program_id, **args)

    def initialize_authority(self, admin: Pubkey) -> Instruction:
        program_data = Pubkey.find_program_address([bytes(self.program_id)], LOADER_V3)[0]
        return self._ix("initialize_authority", {
            "admin": admin, "authority": self.authority, "usdt_mint": self.mint,
            "program_data": program_data, "system_program": spl_token.SYSTEM_PROGRAM_ID,
        })

    def add_authorized_program(self, admin: Pubkey, program: Pubkey) -> Instruction:
        return self._ix("add_authorized_program", {"admin": admin, "authority": self.authority, "program": program})

    def remove_authorized_program(self, admin: Pubkey, program: Pubkey) -> Instruction:
        return self._ix("remove_authorized_program", {"admin": admin, "authority": self.authority},
                        program_id=program)

    def set_paused(self, admin: Pubkey, flags: int) -> Instruction:
        return self._ix("set_paused", {"admin": admin, "authority": self.authority}, flags=flags)

    def transfer_admin(self, admin: Pubkey, new_admin: Pubkey) -> Instruction:
        return self._ix("transfer_admin", {"admin": admin, "authority": self.authority}, new_admin=new_admin)

    def accept_admin(self, new_admin: Pubkey) -> Instruction:
        return self._ix("accept_admin", {"new_admin": new_admin, "authority": self.authority})

    def initialize_vault(self, owner: Pubkey) -> Instruction:
        return self._ix("initialize_vault", {
            "owner": owner, "vault": self.vault(owner), "vault_token_account": self.vault_token(owner),
            "usdt_mint": self.mint, "authority": self.authority, "system_program": spl_token.SYSTEM_PROGRAM_ID,
            "token_program": spl_token.TOKEN_PROGRAM_ID,
            "associated_token_program": spl_token.ASSOCIATED_TOKEN_PROGRAM_ID,
        })

    def deposit(self, owner: Pubkey, user_token_account: Pubkey, amount: int) -> Instruction:
        return self._ix("deposit", {
            "owner": owner, "vault": self.vault(owner), "user_token_account": user_token_account,
            "vault_token_account": self.vault_token(owner), "token_program": spl_token.TOKEN_PROGRAM_ID,
        }, amount=amount)

    def withdraw(self, owner: Pubkey, destination: Pubkey, amount: int) -> Instruction:
        return self._ix("withdraw", {
            "owner": owner, "vault": self.vault(owner), "vault_token_account": self.vault_token(owner),
            "destination": destination, "authority": self.authority, "token_program": spl_token.TOKEN_PROGRAM_ID,
        }, amount=amount)

    def lock_collateral(self, owner: Pubkey, caller: Pubkey, amount: int) -> Instruction:
        return self._ix("lock_collateral", {"vault": self.vault(owner), "authority": self.authority,
                                            "caller_authority": caller}, amount=amount)

    def unlock_collateral(self, owner: Pubkey, caller: Pubkey, amount: int) -> Instruction:
        return self._ix("unlock_collateral", {"vault": self.vault(owner), "authority": self.authority,
                                              "caller_authority": caller}, amount=amount)

    def transfer_collateral(self, from_owner: Pubkey, to_owner: Pubkey, caller: Pubkey, amount: int) -> Instruction:
        return self._ix("transfer_collateral", {
            "from_vault": self.vault(from_owner), "to_vault": self.vault(to_owner),
            "from_token_account": self.vault_token(from_owner), "to_token_account": self.vault_token(to_owner),
            "authority": self.authority, "caller_authority": caller, "token_program": spl_token.TOKEN_PROGRAM_ID,
        }, amount=amount)

    def close_vault(self, owner: Pubkey) -> Instruction:
        return self._ix("close_vault", {
            "owner": owner, "vault": self.vault(owner), "vault_token_account": self.vault_token(owner),
            "authority": self.authority, "token_program": spl_token.TOKEN_PROGRAM_ID,
        })

    # position_manager (the reference authorized program)

    def _pm(self, name: str, accounts: dict[str, Pubkey], pm_id: Pubkey, amount: int) -> Instruction:
        caller, bump = caller_authority(pm_id)
        accounts = {**accounts, "vault_authority": self.authority, "caller_authority": caller,
                    "vault_program": self.program_id}
        return PM_IDL.instruction(name, accounts, pm_id, amount=amount, caller_bump=bump)

    def open_position(self, trader: Pubkey, amount: int, pm_id: Pubkey = POSITION_MANAGER_ID) -> Instruction:
        return self._pm("open_position", {"trader": trader, "vault": self.vault(trader)}, pm_id, amount)

    def close_position(self, trader: Pubkey, amount: int, pm_id: Pubkey = POSITION_MANAGER_ID) -> Instruction:
        return self._pm("close_position", {"trader": trader, "vault": self.vault(trader)}, pm_id, amount)

    def settle(self, payer: Pubkey, receiver: Pubkey, amount: int, pm_id: Pubkey = POSITION_MANAGER_ID) -> Instruction:
        return self._pm("settle", {
            "payer": payer, "from_vault": self.vault(payer), "to_vault": self.vault(receiver),
            "from_token_account": self.vault_token(payer), "to_token_account": self.vault_token(receiver),
            "token_program": spl_token.TOKEN_PROGRAM_ID,
        }, pm_id, amount)
