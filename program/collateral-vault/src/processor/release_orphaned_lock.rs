//! `release_orphaned_lock(program)`: the vault's owner moves what a program that is no
//! longer authorized holds locked back to available. De-authorizing a program must not
//! trap the collateral it locked: only the program that locked collateral can release it,
//! and a de-authorized one no longer can. While the program is still authorized, this is
//! refused (its own rules, e.g. an exchange's exit, govern its locks).
//!
//! Accounts: `[owner (signer), vault (writable), authority]`. Not subject to the UNLOCK
//! pause: the owner signs.
use sbf_runtime::{AccountView, ProgramResult, Pubkey};

use crate::checks::{now, owned_vault};
use crate::error::VaultError;
use crate::events::{LockChange, ORPHANED_LOCK_RELEASED};
use crate::state::{VaultAuthority, VaultOps};

pub fn process(program_id: &Pubkey, accounts: &[AccountView], program: &Pubkey) -> ProgramResult {
    let [owner, vault_account, authority, ..] = accounts else {
        return Err(VaultError::MissingAccounts.into());
    };
    let vault = owned_vault(program_id, owner, vault_account)?;
    if VaultAuthority::load_checked(authority, program_id)?.find_program(program).is_some() {
        return Err(VaultError::ProgramStillAuthorized.into());
    }
    let amount = vault.locked_by(program);
    if amount == 0 {
        return Err(VaultError::NoLockForProgram.into());
    }
    vault.take_from_lock(program, amount)?;
    vault.locked_balance = vault.locked_balance.checked_sub(amount).ok_or(VaultError::InvariantViolation)?;
    vault.available_balance = vault.available_balance.checked_add(amount).ok_or(VaultError::Overflow)?;
    if !vault.balanced() {
        return Err(VaultError::InvariantViolation.into());
    }
    LockChange { discriminator: ORPHANED_LOCK_RELEASED, vault_key: vault_account.key(), program, amount, program_locked: 0 }
        .emit(vault, now()?)
}
