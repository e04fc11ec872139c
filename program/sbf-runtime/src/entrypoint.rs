//! Input deserialization (the loader's aligned format) and the `entrypoint!` macro.
use crate::account::{AccountHeader, AccountView, MAX_PERMITTED_DATA_INCREASE, NON_DUP_MARKER};
use crate::error::ProgramError;
use crate::pubkey::Pubkey;

/// Most accounts one instruction may pass to a program built on this runtime: a
/// transaction locks at most 64 accounts, so no instruction can pass more.
pub const MAX_ACCOUNTS: usize = 64;

/// What the loader hands the program: the accounts, the instruction data and our id.
pub struct InstructionContext<'a> {
    accounts: [core::mem::MaybeUninit<AccountView>; MAX_ACCOUNTS],
    count: usize,
    pub data: &'a [u8],
    pub program_id: &'a Pubkey,
}

impl<'a> InstructionContext<'a> {
    /// The views of the accounts, in instruction order.
    #[inline(always)]
    pub fn accounts(&self) -> &[AccountView] {
        // SAFETY: `parse` initialized the first `count` entries (`count <= MAX_ACCOUNTS`),
        // and `MaybeUninit<AccountView>` has `AccountView`'s layout.
        unsafe { core::slice::from_raw_parts(self.accounts.as_ptr() as *const AccountView, self.count) }
    }

    /// Parses the aligned input region.
    ///
    /// # Safety
    /// `input` must be the pointer the loader passed to `entrypoint`.
    #[inline(always)]
    pub unsafe fn parse(input: *mut u8) -> Result<InstructionContext<'a>, ProgramError> {
        // SAFETY (whole body): `input` is the loader's input region, laid out as the aligned
        // serialization format describes (account count, per account a header + data +
        // 10 KiB growth room + padding to 8 + rent epoch, or an 8-byte duplicate entry, then
        // the instruction data length, the data and the program id). Every offset below
        // follows that layout, so every read stays inside the region; a duplicate's index
        // always names an earlier account, so `assume_init` reads an initialized entry.
        let mut offset: usize = 0;
        let count = *(input as *const u64) as usize;
        offset += 8;
        if count > MAX_ACCOUNTS {
            return Err(ProgramError::NotEnoughAccountKeys);
        }
        let mut accounts: [core::mem::MaybeUninit<AccountView>; MAX_ACCOUNTS] =
            [const { core::mem::MaybeUninit::uninit() }; MAX_ACCOUNTS];
        let mut i = 0;
        while i < count {
            let header = input.add(offset) as *mut AccountHeader;
            let dup = (*header).dup_info;
            if dup == NON_DUP_MARKER {
                let data_len = (*header).data_len as usize;
                offset += core::mem::size_of::<AccountHeader>() + data_len + MAX_PERMITTED_DATA_INCREASE;
                offset = (offset + 7) & !7; // align to 8
                offset += 8; // rent_epoch
                accounts[i].write(AccountView::new_unchecked(header));
            } else {
                offset += 8;
                let original = accounts[dup as usize].assume_init();
                accounts[i].write(original);
            }
            i += 1;
        }
        let data_len = *(input.add(offset) as *const u64) as usize;
        offset += 8;
        let data = core::slice::from_raw_parts(input.add(offset), data_len);
        offset += data_len;
        let program_id = &*(input.add(offset) as *const Pubkey);
        Ok(InstructionContext { accounts, count, data, program_id })
    }
}

/// Declares the program entrypoint: `entrypoint!(process, ErrorEnum)` where
/// `fn process(ctx: &InstructionContext) -> ProgramResult` and `ErrorEnum` is declared with
/// [`anchor_errors!`](crate::anchor_errors) (`entrypoint!(process)`: builtin errors only).
/// On `Err` the program logs the line Anchor programs log
/// ([`log_failure`](crate::error::log_failure)); the success path is unchanged.
#[macro_export]
macro_rules! entrypoint {
    ($process:path) => {
        $crate::entrypoint!($process, $crate::error::NoCustomErrors);
    };
    ($process:path, $errors:ty) => {
        /// # Safety
        /// Called by the loader with its input region.
        #[no_mangle]
        pub unsafe extern "C" fn entrypoint(input: *mut u8) -> u64 {
            match $crate::entrypoint::InstructionContext::parse(input) {
                Ok(ctx) => match $process(&ctx) {
                    Ok(()) => 0,
                    Err(error) => $crate::error::fail::<$errors>(error),
                },
                Err(error) => $crate::error::fail::<$errors>(error),
            }
        }
    };
}
