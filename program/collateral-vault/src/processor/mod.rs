//! One module per instruction; [`process`] dispatches on the decoded instruction.
use sbf_runtime::entrypoint::InstructionContext;
use sbf_runtime::pubkey::keys_eq;
use sbf_runtime::ProgramResult;

use crate::error::VaultError;
use crate::generated_ids;
use crate::instruction::VaultInstruction;

pub mod admin;
pub mod close_vault;
pub mod deposit;
pub mod initialize_authority;
pub mod initialize_vault;
pub mod lock;
pub mod release_orphaned_lock;
pub mod timelock;
pub mod transfer_collateral;
pub mod withdraw;

pub fn process(ctx: &InstructionContext) -> ProgramResult {
    // Built for one id (its PDAs are constants): anywhere else the program refuses to run.
    if !keys_eq(ctx.program_id, generated_ids::PROGRAM_ID) {
        return Err(VaultError::WrongProgramId.into());
    }
    let accounts = ctx.accounts();
    let id = ctx.program_id;
    match VaultInstruction::unpack(ctx.data)? {
        VaultInstruction::Deposit { amount } => deposit::process(id, accounts, amount),
        VaultInstruction::Withdraw { amount } => withdraw::process(id, accounts, amount),
        VaultInstruction::LockCollateral { amount } => lock::lock(id, accounts, amount),
        VaultInstruction::UnlockCollateral { amount } => lock::unlock(id, accounts, amount),
        VaultInstruction::TransferCollateral { amount } => transfer_collateral::process(id, accounts, amount),
        VaultInstruction::ReleaseOrphanedLock { program } => release_orphaned_lock::process(id, accounts, &program),
        VaultInstruction::InitializeVault => initialize_vault::process(id, accounts),
        VaultInstruction::CloseVault => close_vault::process(id, accounts),
        VaultInstruction::InitializeAuthority { timelock_delay } => initialize_authority::process(id, accounts, timelock_delay),
        VaultInstruction::AddAuthorizedProgram => admin::add_authorized_program(id, accounts),
        VaultInstruction::RemoveAuthorizedProgram { program_id } => {
            admin::remove_authorized_program(id, accounts, &program_id)
        }
        VaultInstruction::SetPaused { flags } => admin::set_paused(id, accounts, flags),
        VaultInstruction::TransferAdmin { new_admin } => admin::transfer_admin(id, accounts, &new_admin),
        VaultInstruction::AcceptAdmin => admin::accept_admin(id, accounts),
        VaultInstruction::SetTimelockDelay { delay } => admin::set_timelock_delay(id, accounts, delay),
        VaultInstruction::SetWithdrawLimits { limits } => admin::set_withdraw_limits(id, accounts, &limits),
        VaultInstruction::ExecuteChange { change_id } => timelock::execute_change(id, accounts, change_id),
        VaultInstruction::CancelChange { change_id } => timelock::cancel_change(id, accounts, change_id),
    }
}
