//! `initialize_authority`: creates the `VaultAuthority` PDA `[b"vault_authority"]`.
//!
//! Accounts: `[admin (signer, writable), authority (writable), usdt_mint, program_data,
//! system_program]`. Only the program's upgrade authority may call it (checked against the
//! BPF Upgradeable Loader's ProgramData account), so nobody can front-run the deployment
//! and make themselves admin.
use sbf_runtime::programs::{BPF_LOADER_UPGRADEABLE_ID, TOKEN_PROGRAM_ID};
use sbf_runtime::pubkey::{find_program_address, keys_eq};
use sbf_runtime::system::NewAccount;
use sbf_runtime::sysvar::Rent;
use sbf_runtime::{AccountView, ProgramResult, Pubkey};

use crate::checks::{now, signer, system_program, writable};
use crate::error::VaultError;
use crate::events::{Event, AUTHORITY_INITIALIZED};
use crate::state::authority::AUTHORITY_SEED;
use crate::state::{VaultAuthority, ZeroCopyAccount};

/// SPL Token mint size.
const MINT_LEN: usize = 82;
/// ProgramData: u32 tag (3), slot u64, Option<Pubkey> upgrade authority.
const PROGRAM_DATA_TAG: u8 = 3;

pub fn process(program_id: &Pubkey, accounts: &[AccountView]) -> ProgramResult {
    let [admin, authority, mint, program_data, system, ..] = accounts else {
        return Err(VaultError::MissingAccounts.into());
    };
    signer(admin)?;
    writable(admin)?;
    writable(authority)?;
    system_program(system)?;

    // The upgrade authority of this program is the only admin that may initialize.
    let (expected_program_data, _) = find_program_address(&[program_id], &BPF_LOADER_UPGRADEABLE_ID)?;
    let data = program_data.data();
    if !keys_eq(program_data.key(), &expected_program_data)
        || !program_data.is_owned_by(&BPF_LOADER_UPGRADEABLE_ID)
        || data.len() < 45
        || data[0] != PROGRAM_DATA_TAG
        || data[12] != 1
        || !keys_eq(admin.key(), <&Pubkey>::try_from(&data[13..45]).map_err(|_| VaultError::NotUpgradeAuthority)?)
    {
        return Err(VaultError::NotUpgradeAuthority.into());
    }

    if !mint.is_owned_by(&TOKEN_PROGRAM_ID) || mint.data_len() != MINT_LEN || mint.data()[45] != 1 {
        return Err(VaultError::InvalidMint.into());
    }

    let (address, bump) = find_program_address(&[AUTHORITY_SEED], program_id)?;
    if !keys_eq(&address, authority.key()) {
        return Err(VaultError::InvalidPda.into());
    }
    if authority.data_len() != 0 || !authority.is_owned_by(&[0u8; 32]) {
        return Err(VaultError::AlreadyInitialized.into());
    }
    let rent = Rent::get()?.minimum_balance(VaultAuthority::LEN as u64)?;
    let bump_seed = [bump];
    let signer_seeds: &[&[u8]] = &[AUTHORITY_SEED, &bump_seed];
    NewAccount { payer: admin, account: authority, rent_exempt: rent, space: VaultAuthority::LEN as u64, owner: program_id }
        .create(&[signer_seeds])?;

    let state = unsafe { &mut *(authority.data_mut()?.as_mut_ptr() as *mut VaultAuthority) };
    state.discriminator = VaultAuthority::DISCRIMINATOR;
    state.admin = *admin.key();
    state.usdt_mint = *mint.key();
    state.bump = bump;

    Event::new(AUTHORITY_INITIALIZED).key(admin.key()).key(mint.key()).emit(now()?);
    Ok(())
}
