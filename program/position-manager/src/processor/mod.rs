//! Dispatch: [`process`] decodes the instruction and runs its processor.
use sbf_runtime::entrypoint::InstructionContext;
use sbf_runtime::pubkey::keys_eq;
use sbf_runtime::ProgramResult;

use crate::error::ExchangeError;
use crate::generated_ids;
use crate::instruction::ExchangeInstruction;

pub mod admin;
pub mod operator;
pub mod settle;
pub mod trader;

pub fn process(ctx: &InstructionContext) -> ProgramResult {
    // Built for one id (its PDAs are constants): anywhere else the program refuses to run.
    if !keys_eq(ctx.program_id, generated_ids::PROGRAM_ID) {
        return Err(ExchangeError::WrongProgramId.into());
    }
    let accounts = ctx.accounts();
    match ExchangeInstruction::unpack(ctx.data)? {
        ExchangeInstruction::Lock { amount, op_id } => operator::lock(accounts, amount, op_id),
        ExchangeInstruction::Release { amount, op_id } => operator::release(accounts, amount, op_id),
        ExchangeInstruction::Settle { pairs } => settle::process(accounts, pairs),
        ExchangeInstruction::Liquidate { amount, op_id } => operator::liquidate(accounts, amount, op_id),
        ExchangeInstruction::Grant { max_locked, expires_at } => trader::grant(accounts, max_locked, expires_at),
        ExchangeInstruction::Revoke => trader::revoke(accounts),
        ExchangeInstruction::RequestExit => trader::request_exit(accounts),
        ExchangeInstruction::Exit => trader::exit(accounts),
        ExchangeInstruction::InitializeExchange { operator, exit_delay_slots, config_delay_slots } => {
            admin::initialize(accounts, &operator, exit_delay_slots, config_delay_slots)
        }
        ExchangeInstruction::ProposeConfigChange { kind, key, value } => admin::propose(accounts, kind, &key, value),
        ExchangeInstruction::ApplyConfigChange { kind } => admin::apply(accounts, kind),
        ExchangeInstruction::CancelConfigChange { kind } => admin::cancel(accounts, kind),
    }
}
