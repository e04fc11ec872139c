//! Account layouts: zero-copy `repr(C)` views over the account data (see
//! `sbf_runtime::zero_copy`), Borsh-compatible field by field (padding is explicit
//! `reserved` bytes).
pub mod authority;
pub mod vault;

pub use authority::VaultAuthority;
pub use vault::{CollateralVault, VaultOps};

use sbf_runtime::zero_copy::{LoadError, ZeroCopy};
use sbf_runtime::{AccountView, Pubkey};

use crate::error::VaultError;

/// A zero-copy layout with this program's errors.
pub trait ZeroCopyAccount: ZeroCopy {
    /// The error when an account is not one of these.
    const INVALID: VaultError;

    #[inline(always)]
    fn error(e: LoadError) -> VaultError {
        match e {
            LoadError::Invalid => Self::INVALID,
            LoadError::NotWritable => VaultError::AccountNotWritable,
            LoadError::Borrowed => VaultError::DuplicateAccount,
        }
    }

    /// An account this program created: owned by it, exactly this size, this
    /// discriminator. Only this program's initializers write the discriminator, and only at
    /// the type's PDA, so this identifies the PDA without re-deriving it (the VaultAuthority
    /// is also checked by address: `VaultAuthority::load_checked`).
    #[inline(always)]
    fn load<'a>(account: &'a AccountView, program_id: &Pubkey) -> Result<&'a Self, VaultError> {
        Self::try_load(account, program_id).map_err(Self::error)
    }

    /// As [`load`](Self::load), writable and exclusive: a duplicate of this account passed
    /// as another account is refused (`DuplicateAccount`).
    #[inline(always)]
    fn load_mut<'a>(account: &'a AccountView, program_id: &Pubkey) -> Result<&'a mut Self, VaultError> {
        Self::try_load_mut(account, program_id).map_err(Self::error)
    }
}
