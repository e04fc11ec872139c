//! Zero-copy views of the accounts in the loader's input region.
//!
//! ## Borrows of account data
//! Data is reached only through [`AccountView::try_borrow_data`] (shared) and
//! [`AccountView::try_borrow_mut_data`] (exclusive), which track borrows in the header's
//! first byte, as pinocchio does: the loader writes `NON_DUP_MARKER` (0xFF) there for every
//! account that is not a duplicate, and a duplicated account's view points at the same
//! header, so both views see one borrow state. A borrow is never released: processors keep
//! their views until they return, so no guard type is needed. The rules:
//!
//! * any number of shared borrows, or exactly one exclusive borrow, per account and
//!   instruction; an exclusive borrow after any other borrow of the same account (through
//!   either view of a duplicated account) is refused with `AccountBorrowFailed`, so one
//!   account passed twice can never yield two `&mut` (the review finding of issue 23);
//! * a CPI writes the accounts it receives writable underneath any borrow (that is its
//!   purpose): callers re-read such accounts after the call and never pass an account they
//!   borrowed exclusively as writable to a CPI.
use crate::error::ProgramError;
use crate::pubkey::Pubkey;

/// Marker in `dup_info` for an account that is not a duplicate; after parsing, the same
/// byte is the borrow state, and this value means "not borrowed".
pub const NON_DUP_MARKER: u8 = u8::MAX;
/// Borrow state: borrowed shared at least once.
const BORROWED_SHARED: u8 = 0xFE;
/// Borrow state: borrowed exclusively.
const BORROWED_MUT: u8 = 0x00;
/// Room the loader leaves after each account's data for growth within one instruction.
pub const MAX_PERMITTED_DATA_INCREASE: usize = 10 * 1024;

/// The serialized header of one (non-duplicate) account, as the BPF loader lays it out
/// in the aligned input format; the account data follows immediately.
#[repr(C)]
pub struct AccountHeader {
    /// `NON_DUP_MARKER` from the loader; the borrow state afterwards (see the module doc).
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
        // SAFETY: `raw` points to a header in the input region (the constructor's
        // contract), which lives for the whole instruction; the fields read through this
        // reference are only written through `raw` by methods that hold no reference.
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
        // SAFETY: the data follows the header in the input region; the result stays
        // inside the account's serialized area.
        unsafe { (self.raw as *mut u8).add(core::mem::size_of::<AccountHeader>()) }
    }

    #[inline(always)]
    fn borrow_state(&self) -> u8 {
        // SAFETY: `raw` points to a live header (see `header`); a byte read.
        unsafe { (*self.raw).dup_info }
    }

    #[inline(always)]
    fn set_borrow_state(&self, state: u8) {
        // SAFETY: as `borrow_state`; the input region is writable and no reference to
        // this byte is held anywhere (headers are read through short-lived references).
        unsafe { (*self.raw).dup_info = state }
    }

    /// The account data, shared. Refused once the data was borrowed exclusively.
    #[inline(always)]
    pub fn try_borrow_data(&self) -> Result<&[u8], ProgramError> {
        if self.borrow_state() == BORROWED_MUT {
            return Err(ProgramError::AccountBorrowFailed);
        }
        self.set_borrow_state(BORROWED_SHARED);
        // SAFETY: the data region holds `data_len` bytes for the whole instruction, and
        // the borrow state guarantees no exclusive borrow exists or will be handed out.
        Ok(unsafe { core::slice::from_raw_parts(self.data_ptr(), self.data_len()) })
    }

    /// The account data, exclusive. Fails unless the account was passed writable
    /// (`InvalidArgument`) and was not borrowed before in this instruction, through this
    /// view or a duplicate of it (`AccountBorrowFailed`).
    ///
    /// The runtime, not this view, enforces that only the owner program may write: an
    /// instruction that writes another program's account fails after it returns.
    #[inline(always)]
    pub fn try_borrow_mut_data(&self) -> Result<&mut [u8], ProgramError> {
        if !self.is_writable() {
            return Err(ProgramError::InvalidArgument);
        }
        if self.borrow_state() != NON_DUP_MARKER {
            return Err(ProgramError::AccountBorrowFailed);
        }
        self.set_borrow_state(BORROWED_MUT);
        // SAFETY: this is the only borrow of this account's data in the instruction (the
        // state was "not borrowed" and is now "exclusive", so every later borrow fails).
        Ok(unsafe { core::slice::from_raw_parts_mut(self.data_ptr(), self.data_len()) })
    }

    /// Ends every borrow of this account's data taken so far in this instruction, so it
    /// can be borrowed again (a loop that loads the same account once per item).
    ///
    /// # Safety
    /// No reference obtained from an earlier borrow of this account (through any view of
    /// it) may be used after this call.
    #[inline(always)]
    pub unsafe fn release_borrow(&self) {
        self.set_borrow_state(NON_DUP_MARKER);
    }

    /// Sets the lamports (the runtime checks the transaction's lamport sum afterwards).
    #[inline(always)]
    pub fn set_lamports(&self, lamports: u64) -> Result<(), ProgramError> {
        if !self.is_writable() {
            return Err(ProgramError::InvalidArgument);
        }
        // SAFETY: a plain field write through the header pointer; no reference to the
        // lamports field is held (reads copy the value out).
        unsafe { (*self.raw).lamports = lamports };
        Ok(())
    }

    /// Shrinks the data to zero bytes and hands the account back to the system program.
    /// Only valid for an account this program owns, within one instruction.
    ///
    /// # Safety
    /// The caller must have borrowed the data exclusively (or not at all) and must not use
    /// any reference to it afterwards: the bytes are zeroed and the length becomes 0.
    pub unsafe fn close_to_system(&self) -> Result<(), ProgramError> {
        if !self.is_writable() {
            return Err(ProgramError::InvalidArgument);
        }
        if self.borrow_state() == BORROWED_SHARED {
            return Err(ProgramError::AccountBorrowFailed);
        }
        let data = self.data_ptr();
        let len = self.data_len();
        // SAFETY: `data` .. `data + len` is this account's data region; by the caller's
        // contract no reference to it is used after this call.
        unsafe {
            crate::syscalls::sol_memset_(data, 0, len as u64);
            (*self.raw).data_len = 0;
            (*self.raw).owner = [0u8; 32];
        }
        Ok(())
    }
}
