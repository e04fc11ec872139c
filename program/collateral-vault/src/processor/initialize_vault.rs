//! `initialize_vault`: creates the vault PDA `[b"vault", owner]` (rent paid by the owner)
//! and its USDT token account: the vault PDA's associated token account, created by CPI to
//! the Associated Token Account program (which checks the address derivation).
//!
//! Accounts: `[owner (signer, writable), vault (writable), vault_token_account (writable),
//! usdt_mint, authority, system_program, token_program, associated_token_program]`.
use sbf_runtime::cpi::{invoke, AccountMeta, Instruction};
use sbf_runtime::programs::ASSOCIATED_TOKEN_PROGRAM_ID;
use sbf_runtime::pubkey::{find_program_address, keys_eq};
use sbf_runtime::spl_token::TokenAccountView;
use sbf_runtime::system::create_zero_copy;
use sbf_runtime::{AccountView, ProgramResult, Pubkey};

use crate::checks::{absorb_surplus, associated_token_program, now, signer, system_program, token_program, writable};
use crate::error::VaultError;
use crate::events::{Event, VAULT_INITIALIZED};
use crate::state::authority::pause;
use crate::state::vault::VAULT_SEED;
use crate::state::{CollateralVault, VaultAuthority, VaultOps};

pub fn process(program_id: &Pubkey, accounts: &[AccountView]) -> ProgramResult {
    let [owner, vault, vault_token, mint, authority, system, token, ata_program, ..] = accounts else {
        return Err(VaultError::MissingAccounts.into());
    };
    signer(owner)?;
    writable(owner)?;
    writable(vault)?;
    writable(vault_token)?;
    system_program(system)?;
    token_program(token)?;
    associated_token_program(ata_program)?;
    let controls = VaultAuthority::load_checked(authority, program_id)?;
    if controls.is_paused(pause::LIFECYCLE) {
        return Err(VaultError::OperationPaused.into());
    }
    if !keys_eq(mint.key(), &controls.usdt_mint) {
        return Err(VaultError::InvalidMint.into());
    }
    let (address, bump) = find_program_address(&[VAULT_SEED, owner.key()], program_id)?;
    if !keys_eq(&address, vault.key()) {
        return Err(VaultError::InvalidPda.into());
    }
    if vault.data_len() != 0 || !vault.is_owned_by(&[0u8; 32]) {
        return Err(VaultError::AlreadyInitialized.into());
    }

    let bump_seed = [bump];
    let state: &mut CollateralVault = create_zero_copy(owner, vault, program_id, &[VAULT_SEED, owner.key(), &bump_seed])?;

    // CreateIdempotent: someone may have created the ATA already (it is permissionless).
    let metas = [
        AccountMeta::writable(owner, true),
        AccountMeta::writable(vault_token, false),
        AccountMeta::readonly(vault, false),
        AccountMeta::readonly(mint, false),
        AccountMeta::readonly(system, false),
        AccountMeta::readonly(token, false),
    ];
    invoke(
        &Instruction::new(&ASSOCIATED_TOKEN_PROGRAM_ID, &metas, &[1u8]),
        &[owner, vault_token, vault, mint, system, token],
    )?;
    let token_view = TokenAccountView::new(vault_token).ok_or(VaultError::InvalidTokenAccount)?;
    if !token_view.has_owner(vault.key()) || !token_view.has_mint(mint.key()) {
        return Err(VaultError::InvalidTokenAccount.into());
    }
    let existing = token_view.amount();

    let timestamp = now()?;
    state.owner = *owner.key();
    state.token_account = *vault_token.key();
    state.created_at = timestamp;
    state.bump = bump;
    let seq = state.next_seq()?;
    Event::new(VAULT_INITIALIZED).key(owner.key()).key(vault.key()).key(vault_token.key()).i64(timestamp).u64(seq).emit()?;
    absorb_surplus(state, vault.key(), existing, timestamp).map(|_| ())
}
