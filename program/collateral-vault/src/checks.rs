//! Account checks shared by the processors. Every account an instruction takes is checked
//! by one of these (or by a state `load`), in the processor that uses it.
use sbf_runtime::programs::{ASSOCIATED_TOKEN_PROGRAM_ID, SYSTEM_PROGRAM_ID, TOKEN_PROGRAM_ID};
use sbf_runtime::pubkey::keys_eq;
use sbf_runtime::spl_token::TokenAccountView;
use sbf_runtime::sysvar::Clock;
use sbf_runtime::{AccountView, ProgramError, Pubkey};

use crate::error::VaultError;
use crate::events::{balance_changed, SURPLUS_ABSORBED};
use crate::state::{CollateralVault, VaultAuthority, ZeroCopyAccount};

#[inline(always)]
pub fn signer(account: &AccountView) -> Result<(), VaultError> {
    if account.is_signer() {
        Ok(())
    } else {
        Err(VaultError::MissingSigner)
    }
}

#[inline(always)]
pub fn writable(account: &AccountView) -> Result<(), VaultError> {
    if account.is_writable() {
        Ok(())
    } else {
        Err(VaultError::AccountNotWritable)
    }
}

#[inline(always)]
fn program(account: &AccountView, id: &Pubkey) -> Result<(), VaultError> {
    if keys_eq(account.key(), id) {
        Ok(())
    } else {
        Err(VaultError::InvalidProgramAccount)
    }
}

#[inline(always)]
pub fn token_program(account: &AccountView) -> Result<(), VaultError> {
    program(account, &TOKEN_PROGRAM_ID)
}

#[inline(always)]
pub fn system_program(account: &AccountView) -> Result<(), VaultError> {
    program(account, &SYSTEM_PROGRAM_ID)
}

#[inline(always)]
pub fn associated_token_program(account: &AccountView) -> Result<(), VaultError> {
    program(account, &ASSOCIATED_TOKEN_PROGRAM_ID)
}

/// The vault `owner` signed for: `owner` is a signer and the vault's recorded owner.
#[inline(always)]
pub fn owned_vault<'a>(
    program_id: &Pubkey,
    owner: &AccountView,
    vault: &'a AccountView,
) -> Result<&'a mut CollateralVault, VaultError> {
    signer(owner)?;
    let state = CollateralVault::load_mut(vault, program_id)?;
    if !keys_eq(&state.owner, owner.key()) {
        return Err(VaultError::Unauthorized);
    }
    Ok(state)
}

/// `amount` must be positive.
#[inline(always)]
pub fn positive(amount: u64) -> Result<(), VaultError> {
    if amount == 0 {
        Err(VaultError::InvalidAmount)
    } else {
        Ok(())
    }
}

/// The vault's own token account: the key recorded at initialization, and a token account.
#[inline(always)]
pub fn vault_token_account<'a>(
    vault: &CollateralVault,
    account: &'a AccountView,
) -> Result<TokenAccountView<'a>, VaultError> {
    if !keys_eq(account.key(), &vault.token_account) {
        return Err(VaultError::InvalidTokenAccount);
    }
    writable(account)?;
    TokenAccountView::new(account).ok_or(VaultError::InvalidTokenAccount)
}

/// A user's token account of the given mint, owned by `owner`.
#[inline(always)]
pub fn user_token_account<'a>(
    account: &'a AccountView,
    mint: &Pubkey,
    owner: &Pubkey,
) -> Result<TokenAccountView<'a>, VaultError> {
    writable(account)?;
    let view = TokenAccountView::new(account).ok_or(VaultError::InvalidTokenAccount)?;
    if !view.has_mint(mint) {
        return Err(VaultError::InvalidMint);
    }
    if !view.has_owner(owner) {
        return Err(VaultError::InvalidTokenAccount);
    }
    Ok(view)
}

/// The cluster's unix time.
#[inline(always)]
pub fn now() -> Result<i64, ProgramError> {
    Ok(Clock::get()?.unix_timestamp)
}

/// The cluster's clock (unix time and slot, from one syscall).
#[inline(always)]
pub fn clock() -> Result<Clock, ProgramError> {
    Clock::get()
}

/// Tokens sent to a vault's token account directly (not through `deposit`) would break
/// `token amount == total_balance` and lock the vault; they are credited to the owner's
/// available balance instead, with a `SurplusAbsorbed` event. Fewer tokens than recorded
/// cannot happen (only the vault PDA can move them) and is refused. `total_deposited` is a
/// statistic and saturates: a donation near u64::MAX must not freeze the vault. Returns the
/// surplus absorbed (deposit and withdraw add it to the authority's `tvl`).
#[inline(always)]
pub fn absorb_surplus(
    vault: &mut CollateralVault,
    vault_key: &Pubkey,
    token_amount: u64,
    timestamp: i64,
) -> Result<u64, ProgramError> {
    if token_amount == vault.total_balance {
        return Ok(0);
    }
    let surplus = token_amount.checked_sub(vault.total_balance).ok_or(VaultError::InvariantViolation)?;
    vault.total_balance = token_amount;
    vault.available_balance = vault.available_balance.checked_add(surplus).ok_or(VaultError::Overflow)?;
    vault.total_deposited = vault.total_deposited.saturating_add(surplus);
    balance_changed(SURPLUS_ABSORBED, vault_key, vault, surplus, timestamp)?;
    Ok(surplus)
}

/// After a token movement: the token account holds exactly the vault's total,
/// `total == locked + available` and `locked == sum of the per-program locks`.
#[inline(always)]
pub fn backed(vault: &CollateralVault, token_account: &AccountView) -> Result<(), VaultError> {
    let amount = sbf_runtime::spl_token::amount_of(token_account).ok_or(VaultError::InvalidTokenAccount)?;
    if amount != vault.total_balance || !vault.balanced() {
        return Err(VaultError::InvariantViolation);
    }
    Ok(())
}

/// The VaultAuthority (by address) and the authorized program behind a signing caller
/// PDA: the caller of lock/unlock/transfer.
#[inline(always)]
pub fn authorized_caller<'a>(
    program_id: &Pubkey,
    authority: &'a AccountView,
    caller_authority: &AccountView,
) -> Result<(&'a VaultAuthority, &'a Pubkey), VaultError> {
    let controls = VaultAuthority::load_checked(authority, program_id)?;
    if !caller_authority.is_signer() {
        return Err(VaultError::UnauthorizedCaller);
    }
    let program = controls.program_for_caller(caller_authority.key()).ok_or(VaultError::UnauthorizedCaller)?;
    Ok((controls, program))
}
