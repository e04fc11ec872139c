//! Instruction decoding: 8-byte Anchor discriminator `sha256("global:<name>")[..8]`, then
//! the Borsh arguments. Any other length or discriminator is `InvalidInstruction`.
use sbf_runtime::anchor::{as_u64, instruction};
use sbf_runtime::pubkey::load_u64;
use sbf_runtime::Pubkey;

use crate::error::ExchangeError;

pub const INITIALIZE_EXCHANGE: [u8; 8] = instruction("initialize_exchange");
pub const PROPOSE_CONFIG_CHANGE: [u8; 8] = instruction("propose_config_change");
pub const APPLY_CONFIG_CHANGE: [u8; 8] = instruction("apply_config_change");
pub const CANCEL_CONFIG_CHANGE: [u8; 8] = instruction("cancel_config_change");
pub const GRANT: [u8; 8] = instruction("grant");
pub const REVOKE: [u8; 8] = instruction("revoke");
pub const REQUEST_EXIT: [u8; 8] = instruction("request_exit");
pub const EXIT: [u8; 8] = instruction("exit");
pub const LOCK: [u8; 8] = instruction("lock");
pub const RELEASE: [u8; 8] = instruction("release");
pub const SETTLE: [u8; 8] = instruction("settle");
pub const LIQUIDATE: [u8; 8] = instruction("liquidate");

/// The operator's instructions: each must be top level and the only one of them in its
/// transaction (so a transaction's events stay within the log limit).
pub const OPERATOR_INSTRUCTIONS: [[u8; 8]; 4] = [LOCK, RELEASE, SETTLE, LIQUIDATE];

/// Most pairs in one `settle`: every pair's events fit the transaction's 10,000-byte log
/// even in the worst case (each vault absorbing a surplus): see
/// tests/program/test_settle_batch.py and docs/exchange-operations.md.
pub const MAX_SETTLE_PAIRS: usize = 6;
/// Bytes of one `SettlePair { amount: u64, op_id: u64 }`.
pub const SETTLE_PAIR_LEN: usize = 16;

/// A decoded instruction. `settle` keeps its pairs as the raw Borsh bytes (read in place).
pub enum ExchangeInstruction<'a> {
    InitializeExchange { operator: Pubkey, exit_delay_slots: u64, config_delay_slots: u64 },
    ProposeConfigChange { kind: u8, key: Pubkey, value: u64 },
    ApplyConfigChange { kind: u8 },
    CancelConfigChange { kind: u8 },
    Grant { max_locked: u64, expires_at: i64 },
    Revoke,
    RequestExit,
    Exit,
    Lock { amount: u64, op_id: u64 },
    Release { amount: u64, op_id: u64 },
    Settle { pairs: &'a [u8] },
    Liquidate { amount: u64, op_id: u64 },
}

#[inline(always)]
fn u64_at(args: &[u8], index: usize) -> u64 {
    load_u64(args[index * 8..index * 8 + 8].as_ptr())
}

#[inline(always)]
fn exactly(args: &[u8], len: usize) -> Result<(), ExchangeError> {
    if args.len() == len {
        Ok(())
    } else {
        Err(ExchangeError::InvalidInstruction)
    }
}

#[inline(always)]
fn key_at(args: &[u8], offset: usize) -> Pubkey {
    let mut key = [0u8; 32];
    key.copy_from_slice(&args[offset..offset + 32]);
    key
}

impl<'a> ExchangeInstruction<'a> {
    #[inline(always)]
    pub fn unpack(data: &'a [u8]) -> Result<Self, ExchangeError> {
        if data.len() < 8 {
            return Err(ExchangeError::InvalidInstruction);
        }
        let (tag, args) = data.split_at(8);
        const D_LOCK: u64 = as_u64(LOCK);
        const D_RELEASE: u64 = as_u64(RELEASE);
        const D_SETTLE: u64 = as_u64(SETTLE);
        const D_LIQUIDATE: u64 = as_u64(LIQUIDATE);
        const D_GRANT: u64 = as_u64(GRANT);
        const D_REVOKE: u64 = as_u64(REVOKE);
        const D_REQUEST_EXIT: u64 = as_u64(REQUEST_EXIT);
        const D_EXIT: u64 = as_u64(EXIT);
        const D_INIT: u64 = as_u64(INITIALIZE_EXCHANGE);
        const D_PROPOSE: u64 = as_u64(PROPOSE_CONFIG_CHANGE);
        const D_APPLY: u64 = as_u64(APPLY_CONFIG_CHANGE);
        const D_CANCEL: u64 = as_u64(CANCEL_CONFIG_CHANGE);
        Ok(match load_u64(tag.as_ptr()) {
            D_LOCK | D_RELEASE | D_LIQUIDATE => {
                exactly(args, 16)?;
                let (amount, op_id) = (u64_at(args, 0), u64_at(args, 1));
                match load_u64(tag.as_ptr()) {
                    D_LOCK => Self::Lock { amount, op_id },
                    D_RELEASE => Self::Release { amount, op_id },
                    _ => Self::Liquidate { amount, op_id },
                }
            }
            D_SETTLE => {
                // Borsh Vec<SettlePair>: u32 count, then the pairs.
                if args.len() < 4 {
                    return Err(ExchangeError::InvalidInstruction);
                }
                let count = u32::from_le_bytes([args[0], args[1], args[2], args[3]]) as usize;
                let pairs = &args[4..];
                if count > MAX_SETTLE_PAIRS || pairs.len() != count * SETTLE_PAIR_LEN {
                    return Err(ExchangeError::InvalidInstruction);
                }
                Self::Settle { pairs }
            }
            D_GRANT => {
                exactly(args, 16)?;
                Self::Grant { max_locked: u64_at(args, 0), expires_at: u64_at(args, 1) as i64 }
            }
            D_REVOKE => exactly(args, 0).map(|_| Self::Revoke)?,
            D_REQUEST_EXIT => exactly(args, 0).map(|_| Self::RequestExit)?,
            D_EXIT => exactly(args, 0).map(|_| Self::Exit)?,
            D_INIT => {
                exactly(args, 48)?;
                Self::InitializeExchange {
                    operator: key_at(args, 0),
                    exit_delay_slots: load_u64(args[32..40].as_ptr()),
                    config_delay_slots: load_u64(args[40..48].as_ptr()),
                }
            }
            D_PROPOSE => {
                exactly(args, 41)?;
                Self::ProposeConfigChange { kind: args[0], key: key_at(args, 1), value: load_u64(args[33..41].as_ptr()) }
            }
            D_APPLY => match args {
                [kind] => Self::ApplyConfigChange { kind: *kind },
                _ => return Err(ExchangeError::InvalidInstruction),
            },
            D_CANCEL => match args {
                [kind] => Self::CancelConfigChange { kind: *kind },
                _ => return Err(ExchangeError::InvalidInstruction),
            },
            _ => return Err(ExchangeError::InvalidInstruction),
        })
    }
}

/// The `(amount, op_id)` of settle pair `index` (the caller checked the length).
#[inline(always)]
pub fn settle_pair(pairs: &[u8], index: usize) -> (u64, u64) {
    let at = index * SETTLE_PAIR_LEN;
    (load_u64(pairs[at..at + 8].as_ptr()), load_u64(pairs[at + 8..at + 16].as_ptr()))
}
