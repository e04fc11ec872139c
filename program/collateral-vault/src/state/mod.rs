//! Account layouts. Both accounts are zero-copy `repr(C)` views over the account data,
//! Borsh-compatible for every field an Anchor client decodes (no padding before the last
//! field; trailing alignment bytes are reserved).
pub mod authority;
pub mod vault;

pub use authority::VaultAuthority;
pub use vault::CollateralVault;

use sbf_runtime::pubkey::load_u64;
use sbf_runtime::{AccountView, Pubkey};

use crate::error::VaultError;

/// A `repr(C)` account layout that starts with its Anchor discriminator.
pub trait ZeroCopyAccount: Sized {
    const DISCRIMINATOR: [u8; 8];
    /// The error when an account is not one of these.
    const INVALID: VaultError;

    /// An account this program created: owned by it, exactly this size, this
    /// discriminator. Only this program's initializers write the discriminator, and only at
    /// the type's PDA, so this identifies the PDA without re-deriving it.
    #[inline(always)]
    fn load<'a>(account: &'a AccountView, program_id: &Pubkey) -> Result<&'a Self, VaultError> {
        let data = account.data();
        if !account.is_owned_by(program_id)
            || data.len() != core::mem::size_of::<Self>()
            || load_u64(data.as_ptr()) != u64::from_le_bytes(Self::DISCRIMINATOR)
        {
            return Err(Self::INVALID);
        }
        Ok(unsafe { &*(data.as_ptr() as *const Self) })
    }

    /// As [`load`](Self::load), writable.
    #[inline(always)]
    fn load_mut<'a>(account: &'a AccountView, program_id: &Pubkey) -> Result<&'a mut Self, VaultError> {
        Self::load(account, program_id)?;
        let data = account.data_mut().map_err(|_| VaultError::AccountNotWritable)?;
        Ok(unsafe { &mut *(data.as_mut_ptr() as *mut Self) })
    }
}
