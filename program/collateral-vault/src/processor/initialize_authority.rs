//! `initialize_authority`: creates the `VaultAuthority` PDA `[b"vault_authority"]`.
//!
//! Accounts: `[admin (signer, writable), authority (writable), usdt_mint, program_data,
//! system_program]`. Only the program's upgrade authority may call it (checked against the
//! BPF Upgradeable Loader's ProgramData account), so nobody can front-run the deployment
//! and make themselves admin.
use sbf_runtime::loader::is_upgrade_authority;
use sbf_runtime::programs::TOKEN_PROGRAM_ID;
use sbf_runtime::pubkey::keys_eq;
use sbf_runtime::system::create_zero_copy;
use sbf_runtime::{AccountView, ProgramResult, Pubkey};

use crate::checks::{now, signer, system_program, writable};
use crate::error::VaultError;
use crate::events::{Event, AUTHORITY_INITIALIZED};
use crate::generated_ids;
use crate::state::authority::AUTHORITY_SEED;
use crate::state::VaultAuthority;

/// SPL Token mint size.
const MINT_LEN: usize = 82;

pub fn process(program_id: &Pubkey, accounts: &[AccountView]) -> ProgramResult {
    let [admin, authority, mint, program_data, system, ..] = accounts else {
        return Err(VaultError::MissingAccounts.into());
    };
    signer(admin)?;
    writable(admin)?;
    writable(authority)?;
    system_program(system)?;

    // The upgrade authority of this program is the only admin that may initialize.
    if !is_upgrade_authority(program_data, generated_ids::PROGRAM_DATA, admin.key()) {
        return Err(VaultError::NotUpgradeAuthority.into());
    }

    if !mint.is_owned_by(&TOKEN_PROGRAM_ID) || mint.data_len() != MINT_LEN || mint.try_borrow_data()?[45] != 1 {
        return Err(VaultError::InvalidMint.into());
    }

    let bump = generated_ids::AUTHORITY_BUMP;
    if !keys_eq(generated_ids::AUTHORITY, authority.key()) {
        return Err(VaultError::InvalidPda.into());
    }
    if authority.data_len() != 0 || !authority.is_owned_by(&[0u8; 32]) {
        return Err(VaultError::AlreadyInitialized.into());
    }
    let bump_seed = [bump];
    let state: &mut VaultAuthority = create_zero_copy(admin, authority, program_id, &[AUTHORITY_SEED, &bump_seed])?;
    state.admin = *admin.key();
    state.usdt_mint = *mint.key();
    state.bump = bump;
    let seq = state.next_event()?;
    Event::new(AUTHORITY_INITIALIZED).key(admin.key()).key(mint.key()).i64(now()?).u64(seq).emit()
}
