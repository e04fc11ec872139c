//! `initialize_authority`: creates the `VaultAuthority` PDA `[b"vault_authority"]`.
//!
//! `initialize_authority(timelock_delay: i64)`: the timelock delay in seconds (0 to 30 days;
//! production e.g. 48 h, development 0). The withdrawal limits start at
//! [`default_limits`], the throttle's budgets full at the floor.
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

use crate::checks::{clock, signer, system_program, writable};
use crate::error::VaultError;
use crate::events::{Event, AUTHORITY_INITIALIZED};
use crate::generated_ids;
use crate::processor::admin::valid_delay;
use crate::state::authority::{default_limits, AUTHORITY_SEED};
use crate::state::VaultAuthority;

/// SPL Token mint size.
const MINT_LEN: usize = 82;

pub fn process(program_id: &Pubkey, accounts: &[AccountView], timelock_delay: i64) -> ProgramResult {
    let [admin, authority, mint, program_data, system, ..] = accounts else {
        return Err(VaultError::MissingAccounts.into());
    };
    signer(admin)?;
    writable(admin)?;
    writable(authority)?;
    system_program(system)?;
    valid_delay(timelock_delay)?;

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
    state.timelock_delay = timelock_delay;
    let clock = clock()?;
    state.set_limits(
        &[default_limits::MAX_OUTFLOW_BPS, default_limits::WINDOW_SLOTS, default_limits::MIN_BUDGET, default_limits::EXEMPT_AMOUNT],
        clock.slot,
    );
    state.outflow_budget = default_limits::MIN_BUDGET;
    state.exempt_budget = default_limits::MIN_BUDGET;
    let seq = state.next_event()?;
    Event::new(AUTHORITY_INITIALIZED).key(admin.key()).key(mint.key()).i64(clock.unix_timestamp).u64(seq).emit()
}
