//! `CollateralVault`: PDA `[b"vault", owner]`.
use sbf_runtime::anchor;
use sbf_runtime::pubkey::load_u64;
use sbf_runtime::{AccountView, Pubkey};

use crate::error::VaultError;

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
    pub const DISCRIMINATOR: [u8; 8] = anchor::account("CollateralVault");
    /// Bytes allocated: the struct including its 7 trailing alignment bytes.
    pub const LEN: usize = core::mem::size_of::<CollateralVault>();

    /// A vault this program created: owned by us, right size, right discriminator. Only
    /// `initialize_vault` creates such accounts, and only at `[b"vault", owner]`, so the
    /// owner field then identifies the PDA without re-deriving it.
    #[inline(always)]
    pub fn load<'a>(account: &'a AccountView, program_id: &Pubkey) -> Result<&'a CollateralVault, VaultError> {
        let data = account.data();
        if !account.is_owned_by(program_id) || data.len() != Self::LEN
            || load_u64(data.as_ptr()) != u64::from_le_bytes(Self::DISCRIMINATOR) {
            return Err(VaultError::InvalidVault);
        }
        Ok(unsafe { &*(data.as_ptr() as *const CollateralVault) })
    }

    /// As [`load`](Self::load), writable.
    #[inline(always)]
    pub fn load_mut<'a>(account: &'a AccountView, program_id: &Pubkey) -> Result<&'a mut CollateralVault, VaultError> {
        Self::load(account, program_id)?;
        let data = account.data_mut().map_err(|_| VaultError::AccountNotWritable)?;
        Ok(unsafe { &mut *(data.as_mut_ptr() as *mut CollateralVault) })
    }

    /// `total == locked + available`.
    #[inline(always)]
    pub fn balanced(&self) -> bool {
        self.locked_balance.checked_add(self.available_balance) == Some(self.total_balance)
    }
}
