//! `position_manager`: a small, real program that drives a user's vault collateral through
//! the vault program's CPI-only instructions. It signs every CPI with its caller PDA
//! `[b"vault_caller"]`, which the vault authority lists for authorized programs.
//!
//! Instructions (Anchor discriminators, Borsh args):
//! * `open_position(amount: u64, caller_bump: u8)` — locks `amount` in the trader's vault.
//!   Accounts: `[trader (signer), vault (writable), vault_authority, caller_authority,
//!   vault_program]`.
//! * `close_position(amount: u64, caller_bump: u8)` — unlocks; same accounts.
//! * `settle(amount: u64, caller_bump: u8)` — moves realized PnL from the payer's locked
//!   collateral to the receiver's vault. Accounts: `[payer (signer), from_vault (writable),
//!   to_vault (writable), from_token_account (writable), to_token_account (writable),
//!   vault_authority, caller_authority, token_program, vault_program]`.
//!
//! The trader (for settle: the paying side) must sign: this reference program has no
//! matching engine, so user consent stands in for it. The vault program id is pinned at
//! compile time: calling a vault program chosen by the caller would hand our PDA's
//! signature to that program, which could pass it on to the real vault.
#![no_std]

use sbf_runtime::anchor::{as_u64, instruction};
use sbf_runtime::cpi::{invoke_signed, AccountMeta, Instruction};
use sbf_runtime::entrypoint::InstructionContext;
use sbf_runtime::log::log;
use sbf_runtime::pubkey::{keys_eq, load_u64};
use sbf_runtime::{entrypoint, AccountView, ProgramError, ProgramResult, Pubkey};

/// The collateral_vault program id (development key: program/keys/collateral_vault-keypair.json).
pub const COLLATERAL_VAULT_ID: Pubkey = [
    203, 36, 69, 177, 151, 51, 58, 21, 0, 171, 91, 121, 155, 215, 134, 175, 37, 191, 27, 47, 81, 126, 42, 90, 79, 184,
    163, 239, 74, 114, 97, 239,
];
pub const CALLER_SEED: &[u8] = b"vault_caller";

const OPEN_POSITION: u64 = as_u64(instruction("open_position"));
const CLOSE_POSITION: u64 = as_u64(instruction("close_position"));
const SETTLE: u64 = as_u64(instruction("settle"));
const LOCK_COLLATERAL: [u8; 8] = instruction("lock_collateral");
const UNLOCK_COLLATERAL: [u8; 8] = instruction("unlock_collateral");
const TRANSFER_COLLATERAL: [u8; 8] = instruction("transfer_collateral");

/// Errors (Anchor style, 6000+).
#[repr(u32)]
enum PositionError {
    InvalidInstruction = 6000,
    MissingAccounts = 6001,
    MissingSigner = 6002,
    NotVaultOwner = 6003,
    WrongVaultProgram = 6004,
}

impl From<PositionError> for ProgramError {
    fn from(e: PositionError) -> Self {
        ProgramError::Custom(e as u32)
    }
}

entrypoint!(process);

fn process(ctx: &InstructionContext) -> ProgramResult {
    let data = ctx.data;
    if data.len() != 17 {
        return Err(PositionError::InvalidInstruction.into());
    }
    let tag = load_u64(data.as_ptr());
    let amount = load_u64(unsafe { data.as_ptr().add(8) });
    let bump = data[16];
    match tag {
        OPEN_POSITION => lock_or_unlock(ctx.accounts(), LOCK_COLLATERAL, amount, bump),
        CLOSE_POSITION => lock_or_unlock(ctx.accounts(), UNLOCK_COLLATERAL, amount, bump),
        SETTLE => settle(ctx.accounts(), amount, bump),
        _ => Err(PositionError::InvalidInstruction.into()),
    }
}

/// `signer` signed and owns `vault` (a collateral_vault account: owner at offset 8).
fn consenting_owner(signer: &AccountView, vault: &AccountView) -> Result<(), PositionError> {
    if !signer.is_signer() {
        return Err(PositionError::MissingSigner);
    }
    let data = vault.data();
    if !vault.is_owned_by(&COLLATERAL_VAULT_ID) || data.len() < 40 {
        return Err(PositionError::NotVaultOwner);
    }
    let owner = unsafe { &*(data.as_ptr().add(8) as *const Pubkey) };
    if !keys_eq(owner, signer.key()) {
        return Err(PositionError::NotVaultOwner);
    }
    Ok(())
}

fn vault_program(account: &AccountView) -> Result<(), PositionError> {
    if keys_eq(account.key(), &COLLATERAL_VAULT_ID) {
        Ok(())
    } else {
        Err(PositionError::WrongVaultProgram)
    }
}

fn cpi_data(discriminator: [u8; 8], amount: u64) -> [u8; 16] {
    let mut data = [0u8; 16];
    data[..8].copy_from_slice(&discriminator);
    data[8..].copy_from_slice(&amount.to_le_bytes());
    data
}

fn lock_or_unlock(accounts: &[AccountView], discriminator: [u8; 8], amount: u64, bump: u8) -> ProgramResult {
    let [trader, vault, authority, caller, program, ..] = accounts else {
        return Err(PositionError::MissingAccounts.into());
    };
    consenting_owner(trader, vault)?;
    vault_program(program)?;
    let data = cpi_data(discriminator, amount);
    let metas = [
        AccountMeta::writable(vault, false),
        AccountMeta::readonly(authority, false),
        AccountMeta::readonly(caller, true),
    ];
    let bump_seed = [bump];
    invoke_signed(
        &Instruction::new(&COLLATERAL_VAULT_ID, &metas, &data),
        &[vault, authority, caller, program],
        &[&[CALLER_SEED, &bump_seed]],
    )?;
    log(if discriminator == LOCK_COLLATERAL { "position opened" } else { "position closed" });
    Ok(())
}

fn settle(accounts: &[AccountView], amount: u64, bump: u8) -> ProgramResult {
    let [payer, from_vault, to_vault, from_token, to_token, authority, caller, token, program, ..] = accounts else {
        return Err(PositionError::MissingAccounts.into());
    };
    consenting_owner(payer, from_vault)?;
    vault_program(program)?;
    let data = cpi_data(TRANSFER_COLLATERAL, amount);
    let metas = [
        AccountMeta::writable(from_vault, false),
        AccountMeta::writable(to_vault, false),
        AccountMeta::writable(from_token, false),
        AccountMeta::writable(to_token, false),
        AccountMeta::readonly(authority, false),
        AccountMeta::readonly(caller, true),
        AccountMeta::readonly(token, false),
    ];
    let bump_seed = [bump];
    invoke_signed(
        &Instruction::new(&COLLATERAL_VAULT_ID, &metas, &data),
        &[from_vault, to_vault, from_token, to_token, authority, caller, token, program],
        &[&[CALLER_SEED, &bump_seed]],
    )?;
    log("position settled");
    Ok(())
}
