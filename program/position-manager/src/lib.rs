//! `position_manager`: the reference exchange program for an off-chain matching engine.
//! The trader grants once (how much this program may hold locked, until when); then the
//! exchange's operator key alone locks, releases, settles and liquidates inside that grant,
//! by CPI into `collateral_vault` signed with this program's caller PDA `[b"vault_caller"]`.
//! The trader can always leave: request an exit, and if the operator has not released or
//! settled everything within the exit delay, release it himself. Nothing here can
//! withdraw, and tokens only ever move between vaults (the vault program enforces it).
//!
//! Laid out like the SPL Token program:
//!
//! * [`instruction`] — decoding (Anchor discriminator + Borsh args);
//! * [`state`] — `ExchangeConfig` `[b"exchange"]` and `Grant` `[b"grant", trader]`;
//! * [`processor`] — admin, trader and operator instructions;
//! * [`checks`] — the checks operator instructions share (operator, top level, grant);
//! * [`vault_cpi`] — the CPIs into the vault program;
//! * [`events`], [`error`].
//!
//! Design notes: docs/exchange-operations.md. IDL: program/idl/position_manager.json.
#![no_std]

pub mod checks;
pub mod error;
pub mod events;
/// Program ids and PDAs fixed at build time (scripts/gen_program_ids.py).
pub mod generated_ids;
pub mod instruction;
pub mod processor;
pub mod state;
pub mod vault_cpi;

sbf_runtime::entrypoint!(processor::process, error::ExchangeError);
