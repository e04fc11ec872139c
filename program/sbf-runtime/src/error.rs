//! Program errors as the loader encodes them in the entrypoint's return value: builtin
//! errors are `index << 32`, custom errors are their `u32` code.
//!
//! `ProgramError` wraps the encoded, non-zero `u64`, so `Result<(), ProgramError>` is one
//! register: BPF would otherwise return it through a hidden pointer that costs an argument
//! register (BPF has five) and memory traffic on every call.
#![allow(non_upper_case_globals, non_snake_case)]

use core::num::NonZeroU64;

/// An error a program returns from its entrypoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgramError(NonZeroU64);

/// Result of a processor.
pub type ProgramResult = Result<(), ProgramError>;

const fn builtin(index: u64) -> ProgramError {
    match NonZeroU64::new(index << 32) {
        Some(v) => ProgramError(v),
        None => panic!("builtin error index 0"),
    }
}

impl ProgramError {
    pub const InvalidArgument: ProgramError = builtin(2);
    pub const InvalidInstructionData: ProgramError = builtin(3);
    pub const InvalidAccountData: ProgramError = builtin(4);
    pub const AccountDataTooSmall: ProgramError = builtin(5);
    pub const InsufficientFunds: ProgramError = builtin(6);
    pub const IncorrectProgramId: ProgramError = builtin(7);
    pub const MissingRequiredSignature: ProgramError = builtin(8);
    pub const AccountAlreadyInitialized: ProgramError = builtin(9);
    pub const UninitializedAccount: ProgramError = builtin(10);
    pub const NotEnoughAccountKeys: ProgramError = builtin(11);
    pub const AccountBorrowFailed: ProgramError = builtin(12);
    pub const MaxSeedLengthExceeded: ProgramError = builtin(13);
    pub const InvalidSeeds: ProgramError = builtin(14);
    pub const BorshIoError: ProgramError = builtin(15);
    pub const UnsupportedSysvar: ProgramError = builtin(17);
    pub const IllegalOwner: ProgramError = builtin(18);
    pub const ArithmeticOverflow: ProgramError = builtin(24);

    /// Every builtin error above, for the runtime's self-test (`hello`): the loader must
    /// report each under its own name.
    pub const BUILTINS: [ProgramError; 18] = [
        Self::InvalidArgument,
        Self::InvalidInstructionData,
        Self::InvalidAccountData,
        Self::AccountDataTooSmall,
        Self::InsufficientFunds,
        Self::IncorrectProgramId,
        Self::MissingRequiredSignature,
        Self::AccountAlreadyInitialized,
        Self::UninitializedAccount,
        Self::NotEnoughAccountKeys,
        Self::AccountBorrowFailed,
        Self::MaxSeedLengthExceeded,
        Self::InvalidSeeds,
        Self::BorshIoError,
        Self::UnsupportedSysvar,
        Self::IllegalOwner,
        Self::ArithmeticOverflow,
        builtin(1),
    ];

    /// `Custom(code)`: program-specific errors (Anchor style: 6000+). `Custom(0)` is
    /// encoded as the loader's `Custom(0)` (builtin index 1).
    pub const fn Custom(code: u32) -> ProgramError {
        match NonZeroU64::new(code as u64) {
            Some(v) => ProgramError(v),
            None => builtin(1),
        }
    }

    /// The `u64` the entrypoint returns for this error.
    #[inline(always)]
    pub const fn to_u64(self) -> u64 {
        self.0.get()
    }
}
