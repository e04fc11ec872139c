//! Account layouts. Both accounts are zero-copy `repr(C)` views over the account data,
//! Borsh-compatible for every field an Anchor client decodes (no padding before the last
//! field; trailing alignment bytes are reserved).
pub mod authority;
pub mod vault;

pub use authority::VaultAuthority;
pub use vault::CollateralVault;
