//! Program logging.
use crate::syscalls;

/// Writes `Program log: <message>`.
#[inline(always)]
pub fn log(message: &str) {
    // SAFETY: the syscall reads `len` bytes at `ptr`: exactly the string.
    unsafe { syscalls::sol_log_(message.as_ptr(), message.len() as u64) }
}

/// Writes `Program log: <message>` for a message held as bytes (ASCII).
#[inline(always)]
pub fn log_bytes(message: &[u8]) {
    // SAFETY: the syscall reads `len` bytes at `ptr`: exactly the slice.
    unsafe { syscalls::sol_log_(message.as_ptr(), message.len() as u64) }
}

/// Writes `Program log: 0x.., 0x.., ..` (five u64 values).
#[inline(always)]
pub fn log_u64(a: u64, b: u64, c: u64, d: u64, e: u64) {
    // SAFETY: plain values, no memory.
    unsafe { syscalls::sol_log_64_(a, b, c, d, e) }
}

/// Writes `Program log: <base58 key>`.
#[inline(always)]
pub fn log_pubkey(key: &[u8; 32]) {
    // SAFETY: the syscall reads 32 bytes at `key`.
    unsafe { syscalls::sol_log_pubkey(key.as_ptr()) }
}

/// Writes `Program data: <base64 of each part, space separated>`; an Anchor event is one
/// part: the 8-byte discriminator followed by the Borsh fields.
#[inline(always)]
pub fn log_data(parts: &[&[u8]]) {
    // SAFETY: a `&[u8]` is (ptr, len): the same layout as the syscall's `SolBytes` array;
    // every part is a live slice.
    unsafe { syscalls::sol_log_data(parts.as_ptr() as *const u8, parts.len() as u64) }
}

/// Writes the remaining compute units.
#[inline(always)]
pub fn log_compute_units() {
    // SAFETY: no arguments.
    unsafe { syscalls::sol_log_compute_units_() }
}
