//! `collateral_vault`: one PDA vault per user (`[b"vault", owner]`) holding USDT in the
//! vault PDA's associated token account. Laid out like the SPL Token program:
//!
//! * [`instruction`] — decoding (Anchor discriminator + Borsh args);
//! * [`state`] — zero-copy layouts of `CollateralVault` and `VaultAuthority`;
//! * [`processor`] — one module per instruction;
//! * [`checks`] — the account checks every processor shares;
//! * [`throttle`] — the protocol-wide withdrawal throttle (a token bucket);
//! * [`events`] — Anchor-compatible events (`sol_log_data`);
//! * [`error`] — Anchor-style error codes (6000+).
//!
//! The IDL (`program/idl/collateral_vault.json`) describes all of it; a test checks them
//! against each other.
#![no_std]

pub mod checks;
pub mod error;
pub mod events;
/// Program ids and PDAs fixed at build time (scripts/gen_program_ids.py).
pub mod generated_ids;
pub mod instruction;
pub mod processor;
pub mod state;
pub mod throttle;

sbf_runtime::entrypoint!(processor::process, error::VaultError);
