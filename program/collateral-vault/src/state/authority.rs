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
/// Loosening changes waiting out the timelock at one time.
pub const MAX_QUEUED_CHANGES: usize = 8;
/// The longest timelock delay `set_timelock_delay` accepts (30 days): a longer one could
/// freeze every later loosening change for good.
pub const MAX_TIMELOCK_DELAY: i64 = 30 * 86_400;
/// The longest throttle window (slots): keeps the per-slot refill within u64 arithmetic.
pub const MAX_WINDOW_SLOTS: u64 = u32::MAX as u64;
/// Basis points in 100 %.
pub const BPS: u64 = 10_000;

/// The withdrawal throttle's limits at `initialize_authority` (base units of a 6-decimal
/// mint such as USDT): 10 % of TVL per window, a window of ~24 h of 400 ms slots, a floor of
/// 100,000 USDT (also the allowance of exempt withdrawals per window) and withdrawals up to
/// 1,000 USDT exempt.
pub mod default_limits {
    pub const MAX_OUTFLOW_BPS: u64 = 1_000;
    pub const WINDOW_SLOTS: u64 = 216_000;
    pub const MIN_BUDGET: u64 = 100_000_000_000;
    pub const EXEMPT_AMOUNT: u64 = 1_000_000_000;
}

/// `PendingChange.kind`: what a queued loosening change does when it executes.
pub mod change_kind {
    /// Adds `target` to the authorized programs.
    pub const AUTHORIZE_PROGRAM: u8 = 0;
    /// Makes `target` the admin (applied by its own `accept_admin`).
    pub const ADMIN_TRANSFER: u8 = 1;
    /// Clears the pause flags `values[1]` (`values[0]`: the flags `set_paused` asked for).
    pub const LIFT_PAUSE: u8 = 2;
    /// Sets the timelock delay to `values[0]` seconds.
    pub const SET_DELAY: u8 = 3;
    /// Sets the withdrawal limits to `values` (max_outflow_bps, window_slots, min_budget,
    /// exempt_amount).
    pub const RAISE_WITHDRAW_LIMITS: u8 = 4;
}

/// A loosening change waiting out the timelock; `change_id` 0 is a free slot.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PendingChange {
    pub change_id: u64,
    /// The unix time from which anyone may execute it.
    pub eta: i64,
    pub kind: u8,
    pub reserved: [u8; 7],
    pub target: Pubkey,
    pub values: [u64; 4],
}

const _: () = assert!(core::mem::size_of::<PendingChange>() == 88);

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
    /// Seconds a loosening change waits between queued and executable.
    pub timelock_delay: i64,
    /// The id of the last queued change (ids start at 1).
    pub next_change_id: u64,
    pub pending_changes: [PendingChange; MAX_QUEUED_CHANGES],
    /// Withdrawal throttle limits: the share of TVL (basis points) that may leave per window,
    pub max_outflow_bps: u64,
    /// the window (slots) over which the budget refills linearly,
    pub window_slots: u64,
    /// the budget's floor (so a small TVL is not frozen; also the exempt allowance per window),
    pub min_budget: u64,
    /// and the largest withdrawal that is exempt (drawn from the exempt allowance first).
    pub exempt_amount: u64,
    /// The sum of the vaults' total balances (see `crate::throttle`).
    pub tvl: u64,
    /// What may leave now (the token bucket's level).
    pub outflow_budget: u64,
    /// What exempt withdrawals may still take in the current window.
    pub exempt_budget: u64,
    /// The slot both budgets were last refilled at.
    pub last_refill_slot: u64,
}

const _: () = assert!(core::mem::size_of::<VaultAuthority>() == 1928);

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

// SAFETY: repr(C) of byte arrays, u8, u64, i64 and `PendingChange` (the same, 88 bytes,
// its padding explicit): every bit pattern is valid, no implicit padding (`reserved` is
// explicit), alignment 8, discriminator first.
unsafe impl ZeroCopy for VaultAuthority {
    const DISCRIMINATOR: [u8; 8] = anchor::account("VaultAuthority");
}

impl ZeroCopyAccount for VaultAuthority {
    const INVALID: VaultError = VaultError::InvalidAuthority;
}
