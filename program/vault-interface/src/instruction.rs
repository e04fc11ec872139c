//! Instruction discriminators: `sha256("global:<name>")[..8]`, then the Borsh arguments.
use sbf_runtime::anchor::instruction;

pub const INITIALIZE_AUTHORITY: [u8; 8] = instruction("initialize_authority");
pub const ADD_AUTHORIZED_PROGRAM: [u8; 8] = instruction("add_authorized_program");
pub const REMOVE_AUTHORIZED_PROGRAM: [u8; 8] = instruction("remove_authorized_program");
pub const SET_PAUSED: [u8; 8] = instruction("set_paused");
pub const TRANSFER_ADMIN: [u8; 8] = instruction("transfer_admin");
pub const ACCEPT_ADMIN: [u8; 8] = instruction("accept_admin");
/// `set_timelock_delay(delay: i64)`: queued (a loosening or tightening change alike).
pub const SET_TIMELOCK_DELAY: [u8; 8] = instruction("set_timelock_delay");
/// `set_withdraw_limits(max_outflow_bps, window_slots, min_budget, exempt_amount: u64)`.
pub const SET_WITHDRAW_LIMITS: [u8; 8] = instruction("set_withdraw_limits");
/// `execute_change(change_id: u64)`: anyone, once the change's delay has passed.
pub const EXECUTE_CHANGE: [u8; 8] = instruction("execute_change");
/// `cancel_change(change_id: u64)`: the admin, any time before it executes.
pub const CANCEL_CHANGE: [u8; 8] = instruction("cancel_change");
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
