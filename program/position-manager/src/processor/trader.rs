//! What the trader's wallet signs: the grant, its revocation, and the exit.
//!
//! * `grant(max_locked, expires_at)`: `[trader (signer, writable: pays the rent on
//!   creation), grant (writable), system_program]`. Creates `[b"grant", trader]` or updates
//!   it: raises or lowers the limit, moves the expiry, un-revokes, and withdraws a pending
//!   exit request (the trader is trading again).
//! * `revoke()`: `[trader (signer), grant (writable)]`: no new locks; what this program
//!   already holds stays locked (positions still need settling).
//! * `request_exit()`: `[trader (signer), grant (writable), config]`: starts the exit
//!   clock; no new locks from now on. The operator answers by releasing or settling
//!   everything before `requested + exit_delay_slots`, a deadline fixed in the grant now
//!   (a later change of the delay does not move it); partial actions do not reset it.
//! * `exit()`: `[trader (signer), grant (writable), config, vault (writable),
//!   vault_authority, caller_authority, vault_program]`: after the deadline, releases all
//!   this program holds for the trader (the trader co-signs the unlock, so it goes through
//!   even while the vault's unlocks are paused) and revokes the grant.
use sbf_runtime::pubkey::{find_program_address, keys_eq};
use sbf_runtime::system::create_zero_copy;
use sbf_runtime::{AccountView, ProgramResult};

use crate::checks::{clock, expected, signer};
use crate::error::ExchangeError;
use crate::events::{Event, EXIT_REQUESTED, EXIT_SERVED, GRANT_REVOKED, GRANT_SET};
use crate::generated_ids;
use crate::state::{load_vault, ExchangeConfig, Grant, GRANT_SEED};
use crate::vault_cpi::Vault;

/// The trader's own grant, signed for.
fn own_grant<'a>(trader: &AccountView, grant: &'a AccountView) -> Result<&'a mut Grant, ExchangeError> {
    signer(trader)?;
    let state = Grant::load_mut(grant)?;
    if !keys_eq(&state.trader, trader.key()) {
        return Err(ExchangeError::GrantMismatch);
    }
    Ok(state)
}

pub fn grant(accounts: &[AccountView], max_locked: u64, expires_at: i64) -> ProgramResult {
    let [trader, grant, system, ..] = accounts else {
        return Err(ExchangeError::MissingAccounts.into());
    };
    signer(trader)?;
    let clock = clock()?;
    if expires_at <= clock.unix_timestamp {
        return Err(ExchangeError::InvalidExpiry.into());
    }
    let state = if grant.data_len() == 0 && grant.is_owned_by(&sbf_runtime::programs::SYSTEM_PROGRAM_ID) {
        // Created once, at the canonical PDA, so a trader has exactly one grant.
        expected(system, &sbf_runtime::programs::SYSTEM_PROGRAM_ID)?;
        let (address, bump) = find_program_address(&[GRANT_SEED, trader.key()], generated_ids::PROGRAM_ID)?;
        expected(grant, &address)?;
        let bump_seed = [bump];
        let state: &mut Grant =
            create_zero_copy(trader, grant, generated_ids::PROGRAM_ID, &[GRANT_SEED, trader.key(), &bump_seed])?;
        state.trader = *trader.key();
        state.bump = bump;
        state
    } else {
        own_grant(trader, grant)?
    };
    state.max_locked = max_locked;
    state.expires_at = expires_at;
    state.revoked = 0;
    state.exit_requested_slot = 0;
    state.exit_deadline_slot = 0;
    Event::new(GRANT_SET).key(trader.key()).u64(max_locked).i64(expires_at).i64(clock.unix_timestamp).emit()
}

pub fn revoke(accounts: &[AccountView]) -> ProgramResult {
    let [trader, grant, ..] = accounts else {
        return Err(ExchangeError::MissingAccounts.into());
    };
    let state = own_grant(trader, grant)?;
    state.revoked = 1;
    Event::new(GRANT_REVOKED).key(trader.key()).i64(clock()?.unix_timestamp).emit()
}

pub fn request_exit(accounts: &[AccountView]) -> ProgramResult {
    let [trader, grant, config, ..] = accounts else {
        return Err(ExchangeError::MissingAccounts.into());
    };
    let state = own_grant(trader, grant)?;
    let config = ExchangeConfig::load(config)?;
    if state.exit_requested() {
        return Err(ExchangeError::ExitAlreadyRequested.into());
    }
    let clock = clock()?;
    // Slot 0 (a fresh test chain) is recorded as 1: 0 means "no request".
    state.exit_requested_slot = clock.slot.max(1);
    state.exit_deadline_slot = config.exit_deadline(state.exit_requested_slot);
    Event::new(EXIT_REQUESTED)
        .key(trader.key())
        .u64(state.exit_requested_slot)
        .u64(state.exit_deadline_slot)
        .i64(clock.unix_timestamp)
        .emit()
}

pub fn exit(accounts: &[AccountView]) -> ProgramResult {
    let [trader, grant, config, vault, vault_authority, caller, vault_program, ..] = accounts else {
        return Err(ExchangeError::MissingAccounts.into());
    };
    let state = own_grant(trader, grant)?;
    ExchangeConfig::load(config)?;
    let cpi = Vault::new(vault_authority, caller, vault_program)?;
    if !state.exit_requested() {
        return Err(ExchangeError::ExitNotRequested.into());
    }
    let clock = clock()?;
    if clock.slot < state.exit_deadline_slot {
        return Err(ExchangeError::ExitNotDue.into());
    }
    let vault_state = load_vault(vault)?;
    if !keys_eq(&vault_state.owner, trader.key()) {
        return Err(ExchangeError::GrantMismatch.into());
    }
    let held = vault_state.locked_by(generated_ids::PROGRAM_ID);
    if held != 0 {
        cpi.unlock(vault, held, Some(trader))?;
    }
    state.exit_requested_slot = 0;
    state.exit_deadline_slot = 0;
    state.revoked = 1;
    Event::new(EXIT_SERVED).key(trader.key()).bool(false).u64(held).i64(clock.unix_timestamp).emit()
}
