//! The transaction's instructions as a program sees them: the invocation stack height
//! (`sol_get_stack_height`) and the Instructions sysvar account.
use crate::account::AccountView;
use crate::error::ProgramError;
use crate::pubkey::{keys_eq, Pubkey};
use crate::syscalls;

/// `Sysvar1nstructions1111111111111111111111111`.
pub const INSTRUCTIONS_SYSVAR_ID: Pubkey = [
    6, 167, 213, 23, 24, 123, 209, 102, 53, 218, 212, 4, 85, 253, 194, 192, 193, 36, 198, 143, 33, 86, 117, 165, 219,
    186, 203, 95, 8, 0, 0, 0,
];

/// The stack height of a top-level instruction (a CPI runs at 2 and deeper).
pub const TRANSACTION_LEVEL_STACK_HEIGHT: u64 = 1;

/// The current invocation's stack height.
#[inline(always)]
pub fn stack_height() -> u64 {
    // SAFETY: no arguments; the syscall only returns a value.
    unsafe { syscalls::sol_get_stack_height() }
}

/// A read-only view of the Instructions sysvar: `u16` count, `u16` offset per
/// instruction, then each instruction as `u16` account count, per account a flags byte
/// and its key, the program id, `u16` data length and the data; the current
/// instruction's index is the last `u16`.
pub struct Instructions<'a> {
    data: &'a [u8],
}

#[inline(always)]
fn u16_at(data: &[u8], offset: usize) -> Option<usize> {
    let bytes = data.get(offset..offset + 2)?;
    Some(u16::from_le_bytes([bytes[0], bytes[1]]) as usize)
}

impl<'a> Instructions<'a> {
    /// The sysvar, recognised by its address.
    #[inline(always)]
    pub fn new(account: &'a AccountView) -> Result<Self, ProgramError> {
        if !keys_eq(account.key(), &INSTRUCTIONS_SYSVAR_ID) {
            return Err(ProgramError::UnsupportedSysvar);
        }
        Ok(Self { data: account.try_borrow_data()? })
    }

    /// How many top-level instructions the transaction has.
    #[inline(always)]
    pub fn len(&self) -> usize {
        u16_at(self.data, 0).unwrap_or(0)
    }

    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The program id and data of top-level instruction `index`.
    pub fn get(&self, index: usize) -> Option<(&'a Pubkey, &'a [u8])> {
        let data = self.data;
        let start = u16_at(data, 2 + 2 * index)?;
        let accounts = u16_at(data, start)?;
        let program_at = start + 2 + accounts * 33;
        let program = <&Pubkey>::try_from(data.get(program_at..program_at + 32)?).ok()?;
        let len = u16_at(data, program_at + 32)?;
        let body = data.get(program_at + 34..program_at + 34 + len)?;
        Some((program, body))
    }
}
