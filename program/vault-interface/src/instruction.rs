//! Instruction discriminators: `sha256("global:<name>")[..8]`, then the Borsh arguments.
use sbf_runtime::anchor::instruction;

pub const INITIALIZE_AUTHORITY: [u8; 8] = instruction("initialize_authority");
pub const ADD_AUTHORIZED_PROGRAM: [u8; 8] = instruction("add_authorized_program");
pub const REMOVE_AUTHORIZED_PROGRAM: [u8; 8] = instruction("remove_authorized_program");
pub const SET_PAUSED: [u8; 8] = instruction("set_paused");
pub const TRANSFER_ADMIN: [u8; 8] = instruction("transfer_admin");
pub const ACCEPT_ADMIN: [u8; 8] = instruction("accept_admin");
pub const INITIALIZE_VAULT: [u8; 8] = instruction("initialize_vault");
pub const DEPOSIT: [u8; 8] = instruction("deposit");
pub const WITHDRAW: [u8; 8] = instruction("withdraw");
/// `lock_collateral(amount: u64)`: `[vault (writable), authority, caller_authority (signer)]`.
pub const LOCK_COLLATERAL: [u8; 8] = instruction("lock_collateral");
/// `unlock_collateral(amount: u64)`: as lock, plus an optional `owner (signer)`.
pub const UNLOCK_COLLATERAL: [u8; 8] = instruction("unlock_collateral");
/// `transfer_collateral(amount: u64)`: `[from_vault, to_vault, from_token_account,
/// to_token_account (all writable), authority, caller_authority (signer), token_program]`.
pub const TRANSFER_COLLATERAL: [u8; 8] = instruction("transfer_collateral");
pub const RELEASE_ORPHANED_LOCK: [u8; 8] = instruction("release_orphaned_lock");
pub const CLOSE_VAULT: [u8; 8] = instruction("close_vault");
