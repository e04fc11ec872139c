"""Typed client for the two programs (instruction builders, PDAs, account decoding), on the
IDL codec. The services and the tests build every instruction here.

* `VaultProgram`: collateral_vault (one deployment: program id and USDT mint);
* `ExchangeProgram`: position_manager, the reference exchange program (its id, and the
  vault deployment it calls)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey
from solders.sysvar import INSTRUCTIONS

from vault_client import spl_token
from vault_client.idl import Idl, load_idl

IDL = load_idl("collateral_vault")
PM_IDL = load_idl("position_manager")
PROGRAM_ID = IDL.address
POSITION_MANAGER_ID = PM_IDL.address
LOADER_V3 = Pubkey.from_string("BPFLoaderUpgradeab1e11111111111111111111111")

VAULT_SEED = b"vault"
AUTHORITY_SEED = b"vault_authority"
CALLER_SEED = b"vault_caller"
EXCHANGE_SEED = b"exchange"
GRANT_SEED = b"grant"
VAULT_SIZE = 296  # CollateralVault account bytes
MAX_SETTLE_PAIRS = 6  # position_manager's MAX_SETTLE_PAIRS


class Pause:
    WITHDRAW = 1
    LOCK = 2
    UNLOCK = 4
    TRANSFER = 8
    LIFECYCLE = 16
    ALL = 31


class ChangeKind:
    """collateral_vault's timelocked (loosening) changes: ``PendingChange.kind``."""

    AUTHORIZE_PROGRAM = 0
    ADMIN_TRANSFER = 1
    LIFT_PAUSE = 2
    SET_DELAY = 3
    RAISE_WITHDRAW_LIMITS = 4
    NAMES = ("authorize_program", "admin_transfer", "lift_pause", "set_delay", "raise_withdraw_limits")

    @staticmethod
    def name_of(kind: int) -> str:
        return ChangeKind.NAMES[kind] if 0 <= kind < len(ChangeKind.NAMES) else f"kind {kind}"


#: `program log` line of a withdrawal the throttle refused (collateral_vault/src/throttle.rs)
THROTTLED_LOG = "Program log: withdrawal throttled: available_now="


@dataclass(frozen=True)
class WithdrawLimits:
    """The withdrawal throttle's limits, in ``set_withdraw_limits``' order."""

    max_outflow_bps: int
    window_slots: int
    min_budget: int
    exempt_amount: int

    def values(self) -> list[int]:
        return [self.max_outflow_bps, self.window_slots, self.min_budget, self.exempt_amount]


class ConfigChange:
    """position_manager's delayed configuration changes (ExchangeConfig.pending index)."""

    ADMIN = 0
    OPERATOR = 1
    EXIT_DELAY = 2
    CONFIG_DELAY = 3


class Action:
    """OperatorAction.action."""

    LOCK = 0
    RELEASE = 1
    SETTLE = 2
    LIQUIDATE = 3
    NAMES = ("lock", "release", "settle", "liquidate")


@lru_cache(maxsize=262_144)
def vault_pda(owner: Pubkey, program_id: Pubkey = PROGRAM_ID) -> tuple[Pubkey, int]:
    """The vault PDA and its bump (derivations are cached: each costs a curve check per bump tried)."""
    return Pubkey.find_program_address([VAULT_SEED, bytes(owner)], program_id)


_PDA_MARKER = b"ProgramDerivedAddress"


def vault_bump(owner: Pubkey, address: Pubkey, program_id: Pubkey = PROGRAM_ID) -> int:
    """The bump of `owner`'s vault PDA, given its `address` (as the indexer stores it: the
    program's canonical PDA, from its own VaultInitialized event or derived): the bump
    whose seed hash is `address`, found by hashing alone (`vault_pda`'s search also
    checks each candidate against the curve). An address no bump hashes to
    falls back to that search."""
    head, tail, target = VAULT_SEED + bytes(owner), bytes(program_id) + _PDA_MARKER, bytes(address)
    for bump in range(255, -1, -1):
        if hashlib.sha256(head + bytes((bump,)) + tail).digest() == target:
            return bump
    return vault_pda(owner, program_id)[1]


