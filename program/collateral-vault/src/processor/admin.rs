//! Admin instructions on the `VaultAuthority`. Accounts start with
//! `[admin (signer), authority (writable)]`.
//!
//! Tightening is instant, loosening waits out the timelock (`processor::timelock`):
//!
//! * `add_authorized_program`: `+ [program (executable)]`; queues the program's
//!   authorization (`execute_change` adds it with its caller PDA `[b"vault_caller"]`,
//!   derived there once so lock/unlock need no derivation).
//! * `remove_authorized_program(program_id)`: instant.
//! * `set_paused(flags)`: flags it adds apply at once; flags it clears are queued (see
//!   [`crate::state::authority::pause`]).
//! * `transfer_admin(new_admin)` queues the transfer; once due, `accept_admin` (signed by
//!   the new admin, `[new_admin (signer), authority (writable)]`) applies it.
//! * `set_timelock_delay(delay)`: always queued.
//! * `set_withdraw_limits(max_outflow_bps, window_slots, min_budget, exempt_amount)`:
//!   instant when every limit is tighter or equal, queued otherwise.
use sbf_runtime::pubkey::{find_program_address, keys_eq};
use sbf_runtime::{AccountView, ProgramResult, Pubkey};

use crate::checks::{clock, now, signer};
use crate::error::VaultError;
use crate::events::{
    Event, ADMIN_TRANSFER_ACCEPTED, ADMIN_TRANSFER_PROPOSED, PAUSE_FLAGS_SET, PROGRAM_AUTHORIZED,
    PROGRAM_DEAUTHORIZED, WITHDRAW_LIMITS_SET,
};
use crate::processor::timelock::{change_executed, queue};
use crate::state::authority::{change_kind, pause, PendingChange, CALLER_SEED, MAX_AUTHORIZED_PROGRAMS, MAX_TIMELOCK_DELAY};
use crate::state::VaultAuthority;
use crate::throttle::{tightens, valid_limits};

/// The authority, checked to be ours and signed for by its admin.
pub fn as_admin<'a>(
    program_id: &Pubkey,
    admin: &AccountView,
    authority: &'a AccountView,
) -> Result<&'a mut VaultAuthority, VaultError> {
    signer(admin)?;
    let state = VaultAuthority::load_checked_mut(authority, program_id)?;
    if !keys_eq(&state.admin, admin.key()) {
        return Err(VaultError::Unauthorized);
    }
    Ok(state)
}

/// `program` can be authorized: a program, not authorized yet, room in the list.
pub fn authorizable(state: &VaultAuthority, program: &AccountView) -> Result<(), VaultError> {
    if !program.executable() {
        return Err(VaultError::InvalidProgramAccount);
    }
    if state.find_program(program.key()).is_some() {
        return Err(VaultError::ProgramAlreadyAuthorized);
    }
    if state.authorized_count as usize >= MAX_AUTHORIZED_PROGRAMS {
        return Err(VaultError::AuthorityListFull);
    }
    Ok(())
}

pub fn add_authorized_program(program_id: &Pubkey, accounts: &[AccountView]) -> ProgramResult {
    let [admin, authority, program, ..] = accounts else {
        return Err(VaultError::MissingAccounts.into());
    };
    let state = as_admin(program_id, admin, authority)?;
    authorizable(state, program)?;
    queue(state, admin.key(), change_kind::AUTHORIZE_PROGRAM, program.key(), [0; 4])
}

/// Executes a due authorization: checks the program again and adds it.
pub fn authorize(state: &mut VaultAuthority, program: &AccountView, change: &PendingChange) -> ProgramResult {
    if !keys_eq(program.key(), &change.target) {
        return Err(VaultError::InvalidProgramAccount.into());
    }
    authorizable(state, program)?;
    let (caller, _) = find_program_address(&[CALLER_SEED], program.key())?;
    let count = state.authorized_count as usize;
    state.authorized_programs[count] = *program.key();
    state.caller_authorities[count] = caller;
    state.authorized_count += 1;
    let timestamp = change_executed(state, change)?;
    let seq = state.next_event()?;
    Event::new(PROGRAM_AUTHORIZED).key(program.key()).key(&caller).key(&state.admin).i64(timestamp).u64(seq).emit()
}

pub fn remove_authorized_program(program_id: &Pubkey, accounts: &[AccountView], target: &Pubkey) -> ProgramResult {
    let [admin, authority, ..] = accounts else {
        return Err(VaultError::MissingAccounts.into());
    };
    let state = as_admin(program_id, admin, authority)?;
    let index = state.find_program(target).ok_or(VaultError::ProgramNotAuthorized)?;
    let last = state.authorized_count as usize - 1;
    state.authorized_programs[index] = state.authorized_programs[last];
    state.caller_authorities[index] = state.caller_authorities[last];
    state.authorized_programs[last] = [0u8; 32];
    state.caller_authorities[last] = [0u8; 32];
    state.authorized_count -= 1;
    let seq = state.next_event()?;
    Event::new(PROGRAM_DEAUTHORIZED).key(target).key(admin.key()).i64(now()?).u64(seq).emit()
}

