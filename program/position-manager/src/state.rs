//! Accounts: `ExchangeConfig` `[b"exchange"]` and `Grant` `[b"grant", trader]`, zero-copy
//! `repr(C)` layouts, Borsh-compatible field by field (padding is explicit `reserved`).
//! Vaults are read through `collateral_vault_interface::state::CollateralVault`.
use sbf_runtime::anchor;
use sbf_runtime::pubkey::keys_eq;
use sbf_runtime::zero_copy::ZeroCopy;
use sbf_runtime::{AccountView, Pubkey};

use collateral_vault_interface::state::CollateralVault;

use crate::error::ExchangeError;
use crate::generated_ids;

pub const EXCHANGE_SEED: &[u8] = b"exchange";
pub const GRANT_SEED: &[u8] = b"grant";

/// Kinds of delayed configuration change (`pending` is indexed by kind).
pub mod change {
    /// A new admin (key).
    pub const ADMIN: u8 = 0;
    /// A new operator (key).
    pub const OPERATOR: u8 = 1;
    /// A new exit delay in slots (value).
    pub const EXIT_DELAY: u8 = 2;
    /// A new configuration delay in slots (value).
    pub const CONFIG_DELAY: u8 = 3;
    pub const COUNT: usize = 4;

    /// Kinds whose new value is a key (the others take a u64).
    #[inline(always)]
    pub fn takes_key(kind: u8) -> bool {
        kind == ADMIN || kind == OPERATOR
    }
}

/// One pending configuration change: applied by anyone once the slot reaches `eta_slot`
/// (0 = nothing pending).
#[repr(C)]
pub struct PendingChange {
    pub key: Pubkey,
    pub value: u64,
    pub eta_slot: u64,
}

#[repr(C)]
pub struct ExchangeConfig {
    pub discriminator: [u8; 8],
    pub admin: Pubkey,
    /// The matching engine's settlement signer: the only key that can lock, release,
    /// settle and liquidate.
    pub operator: Pubkey,
    /// The exchange's fee vault and insurance-fund vault (ordinary vaults, by address).
    pub fee_vault: Pubkey,
    pub insurance_vault: Pubkey,
    /// How long the operator has to answer a trader's exit request.
    pub exit_delay_slots: u64,
    /// How long a configuration change waits before it can be applied.
    pub config_delay_slots: u64,
    pub pending: [PendingChange; change::COUNT],
    pub caller_bump: u8,
    pub bump: u8,
    pub reserved: [u8; 6],
}

const _: () = assert!(core::mem::size_of::<ExchangeConfig>() == 352);

/// A trader's grant to this program.
#[repr(C)]
pub struct Grant {
    pub discriminator: [u8; 8],
    pub trader: Pubkey,
    /// The most this program may hold locked for the trader.
    pub max_locked: u64,
    /// Unix seconds after which no new lock is accepted.
    pub expires_at: i64,
    /// The slot the trader requested an exit at (0 = none).
    pub exit_requested_slot: u64,
    /// That exit's deadline, fixed when it was requested: a later change of the exchange's
    /// exit delay does not move it.
    pub exit_deadline_slot: u64,
    /// The last operator operation applied for this trader: the next must be above it.
    pub last_op_id: u64,
    pub revoked: u8,
    pub bump: u8,
    pub reserved: [u8; 6],
}

const _: () = assert!(core::mem::size_of::<Grant>() == 88);

// SAFETY: repr(C) of byte arrays, u8, u64 and i64 (every bit pattern valid; `revoked` is
// read as "non-zero"), no implicit padding, alignment 8, discriminator first.
unsafe impl ZeroCopy for ExchangeConfig {
    const DISCRIMINATOR: [u8; 8] = anchor::account("ExchangeConfig");
}

// SAFETY: as for ExchangeConfig.
unsafe impl ZeroCopy for Grant {
    const DISCRIMINATOR: [u8; 8] = anchor::account("Grant");
}

impl ExchangeConfig {
    pub const LEN: usize = core::mem::size_of::<ExchangeConfig>();

    /// The configuration, recognised by its address (fixed at build time).
    #[inline(always)]
    pub fn load(account: &AccountView) -> Result<&Self, ExchangeError> {
        if !keys_eq(account.key(), generated_ids::EXCHANGE) {
            return Err(ExchangeError::InvalidAccount);
        }
        Self::try_load(account, generated_ids::PROGRAM_ID).map_err(|e| ExchangeError::load(e, ExchangeError::InvalidAccount))
    }

    /// As [`load`](Self::load), writable.
    #[inline(always)]
    pub fn load_mut(account: &AccountView) -> Result<&mut Self, ExchangeError> {
        if !keys_eq(account.key(), generated_ids::EXCHANGE) {
            return Err(ExchangeError::InvalidAccount);
        }
        Self::try_load_mut(account, generated_ids::PROGRAM_ID)
            .map_err(|e| ExchangeError::load(e, ExchangeError::InvalidAccount))
    }

    /// The deadline of an exit requested at `requested_slot` under the current delay.
    #[inline(always)]
    pub fn exit_deadline(&self, requested_slot: u64) -> u64 {
        requested_slot.saturating_add(self.exit_delay_slots)
    }
}

impl Grant {
    pub const LEN: usize = core::mem::size_of::<Grant>();

    /// A grant of this program (it can only exist at `[b"grant", trader]`: `grant` creates
    /// it there, with the canonical bump).
    #[inline(always)]
    pub fn load_mut(account: &AccountView) -> Result<&mut Self, ExchangeError> {
        Self::try_load_mut(account, generated_ids::PROGRAM_ID)
            .map_err(|e| ExchangeError::load(e, ExchangeError::GrantMismatch))
    }

    #[inline(always)]
    pub fn is_revoked(&self) -> bool {
        self.revoked != 0
    }

    #[inline(always)]
    pub fn exit_requested(&self) -> bool {
        self.exit_requested_slot != 0
    }
}

/// A collateral vault (owned by the vault program), read-only.
#[inline(always)]
pub fn load_vault(account: &AccountView) -> Result<&CollateralVault, ExchangeError> {
    CollateralVault::try_load(account, generated_ids::VAULT_PROGRAM_ID)
        .map_err(|e| ExchangeError::load(e, ExchangeError::InvalidVault))
}
