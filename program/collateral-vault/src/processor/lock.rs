//! `lock_collateral(amount)` / `unlock_collateral(amount)`: only by CPI from an authorized
//! program, and only on that program's own lock in the vault.
//!
//! Accounts: `[vault (writable), authority, caller_authority (signer)]`, and for unlock an
//! optional `owner (signer)`: the vault's owner co-signing lets the unlock through while
//! unlocks are paused (a trader's exit must not depend on the admin).
//!
//! How the caller is verified: each authorized program has a caller PDA
//! `find_program_address([b"vault_caller"], program_id)`, derived on-chain when the admin
//! added the program and stored beside it. The instruction requires that PDA as a signer.
//! Only the program that owns a PDA can sign for it (by `invoke_signed` with its seeds),
//! and PDAs are off the curve, so no wallet holds a key for it: a direct call from a wallet
//! (even one passing the program's id or the PDA's address) arrives without that signature
//! and is refused. No account key the caller chooses is trusted, and the instructions
//! sysvar is not read, so the caller cannot be spoofed by the transaction's layout.
//!
//! Per-program locks: a vault records how much each program holds locked (up to
//! `MAX_LOCK_SLOTS` programs at once). Lock adds to the caller's slot (taking a free one);
//! unlock and transfer take only from the caller's own slot, so no program can release or
//! move what another program locked.
use sbf_runtime::pubkey::keys_eq;
use sbf_runtime::{AccountView, ProgramResult, Pubkey};

use crate::checks::{authorized_caller, now, positive};
use crate::error::VaultError;
use crate::events::{LockChange, COLLATERAL_LOCKED, COLLATERAL_UNLOCKED};
use crate::state::authority::pause;
use crate::state::{CollateralVault, VaultOps, ZeroCopyAccount};

pub fn lock(program_id: &Pubkey, accounts: &[AccountView], amount: u64) -> ProgramResult {
    let [vault_account, authority, caller_authority, ..] = accounts else {
        return Err(VaultError::MissingAccounts.into());
    };
    let (controls, caller_program) = authorized_caller(program_id, authority, caller_authority)?;
    if controls.is_paused(pause::LOCK) {
        return Err(VaultError::OperationPaused.into());
    }
    positive(amount)?;
    let vault = CollateralVault::load_mut(vault_account, program_id)?;
    vault.available_balance =
        vault.available_balance.checked_sub(amount).ok_or(VaultError::InsufficientAvailableBalance)?;
    vault.locked_balance = vault.locked_balance.checked_add(amount).ok_or(VaultError::Overflow)?;
    let slot = vault.lock_slot_or_full(caller_program)?;
    slot.amount = slot.amount.checked_add(amount).ok_or(VaultError::Overflow)?;
    let program_locked = slot.amount;
    if !vault.balanced() {
        return Err(VaultError::InvariantViolation.into());
    }
    LockChange {
        discriminator: COLLATERAL_LOCKED,
        vault_key: vault_account.key(),
        program: caller_program,
        amount,
        program_locked,
    }
    .emit(vault, now()?)
}

pub fn unlock(program_id: &Pubkey, accounts: &[AccountView], amount: u64) -> ProgramResult {
    let [vault_account, authority, caller_authority, rest @ ..] = accounts else {
        return Err(VaultError::MissingAccounts.into());
    };
    let (controls, caller_program) = authorized_caller(program_id, authority, caller_authority)?;
    positive(amount)?;
    let vault = CollateralVault::load_mut(vault_account, program_id)?;
    if controls.is_paused(pause::UNLOCK) {
        let owner_signed = matches!(rest.first(), Some(owner) if owner.is_signer() && keys_eq(owner.key(), &vault.owner));
        if !owner_signed {
            return Err(VaultError::OperationPaused.into());
        }
    }
    let program_locked = vault.take_from_lock(caller_program, amount)?;
    vault.locked_balance = vault.locked_balance.checked_sub(amount).ok_or(VaultError::InsufficientLockedBalance)?;
    vault.available_balance = vault.available_balance.checked_add(amount).ok_or(VaultError::Overflow)?;
    if !vault.balanced() {
        return Err(VaultError::InvariantViolation.into());
    }
    LockChange {
        discriminator: COLLATERAL_UNLOCKED,
        vault_key: vault_account.key(),
        program: caller_program,
        amount,
        program_locked,
    }
    .emit(vault, now()?)
}
