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

/// A program's custom error enum, declared with [`anchor_errors!`](crate::anchor_errors):
/// each variant's one-line doc comment is its message, as Anchor's `#[msg(..)]`.
pub trait ErrorCode {
    /// The line Anchor logs for custom error `code`
    /// (`AnchorError occurred. Error Code: <Name>. Error Number: <n>. Error Message: <msg>.`),
    /// or `None` when the enum has no such code.
    fn anchor_line(code: u32) -> Option<&'static str>;
}

/// The error table of a program without custom errors (`entrypoint!(process)`).
pub enum NoCustomErrors {}

impl ErrorCode for NoCustomErrors {
    #[inline(always)]
    fn anchor_line(_code: u32) -> Option<&'static str> {
        None
    }
}

/// Whether a variant's doc literal can be an Anchor message: `/// <text>.` (the doc
/// attribute keeps the space after `///`; Anchor's line ends with the message and one `.`).
pub const fn is_message(doc: &str) -> bool {
    let b = doc.as_bytes();
    let n = b.len();
    n >= 3 && b[0] == b' ' && b[1] != b' ' && b[n - 1] == b'.' && b[n - 2] != b'.'
}

/// Declares a program's error enum (custom codes from 6000, as Anchor numbers them) and
/// implements [`ErrorCode`] for it. Every variant is `/// <message>.` (one line) then
/// `Name = code,`; the line Anchor logs for each is assembled at compile time
/// (`concat!`), so logging a failure costs one `sol_log_` and nothing on success.
#[macro_export]
macro_rules! anchor_errors {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( #[doc = $doc:literal] $variant:ident = $code:literal, )*
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( #[doc = $doc] $variant = $code, )*
        }

        impl $crate::error::ErrorCode for $name {
            fn anchor_line(code: u32) -> Option<&'static str> {
                match code {
                    $( $code => Some(concat!(
                        "AnchorError occurred. Error Code: ", stringify!($variant),
                        ". Error Number: ", $code, ". Error Message:", $doc
                    )), )*
                    _ => None,
                }
            }
        }

        $(
            const _: () = assert!(
                $crate::error::is_message($doc) && $code >= 6000,
                concat!(stringify!($variant), ": the doc comment must be one line `/// <message>.` and the code 6000 or more")
            );
        )*
    };
}

/// `ProgramError occurred. ...` as Anchor logs a builtin error: its `Debug` name, its
/// `u64` value and its `Display` message.
macro_rules! builtin_lines {
    ($( $index:literal $name:literal $number:literal $msg:literal, )*) => {
        #[inline(always)]
        fn builtin_line(index: u64) -> Option<&'static str> {
            match index {
                $( $index => Some(concat!(
                    "ProgramError occurred. Error Code: ", $name, ". Error Number: ", $number,
                    ". Error Message: ", $msg, "."
                )), )*
                _ => None,
            }
        }
    };
}

builtin_lines! {
    1 "Custom(0)" 4294967296 "Custom program error: 0x0",
    2 "InvalidArgument" 8589934592 "The arguments provided to a program instruction were invalid",
    3 "InvalidInstructionData" 12884901888 "An instruction's data contents was invalid",
    4 "InvalidAccountData" 17179869184 "An account's data contents was invalid",
    5 "AccountDataTooSmall" 21474836480 "An account's data was too small",
    6 "InsufficientFunds" 25769803776 "An account's balance was too small to complete the instruction",
    7 "IncorrectProgramId" 30064771072 "The account did not have the expected program id",
    8 "MissingRequiredSignature" 34359738368 "A signature was required but not found",
    9 "AccountAlreadyInitialized" 38654705664 "An initialize instruction was sent to an account that has already been initialized",
    10 "UninitializedAccount" 42949672960 "An attempt to operate on an account that hasn't been initialized",
    11 "NotEnoughAccountKeys" 47244640256 "The instruction expected additional account keys",
    12 "AccountBorrowFailed" 51539607552 "Failed to borrow a reference to account data, already borrowed",
    13 "MaxSeedLengthExceeded" 55834574848 "Length of the seed is too long for address generation",
    14 "InvalidSeeds" 60129542144 "Provided seeds do not result in a valid address",
    15 "BorshIoError" 64424509440 "IO Error",
    17 "UnsupportedSysvar" 73014444032 "Unsupported sysvar",
    18 "IllegalOwner" 77309411328 "Provided owner is not allowed",
    24 "ArithmeticOverflow" 103079215104 "Program arithmetic overflowed",
}

/// A line assembled on the stack (the rare errors no table names); no indexing, so no
/// panic path (and none of `core::fmt`) is linked in.
struct Line {
    buf: [u8; 160],
    len: usize,
}

impl Line {
    fn byte(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    #[inline(never)]
    fn text(&mut self, s: &str) -> &mut Self {
        for &b in s.as_bytes() {
            self.byte(b);
        }
        self
    }

    #[inline(never)]
    fn number(&mut self, v: u64, radix: u64) -> &mut Self {
        let mut digits = [0u8; 20];
        let mut n = 0;
        let mut rest = v;
        for slot in digits.iter_mut() {
            let d = (rest % radix) as u8;
            *slot = if d < 10 { b'0' + d } else { b'a' + d - 10 };
            n += 1;
            rest /= radix;
            if rest == 0 {
                break;
            }
        }
        for &b in digits.iter().take(n).rev() {
            self.byte(b);
        }
        self
    }
}

/// Logs the line an Anchor program logs when it fails with `error`: `AnchorError occurred.
/// ...` for the program's own errors, `ProgramError occurred. ...` for builtin ones (the
/// `entrypoint!` calls this through [`fail`] on `Err` only).
#[inline(always)]
pub fn log_failure<E: ErrorCode>(value: u64) {
    let known = if value >> 32 == 0 { E::anchor_line(value as u32) } else { builtin_line(value >> 32) };
    if let Some(line) = known {
        crate::log::log(line);
        return;
    }
    // Not in a table: a `Custom(code)` built by hand, or a builtin index the runtime never returns.
    let mut line = Line { buf: [0u8; 160], len: 0 };
    line.text("ProgramError occurred. Error Code: ");
    if value >> 32 == 0 {
        line.text("Custom(").number(value, 10).text(")");
    } else {
        line.text("Builtin(").number(value >> 32, 10).text(")");
    }
    line.text(". Error Number: ").number(value, 10).text(". Error Message: ");
    if value >> 32 == 0 {
        line.text("Custom program error: 0x").number(value, 16).text(".");
    } else {
        line.text("Builtin program error.");
    }
    crate::log::log_bytes(line.buf.get(..line.len).unwrap_or_default());
}

/// The entrypoint's `Err` path: logs the failure as Anchor does and returns the value the
/// loader reads. Cold and out of line, so the success path's code does not change.
#[cold]
#[inline(never)]
pub fn fail<E: ErrorCode>(error: ProgramError) -> u64 {
    let value = error.to_u64();
    log_failure::<E>(value);
    value
}
