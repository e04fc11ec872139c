//! The CPIs into collateral_vault, signed with this program's caller PDA
//! `[b"vault_caller"]` (bump fixed at build time). The vault program id is a build-time
//! constant: calling a vault program chosen by the caller would hand our PDA's signature to
//! that program, which could pass it on to the real vault.
use sbf_runtime::cpi::{invoke_signed, AccountMeta, Instruction};
use sbf_runtime::{AccountView, ProgramResult};

use collateral_vault_interface::instruction::{LOCK_COLLATERAL, TRANSFER_COLLATERAL, UNLOCK_COLLATERAL};
use collateral_vault_interface::state::CALLER_SEED;

use crate::checks::expected;
use crate::generated_ids;

const CALLER_BUMP: [u8; 1] = [generated_ids::CALLER_BUMP];

/// The accounts every vault CPI takes besides the vaults.
pub struct Vault<'a> {
    pub authority: &'a AccountView,
    pub caller: &'a AccountView,
    pub program: &'a AccountView,
}

/// A transfer of `amount` from what this program holds locked in `from` into `to`'s
/// available balance (both vaults with their token accounts).
pub struct Transfer<'a> {
    pub from: &'a AccountView,
    pub from_token: &'a AccountView,
    pub to: &'a AccountView,
    pub to_token: &'a AccountView,
    pub token_program: &'a AccountView,
    pub amount: u64,
}

#[inline(always)]
fn data(discriminator: [u8; 8], amount: u64) -> [u8; 16] {
    let mut data = [0u8; 16];
    data[..8].copy_from_slice(&discriminator);
    data[8..].copy_from_slice(&amount.to_le_bytes());
    data
}

impl<'a> Vault<'a> {
    /// The vault program, its authority and our caller PDA, checked by address.
    #[inline(always)]
    pub fn new(authority: &'a AccountView, caller: &'a AccountView, program: &'a AccountView) -> Result<Self, crate::error::ExchangeError> {
        expected(program, generated_ids::VAULT_PROGRAM_ID)?;
        expected(authority, generated_ids::VAULT_AUTHORITY)?;
        expected(caller, generated_ids::CALLER)?;
        Ok(Self { authority, caller, program })
    }

    pub fn lock(&self, vault: &AccountView, amount: u64) -> ProgramResult {
        let data = data(LOCK_COLLATERAL, amount);
        let metas = [
            AccountMeta::writable(vault, false),
            AccountMeta::readonly(self.authority, false),
            AccountMeta::readonly(self.caller, true),
        ];
        invoke_signed(
            &Instruction::new(generated_ids::VAULT_PROGRAM_ID, &metas, &data),
            &[vault, self.authority, self.caller, self.program],
            &[&[CALLER_SEED, &CALLER_BUMP]],
        )
    }

    /// Unlocks; `owner`, when given, is the vault's owner co-signing (the trader's exit):
    /// the vault then lets the unlock through even while unlocks are paused.
    pub fn unlock(&self, vault: &AccountView, amount: u64, owner: Option<&AccountView>) -> ProgramResult {
        let data = data(UNLOCK_COLLATERAL, amount);
        let instruction_program = generated_ids::VAULT_PROGRAM_ID;
        match owner {
            None => {
                let metas = [
                    AccountMeta::writable(vault, false),
                    AccountMeta::readonly(self.authority, false),
                    AccountMeta::readonly(self.caller, true),
                ];
                invoke_signed(
                    &Instruction::new(instruction_program, &metas, &data),
                    &[vault, self.authority, self.caller, self.program],
                    &[&[CALLER_SEED, &CALLER_BUMP]],
                )
            }
            Some(owner) => {
                let metas = [
                    AccountMeta::writable(vault, false),
                    AccountMeta::readonly(self.authority, false),
                    AccountMeta::readonly(self.caller, true),
                    AccountMeta::readonly(owner, true),
                ];
                invoke_signed(
                    &Instruction::new(instruction_program, &metas, &data),
                    &[vault, self.authority, self.caller, owner, self.program],
                    &[&[CALLER_SEED, &CALLER_BUMP]],
                )
            }
        }
    }

    pub fn transfer(&self, t: &Transfer<'_>) -> ProgramResult {
        let data = data(TRANSFER_COLLATERAL, t.amount);
        let metas = [
            AccountMeta::writable(t.from, false),
            AccountMeta::writable(t.to, false),
            AccountMeta::writable(t.from_token, false),
            AccountMeta::writable(t.to_token, false),
            AccountMeta::readonly(self.authority, false),
            AccountMeta::readonly(self.caller, true),
            AccountMeta::readonly(t.token_program, false),
        ];
        invoke_signed(
            &Instruction::new(generated_ids::VAULT_PROGRAM_ID, &metas, &data),
            &[t.from, t.to, t.from_token, t.to_token, self.authority, self.caller, t.token_program, self.program],
            &[&[CALLER_SEED, &CALLER_BUMP]],
        )
    }
}