def vault_address(owner: Pubkey, program_id: Pubkey = PROGRAM_ID) -> Pubkey:
    return vault_pda(owner, program_id)[0]


def authority_address(program_id: Pubkey = PROGRAM_ID) -> Pubkey:
    return Pubkey.find_program_address([AUTHORITY_SEED], program_id)[0]


def caller_authority(caller_program: Pubkey) -> tuple[Pubkey, int]:
    """The PDA an authorized program signs with, and its bump."""
    address, bump = Pubkey.find_program_address([CALLER_SEED], caller_program)
    return address, bump


def program_data_address(program_id: Pubkey) -> Pubkey:
    return Pubkey.find_program_address([bytes(program_id)], LOADER_V3)[0]


def exchange_address(pm_id: Pubkey = POSITION_MANAGER_ID) -> Pubkey:
    return Pubkey.find_program_address([EXCHANGE_SEED], pm_id)[0]


@lru_cache(maxsize=262_144)
def grant_address(trader: Pubkey, pm_id: Pubkey = POSITION_MANAGER_ID) -> Pubkey:
    return Pubkey.find_program_address([GRANT_SEED, bytes(trader)], pm_id)[0]


@lru_cache(maxsize=262_144)
def vault_token_address(owner: Pubkey, mint: Pubkey, program_id: Pubkey = PROGRAM_ID) -> Pubkey:
    return spl_token.associated_token_address(vault_address(owner, program_id), mint)


def _account_fields(idl: Idl, name: str, data: bytes) -> dict[str, Any]:
    """An account's fields without its explicit padding (``reserved``)."""
    fields = idl.decode_account(name, data)
    fields.pop("reserved", None)
    return fields


@dataclass(frozen=True)
class ProgramLock:
    """Collateral one authorized program holds locked in a vault."""

    program: Pubkey
    amount: int


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
    #: the sequence number of the vault's last event (0 where a source does not record it)
    event_seq: int = 0
    #: collateral locked per program (the occupied slots, in slot order)
    locks: tuple[ProgramLock, ...] = ()

    @classmethod
    def decode(cls, data: bytes) -> Vault:
        fields = _account_fields(IDL, "CollateralVault", data)
        fields["locks"] = tuple(ProgramLock(lock["program"], lock["amount"]) for lock in fields["locks"]
                                if lock["amount"])
        return cls(**fields)

    def locked_by(self, program: Pubkey) -> int:
        return sum(lock.amount for lock in self.locks if lock.program == program)


@dataclass(frozen=True)
class QueuedChange:
    """A loosening change of the VaultAuthority waiting out its timelock (``ChangeKind``)."""

    change_id: int
    eta: int
    kind: int
    target: Pubkey
    values: tuple[int, ...]


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
    event_seq: int = 0
    timelock_delay: int = 0
    next_change_id: int = 0
    #: the queued changes (occupied slots, in slot order)
    pending_changes: tuple[QueuedChange, ...] = ()
    max_outflow_bps: int = 0
    window_slots: int = 0
    min_budget: int = 0
    exempt_amount: int = 0
    tvl: int = 0
    outflow_budget: int = 0
    exempt_budget: int = 0
    last_refill_slot: int = 0

    @classmethod
    def decode(cls, data: bytes) -> Authority:
        fields = _account_fields(IDL, "VaultAuthority", data)
        fields["pending_changes"] = tuple(
            QueuedChange(c["change_id"], c["eta"], c["kind"], c["target"], tuple(c["values"]))
            for c in fields["pending_changes"] if c["change_id"])
        return cls(**fields)

    @property
    def programs(self) -> list[Pubkey]:
        return self.authorized_programs[: self.authorized_count]

    @property
    def limits(self) -> WithdrawLimits:
        return WithdrawLimits(self.max_outflow_bps, self.window_slots, self.min_budget, self.exempt_amount)


