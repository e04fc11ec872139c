//! `close_vault`: the owner closes a vault whose balances are zero. Tokens anyone sent to
//! the vault's token account directly (a surplus the vault never recorded) are swept to the
//! owner's token account first, so a donation cannot block closing; then the token account
//! and the vault's rent go back to the owner.
//!
//! Accounts: `[owner (signer, writable), vault (writable), vault_token_account (writable),
//! destination (writable: the owner's USDT token account), authority, token_program]`.
use sbf_runtime::spl_token::{CloseAccount, Transfer};
use sbf_runtime::{AccountView, ProgramResult, Pubkey};

use crate::checks::{now, owned_vault, token_program, user_token_account, vault_token_account, writable};
use crate::error::VaultError;
use crate::events::{Event, VAULT_CLOSED};
use crate::state::authority::pause;
use crate::state::vault::VAULT_SEED;
use crate::state::{VaultAuthority, VaultOps};

pub fn process(program_id: &Pubkey, accounts: &[AccountView]) -> ProgramResult {
    let [owner, vault_account, vault_token, destination, authority, token, ..] = accounts else {
        return Err(VaultError::MissingAccounts.into());
    };
    writable(owner)?;
    token_program(token)?;
    let vault = owned_vault(program_id, owner, vault_account)?;
    if VaultAuthority::load_checked(authority, program_id)?.is_paused(pause::LIFECYCLE) {
        return Err(VaultError::OperationPaused.into());
    }
    if vault.total_balance != 0 || vault.locked_balance != 0 {
        return Err(VaultError::VaultNotEmpty.into());
    }
    let view = vault_token_account(vault, vault_token)?;
    user_token_account(destination, view.mint(), owner.key())?;
    let surplus = view.amount();

    let bump = [vault.bump];
    let owner_key = vault.owner;
    let seeds: &[&[u8]] = &[VAULT_SEED, &owner_key, &bump];
    if surplus != 0 {
        Transfer { token_program: token, source: vault_token, destination, authority: vault_account, amount: surplus }
            .invoke_signed(&[seeds])?;
    }
    let seq = vault.next_seq()?;
    Event::new(VAULT_CLOSED).key(owner.key()).key(vault_account.key()).u64(surplus).i64(now()?).u64(seq).emit()?;

    CloseAccount { token_program: token, account: vault_token, destination: owner, authority: vault_account }
        .invoke_signed(&[seeds])?;
    let lamports = vault_account.lamports();
    owner.set_lamports(owner.lamports().checked_add(lamports).ok_or(VaultError::Overflow)?)?;
    vault_account.set_lamports(0)?;
    // SAFETY: `vault` (the only borrow of the vault's data, exclusive) is not used after
    // this point.
    unsafe { vault_account.close_to_system()? };
    Ok(())
}
