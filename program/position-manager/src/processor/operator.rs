//! What the operator (the matching engine's key) signs alone, for one trader. Every
//! instruction carries an operation id above the trader's last (`OperationReplayed`
//! otherwise), so a retried or replayed operation is refused on chain and operations for
//! one trader apply in order.
//!
//! Accounts of `lock` and `release`: `[operator (signer), config, grant (writable), vault
//! (writable), vault_authority, caller_authority, vault_program, instructions_sysvar]`.
//! `liquidate`: `[operator (signer), config, grant (writable), vault (writable),
//! vault_token_account (writable), insurance_vault (writable), insurance_vault_token
//! (writable), vault_authority, caller_authority, token_program, vault_program,
//! instructions_sysvar]`.
//!
//! * `lock(amount, op_id)`: refused after revocation or expiry, while an exit is requested,
//!   and above the grant (what this program holds + amount > max_locked); the vault refuses
//!   above available.
//! * `release(amount, op_id)`: always allowed (it returns collateral to the trader).
//! * `liquidate(amount, op_id)`: up to all this program holds for the trader, to the
//!   insurance-fund vault; refused after an exit's deadline (`ExitDue`).
//!
//! When an action leaves nothing held while an exit is requested, the operator has served
//! the exit: the request is cleared (`ExitServed { by_operator: true }`).
use sbf_runtime::pubkey::keys_eq;
use sbf_runtime::{AccountView, ProgramResult, Pubkey};

use crate::checks::{clock, operator, trader_position, TraderPosition};
use crate::error::ExchangeError;
use crate::events::{action, Event, EXIT_SERVED, OPERATOR_ACTION};
use crate::state::load_vault;
use crate::vault_cpi::{Transfer, Vault};

const NO_COUNTERPARTY: Pubkey = [0u8; 32];

/// What one operator action did, for its events.
pub struct Outcome<'a> {
    pub op_id: u64,
    pub action: u8,
    pub amount: u64,
    pub counterparty: &'a Pubkey,
    /// Collateral returned to the trader's available balance (release).
    pub released: u64,
    /// What this program holds for the trader after the action.
    pub held_after: u64,
}

impl<'a> Outcome<'a> {
    /// An action that took `amount` out of what this program held (release, settle,
    /// liquidate), after its CPI succeeded (so the vault had it).
    #[inline(always)]
    pub fn taken(position: &TraderPosition<'_>, op_id: u64, action: u8, amount: u64, counterparty: &'a Pubkey) -> Result<Self, ExchangeError> {
        let held_after = position.held.checked_sub(amount).ok_or(ExchangeError::Overflow)?;
        let released = if action == action::RELEASE { amount } else { 0 };
        Ok(Self { op_id, action, amount, counterparty, released, held_after })
    }
}

/// Records the operation (its id becomes the trader's last), serves a pending exit when
/// nothing is held any more, and emits the events.
#[inline(never)]
pub fn record(position: &mut TraderPosition<'_>, outcome: &Outcome<'_>, timestamp: i64) -> ProgramResult {
    let held = outcome.held_after;
    position.grant.last_op_id = outcome.op_id;
    Event::new(OPERATOR_ACTION)
        .key(&position.trader)
        .u64(outcome.op_id)
        .u8(outcome.action)
        .u64(outcome.amount)
        .key(outcome.counterparty)
        .u64(held)
        .i64(timestamp)
        .emit()?;
    if held == 0 && position.grant.exit_requested() {
        position.grant.exit_requested_slot = 0;
        position.grant.exit_deadline_slot = 0;
        Event::new(EXIT_SERVED).key(&position.trader).bool(true).u64(outcome.released).i64(timestamp).emit()?;
    }
    Ok(())
}

pub fn lock(accounts: &[AccountView], amount: u64, op_id: u64) -> ProgramResult {
    let [operator_key, config, grant, vault, vault_authority, caller, vault_program, instructions, ..] = accounts else {
        return Err(ExchangeError::MissingAccounts.into());
    };
    operator(operator_key, config, instructions)?;
    let cpi = Vault::new(vault_authority, caller, vault_program)?;
    let mut position = trader_position(grant, vault, op_id)?;
    let clock = clock()?;
    let grant_state = &position.grant;
    if grant_state.is_revoked() {
        return Err(ExchangeError::GrantRevoked.into());
    }
    if clock.unix_timestamp >= grant_state.expires_at {
        return Err(ExchangeError::GrantExpired.into());
    }
    if grant_state.exit_requested() {
        return Err(ExchangeError::ExitPending.into());
    }
    let after = position.held.checked_add(amount).ok_or(ExchangeError::GrantExceeded)?;
    if after > grant_state.max_locked {
        return Err(ExchangeError::GrantExceeded.into());
    }
    cpi.lock(vault, amount)?;
    let outcome = Outcome { op_id, action: action::LOCK, amount, counterparty: &NO_COUNTERPARTY, released: 0, held_after: after };
    record(&mut position, &outcome, clock.unix_timestamp)
}

pub fn release(accounts: &[AccountView], amount: u64, op_id: u64) -> ProgramResult {
    let [operator_key, config, grant, vault, vault_authority, caller, vault_program, instructions, ..] = accounts else {
        return Err(ExchangeError::MissingAccounts.into());
    };
    operator(operator_key, config, instructions)?;
    let cpi = Vault::new(vault_authority, caller, vault_program)?;
    let mut position = trader_position(grant, vault, op_id)?;
    cpi.unlock(vault, amount, None)?;
    let outcome = Outcome::taken(&position, op_id, action::RELEASE, amount, &NO_COUNTERPARTY)?;
    record(&mut position, &outcome, clock()?.unix_timestamp)
}

pub fn liquidate(accounts: &[AccountView], amount: u64, op_id: u64) -> ProgramResult {
    let [operator_key, config, grant, vault, vault_token, insurance, insurance_token, vault_authority, caller, token_program, vault_program, instructions, ..] =
        accounts
    else {
        return Err(ExchangeError::MissingAccounts.into());
    };
    let config = operator(operator_key, config, instructions)?;
    if !keys_eq(insurance.key(), &config.insurance_vault) {
        return Err(ExchangeError::InvalidVault.into());
    }
    let cpi = Vault::new(vault_authority, caller, vault_program)?;
    let mut position = trader_position(grant, vault, op_id)?;
    let clock = clock()?;
    position.refuse_after_exit_deadline(clock.slot)?;
    let insurance_owner = load_vault(insurance)?.owner;
    cpi.transfer(&Transfer { from: vault, from_token: vault_token, to: insurance, to_token: insurance_token, token_program, amount })?;
    let outcome = Outcome::taken(&position, op_id, action::LIQUIDATE, amount, &insurance_owner)?;
    record(&mut position, &outcome, clock.unix_timestamp)
}
