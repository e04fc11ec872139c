//! Admin instructions on the `VaultAuthority`. Accounts start with
//! `[admin (signer), authority (writable)]`.
//!
//! * `add_authorized_program`: `+ [program (executable)]`; stores the program id and its
//!   caller PDA `[b"vault_caller"]`, derived here once so lock/unlock need no derivation.
//! * `remove_authorized_program(program_id)`.
//! * `set_paused(flags)`: see [`crate::state::authority::pause`].
//! * `transfer_admin(new_admin)` proposes; `accept_admin` (signed by the proposed admin,
//!   `[new_admin (signer), authority (writable)]`) completes the two-step transfer.
use sbf_runtime::pubkey::{find_program_address, keys_eq};
use sbf_runtime::{AccountView, ProgramResult, Pubkey};

use crate::checks::{now, signer};
use crate::error::VaultError;
use crate::events::{
    Event, ADMIN_TRANSFER_ACCEPTED, ADMIN_TRANSFER_PROPOSED, PAUSE_FLAGS_SET, PROGRAM_AUTHORIZED,
    PROGRAM_DEAUTHORIZED,
};
use crate::state::authority::{pause, CALLER_SEED, MAX_AUTHORIZED_PROGRAMS};
use crate::state::VaultAuthority;

/// The authority, checked to be ours and signed for by its admin.
fn as_admin<'a>(
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

pub fn add_authorized_program(program_id: &Pubkey, accounts: &[AccountView]) -> ProgramResult {
    let [admin, authority, program, ..] = accounts else {
        return Err(VaultError::MissingAccounts.into());
    };
    let state = as_admin(program_id, admin, authority)?;
    if !program.executable() {
        return Err(VaultError::InvalidProgramAccount.into());
    }
    if state.find_program(program.key()).is_some() {
        return Err(VaultError::ProgramAlreadyAuthorized.into());
    }
    let count = state.authorized_count as usize;
    if count >= MAX_AUTHORIZED_PROGRAMS {
        return Err(VaultError::AuthorityListFull.into());
    }
    let (caller, _) = find_program_address(&[CALLER_SEED], program.key())?;
    state.authorized_programs[count] = *program.key();
    state.caller_authorities[count] = caller;
    state.authorized_count += 1;
    let seq = state.next_event()?;
    Event::new(PROGRAM_AUTHORIZED).key(program.key()).key(&caller).key(admin.key()).i64(now()?).u64(seq).emit()
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

pub fn set_paused(program_id: &Pubkey, accounts: &[AccountView], flags: u8) -> ProgramResult {
    let [admin, authority, ..] = accounts else {
        return Err(VaultError::MissingAccounts.into());
    };
    let state = as_admin(program_id, admin, authority)?;
    if flags & !pause::ALL != 0 {
        return Err(VaultError::InvalidInstruction.into());
    }
    state.pause_flags = flags;
    let seq = state.next_event()?;
    Event::new(PAUSE_FLAGS_SET).u8(flags).key(admin.key()).i64(now()?).u64(seq).emit()
}

pub fn transfer_admin(program_id: &Pubkey, accounts: &[AccountView], new_admin: &Pubkey) -> ProgramResult {
    let [admin, authority, ..] = accounts else {
        return Err(VaultError::MissingAccounts.into());
    };
    let state = as_admin(program_id, admin, authority)?;
    state.pending_admin = *new_admin;
    let seq = state.next_event()?;
    Event::new(ADMIN_TRANSFER_PROPOSED).key(admin.key()).key(new_admin).i64(now()?).u64(seq).emit()
}

pub fn accept_admin(program_id: &Pubkey, accounts: &[AccountView]) -> ProgramResult {
    let [new_admin, authority, ..] = accounts else {
        return Err(VaultError::MissingAccounts.into());
    };
    signer(new_admin)?;
    let state = VaultAuthority::load_checked_mut(authority, program_id)?;
    if state.pending_admin == [0u8; 32] || !keys_eq(&state.pending_admin, new_admin.key()) {
        return Err(VaultError::NoPendingAdmin.into());
    }
    let previous = state.admin;
    state.admin = *new_admin.key();
    state.pending_admin = [0u8; 32];
    let seq = state.next_event()?;
    Event::new(ADMIN_TRANSFER_ACCEPTED).key(&previous).key(new_admin.key()).i64(now()?).u64(seq).emit()
}
