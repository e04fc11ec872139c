//! A small, zero-copy runtime for Solana SBF programs, written for this project
//! (pinocchio-style, no crates.io dependencies, no allocator).
//!
//! * [`entrypoint`] — deserializes the loader's aligned input buffer into [`AccountView`]s
//!   that point straight into the input region (no copies).
//! * [`account`] — the account view: key, owner, flags, lamports and data in place.
//! * [`syscalls`] — the raw `extern "C"` syscall declarations.
//! * [`pubkey`] — program-derived addresses via `sol_create_program_address` /
//!   `sol_try_find_program_address`.
//! * [`cpi`] — cross-program invocation through `sol_invoke_signed_c`, with PDA signers.
//! * [`log`] — `sol_log_`, `sol_log_64_`, `sol_log_data` (Anchor `emit!` lines).
//! * [`error`] — the runtime's `ProgramError` encoded as the loader expects.
//! * [`sysvar`] — clock and rent through their syscalls.
//! * [`instructions`] — the stack height and the Instructions sysvar.
//! * [`loader`] — the upgrade authority in a program's ProgramData account.
//! * [`zero_copy`] — program accounts viewed in place, borrow-checked.
//!
//! Build limits (see program/README.md): u64 checked add/sub only, no 128-bit
//! arithmetic, no floats, at most five arguments per non-inlined function.
#![no_std]

pub mod account;
pub mod anchor;
pub mod cpi;
pub mod entrypoint;
pub mod error;
pub mod instructions;
pub mod loader;
pub mod log;
pub mod programs;
pub mod pubkey;
pub mod spl_token;
pub mod syscalls;
pub mod system;
pub mod sysvar;
pub mod zero_copy;

pub use account::AccountView;
pub use error::{ProgramError, ProgramResult};
pub use pubkey::Pubkey;

/// Aborts the program with `sol_panic_`; the loader reports "SBF program panicked".
#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    if let Some(location) = info.location() {
        let file = location.file();
        // SAFETY: the syscall reads `len` bytes of the file name and never returns.
        unsafe {
            syscalls::sol_panic_(
                file.as_ptr(),
                file.len() as u64,
                location.line() as u64,
                location.column() as u64,
            )
        }
    }
    // SAFETY: `abort` takes no arguments and never returns.
    unsafe { syscalls::abort() }
}
