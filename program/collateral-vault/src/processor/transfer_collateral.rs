//! `transfer_collateral(amount)`: settlement (realized PnL) by an authorized program. The
//! amount leaves what the calling program holds locked in the `from` vault and arrives in
//! the `to` vault's available balance (a winner's realized profit is free to withdraw); the
//! tokens move between the two vault token accounts, signed by the `from` vault PDA. Only
//! vaults take part: no token can leave for an account that is not a vault's.
//!
//! Accounts: `[from_vault (writable), to_vault (writable), from_token_account (writable),
//! to_token_account (writable), authority, caller_authority (signer), token_program]`.
use sbf_runtime::pubkey::keys_eq;
use sbf_runtime::spl_token::Transfer;
use sbf_runtime::{AccountView, ProgramResult, Pubkey};

use crate::checks::{absorb_surplus, authorized_caller, backed, now, positive, token_program, vault_token_account};
use crate::error::VaultError;
use crate::events::{Event, COLLATERAL_TRANSFERRED};
use crate::state::authority::pause;
use crate::state::vault::VAULT_SEED;
use crate::state::{CollateralVault, VaultOps, ZeroCopyAccount};

pub fn process(program_id: &Pubkey, accounts: &[AccountView], amount: u64) -> ProgramResult {
    let [from_account, to_account, from_token, to_token, authority, caller_authority, token, ..] = accounts else {
        return Err(VaultError::MissingAccounts.into());
    };
    let (controls, caller_program) = authorized_caller(program_id, authority, caller_authority)?;
    if controls.is_paused(pause::TRANSFER) {
        return Err(VaultError::OperationPaused.into());
    }
    positive(amount)?;
    token_program(token)?;
    if from_account.same_as(to_account) || keys_eq(from_account.key(), to_account.key()) {
        return Err(VaultError::SameVault.into());
    }
    let from = CollateralVault::load_mut(from_account, program_id)?;
    let to = CollateralVault::load_mut(to_account, program_id)?;
    let from_view = vault_token_account(from, from_token)?;
    let to_view = vault_token_account(to, to_token)?;
    let timestamp = now()?;
    absorb_surplus(from, from_account.key(), from_view.amount(), timestamp)?;
    absorb_surplus(to, to_account.key(), to_view.amount(), timestamp)?;

    let from_program_locked = from.take_from_lock(caller_program, amount)?;
    from.locked_balance = from.locked_balance.checked_sub(amount).ok_or(VaultError::InsufficientLockedBalance)?;
    from.total_balance = from.total_balance.checked_sub(amount).ok_or(VaultError::InsufficientLockedBalance)?;
    to.total_balance = to.total_balance.checked_add(amount).ok_or(VaultError::Overflow)?;
    to.available_balance = to.available_balance.checked_add(amount).ok_or(VaultError::Overflow)?;
    let bump = [from.bump];
    let seeds: &[&[u8]] = &[VAULT_SEED, &from.owner, &bump];
    Transfer { token_program: token, source: from_token, destination: to_token, authority: from_account, amount }
        .invoke_signed(&[seeds])?;
    backed(from, from_token)?;
    backed(to, to_token)?;

    let (from_seq, to_seq) = (from.next_seq()?, to.next_seq()?);
    Event::new(COLLATERAL_TRANSFERRED)
        .key(&from.owner)
        .key(&to.owner)
        .key(caller_program)
        .u64(amount)
        .u64(from.total_balance)
        .u64(from.locked_balance)
        .u64(to.total_balance)
        .u64(to.available_balance)
        .u64(from_program_locked)
        .i64(timestamp).u64(from_seq).u64(to_seq).emit()
}
