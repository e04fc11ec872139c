//! Checks the instructions share.
use sbf_runtime::instructions::{stack_height, Instructions, TRANSACTION_LEVEL_STACK_HEIGHT};
use sbf_runtime::pubkey::keys_eq;
use sbf_runtime::sysvar::Clock;
use sbf_runtime::{AccountView, ProgramError, Pubkey};

use crate::error::ExchangeError;
use crate::generated_ids;
use crate::instruction::OPERATOR_INSTRUCTIONS;
use crate::state::{load_vault, ExchangeConfig, Grant};

#[inline(always)]
pub fn signer(account: &AccountView) -> Result<(), ExchangeError> {
    if account.is_signer() {
        Ok(())
    } else {
        Err(ExchangeError::MissingSigner)
    }
}

/// `account` is the one at `expected` (a program, sysvar or PDA fixed at build time).
#[inline(always)]
pub fn expected(account: &AccountView, expected: &Pubkey) -> Result<(), ExchangeError> {
    if keys_eq(account.key(), expected) {
        Ok(())
    } else {
        Err(ExchangeError::InvalidAccount)
    }
}

#[inline(always)]
pub fn clock() -> Result<Clock, ProgramError> {
    Clock::get()
}

/// The operator signed, at the top level of a transaction in which no other operator
/// instruction of this program runs: so one transaction's events are those of one
/// operator instruction, bounded to fit the log (`MAX_SETTLE_PAIRS`).
#[inline(always)]
pub fn operator<'a>(
    operator: &AccountView,
    config: &'a AccountView,
    instructions: &AccountView,
) -> Result<&'a ExchangeConfig, ProgramError> {
    signer(operator).map_err(|_| ExchangeError::NotOperator)?;
    let config = ExchangeConfig::load(config)?;
    if !keys_eq(operator.key(), &config.operator) {
        return Err(ExchangeError::NotOperator.into());
    }
    if stack_height() != TRANSACTION_LEVEL_STACK_HEIGHT {
        return Err(ExchangeError::NotTopLevel.into());
    }
    let sysvar = Instructions::new(instructions).map_err(|_| ExchangeError::InvalidAccount)?;
    let mut operator_instructions = 0usize;
    for index in 0..sysvar.len() {
        let (program, data) = sysvar.get(index).ok_or(ExchangeError::InvalidAccount)?;
        if keys_eq(program, generated_ids::PROGRAM_ID)
            && data.len() >= 8
            && OPERATOR_INSTRUCTIONS.iter().any(|tag| tag[..] == data[..8])
        {
            operator_instructions += 1;
        }
    }
    if operator_instructions != 1 {
        return Err(ExchangeError::OperatorInstructionNotAlone.into());
    }
    Ok(config)
}

/// What the operator may do for one trader: the grant (exclusive) and what this program
/// holds locked in the trader's vault, after checking the grant is the vault owner's and
/// the operation id is new.
pub struct TraderPosition<'a> {
    pub grant: &'a mut Grant,
    pub trader: Pubkey,
    /// What this program holds locked for the trader now.
    pub held: u64,
}

#[inline(always)]
pub fn trader_position<'a>(
    grant: &'a AccountView,
    vault: &AccountView,
    op_id: u64,
) -> Result<TraderPosition<'a>, ExchangeError> {
    let grant = Grant::load_mut(grant)?;
    let state = load_vault(vault)?;
    if !keys_eq(&state.owner, &grant.trader) {
        return Err(ExchangeError::GrantMismatch);
    }
    if op_id <= grant.last_op_id {
        return Err(ExchangeError::OperationReplayed);
    }
    let held = state.locked_by(generated_ids::PROGRAM_ID);
    let trader = grant.trader;
    Ok(TraderPosition { grant, trader, held })
}

impl TraderPosition<'_> {
    /// Settle and liquidate are refused once an exit request's deadline has passed: then
    /// only releases, and the trader's own exit, remain.
    #[inline(always)]
    pub fn refuse_after_exit_deadline(&self, slot: u64) -> Result<(), ExchangeError> {
        if self.grant.exit_requested() && slot >= self.grant.exit_deadline_slot {
            return Err(ExchangeError::ExitDue);
        }
        Ok(())
    }
}
