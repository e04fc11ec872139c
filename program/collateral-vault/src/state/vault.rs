//! `CollateralVault`: PDA `[b"vault", owner]`.
use sbf_runtime::anchor;
use sbf_runtime::Pubkey;

use crate::error::VaultError;
use crate::state::ZeroCopyAccount;

pub const VAULT_SEED: &[u8] = b"vault";

/// Exactly the specification's fields, after the Anchor discriminator.
#[repr(C)]
pub struct CollateralVault {
    pub discriminator: [u8; 8],
    pub owner: Pubkey,
    /// The vault PDA's associated token account (USDT).
    pub token_account: Pubkey,
    pub total_balance: u64,
    pub locked_balance: u64,
    pub available_balance: u64,
    pub total_deposited: u64,
    pub total_withdrawn: u64,
    pub created_at: i64,
    pub bump: u8,
}

impl CollateralVault {
    /// Bytes allocated: the struct including its 7 trailing alignment bytes.
    pub const LEN: usize = core::mem::size_of::<CollateralVault>();

    /// `total == locked + available`.
    #[inline(always)]
    pub fn balanced(&self) -> bool {
        self.locked_balance.checked_add(self.available_balance) == Some(self.total_balance)
    }
}

impl ZeroCopyAccount for CollateralVault {
    const DISCRIMINATOR: [u8; 8] = anchor::account("CollateralVault");
    const INVALID: VaultError = VaultError::InvalidVault;
}
