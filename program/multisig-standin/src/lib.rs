//! `multisig_standin`: a **test-only** stand-in for a multisig as collateral_vault's admin.
//!
//! A Squads vault is a PDA of the Squads program: once its members' threshold approves a
//! transaction, the program executes it by `invoke_signed` with the vault PDA's seeds. What
//! matters to collateral_vault is only that shape: its admin is a PDA with no private key,
//! whose signature arrives through a CPI. This program reproduces the shape and nothing of
//! the approvals: the PDA `[b"multisig", member]` signs for whatever its one `member` sends
//! (a 1-of-1 "multisig"). It is built by `make program` for the tests and never deployed by
//! `make up`.
//!
//! One instruction, data = the collateral_vault instruction to forward, verbatim.
//! Accounts: `[member (signer), multisig_pda, target_program, ...]`; the target program is
//! invoked with `[multisig_pda (signer), ...]` (the remaining accounts with their signer
//! and writable flags as passed), signed with the PDA's seeds.
#![no_std]

use sbf_runtime::cpi::{invoke_signed, AccountMeta, Instruction, MAX_CPI_ACCOUNTS};
use sbf_runtime::entrypoint::InstructionContext;
use sbf_runtime::pubkey::{find_program_address, keys_eq};
use sbf_runtime::{entrypoint, ProgramError, ProgramResult};

entrypoint!(process);

/// The PDA's first seed; the member's key is the second.
pub const SEED: &[u8] = b"multisig";

fn process(ctx: &InstructionContext) -> ProgramResult {
    let [member, multisig, target, rest @ ..] = ctx.accounts() else {
        return Err(ProgramError::NotEnoughAccountKeys);
    };
    if !member.is_signer() {
        return Err(ProgramError::MissingRequiredSignature);
    }
    let (pda, bump) = find_program_address(&[SEED, member.key()], ctx.program_id)?;
    if !keys_eq(&pda, multisig.key()) {
        return Err(ProgramError::InvalidSeeds);
    }
    if !target.executable() {
        return Err(ProgramError::IncorrectProgramId);
    }
    // the PDA, the remaining accounts and the target program's own account
    if rest.len() + 2 > MAX_CPI_ACCOUNTS {
        return Err(ProgramError::NotEnoughAccountKeys);
    }
    let mut metas = [AccountMeta::readonly(multisig, true); MAX_CPI_ACCOUNTS];
    let mut views = [multisig; MAX_CPI_ACCOUNTS];
    for (i, account) in rest.iter().enumerate() {
        metas[i + 1] =
            AccountMeta { pubkey: account.key(), is_writable: account.is_writable(), is_signer: account.is_signer() };
        views[i + 1] = account;
    }
    let count = rest.len() + 1;
    views[count] = target;
    let bump_seed = [bump];
    invoke_signed(
        &Instruction::new(target.key(), &metas[..count], ctx.data),
        &views[..count + 1],
        &[&[SEED, member.key(), &bump_seed]],
    )
}