@dataclass(frozen=True)
class PendingChange:
    key: Pubkey
    value: int
    eta_slot: int


@dataclass(frozen=True)
class ExchangeConfig:
    admin: Pubkey
    operator: Pubkey
    fee_vault: Pubkey
    insurance_vault: Pubkey
    exit_delay_slots: int
    config_delay_slots: int
    pending: tuple[PendingChange, ...]
    caller_bump: int
    bump: int

    @classmethod
    def decode(cls, data: bytes) -> ExchangeConfig:
        fields = _account_fields(PM_IDL, "ExchangeConfig", data)
        fields["pending"] = tuple(PendingChange(**p) for p in fields["pending"])
        return cls(**fields)


@dataclass(frozen=True)
class Grant:
    trader: Pubkey
    max_locked: int
    expires_at: int
    exit_requested_slot: int
    exit_deadline_slot: int
    last_op_id: int
    revoked: bool
    bump: int

    @classmethod
    def decode(cls, data: bytes) -> Grant:
        return cls(**_account_fields(PM_IDL, "Grant", data))


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

    def _ix(self, name: str, accounts: dict[str, Pubkey], **args: Any) -> Instruction:
        return IDL.instruction(name, accounts, self.program_id, **args)

    def initialize_authority(self, admin: Pubkey, timelock_delay: int = 0) -> Instruction:
        """``timelock_delay``: seconds a loosening change waits (production e.g. 48 h)."""
        return self._ix("initialize_authority", {
            "admin": admin, "authority": self.authority, "usdt_mint": self.mint,
            "program_data": program_data_address(self.program_id), "system_program": spl_token.SYSTEM_PROGRAM_ID,
        }, timelock_delay=timelock_delay)

    def add_authorized_program(self, admin: Pubkey, program: Pubkey) -> Instruction:
        """Queues the authorization; ``execute_change`` applies it once due."""
        return self._ix("add_authorized_program", {"admin": admin, "authority": self.authority, "program": program})

    def authorize_program_now(self, admin: Pubkey, program: Pubkey, change_id: int) -> list[Instruction]:
        """Queue and execute in one transaction: only with a timelock delay of 0 (development);
        ``change_id`` is the authority's ``next_change_id + 1``."""
        return [self.add_authorized_program(admin, program), self.execute_change(change_id, program)]

    def set_timelock_delay(self, admin: Pubkey, delay: int) -> Instruction:
        return self._ix("set_timelock_delay", {"admin": admin, "authority": self.authority}, delay=delay)

    def set_withdraw_limits(self, admin: Pubkey, limits: WithdrawLimits) -> Instruction:
        return self._ix("set_withdraw_limits", {"admin": admin, "authority": self.authority},
                        max_outflow_bps=limits.max_outflow_bps, window_slots=limits.window_slots,
                        min_budget=limits.min_budget, exempt_amount=limits.exempt_amount)

    def execute_change(self, change_id: int, program: Pubkey | None = None) -> Instruction:
        """Anyone may send it once the change is due; ``program`` for an authorization."""
        accounts = {"authority": self.authority}
        if program is not None:
            accounts["program"] = program
        return self._ix("execute_change", accounts, change_id=change_id)

    def cancel_change(self, admin: Pubkey, change_id: int) -> Instruction:
        return self._ix("cancel_change", {"admin": admin, "authority": self.authority}, change_id=change_id)

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
            "vault_token_account": self.vault_token(owner), "authority": self.authority,
            "token_program": spl_token.TOKEN_PROGRAM_ID,
        }, amount=amount)

    def withdraw(self, owner: Pubkey, destination: Pubkey, amount: int) -> Instruction:
        return self._ix("withdraw", {
            "owner": owner, "vault": self.vault(owner), "vault_token_account": self.vault_token(owner),
            "destination": destination, "authority": self.authority, "token_program": spl_token.TOKEN_PROGRAM_ID,
        }, amount=amount)

    def lock_collateral(self, owner: Pubkey, caller: Pubkey, amount: int) -> Instruction:
        """Only an authorized program can run this (by CPI): built here for refusal tests."""
        return self._ix("lock_collateral", {"vault": self.vault(owner), "authority": self.authority,
                                            "caller_authority": caller}, amount=amount)

    def unlock_collateral(self, owner: Pubkey, caller: Pubkey, amount: int, *,
                          owner_signs: bool = False) -> Instruction:
        accounts = {"vault": self.vault(owner), "authority": self.authority, "caller_authority": caller}
        if owner_signs:
            accounts["owner"] = owner
        return self._ix("unlock_collateral", accounts, amount=amount)

    def transfer_collateral(self, from_owner: Pubkey, to_owner: Pubkey, caller: Pubkey, amount: int) -> Instruction:
        return self._ix("transfer_collateral", {
            "from_vault": self.vault(from_owner), "to_vault": self.vault(to_owner),
            "from_token_account": self.vault_token(from_owner), "to_token_account": self.vault_token(to_owner),
            "authority": self.authority, "caller_authority": caller, "token_program": spl_token.TOKEN_PROGRAM_ID,
        }, amount=amount)

    def release_orphaned_lock(self, owner: Pubkey, program: Pubkey) -> Instruction:
        return self._ix("release_orphaned_lock", {"owner": owner, "vault": self.vault(owner),
                                                  "authority": self.authority}, program=program)

    def close_vault(self, owner: Pubkey, destination: Pubkey | None = None) -> Instruction:
        """``destination`` (the owner's USDT account, for a surplus sent to the vault
        directly) defaults to the owner's associated token account."""
        return self._ix("close_vault", {
            "owner": owner, "vault": self.vault(owner), "vault_token_account": self.vault_token(owner),
            "destination": destination or spl_token.associated_token_address(owner, self.mint),
            "authority": self.authority, "token_program": spl_token.TOKEN_PROGRAM_ID,
        })


