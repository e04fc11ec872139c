//! Events, emitted as Anchor's `emit!` does: one `sol_log_data` part holding
//! `sha256("event:<Name>")[..8]` followed by the Borsh-encoded fields.
use sbf_runtime::anchor::{event, BorshWriter};
use sbf_runtime::log::log_data;
use sbf_runtime::Pubkey;

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
pub const VAULT_CLOSED: [u8; 8] = event("VaultClosed");

/// Builder for one event: `Event::new(DISCRIMINATOR).key(..).u64(..).emit(timestamp)`.
/// Methods take `&mut self`, so the 320-byte buffer is written in place, never copied.
pub struct Event(BorshWriter<320>);

impl Event {
    #[inline(always)]
    pub fn new(discriminator: [u8; 8]) -> Self {
        let mut w = BorshWriter::new();
        w.bytes(&discriminator);
        Self(w)
    }

    #[inline(always)]
    pub fn key(&mut self, key: &Pubkey) -> &mut Self {
        self.0.bytes(key);
        self
    }

    #[inline(always)]
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.u64(v);
        self
    }

    #[inline(always)]
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.u8(v);
        self
    }

    /// Appends the timestamp (every event's last field) and logs the event.
    #[inline(never)]
    pub fn emit(&mut self, timestamp: i64) {
        self.0.i64(timestamp);
        log_data(&[self.0.as_slice()]);
    }
}

/// `Deposited`, `Withdrawn` and `SurplusAbsorbed` share one shape: owner, vault, amount and
/// the balances after the change.
#[inline(never)]
pub fn balance_changed(
    discriminator: [u8; 8],
    vault_key: &Pubkey,
    vault: &crate::state::CollateralVault,
    amount: u64,
    timestamp: i64,
) {
    Event::new(discriminator)
        .key(&vault.owner)
        .key(vault_key)
        .u64(amount)
        .u64(vault.total_balance)
        .u64(vault.available_balance)
        .emit(timestamp);
}