/// `PauseFlagsSet` with the flags now in force.
pub fn pause_flags_set(state: &mut VaultAuthority, admin: &Pubkey, timestamp: i64) -> ProgramResult {
    let seq = state.next_event()?;
    Event::new(PAUSE_FLAGS_SET).u8(state.pause_flags).key(admin).i64(timestamp).u64(seq).emit()
}

pub fn set_paused(program_id: &Pubkey, accounts: &[AccountView], flags: u8) -> ProgramResult {
    let [admin, authority, ..] = accounts else {
        return Err(VaultError::MissingAccounts.into());
    };
    let state = as_admin(program_id, admin, authority)?;
    if flags & !pause::ALL != 0 {
        return Err(VaultError::InvalidInstruction.into());
    }
    let lifted = state.pause_flags & !flags;
    let added = flags & !state.pause_flags;
    if added != 0 || lifted == 0 {
        state.pause_flags |= added;
        pause_flags_set(state, admin.key(), now()?)?;
    }
    if lifted != 0 {
        queue(state, admin.key(), change_kind::LIFT_PAUSE, &[0u8; 32], [flags as u64, lifted as u64, 0, 0])?;
    }
    Ok(())
}

pub fn transfer_admin(program_id: &Pubkey, accounts: &[AccountView], new_admin: &Pubkey) -> ProgramResult {
    let [admin, authority, ..] = accounts else {
        return Err(VaultError::MissingAccounts.into());
    };
    let state = as_admin(program_id, admin, authority)?;
    queue(state, admin.key(), change_kind::ADMIN_TRANSFER, new_admin, [0; 4])?;
    state.pending_admin = *new_admin;
    let seq = state.next_event()?;
    Event::new(ADMIN_TRANSFER_PROPOSED).key(admin.key()).key(new_admin).i64(now()?).u64(seq).emit()
}

/// The new admin applies a due admin transfer to them (the first due one).
pub fn accept_admin(program_id: &Pubkey, accounts: &[AccountView]) -> ProgramResult {
    let [new_admin, authority, ..] = accounts else {
        return Err(VaultError::MissingAccounts.into());
    };
    signer(new_admin)?;
    let state = VaultAuthority::load_checked_mut(authority, program_id)?;
    let timestamp = now()?;
    let mut waiting = false;
    let mut due = None;
    for change in state.pending_changes.iter() {
        if change.change_id != 0 && change.kind == change_kind::ADMIN_TRANSFER && keys_eq(&change.target, new_admin.key()) {
            if change.eta <= timestamp {
                due = Some(*change);
                break;
            }
            waiting = true;
        }
    }
    let Some(change) = due else {
        return Err(if waiting { VaultError::ChangeNotReady } else { VaultError::NoPendingAdmin }.into());
    };
    let previous = state.admin;
    state.admin = *new_admin.key();
    if keys_eq(&state.pending_admin, new_admin.key()) {
        state.pending_admin = [0u8; 32];
    }
    change_executed(state, &change)?;
    let seq = state.next_event()?;
    Event::new(ADMIN_TRANSFER_ACCEPTED).key(&previous).key(new_admin.key()).i64(timestamp).u64(seq).emit()
}

pub fn set_timelock_delay(program_id: &Pubkey, accounts: &[AccountView], delay: i64) -> ProgramResult {
    let [admin, authority, ..] = accounts else {
        return Err(VaultError::MissingAccounts.into());
    };
    let state = as_admin(program_id, admin, authority)?;
    valid_delay(delay)?;
    queue(state, admin.key(), change_kind::SET_DELAY, &[0u8; 32], [delay as u64, 0, 0, 0])
}

/// A timelock delay of 0 to 30 days.
#[inline(always)]
pub fn valid_delay(delay: i64) -> Result<(), VaultError> {
    if (0..=MAX_TIMELOCK_DELAY).contains(&delay) {
        Ok(())
    } else {
        Err(VaultError::InvalidTimelockDelay)
    }
}

/// `WithdrawLimitsSet` with the limits now in force.
pub fn withdraw_limits_set(state: &mut VaultAuthority, timestamp: i64) -> ProgramResult {
    let seq = state.next_event()?;
    let [bps, window, floor, exempt] = state.limits();
    Event::new(WITHDRAW_LIMITS_SET).u64(bps).u64(window).u64(floor).u64(exempt).key(&state.admin).i64(timestamp).u64(seq).emit()
}

pub fn set_withdraw_limits(program_id: &Pubkey, accounts: &[AccountView], limits: &[u64; 4]) -> ProgramResult {
    let [admin, authority, ..] = accounts else {
        return Err(VaultError::MissingAccounts.into());
    };
    let state = as_admin(program_id, admin, authority)?;
    valid_limits(limits)?;
    if !tightens(&state.limits(), limits) {
        return queue(state, admin.key(), change_kind::RAISE_WITHDRAW_LIMITS, &[0u8; 32], *limits);
    }
    let clock = clock()?;
    state.set_limits(limits, clock.slot);
    withdraw_limits_set(state, clock.unix_timestamp)
}
