//! The timelock: loosening changes wait `timelock_delay` seconds in
//! `VaultAuthority.pending_changes` (8 slots) before anyone may execute them, so a stolen
//! admin key cannot authorize a program, lift a pause or raise a limit before people see
//! it coming (`ChangeQueued`) and react; the admin can cancel a change until it executes.
//!
//! * `execute_change(change_id)`: `[authority (writable)]`, plus `[program]` for an
//!   authorization; no signer. Refused before the change's `eta` (`ChangeNotReady`); checks
//!   again what may have changed since it was queued (the program is still a program and
//!   not authorized, the list has room). An admin transfer is executed by the new admin's
//!   `accept_admin` instead (`AcceptanceRequired`).
//! * `cancel_change(change_id)`: `[admin (signer), authority (writable)]`.
//!
//! Each queued, executed or cancelled change is an event (`ChangeQueued`, `ChangeExecuted`,
//! `ChangeCancelled`), numbered like every admin event; an executed change's effect then has
//! its own event (`ProgramAuthorized`, `PauseFlagsSet`, `AdminTransferAccepted`,
//! `WithdrawLimitsSet`).
use sbf_runtime::{AccountView, ProgramError, ProgramResult, Pubkey};

use crate::checks::{clock, now};
use crate::error::VaultError;
use crate::events::{Event, CHANGE_CANCELLED, CHANGE_EXECUTED, CHANGE_QUEUED};
use crate::processor::admin::{as_admin, authorize, pause_flags_set, valid_delay, withdraw_limits_set};
use crate::state::authority::{change_kind, PendingChange};
use crate::state::VaultAuthority;
use crate::throttle::valid_limits;

const FREE: PendingChange = PendingChange { change_id: 0, eta: 0, kind: 0, reserved: [0; 7], target: [0; 32], values: [0; 4] };

impl VaultAuthority {
    /// The slot of the queued change `change_id`.
    #[inline(always)]
    fn change_index(&self, change_id: u64) -> Result<usize, VaultError> {
        if change_id == 0 {
            return Err(VaultError::ChangeNotFound);
        }
        self.pending_changes.iter().position(|c| c.change_id == change_id).ok_or(VaultError::ChangeNotFound)
    }
}

/// Queues a change due `timelock_delay` seconds from now (`ChangeQueueFull` when the 8 slots
/// are taken).
pub fn queue(state: &mut VaultAuthority, admin: &Pubkey, kind: u8, target: &Pubkey, values: [u64; 4]) -> ProgramResult {
    let index = state.pending_changes.iter().position(|c| c.change_id == 0).ok_or(VaultError::ChangeQueueFull)?;
    let timestamp = now()?;
    let eta = timestamp.checked_add(state.timelock_delay).ok_or(VaultError::Overflow)?;
    let change_id = state.next_change_id.checked_add(1).ok_or(VaultError::Overflow)?;
    state.next_change_id = change_id;
    state.pending_changes[index] = PendingChange { change_id, eta, kind, reserved: [0; 7], target: *target, values };
    let seq = state.next_event()?;
    let [a, b, c, d] = values;
    Event::new(CHANGE_QUEUED)
        .u64(change_id)
        .u8(kind)
        .key(target)
        .u64(a)
        .u64(b)
        .u64(c)
        .u64(d)
        .i64(eta)
        .key(admin)
        .i64(timestamp)
        .u64(seq)
        .emit()
}

/// Removes an executed change from the queue and emits `ChangeExecuted`; returns the time.
pub fn change_executed(state: &mut VaultAuthority, change: &PendingChange) -> Result<i64, ProgramError> {
    let index = state.change_index(change.change_id)?;
    state.pending_changes[index] = FREE;
    let timestamp = now()?;
    let seq = state.next_event()?;
    let [a, b, c, d] = change.values;
    Event::new(CHANGE_EXECUTED)
        .u64(change.change_id)
        .u8(change.kind)
        .key(&change.target)
        .u64(a)
        .u64(b)
        .u64(c)
        .u64(d)
        .i64(timestamp)
        .u64(seq)
        .emit()?;
    Ok(timestamp)
}

pub fn execute_change(program_id: &Pubkey, accounts: &[AccountView], change_id: u64) -> ProgramResult {
    let [authority, rest @ ..] = accounts else {
        return Err(VaultError::MissingAccounts.into());
    };
    let state = VaultAuthority::load_checked_mut(authority, program_id)?;
    let change = state.pending_changes[state.change_index(change_id)?];
    let clock = clock()?;
    if clock.unix_timestamp < change.eta {
        return Err(VaultError::ChangeNotReady.into());
    }
    match change.kind {
        change_kind::AUTHORIZE_PROGRAM => {
            let [program, ..] = rest else {
                return Err(VaultError::MissingAccounts.into());
            };
            authorize(state, program, &change)
        }
        change_kind::ADMIN_TRANSFER => Err(VaultError::AcceptanceRequired.into()),
        change_kind::LIFT_PAUSE => {
            state.pause_flags &= !(change.values[1] as u8);
            let timestamp = change_executed(state, &change)?;
            let admin = state.admin;
            pause_flags_set(state, &admin, timestamp)
        }
        change_kind::SET_DELAY => {
            let delay = change.values[0] as i64;
            valid_delay(delay)?;
            state.timelock_delay = delay;
            change_executed(state, &change).map(|_| ())
        }
        change_kind::RAISE_WITHDRAW_LIMITS => {
            valid_limits(&change.values)?;
            state.set_limits(&change.values, clock.slot);
            let timestamp = change_executed(state, &change)?;
            withdraw_limits_set(state, timestamp)
        }
        _ => Err(VaultError::InvalidInstruction.into()),
    }
}

pub fn cancel_change(program_id: &Pubkey, accounts: &[AccountView], change_id: u64) -> ProgramResult {
    let [admin, authority, ..] = accounts else {
        return Err(VaultError::MissingAccounts.into());
    };
    let state = as_admin(program_id, admin, authority)?;
    let index = state.change_index(change_id)?;
    let change = state.pending_changes[index];
    state.pending_changes[index] = FREE;
    if change.kind == change_kind::ADMIN_TRANSFER && state.pending_admin == change.target {
        state.pending_admin = [0u8; 32];
    }
    let seq = state.next_event()?;
    Event::new(CHANGE_CANCELLED).u64(change_id).u8(change.kind).key(admin.key()).i64(now()?).u64(seq).emit()
}
