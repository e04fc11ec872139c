//! `settle(pairs: Vec<SettlePair { amount, op_id }>)`: realized PnL, several pairs in one
//! instruction, each moving `amount` from what this program holds locked for the payer to
//! the receiver's vault (another trader's, or the exchange's fee vault) by the vault
//! program's `transfer_collateral`. A pair's op id belongs to the payer's grant; a payer
//! may appear in several pairs (PnL and a fee), with increasing op ids.
//!
//! Accounts: `[operator (signer), config, vault_authority, caller_authority,
//! token_program, vault_program, instructions_sysvar]`, then 5 per pair: `[payer_grant
//! (writable), payer_vault (writable), payer_vault_token (writable), receiver_vault
//! (writable), receiver_vault_token (writable)]`. At most `MAX_SETTLE_PAIRS` pairs, so the
//! transaction's events always fit its log.
use sbf_runtime::{AccountView, ProgramResult};

use crate::checks::{clock, operator, trader_position};
use crate::error::ExchangeError;
use crate::events::action;
use crate::instruction::{settle_pair, SETTLE_PAIR_LEN};
use crate::processor::operator::{record, Outcome};
use crate::state::load_vault;
use crate::vault_cpi::{Transfer, Vault};

const FIXED_ACCOUNTS: usize = 7;
const ACCOUNTS_PER_PAIR: usize = 5;

pub fn process(accounts: &[AccountView], pairs: &[u8]) -> ProgramResult {
    let count = pairs.len() / SETTLE_PAIR_LEN;
    let [operator_key, config, vault_authority, caller, token_program, vault_program, instructions, rest @ ..] = accounts
    else {
        return Err(ExchangeError::MissingAccounts.into());
    };
    operator(operator_key, config, instructions)?;
    if count == 0 || rest.len() != count * ACCOUNTS_PER_PAIR || accounts.len() != FIXED_ACCOUNTS + rest.len() {
        return Err(ExchangeError::InvalidSettleBatch.into());
    }
    let cpi = Vault::new(vault_authority, caller, vault_program)?;
    let clock = clock()?;
    for (index, pair) in rest.chunks_exact(ACCOUNTS_PER_PAIR).enumerate() {
        let [grant, payer, payer_token, receiver, receiver_token] = pair else {
            return Err(ExchangeError::InvalidSettleBatch.into());
        };
        let (amount, op_id) = settle_pair(pairs, index);
        let mut position = trader_position(grant, payer, op_id)?;
        position.refuse_after_exit_deadline(clock.slot)?;
        let receiver_owner = load_vault(receiver)?.owner;
        cpi.transfer(&Transfer { from: payer, from_token: payer_token, to: receiver, to_token: receiver_token, token_program, amount })?;
        let outcome = Outcome::taken(&position, op_id, action::SETTLE, amount, &receiver_owner)?;
        record(&mut position, &outcome, clock.unix_timestamp)?;
        drop(position);
        // SAFETY: `position` (holding the only reference to this grant's data) was dropped
        // above; the next pair may name the same payer and loads the grant again.
        unsafe { grant.release_borrow() };
    }
    Ok(())
}
