//! Program errors as the loader encodes them in the entrypoint's return value:
//! builtin errors are `index << 32`, custom errors are their `u32` code.

/// An error a program returns from its entrypoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgramError {
    /// `Custom(code)`: Anchor-style program errors (6000+).
    Custom(u32),
    InvalidArgument,
    InvalidInstructionData,
    InvalidAccountData,
    AccountDataTooSmall,
    InsufficientFunds,
    IncorrectProgramId,
    MissingRequiredSignature,
    AccountAlreadyInitialized,
    UninitializedAccount,
    NotEnoughAccountKeys,
    AccountBorrowFailed,
    MaxSeedLengthExceeded,
    InvalidSeeds,
    ArithmeticOverflow,
    IllegalOwner,
}

/// Result of a processor.
pub type ProgramResult = Result<(), ProgramError>;

const fn builtin(index: u64) -> u64 {
    index << 32
}

impl ProgramError {
    /// The `u64` the entrypoint returns for this error.
    pub const fn to_u64(self) -> u64 {
        match self {
            ProgramError::Custom(0) => builtin(1),
            ProgramError::Custom(code) => code as u64,
            ProgramError::InvalidArgument => builtin(2),
            ProgramError::InvalidInstructionData => builtin(3),
            ProgramError::InvalidAccountData => builtin(4),
            ProgramError::AccountDataTooSmall => builtin(5),
            ProgramError::InsufficientFunds => builtin(6),
            ProgramError::IncorrectProgramId => builtin(7),
            ProgramError::MissingRequiredSignature => builtin(8),
            ProgramError::AccountAlreadyInitialized => builtin(9),
            ProgramError::UninitializedAccount => builtin(10),
            ProgramError::NotEnoughAccountKeys => builtin(11),
            ProgramError::AccountBorrowFailed => builtin(12),
            ProgramError::MaxSeedLengthExceeded => builtin(13),
            ProgramError::InvalidSeeds => builtin(14),
            ProgramError::ArithmeticOverflow => builtin(21),
            ProgramError::IllegalOwner => builtin(24),
        }
    }
}
