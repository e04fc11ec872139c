//! `close_vault`: the owner closes an empty vault; the token account and the vault's rent
//! go back to the owner.
//!
//! Accounts: `[owner (signer, writable), vault (writable), vault_token_account (writable),
//! authority, token_program]`.
use sbf_runtime::spl_token::CloseAccount;
use sbf_runtime::{AccountView, ProgramResult, Pubkey};

use crate::checks::{now, owned_vault, token_program, vault_token_account, writable};
use crate::error::VaultError;
use crate::events::{Event, VAULT_CLOSED};
use crate::state::authority::pause;
use crate::state::vault::VAULT_SEED;
use crate::state::{VaultAuthority, ZeroCopyAccount};

pub fn process(program_id: &Pubkey, accounts: &[AccountView]) -> ProgramResult {
    let [owner, vault_account, vault_token, authority, token, ..] = accounts else {
        return Err(VaultError::MissingAccounts.into());
    };
    writable(owner)?;
    token_program(token)?;
    let vault = owned_vault(program_id, owner, vault_account)?;
    if VaultAuthority::load(authority, program_id)?.is_paused(pause::LIFECYCLE) {
        return Err(VaultError::OperationPaused.into());
    }
    let view = vault_token_account(vault, vault_token)?;
    if vault.total_balance != 0 || vault.locked_balance != 0 || view.amount() != 0 {
        return Err(VaultError::VaultNotEmpty.into());
    }
    let timestamp = now()?;
    Event::new(VAULT_CLOSED).key(owner.key()).key(vault_account.key()).emit(timestamp);

    let bump = [vault.bump];
    let owner_key = vault.owner;
    let seeds: &[&[u8]] = &[VAULT_SEED, &owner_key, &bump];
    CloseAccount { token_program: token, account: vault_token, destination: owner, authority: vault_account }
        .invoke_signed(&[seeds])?;

    let lamports = vault_account.lamports();
    owner.set_lamports(owner.lamports().checked_add(lamports).ok_or(VaultError::Overflow)?)?;
    vault_account.set_lamports(0)?;
    vault_account.close_to_system()?;
    Ok(())
}
