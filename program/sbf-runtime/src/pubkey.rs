//! Public keys and program-derived addresses.
use crate::error::ProgramError;
use crate::syscalls;

/// A 32-byte public key.
pub type Pubkey = [u8; 32];

/// Maximum number of seeds (including the bump) and length of one seed.
pub const MAX_SEEDS: usize = 16;
pub const MAX_SEED_LEN: usize = 32;

/// Reads a little-endian u64 at `ptr`: one 8-byte load when `ptr` is 8-aligned (account
/// keys, account data and instruction data in the input region always are), else bytewise.
/// The upstream BPF backend assumes no unaligned access, so `[u8; 8]` reads would
/// otherwise always become eight byte loads.
#[inline(always)]
pub fn load_u64(ptr: *const u8) -> u64 {
    // SAFETY: callers pass a pointer to 8 readable bytes (a slice of at least 8 bytes);
    // the aligned load is used only when the pointer is 8-aligned.
    unsafe {
        if (ptr as usize) & 7 == 0 {
            *(ptr as *const u64)
        } else {
            core::ptr::read_unaligned(ptr as *const u64)
        }
    }
}

/// Compares two keys without calling `memcmp`: four u64 compares when both are aligned
/// (account keys in the input region and the build-time constants always are); otherwise
/// an out-of-line bytewise compare, so call sites stay small.
#[inline(always)]
pub fn keys_eq(a: &Pubkey, b: &Pubkey) -> bool {
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    if ((pa as usize) | (pb as usize)) & 7 == 0 {
        // SAFETY: both are 32-byte keys, 8-aligned (checked): four aligned u64 reads each.
        unsafe {
            let (a, b) = (pa as *const u64, pb as *const u64);
            *a == *b && *a.add(1) == *b.add(1) && *a.add(2) == *b.add(2) && *a.add(3) == *b.add(3)
        }
    } else {
        keys_eq_unaligned(a, b)
    }
}

#[inline(never)]
fn keys_eq_unaligned(a: &Pubkey, b: &Pubkey) -> bool {
    a == b
}

/// A key stored 8-aligned, so [`keys_eq`] compares it as four u64 (build-time constants:
/// `pub const ID: &Pubkey = &ALIGNED_ID.0`).
#[repr(C, align(8))]
pub struct AlignedPubkey(pub Pubkey);

/// `create_program_address(seeds, program_id)`; the bump must be the last seed.
/// Costs one syscall (1,500 CU): store bumps and use this instead of searching.
#[inline]
pub fn create_program_address(seeds: &[&[u8]], program_id: &Pubkey) -> Result<Pubkey, ProgramError> {
    let mut address = [0u8; 32];
    // SAFETY: `seeds` is a slice of (ptr, len) pairs, the layout the syscall reads; the
    // program id is 32 bytes and `address` 32 writable bytes.
    let rc = unsafe {
        syscalls::sol_create_program_address(
            seeds.as_ptr() as *const u8,
            seeds.len() as u64,
            program_id.as_ptr(),
            address.as_mut_ptr(),
        )
    };
    if rc == 0 {
        Ok(address)
    } else {
        Err(ProgramError::InvalidSeeds)
    }
}

/// `find_program_address(seeds, program_id)`: the canonical bump (searching down from 255).
#[inline]
pub fn find_program_address(seeds: &[&[u8]], program_id: &Pubkey) -> Result<(Pubkey, u8), ProgramError> {
    let mut address = [0u8; 32];
    let mut bump = 0u8;
    // SAFETY: as in `create_program_address`, plus one writable byte for the bump.
    let rc = unsafe {
        syscalls::sol_try_find_program_address(
            seeds.as_ptr() as *const u8,
            seeds.len() as u64,
            program_id.as_ptr(),
            address.as_mut_ptr(),
            &mut bump as *mut u8,
        )
    };
    if rc == 0 {
        Ok((address, bump))
    } else {
        Err(ProgramError::InvalidSeeds)
    }
}
