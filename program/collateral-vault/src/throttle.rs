//! The protocol-wide withdrawal throttle: a token bucket over the VaultAuthority, as dYdX v4
//! and Phoenix bound outflows.
//!
//! * `tvl` is the sum of the vaults' total balances: deposit adds the amount, withdraw
//!   subtracts it, and a surplus absorbed by a deposit or a withdrawal is added (see
//!   `docs/guard-rails.md` for the one case it does not count).
//! * Capacity = `max(min_budget, tvl * max_outflow_bps / 10_000)`; the budget refills
//!   linearly, `capacity / window_slots` per slot, up to capacity.
//! * A withdrawal of at most `exempt_amount` is taken from the exempt allowance first
//!   (`min_budget` per window, refilled the same way), then from the budget; a larger one
//!   from the budget only. So ordinary withdrawals pass while the budget is spent, and no
//!   more than `capacity + min_budget` leaves per window however it is split.
//! * Over the limit: `WithdrawalThrottled`, after the log line
//!   `withdrawal throttled: available_now=<n>` (n: the largest withdrawal that would pass in
//!   this slot), logged on that failure path only.
use sbf_runtime::log::log;

use crate::error::VaultError;
use crate::state::authority::BPS;
use crate::state::VaultAuthority;

/// `level` after `elapsed` slots of a refill of `capacity` per `window` slots, at most
/// `capacity`. `window` is 1 to `MAX_WINDOW_SLOTS` (u32::MAX), so with `elapsed < window`
/// `(capacity % window) * elapsed` stays below 2^64.
#[inline(always)]
fn refilled(level: u64, capacity: u64, elapsed: u64, window: u64) -> u64 {
    if elapsed >= window {
        return capacity;
    }
    let added = (capacity / window)
        .saturating_mul(elapsed)
        .saturating_add((capacity % window).saturating_mul(elapsed) / window);
    level.saturating_add(added).min(capacity)
}

impl VaultAuthority {
    /// The budget's capacity at the current TVL. `bps <= 10_000`, so neither product can
    /// overflow: `(tvl / BPS) * bps <= tvl` and `(tvl % BPS) * bps < 10^8`.
    #[inline(always)]
    pub fn outflow_capacity(&self) -> u64 {
        let bps = self.max_outflow_bps;
        let share = (self.tvl / BPS).saturating_mul(bps).saturating_add((self.tvl % BPS).saturating_mul(bps) / BPS);
        share.max(self.min_budget)
    }

    /// Refills both budgets up to `slot` (a slot in the past changes nothing).
    #[inline(always)]
    pub fn refill(&mut self, slot: u64) {
        let elapsed = slot.saturating_sub(self.last_refill_slot);
        let window = self.window_slots.max(1);
        self.outflow_budget = refilled(self.outflow_budget, self.outflow_capacity(), elapsed, window);
        self.exempt_budget = refilled(self.exempt_budget, self.min_budget, elapsed, window);
        self.last_refill_slot = self.last_refill_slot.max(slot);
    }

    /// Takes `amount` out of the budgets at `slot`, or refuses (`WithdrawalThrottled`, with
    /// the log line) and changes nothing (the transaction fails).
    #[inline(always)]
    pub fn take_outflow(&mut self, amount: u64, slot: u64) -> Result<(), VaultError> {
        self.refill(slot);
        if amount <= self.exempt_amount && amount <= self.exempt_budget {
            self.exempt_budget -= amount;
            return Ok(());
        }
        if amount <= self.outflow_budget {
            self.outflow_budget -= amount;
            return Ok(());
        }
        Err(self.throttled())
    }

    /// The refusal: logs how much can be withdrawn now.
    #[cold]
    #[inline(never)]
    fn throttled(&self) -> VaultError {
        let available = self.outflow_budget.max(self.exempt_budget.min(self.exempt_amount));
        log_throttled(available);
        VaultError::WithdrawalThrottled
    }

    /// Sets the four limits, after refilling at the old ones up to `slot`.
    #[inline(always)]
    pub fn set_limits(&mut self, limits: &[u64; 4], slot: u64) {
        self.refill(slot);
        [self.max_outflow_bps, self.window_slots, self.min_budget, self.exempt_amount] = *limits;
        // Lower limits apply at once: the budgets are capped at the new capacities.
        self.refill(slot);
    }

    /// The four limits, in `set_withdraw_limits`' order.
    #[inline(always)]
    pub fn limits(&self) -> [u64; 4] {
        [self.max_outflow_bps, self.window_slots, self.min_budget, self.exempt_amount]
    }
}

/// Limits `set_withdraw_limits` accepts: bps at most 100 %, a window of 1 to 2^32-1 slots.
#[inline(always)]
pub fn valid_limits(limits: &[u64; 4]) -> Result<(), VaultError> {
    let [bps, window, _, _] = *limits;
    if bps > BPS || window == 0 || window > crate::state::authority::MAX_WINDOW_SLOTS {
        return Err(VaultError::InvalidWithdrawLimits);
    }
    Ok(())
}

/// Every limit tighter than or equal to the current one: a lower or equal share, floor and
/// exempt amount, a longer or equal window (a slower refill).
#[inline(always)]
pub fn tightens(current: &[u64; 4], new: &[u64; 4]) -> bool {
    new[0] <= current[0] && new[1] >= current[1] && new[2] <= current[2] && new[3] <= current[3]
}

const PREFIX: &[u8] = b"withdrawal throttled: available_now=";

/// `Program log: withdrawal throttled: available_now=<n>` (n in decimal).
#[cold]
#[inline(never)]
fn log_throttled(available: u64) {
    let mut line = [0u8; PREFIX.len() + 20];
    line[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut n = available;
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let len = PREFIX.len() + digits.len() - start;
    line[PREFIX.len()..len].copy_from_slice(&digits[start..]);
    log(core::str::from_utf8(&line[..len]).unwrap_or("withdrawal throttled"));
}
