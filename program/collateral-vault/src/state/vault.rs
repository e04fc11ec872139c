//! `CollateralVault`: PDA `[b"vault", owner]`. The layout lives in the interface crate
//! (`program/vault-interface/src/state.rs`), shared with the programs that read vaults.
pub use collateral_vault_interface::state::{CollateralVault, ProgramLock, MAX_LOCK_SLOTS, VAULT_SEED};

use crate::error::VaultError;
use crate::state::ZeroCopyAccount;

impl ZeroCopyAccount for CollateralVault {
    const INVALID: VaultError = VaultError::InvalidVault;
}

/// The vault's operations with this program's errors.
pub trait VaultOps {
    /// `program`'s slot, or a free one (`LockSlotsFull` when four other programs hold one).
    fn lock_slot_or_full(&mut self, program: &Pubkey) -> Result<&mut ProgramLock, VaultError>;
    /// Takes `amount` from `program`'s own lock (`InsufficientLockedBalance` when it holds
    /// less); returns what it holds afterwards.
    fn take_from_lock(&mut self, program: &Pubkey, amount: u64) -> Result<u64, VaultError>;
    /// The next event's sequence number.
    fn next_seq(&mut self) -> Result<u64, VaultError>;
}

use sbf_runtime::Pubkey;

impl VaultOps for CollateralVault {
    #[inline(always)]
    fn lock_slot_or_full(&mut self, program: &Pubkey) -> Result<&mut ProgramLock, VaultError> {
        self.lock_slot_for(program).ok_or(VaultError::LockSlotsFull)
    }

    #[inline(always)]
    fn take_from_lock(&mut self, program: &Pubkey, amount: u64) -> Result<u64, VaultError> {
        let slot = self.lock_of(program).ok_or(VaultError::InsufficientLockedBalance)?;
        slot.take(amount).ok_or(VaultError::InsufficientLockedBalance)?;
        Ok(slot.amount)
    }

    #[inline(always)]
    fn next_seq(&mut self) -> Result<u64, VaultError> {
        self.next_event().ok_or(VaultError::Overflow)
    }
}
