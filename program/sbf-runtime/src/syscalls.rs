//! Raw syscall declarations. Each name is hashed (murmur3) by the loader; the link tool
//! emits an `R_BPF_64_32` dynamic relocation for every call site.
#![allow(missing_docs)]

extern "C" {
    pub fn abort() -> !;
    pub fn sol_panic_(file: *const u8, len: u64, line: u64, column: u64) -> !;
    pub fn sol_log_(message: *const u8, len: u64);
    pub fn sol_log_64_(a: u64, b: u64, c: u64, d: u64, e: u64);
    pub fn sol_log_pubkey(pubkey: *const u8);
    pub fn sol_log_compute_units_();
    pub fn sol_log_data(data: *const u8, len: u64);
    pub fn sol_create_program_address(
        seeds: *const u8,
        seeds_len: u64,
        program_id: *const u8,
        address: *mut u8,
    ) -> u64;
    pub fn sol_try_find_program_address(
        seeds: *const u8,
        seeds_len: u64,
        program_id: *const u8,
        address: *mut u8,
        bump: *mut u8,
    ) -> u64;
    pub fn sol_invoke_signed_c(
        instruction: *const u8,
        account_infos: *const u8,
        account_infos_len: u64,
        signers_seeds: *const u8,
        signers_seeds_len: u64,
    ) -> u64;
    pub fn sol_get_clock_sysvar(addr: *mut u8) -> u64;
    pub fn sol_get_rent_sysvar(addr: *mut u8) -> u64;
    pub fn sol_get_stack_height() -> u64;
    pub fn sol_memcpy_(dst: *mut u8, src: *const u8, n: u64);
    pub fn sol_memmove_(dst: *mut u8, src: *const u8, n: u64);
    pub fn sol_memset_(s: *mut u8, c: u8, n: u64);
    pub fn sol_memcmp_(s1: *const u8, s2: *const u8, n: u64, result: *mut i32);
    pub fn sol_set_return_data(data: *const u8, len: u64);
}
