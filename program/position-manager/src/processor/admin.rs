//! The exchange configuration: created once by the program's upgrade authority; every
//! later change (operator, admin, exit delay, the configuration delay itself) waits out
//! `config_delay_slots` after it is proposed, so traders and monitoring see it coming.
//!
//! * `initialize_exchange(operator, exit_delay_slots, config_delay_slots)`: `[admin
//!   (signer, writable), config (writable), fee_vault, insurance_vault, program_data,
//!   system_program]`;
//! * `propose_config_change(kind, key, value)`: `[admin (signer), config (writable)]`;
//!   eta = now + config delay; a new proposal of a kind replaces the pending one;
//! * `apply_config_change(kind)`: `[config (writable)]`, by anyone once the eta is reached;
//! * `cancel_config_change(kind)`: `[admin (signer), config (writable)]`.
use sbf_runtime::loader::is_upgrade_authority;
use sbf_runtime::pubkey::keys_eq;
use sbf_runtime::system::create_zero_copy;
use sbf_runtime::{AccountView, ProgramResult, Pubkey};

use crate::checks::{clock, expected, signer};
use crate::error::ExchangeError;
use crate::events::{Event, CONFIG_CHANGE_APPLIED, CONFIG_CHANGE_CANCELLED, CONFIG_CHANGE_PROPOSED, EXCHANGE_INITIALIZED};
use crate::generated_ids;
use crate::state::{change, load_vault, ExchangeConfig, EXCHANGE_SEED};

pub fn initialize(accounts: &[AccountView], operator: &Pubkey, exit_delay_slots: u64, config_delay_slots: u64) -> ProgramResult {
    let [admin, config, fee_vault, insurance_vault, program_data, system, ..] = accounts else {
        return Err(ExchangeError::MissingAccounts.into());
    };
    signer(admin)?;
    expected(system, &sbf_runtime::programs::SYSTEM_PROGRAM_ID)?;
    if !is_upgrade_authority(program_data, generated_ids::PROGRAM_DATA, admin.key()) {
        return Err(ExchangeError::NotUpgradeAuthority.into());
    }
    expected(config, generated_ids::EXCHANGE)?;
    if config.data_len() != 0 || !config.is_owned_by(&sbf_runtime::programs::SYSTEM_PROGRAM_ID) {
        return Err(ExchangeError::AlreadyInitialized.into());
    }
    load_vault(fee_vault)?;
    load_vault(insurance_vault)?;
    let bump = [generated_ids::EXCHANGE_BUMP];
    let state: &mut ExchangeConfig = create_zero_copy(admin, config, generated_ids::PROGRAM_ID, &[EXCHANGE_SEED, &bump])?;
    state.admin = *admin.key();
    state.operator = *operator;
    state.fee_vault = *fee_vault.key();
    state.insurance_vault = *insurance_vault.key();
    state.exit_delay_slots = exit_delay_slots;
    state.config_delay_slots = config_delay_slots;
    state.caller_bump = generated_ids::CALLER_BUMP;
    state.bump = generated_ids::EXCHANGE_BUMP;
    Event::new(EXCHANGE_INITIALIZED)
        .key(admin.key())
        .key(operator)
        .key(fee_vault.key())
        .key(insurance_vault.key())
        .u64(exit_delay_slots)
        .u64(config_delay_slots)
        .i64(clock()?.unix_timestamp)
        .emit()
}

/// The configuration, signed for by its admin.
fn as_admin<'a>(admin: &AccountView, config: &'a AccountView) -> Result<&'a mut ExchangeConfig, ExchangeError> {
    signer(admin).map_err(|_| ExchangeError::NotAdmin)?;
    let state = ExchangeConfig::load_mut(config)?;
    if !keys_eq(&state.admin, admin.key()) {
        return Err(ExchangeError::NotAdmin);
    }
    Ok(state)
}

#[inline(always)]
fn kind_index(kind: u8) -> Result<usize, ExchangeError> {
    if (kind as usize) < change::COUNT {
        Ok(kind as usize)
    } else {
        Err(ExchangeError::InvalidConfigChange)
    }
}

pub fn propose(accounts: &[AccountView], kind: u8, key: &Pubkey, value: u64) -> ProgramResult {
    let [admin, config, ..] = accounts else {
        return Err(ExchangeError::MissingAccounts.into());
    };
    let state = as_admin(admin, config)?;
    let index = kind_index(kind)?;
    let well_formed = if change::takes_key(kind) { value == 0 && *key != [0u8; 32] } else { *key == [0u8; 32] };
    if !well_formed {
        return Err(ExchangeError::InvalidConfigChange.into());
    }
    let clock = clock()?;
    // Never 0, which means "nothing pending".
    let eta = clock.slot.checked_add(state.config_delay_slots).ok_or(ExchangeError::Overflow)?.max(1);
    let pending = &mut state.pending[index];
    pending.key = *key;
    pending.value = value;
    pending.eta_slot = eta;
    Event::new(CONFIG_CHANGE_PROPOSED).u8(kind).key(key).u64(value).u64(eta).i64(clock.unix_timestamp).emit()
}

pub fn apply(accounts: &[AccountView], kind: u8) -> ProgramResult {
    let [config, ..] = accounts else {
        return Err(ExchangeError::MissingAccounts.into());
    };
    let state = ExchangeConfig::load_mut(config)?;
    let index = kind_index(kind)?;
    let clock = clock()?;
    let pending = &mut state.pending[index];
    if pending.eta_slot == 0 {
        return Err(ExchangeError::NoPendingChange.into());
    }
    if clock.slot < pending.eta_slot {
        return Err(ExchangeError::ChangeNotDue.into());
    }
    let (key, value) = (pending.key, pending.value);
    pending.key = [0u8; 32];
    pending.value = 0;
    pending.eta_slot = 0;
    match kind {
        change::ADMIN => state.admin = key,
        change::OPERATOR => state.operator = key,
        change::EXIT_DELAY => state.exit_delay_slots = value,
        _ => state.config_delay_slots = value,
    }
    Event::new(CONFIG_CHANGE_APPLIED).u8(kind).key(&key).u64(value).i64(clock.unix_timestamp).emit()
}

pub fn cancel(accounts: &[AccountView], kind: u8) -> ProgramResult {
    let [admin, config, ..] = accounts else {
        return Err(ExchangeError::MissingAccounts.into());
    };
    let state = as_admin(admin, config)?;
    let pending = &mut state.pending[kind_index(kind)?];
    if pending.eta_slot == 0 {
        return Err(ExchangeError::NoPendingChange.into());
    }
    pending.key = [0u8; 32];
    pending.value = 0;
    pending.eta_slot = 0;
    Event::new(CONFIG_CHANGE_CANCELLED).u8(kind).key(admin.key()).i64(clock()?.unix_timestamp).emit()
}
