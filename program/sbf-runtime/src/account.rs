//! Zero-copy views of the accounts in the loader's input region.
use crate::error::ProgramError;
use crate::pubkey::Pubkey;

/// Marker in `dup_info` for an account that is not a duplicate.
pub const NON_DUP_MARKER: u8 = u8::MAX;
/// Room the loader leaves after each account's data for growth within one instruction.
pub const MAX_PERMITTED_DATA_INCREASE: usize = 10 * 1024;

/// The serialized header of one (non-duplicate) account, as the BPF loader lays it out
/// in the aligned input format; the account data follows immediately.
#[repr(C)]
pub struct AccountHeader {
    pub dup_info: u8,
    pub is_signer: u8,
    pub is_writable: u8,
    pub executable: u8,
    pub original_data_len: u32,
    pub key: Pubkey,
    pub owner: Pubkey,
    pub lamports: u64,
    pub data_len: u64,
}

/// A view of one account: a pointer to its header in the input region. Duplicated
/// accounts in the instruction share the same header, so a view never goes stale.
#[derive(Clone, Copy)]
pub struct AccountView {
    raw: *mut AccountHeader,
}

impl AccountView {
    /// # Safety
    /// `raw` must point to an account header in the program's input region.
    #[inline(always)]
    pub const unsafe fn new_unchecked(raw: *mut AccountHeader) -> Self {
        Self { raw }
    }

    #[inline(always)]
    fn header(&self) -> &AccountHeader {
        unsafe { &*self.raw }
    }

    #[inline(always)]
    pub fn key(&self) -> &Pubkey {
        &self.header().key
    }

    #[inline(always)]
    pub fn owner(&self) -> &Pubkey {
        &self.header().owner
    }

    #[inline(always)]
    pub fn is_signer(&self) -> bool {
        self.header().is_signer != 0
    }

    #[inline(always)]
    pub fn is_writable(&self) -> bool {
        self.header().is_writable != 0
    }

    #[inline(always)]
    pub fn executable(&self) -> bool {
        self.header().executable != 0
    }

    #[inline(always)]
    pub fn lamports(&self) -> u64 {
        self.header().lamports
    }

    #[inline(always)]
    pub fn data_len(&self) -> usize {
        self.header().data_len as usize
    }

    /// True when the same account is behind both views.
    #[inline(always)]
    pub fn same_as(&self, other: &AccountView) -> bool {
        core::ptr::eq(self.raw, other.raw)
    }

    /// Is the account owned by `program`?
    #[inline(always)]
    pub fn is_owned_by(&self, program: &Pubkey) -> bool {
        crate::pubkey::keys_eq(self.owner(), program)
    }

    #[inline(always)]
    pub(crate) fn raw(&self) -> *mut AccountHeader {
        self.raw
    }

    #[inline(always)]
    pub(crate) fn data_ptr(&self) -> *mut u8 {
        unsafe { (self.raw as *mut u8).add(core::mem::size_of::<AccountHeader>()) }
    }

    /// The account data, read-only.
    #[inline(always)]
    pub fn data(&self) -> &[u8] {
        unsafe { core::slice::from_raw_parts(self.data_ptr(), self.data_len()) }
    }

    /// The account data, writable. Fails unless the account was passed writable.
    ///
    /// The runtime, not this view, enforces that only the owner program may write: an
    /// instruction that writes another program's account fails after it returns.
    #[inline(always)]
    pub fn data_mut(&self) -> Result<&mut [u8], ProgramError> {
        if !self.is_writable() {
            return Err(ProgramError::InvalidArgument);
        }
        Ok(unsafe { core::slice::from_raw_parts_mut(self.data_ptr(), self.data_len()) })
    }

    /// Sets the lamports (the runtime checks the transaction's lamport sum afterwards).
    #[inline(always)]
    pub fn set_lamports(&self, lamports: u64) -> Result<(), ProgramError> {
        if !self.is_writable() {
            return Err(ProgramError::InvalidArgument);
        }
        unsafe { (*self.raw).lamports = lamports };
        Ok(())
    }

    /// Shrinks the data to zero bytes and hands the account back to the system program.
    /// Only valid for an account this program owns, within one instruction.
    pub fn close_to_system(&self) -> Result<(), ProgramError> {
        if !self.is_writable() {
            return Err(ProgramError::InvalidArgument);
        }
        unsafe {
            let data = self.data_ptr();
            let len = self.data_len();
            crate::syscalls::sol_memset_(data, 0, len as u64);
            (*self.raw).data_len = 0;
            (*self.raw).owner = [0u8; 32];
        }
        Ok(())
    }
}
