//! Public keys and program-derived addresses.
use crate::error::ProgramError;
use crate::syscalls;

/// A 32-byte public key.
pub type Pubkey = [u8; 32];

/// Maximum number of seeds (including the bump) and length of one seed.
pub const MAX_SEEDS: usize = 16;
pub const MAX_SEED_LEN: usize = 32;

/// Compares two keys without calling `memcmp` (four u64 compares).
#[inline(always)]
pub fn keys_eq(a: &Pubkey, b: &Pubkey) -> bool {
    let a = a.as_ptr() as *const [u8; 8];
    let b = b.as_ptr() as *const [u8; 8];
    unsafe {
        u64::from_le_bytes(*a) == u64::from_le_bytes(*b)
            && u64::from_le_bytes(*a.add(1)) == u64::from_le_bytes(*b.add(1))
            && u64::from_le_bytes(*a.add(2)) == u64::from_le_bytes(*b.add(2))
            && u64::from_le_bytes(*a.add(3)) == u64::from_le_bytes(*b.add(3))
    }
}

/// `create_program_address(seeds, program_id)`; the bump must be the last seed.
/// Costs one syscall (1,500 CU): store bumps and use this instead of searching.
#[inline]
pub fn create_program_address(seeds: &[&[u8]], program_id: &Pubkey) -> Result<Pubkey, ProgramError> {
    let mut address = [0u8; 32];
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
