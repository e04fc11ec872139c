//! `collateral_vault`'s interface, shared by the vault program and the programs that call
//! it (as SPL programs ship theirs): the `CollateralVault` layout, the seeds and the
//! instruction discriminators. One definition, so a caller can never read a vault with a
//! stale layout.
#![no_std]

pub mod instruction;
pub mod state;
