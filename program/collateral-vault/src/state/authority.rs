//! `VaultAuthority`: PDA `[b"vault_authority"]`, the exchange's controls.
use sbf_runtime::anchor;
use sbf_runtime::pubkey::keys_eq;
use sbf_runtime::{AccountView, Pubkey};

use sbf_runtime::zero_copy::ZeroCopy;

use crate::error::VaultError;
use crate::generated_ids;
use crate::state::ZeroCopyAccount;

pub use collateral_vault_interface::state::{AUTHORITY_SEED, CALLER_SEED};
pub const MAX_AUTHORIZED_PROGRAMS: usize = 16;

/// Pause flags, one per operation; `set_paused` sets any combination. Deposits cannot be
/// paused: a user must always be able to add collateral to a position at risk.
pub mod pause {
    pub const WITHDRAW: u8 = 1 << 0;
    pub const LOCK: u8 = 1 << 1;
    /// Unlocks by a program; an unlock the vault's owner co-signs is never paused.
    pub const UNLOCK: u8 = 1 << 2;
    pub const TRANSFER: u8 = 1 << 3;
    /// initialize_vault and close_vault.
    pub const LIFECYCLE: u8 = 1 << 4;
    pub const ALL: u8 = WITHDRAW | LOCK | UNLOCK | TRANSFER | LIFECYCLE;
}

#[repr(C)]
pub struct VaultAuthority {
    pub discriminator: [u8; 8],
    pub admin: Pubkey,
    /// Proposed next admin (all zero when none): two-step transfer.
    pub pending_admin: Pubkey,
    /// The accepted USDT mint.
    pub usdt_mint: Pubkey,
    /// Authorized program ids (first `authorized_count` entries are used).
    pub authorized_programs: [Pubkey; MAX_AUTHORIZED_PROGRAMS],
    /// For each program, its caller PDA `[b"vault_caller"]` (derived when it was added).
    pub caller_authorities: [Pubkey; MAX_AUTHORIZED_PROGRAMS],
    pub authorized_count: u8,
    pub pause_flags: u8,
    pub bump: u8,
    pub reserved: [u8; 5],
    /// The sequence number of the last admin event.
    pub event_seq: u64,
}

const _: () = assert!(core::mem::size_of::<VaultAuthority>() == 1144);

impl VaultAuthority {
    pub const LEN: usize = core::mem::size_of::<VaultAuthority>();

    /// The VaultAuthority, recognised by its address (the PDA fixed at build time) as well
    /// as by owner, size and discriminator: a look-alike account elsewhere is refused.
    #[inline(always)]
    pub fn load_checked<'a>(account: &'a AccountView, program_id: &Pubkey) -> Result<&'a Self, VaultError> {
        if !keys_eq(account.key(), generated_ids::AUTHORITY) {
            return Err(VaultError::InvalidAuthority);
        }
        Self::load(account, program_id)
    }

    /// As [`load_checked`](Self::load_checked), writable.
    #[inline(always)]
    pub fn load_checked_mut<'a>(account: &'a AccountView, program_id: &Pubkey) -> Result<&'a mut Self, VaultError> {
        if !keys_eq(account.key(), generated_ids::AUTHORITY) {
            return Err(VaultError::InvalidAuthority);
        }
        Self::load_mut(account, program_id)
    }

    #[inline(always)]
    pub fn is_paused(&self, flag: u8) -> bool {
        self.pause_flags & flag != 0
    }

    /// The index of `program` in the authorized list.
    #[inline(always)]
    pub fn find_program(&self, program: &Pubkey) -> Option<usize> {
        let count = (self.authorized_count as usize).min(MAX_AUTHORIZED_PROGRAMS);
        self.authorized_programs[..count].iter().position(|p| keys_eq(p, program))
    }

    /// The authorized program whose caller PDA is `caller` (an account that must also be
    /// a signer: only that program can sign for its PDA).
    #[inline(always)]
    pub fn program_for_caller(&self, caller: &Pubkey) -> Option<&Pubkey> {
        let count = (self.authorized_count as usize).min(MAX_AUTHORIZED_PROGRAMS);
        let index = self.caller_authorities[..count].iter().position(|c| keys_eq(c, caller))?;
        Some(&self.authorized_programs[index])
    }

    /// The next admin event's sequence number.
    #[inline(always)]
    pub fn next_event(&mut self) -> Result<u64, VaultError> {
        self.event_seq = self.event_seq.checked_add(1).ok_or(VaultError::Overflow)?;
        Ok(self.event_seq)
    }
}

// SAFETY: repr(C) of byte arrays, u8 and u64 (every bit pattern valid), no implicit
// padding (`reserved` is explicit), alignment 8, discriminator first.
unsafe impl ZeroCopy for VaultAuthority {
    const DISCRIMINATOR: [u8; 8] = anchor::account("VaultAuthority");
}

impl ZeroCopyAccount for VaultAuthority {
    const INVALID: VaultError = VaultError::InvalidAuthority;
}
