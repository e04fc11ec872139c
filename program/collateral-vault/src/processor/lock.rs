//! `lock_collateral(amount)` / `unlock_collateral(amount)`: only by CPI from an authorized
//! program.
//!
//! Accounts: `[vault (writable), authority, caller_authority (signer)]`.
//!
//! How the caller is verified: each authorized program has a caller PDA
//! `find_program_address([b"vault_caller"], program_id)`, derived on-chain when the admin
//! added the program and stored beside it. The instruction requires that PDA as a signer.
//! Only the program that owns a PDA can sign for it (by `invoke_signed` with its seeds),
//! and PDAs are off the curve, so no wallet holds a key for it: a direct call from a wallet
//! (even one passing the program's id or the PDA's address) arrives without that signature
//! and is refused. No account key the caller chooses is trusted, and the instructions
//! sysvar is not read, so the caller cannot be spoofed by the transaction's layout.
use sbf_runtime::{AccountView, ProgramResult, Pubkey};

use crate::checks::{now, positive};
use crate::error::VaultError;
use crate::events::{Event, COLLATERAL_LOCKED, COLLATERAL_UNLOCKED};
use crate::state::authority::pause;
use crate::state::{CollateralVault, VaultAuthority, ZeroCopyAccount};

pub enum Direction {
    Lock,
    Unlock,
}

/// The authorized program behind a signing caller PDA.
pub fn authorized_caller<'a>(
    controls: &'a VaultAuthority,
    caller_authority: &AccountView,
) -> Result<&'a Pubkey, VaultError> {
    if !caller_authority.is_signer() {
        return Err(VaultError::UnauthorizedCaller);
    }
    controls.program_for_caller(caller_authority.key()).ok_or(VaultError::UnauthorizedCaller)
}

pub fn process(program_id: &Pubkey, accounts: &[AccountView], amount: u64, direction: Direction) -> ProgramResult {
    let [vault_account, authority, caller_authority, ..] = accounts else {
        return Err(VaultError::MissingAccounts.into());
    };
    let controls = VaultAuthority::load(authority, program_id)?;
    let caller_program = authorized_caller(controls, caller_authority)?;
    let flag = match direction {
        Direction::Lock => pause::LOCK,
        Direction::Unlock => pause::UNLOCK,
    };
    if controls.is_paused(flag) {
        return Err(VaultError::OperationPaused.into());
    }
    positive(amount)?;
    let vault = CollateralVault::load_mut(vault_account, program_id)?;
    let discriminator = match direction {
        Direction::Lock => {
            vault.available_balance =
                vault.available_balance.checked_sub(amount).ok_or(VaultError::InsufficientAvailableBalance)?;
            vault.locked_balance = vault.locked_balance.checked_add(amount).ok_or(VaultError::Overflow)?;
            COLLATERAL_LOCKED
        }
        Direction::Unlock => {
            vault.locked_balance =
                vault.locked_balance.checked_sub(amount).ok_or(VaultError::InsufficientLockedBalance)?;
            vault.available_balance = vault.available_balance.checked_add(amount).ok_or(VaultError::Overflow)?;
            COLLATERAL_UNLOCKED
        }
    };
    if !vault.balanced() {
        return Err(VaultError::InvariantViolation.into());
    }
    Event::new(discriminator)
        .key(&vault.owner)
        .key(vault_account.key())
        .key(caller_program)
        .u64(amount)
        .u64(vault.locked_balance)
        .u64(vault.available_balance)
        .emit(now()?);
    Ok(())
}
