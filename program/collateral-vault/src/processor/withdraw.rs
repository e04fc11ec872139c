//! `withdraw(amount)`: only the vault's owner, only from the available balance, only to a
//! token account the owner owns; the transfer is signed by the vault PDA.
//!
//! The protocol-wide throttle (`crate::throttle`) must allow the amount: over it, the
//! withdrawal is refused with `WithdrawalThrottled` after logging how much can be withdrawn
//! now. The amount leaves the authority's `tvl`.
//!
//! Accounts: `[owner (signer), vault (writable), vault_token_account (writable),
//! destination (writable), authority (writable), token_program]`.
use sbf_runtime::spl_token::Transfer;
use sbf_runtime::{AccountView, ProgramResult, Pubkey};

use crate::checks::{absorb_surplus, backed, clock, owned_vault, positive, token_program, user_token_account, vault_token_account};
use crate::error::VaultError;
use crate::events::{balance_changed, WITHDRAWN};
use crate::state::authority::pause;
use crate::state::vault::VAULT_SEED;
use crate::state::VaultAuthority;

pub fn process(program_id: &Pubkey, accounts: &[AccountView], amount: u64) -> ProgramResult {
    let [owner, vault_account, vault_token, destination, authority, token, ..] = accounts else {
        return Err(VaultError::MissingAccounts.into());
    };
    positive(amount)?;
    token_program(token)?;
    let vault = owned_vault(program_id, owner, vault_account)?;
    let controls = VaultAuthority::load_checked_mut(authority, program_id)?;
    if controls.is_paused(pause::WITHDRAW) {
        return Err(VaultError::OperationPaused.into());
    }
    let vault_view = vault_token_account(vault, vault_token)?;
    user_token_account(destination, vault_view.mint(), owner.key())?;
    let clock = clock()?;
    let timestamp = clock.unix_timestamp;
    let surplus = absorb_surplus(vault, vault_account.key(), vault_view.amount(), timestamp)?;

    vault.available_balance =
        vault.available_balance.checked_sub(amount).ok_or(VaultError::InsufficientAvailableBalance)?;
    vault.total_balance = vault.total_balance.checked_sub(amount).ok_or(VaultError::InsufficientAvailableBalance)?;
    vault.total_withdrawn = vault.total_withdrawn.saturating_add(amount);
    controls.tvl = controls.tvl.saturating_add(surplus);
    controls.take_outflow(amount, clock.slot)?;
    // Saturating: a surplus absorbed where the authority is read-only is not in `tvl`.
    controls.tvl = controls.tvl.saturating_sub(amount);
    let bump = [vault.bump];
    let seeds: &[&[u8]] = &[VAULT_SEED, &vault.owner, &bump];
    Transfer { token_program: token, source: vault_token, destination, authority: vault_account, amount }
        .invoke_signed(&[seeds])?;
    backed(vault, vault_token)?;

    balance_changed(WITHDRAWN, vault_account.key(), vault, amount, timestamp)
}
