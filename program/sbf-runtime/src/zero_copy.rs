//! Zero-copy program accounts: a `repr(C)` layout that starts with its 8-byte Anchor
//! discriminator, viewed in place in the input region (8-aligned account data).
use crate::account::AccountView;
use crate::pubkey::{load_u64, Pubkey};

/// Why an account could not be viewed as a layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// Not owned by the expected program, not exactly the layout's size, or another
    /// discriminator.
    Invalid,
    /// Needed writable and passed read-only.
    NotWritable,
    /// Already borrowed in a way that excludes this borrow: the same account passed twice.
    Borrowed,
}

/// # Safety
/// Implementors are `repr(C)` structs of plain integers and byte arrays (every bit pattern
/// is a valid value, no padding a Borsh reader would miss), with alignment at most 8, whose
/// first field is the 8-byte discriminator.
pub unsafe trait ZeroCopy: Sized {
    const DISCRIMINATOR: [u8; 8];

    /// Owned by `owner`, exactly this size, this discriminator.
    #[inline(always)]
    fn matches(account: &AccountView, data: &[u8], owner: &Pubkey) -> bool {
        account.is_owned_by(owner)
            && data.len() == core::mem::size_of::<Self>()
            && load_u64(data.as_ptr()) == u64::from_le_bytes(Self::DISCRIMINATOR)
    }

    /// A shared view of `account` as `Self` (see [`matches`](Self::matches)).
    #[inline(always)]
    fn try_load<'a>(account: &'a AccountView, owner: &Pubkey) -> Result<&'a Self, LoadError> {
        let data = account.try_borrow_data().map_err(|_| LoadError::Borrowed)?;
        if !Self::matches(account, data, owner) {
            return Err(LoadError::Invalid);
        }
        // SAFETY: `data` is exactly `size_of::<Self>()` bytes, 8-aligned (input region),
        // every bit pattern is a valid `Self` (the trait's contract), and the shared
        // borrow is tracked, so no `&mut` to these bytes exists or will be handed out.
        Ok(unsafe { &*(data.as_ptr() as *const Self) })
    }

    /// An exclusive view: `account` cannot be borrowed again in this instruction (a
    /// duplicate of it passed as another account is refused with `Borrowed`).
    #[inline(always)]
    fn try_load_mut<'a>(account: &'a AccountView, owner: &Pubkey) -> Result<&'a mut Self, LoadError> {
        if !account.is_writable() {
            return Err(LoadError::NotWritable);
        }
        let data = account.try_borrow_mut_data().map_err(|_| LoadError::Borrowed)?;
        if !Self::matches(account, data, owner) {
            return Err(LoadError::Invalid);
        }
        // SAFETY: as in `try_load`; the exclusive borrow is tracked, so this is the only
        // reference to the account's data in the instruction.
        Ok(unsafe { &mut *(data.as_mut_ptr() as *mut Self) })
    }

    /// A new account's data (just allocated by this program, all zero): writes the
    /// discriminator and hands out the layout, exclusively.
    #[inline(always)]
    fn try_init<'a>(account: &'a AccountView) -> Result<&'a mut Self, LoadError> {
        let data = account.try_borrow_mut_data().map_err(|_| LoadError::Borrowed)?;
        if data.len() != core::mem::size_of::<Self>() {
            return Err(LoadError::Invalid);
        }
        data[..8].copy_from_slice(&Self::DISCRIMINATOR);
        // SAFETY: exactly `size_of::<Self>()` 8-aligned bytes, exclusively borrowed; every
        // bit pattern is a valid `Self`.
        Ok(unsafe { &mut *(data.as_mut_ptr() as *mut Self) })
    }
}
