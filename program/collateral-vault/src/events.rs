//! Events, emitted as Anchor's `emit!` does: one `sol_log_data` part holding
//! `sha256("event:<Name>")[..8]` followed by the Borsh-encoded fields.
//!
//! Every event of a vault ends with that vault's sequence number (`seq`, or `from_seq` and
//! `to_seq` for a transfer, an event of both vaults), taken from the vault's `event_seq`;
//! admin events end with the VaultAuthority's. An indexer that sees a vault's numbers jump
//! knows it missed an event (for instance to a truncated log) and repairs from the chain.
use sbf_runtime::anchor::event;
use sbf_runtime::{ProgramError, Pubkey};

use crate::state::{CollateralVault, VaultOps};

pub const AUTHORITY_INITIALIZED: [u8; 8] = event("AuthorityInitialized");
pub const PROGRAM_AUTHORIZED: [u8; 8] = event("ProgramAuthorized");
pub const PROGRAM_DEAUTHORIZED: [u8; 8] = event("ProgramDeauthorized");
pub const PAUSE_FLAGS_SET: [u8; 8] = event("PauseFlagsSet");
pub const ADMIN_TRANSFER_PROPOSED: [u8; 8] = event("AdminTransferProposed");
pub const ADMIN_TRANSFER_ACCEPTED: [u8; 8] = event("AdminTransferAccepted");
pub const VAULT_INITIALIZED: [u8; 8] = event("VaultInitialized");
pub const DEPOSITED: [u8; 8] = event("Deposited");
pub const WITHDRAWN: [u8; 8] = event("Withdrawn");
pub const COLLATERAL_LOCKED: [u8; 8] = event("CollateralLocked");
pub const COLLATERAL_UNLOCKED: [u8; 8] = event("CollateralUnlocked");
pub const COLLATERAL_TRANSFERRED: [u8; 8] = event("CollateralTransferred");
pub const SURPLUS_ABSORBED: [u8; 8] = event("SurplusAbsorbed");
pub const ORPHANED_LOCK_RELEASED: [u8; 8] = event("OrphanedLockReleased");
pub const VAULT_CLOSED: [u8; 8] = event("VaultClosed");
pub const CHANGE_QUEUED: [u8; 8] = event("ChangeQueued");
pub const CHANGE_EXECUTED: [u8; 8] = event("ChangeExecuted");
pub const CHANGE_CANCELLED: [u8; 8] = event("ChangeCancelled");
pub const WITHDRAW_LIMITS_SET: [u8; 8] = event("WithdrawLimitsSet");

/// An event of this program; the largest (CollateralTransferred) is 176 bytes.
pub type Event = sbf_runtime::anchor::Event<192>;

/// `Deposited`, `Withdrawn` and `SurplusAbsorbed` share one shape: owner, vault, amount and
/// the balances after the change.
#[inline(never)]
pub fn balance_changed(
    discriminator: [u8; 8],
    vault_key: &Pubkey,
    vault: &mut CollateralVault,
    amount: u64,
    timestamp: i64,
) -> Result<(), ProgramError> {
    let seq = vault.next_seq()?;
    Event::new(discriminator)
        .key(&vault.owner)
        .key(vault_key)
        .u64(amount)
        .u64(vault.total_balance)
        .u64(vault.available_balance)
        .i64(timestamp).u64(seq).emit()
}

/// `CollateralLocked`, `CollateralUnlocked` and `OrphanedLockReleased`: owner, vault, the
/// program whose lock changed, amount, the balances after and that program's lock after.
pub struct LockChange<'a> {
    pub discriminator: [u8; 8],
    pub vault_key: &'a Pubkey,
    pub program: &'a Pubkey,
    pub amount: u64,
    pub program_locked: u64,
}

impl LockChange<'_> {
    #[inline(never)]
    pub fn emit(&self, vault: &mut CollateralVault, timestamp: i64) -> Result<(), ProgramError> {
        let seq = vault.next_seq()?;
        Event::new(self.discriminator)
            .key(&vault.owner)
            .key(self.vault_key)
            .key(self.program)
            .u64(self.amount)
            .u64(vault.locked_balance)
            .u64(vault.available_balance)
            .u64(self.program_locked)
            .i64(timestamp).u64(seq).emit()
    }
}
