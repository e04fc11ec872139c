//! `deposit(amount)`: the owner moves USDT from their token account into the vault by a
//! CPI to SPL Token; total and available increase.
//!
//! Accounts: `[owner (signer), vault (writable), user_token_account (writable),
//! vault_token_account (writable), authority (writable), token_program]`. Deposits are never
//! paused. The amount (and a surplus absorbed) is added to the authority's `tvl`, the
//! withdrawal throttle's base.
use sbf_runtime::spl_token::Transfer;
use sbf_runtime::{AccountView, ProgramResult, Pubkey};

use crate::checks::{absorb_surplus, backed, now, owned_vault, positive, token_program, user_token_account, vault_token_account};
use crate::error::VaultError;
use crate::events::{balance_changed, DEPOSITED};
use crate::state::VaultAuthority;

pub fn process(program_id: &Pubkey, accounts: &[AccountView], amount: u64) -> ProgramResult {
    let [owner, vault_account, user_token, vault_token, authority, token, ..] = accounts else {
        return Err(VaultError::MissingAccounts.into());
    };
    positive(amount)?;
    token_program(token)?;
    let vault = owned_vault(program_id, owner, vault_account)?;
    let controls = VaultAuthority::load_checked_mut(authority, program_id)?;
    let vault_view = vault_token_account(vault, vault_token)?;
    user_token_account(user_token, vault_view.mint(), owner.key())?;
    let timestamp = now()?;
    let surplus = absorb_surplus(vault, vault_account.key(), vault_view.amount(), timestamp)?;
    controls.tvl = controls.tvl.saturating_add(surplus).saturating_add(amount);

    vault.total_balance = vault.total_balance.checked_add(amount).ok_or(VaultError::Overflow)?;
    vault.available_balance = vault.available_balance.checked_add(amount).ok_or(VaultError::Overflow)?;
    vault.total_deposited = vault.total_deposited.saturating_add(amount);
    Transfer { token_program: token, source: user_token, destination: vault_token, authority: owner, amount }
        .invoke_signed(&[])?;
    backed(vault, vault_token)?;

    balance_changed(DEPOSITED, vault_account.key(), vault, amount, timestamp)
}