@dataclass(frozen=True)
class SettlePair:
    """One settlement: ``amount`` from what the exchange holds locked for ``payer`` to
    ``receiver``'s vault; ``op_id`` is the payer's next operation id."""

    payer: Pubkey
    receiver: Pubkey
    amount: int
    op_id: int


@dataclass
class ExchangeProgram:
    """position_manager's instruction builders for one deployment."""

    vaults: VaultProgram
    program_id: Pubkey = POSITION_MANAGER_ID
    config: Pubkey = field(init=False)

    def __post_init__(self) -> None:
        self.config = exchange_address(self.program_id)

    def grant_account(self, trader: Pubkey) -> Pubkey:
        return grant_address(trader, self.program_id)

    def _ix(self, name: str, accounts: dict[str, Pubkey], remaining: list[AccountMeta] | None = None,
            **args: Any) -> Instruction:
        return PM_IDL.instruction(name, accounts, self.program_id, remaining=remaining, **args)

    def _vault_cpi(self) -> dict[str, Pubkey]:
        return {"vault_authority": self.vaults.authority, "caller_authority": caller_authority(self.program_id)[0],
                "vault_program": self.vaults.program_id}

    # admin

    def initialize_exchange(self, admin: Pubkey, operator: Pubkey, fee_vault_owner: Pubkey,
                            insurance_vault_owner: Pubkey, exit_delay_slots: int,
                            config_delay_slots: int) -> Instruction:
        return self._ix("initialize_exchange", {
            "admin": admin, "config": self.config, "fee_vault": self.vaults.vault(fee_vault_owner),
            "insurance_vault": self.vaults.vault(insurance_vault_owner),
            "program_data": program_data_address(self.program_id), "system_program": spl_token.SYSTEM_PROGRAM_ID,
        }, operator=operator, exit_delay_slots=exit_delay_slots, config_delay_slots=config_delay_slots)

    def propose_config_change(self, admin: Pubkey, kind: int, *, key: Pubkey | None = None,
                              value: int = 0) -> Instruction:
        return self._ix("propose_config_change", {"admin": admin, "config": self.config},
                        kind=kind, key=key or Pubkey.default(), value=value)

    def apply_config_change(self, kind: int) -> Instruction:
        return self._ix("apply_config_change", {"config": self.config}, kind=kind)

    def cancel_config_change(self, admin: Pubkey, kind: int) -> Instruction:
        return self._ix("cancel_config_change", {"admin": admin, "config": self.config}, kind=kind)

    # trader (signed by the trader's wallet)

    def grant(self, trader: Pubkey, max_locked: int, expires_at: int) -> Instruction:
        return self._ix("grant", {"trader": trader, "grant": self.grant_account(trader),
                                  "system_program": spl_token.SYSTEM_PROGRAM_ID},
                        max_locked=max_locked, expires_at=expires_at)

    def revoke(self, trader: Pubkey) -> Instruction:
        return self._ix("revoke", {"trader": trader, "grant": self.grant_account(trader)})

    def request_exit(self, trader: Pubkey) -> Instruction:
        return self._ix("request_exit", {"trader": trader, "grant": self.grant_account(trader), "config": self.config})

    def exit(self, trader: Pubkey) -> Instruction:
        return self._ix("exit", {"trader": trader, "grant": self.grant_account(trader), "config": self.config,
                                 "vault": self.vaults.vault(trader), **self._vault_cpi()})

    # operator (signed by the operator key alone)

    def _operator(self, operator: Pubkey) -> dict[str, Pubkey]:
        return {"operator": operator, "config": self.config, "instructions": INSTRUCTIONS, **self._vault_cpi()}

    def lock(self, operator: Pubkey, trader: Pubkey, amount: int, op_id: int) -> Instruction:
        return self._ix("lock", {**self._operator(operator), "grant": self.grant_account(trader),
                                 "vault": self.vaults.vault(trader)}, amount=amount, op_id=op_id)

    def release(self, operator: Pubkey, trader: Pubkey, amount: int, op_id: int) -> Instruction:
        return self._ix("release", {**self._operator(operator), "grant": self.grant_account(trader),
                                    "vault": self.vaults.vault(trader)}, amount=amount, op_id=op_id)

    def settle_accounts(self, pair: SettlePair) -> list[AccountMeta]:
        """The 5 accounts of one pair (remaining accounts of `settle`)."""
        v = self.vaults
        return [AccountMeta(key, False, True) for key in (
            self.grant_account(pair.payer), v.vault(pair.payer), v.vault_token(pair.payer),
            v.vault(pair.receiver), v.vault_token(pair.receiver))]

    def settle(self, operator: Pubkey, pairs: Sequence[SettlePair]) -> Instruction:
        remaining = [meta for pair in pairs for meta in self.settle_accounts(pair)]
        return self._ix("settle", {**self._operator(operator), "token_program": spl_token.TOKEN_PROGRAM_ID},
                        remaining, pairs=[(p.amount, p.op_id) for p in pairs])

    def liquidate(self, operator: Pubkey, trader: Pubkey, insurance_owner: Pubkey, amount: int,
                  op_id: int) -> Instruction:
        v = self.vaults
        return self._ix("liquidate", {
            **self._operator(operator), "grant": self.grant_account(trader), "vault": v.vault(trader),
            "vault_token_account": v.vault_token(trader), "insurance_vault": v.vault(insurance_owner),
            "insurance_vault_token_account": v.vault_token(insurance_owner),
            "token_program": spl_token.TOKEN_PROGRAM_ID,
        }, amount=amount, op_id=op_id)
