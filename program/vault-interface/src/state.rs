//! `CollateralVault`: PDA `[b"vault", owner]`, 296 bytes.
use sbf_runtime::anchor;
use sbf_runtime::pubkey::keys_eq;
use sbf_runtime::zero_copy::ZeroCopy;
use sbf_runtime::Pubkey;

pub const VAULT_SEED: &[u8] = b"vault";
pub const AUTHORITY_SEED: &[u8] = b"vault_authority";
/// Seed of the PDA an authorized program signs with when it calls lock/unlock/transfer.
pub const CALLER_SEED: &[u8] = b"vault_caller";
/// How many authorized programs can hold collateral locked in one vault at once.
pub const MAX_LOCK_SLOTS: usize = 4;

/// Collateral one authorized program holds locked in a vault. `amount == 0` is a free slot
/// (its `program` is then all zero).
#[repr(C)]
pub struct ProgramLock {
    pub program: Pubkey,
    pub amount: u64,
}

/// The specification's fields first (after the Anchor discriminator), then the appended
/// ones. Every field is Borsh-compatible: `reserved` is the explicit padding after `bump`,
/// so a Borsh decoder reading the IDL stays aligned with the `repr(C)` layout.
#[repr(C)]
pub struct CollateralVault {
    pub discriminator: [u8; 8],
    pub owner: Pubkey,
    /// The vault PDA's associated token account (USDT).
    pub token_account: Pubkey,
    pub total_balance: u64,
    pub locked_balance: u64,
    pub available_balance: u64,
    /// Lifetime statistics: saturating, never a reason to refuse an operation.
    pub total_deposited: u64,
    pub total_withdrawn: u64,
    pub created_at: i64,
    pub bump: u8,
    pub reserved: [u8; 7],
    /// The sequence number of this vault's last event (each event carries its own).
    pub event_seq: u64,
    /// Collateral locked per authorized program; `locked_balance` is their sum.
    pub locks: [ProgramLock; MAX_LOCK_SLOTS],
}

const _: () = assert!(core::mem::size_of::<CollateralVault>() == 296);

// SAFETY: repr(C) of byte arrays and u64/i64 (every bit pattern valid), no implicit
// padding (`reserved` is explicit), alignment 8, discriminator first.
unsafe impl ZeroCopy for CollateralVault {
    const DISCRIMINATOR: [u8; 8] = anchor::account("CollateralVault");
}

impl CollateralVault {
    /// Bytes allocated.
    pub const LEN: usize = core::mem::size_of::<CollateralVault>();

    /// `total == locked + available` and `locked == sum of the per-program locks`.
    #[inline(always)]
    pub fn balanced(&self) -> bool {
        let mut locked = 0u64;
        for lock in self.locks.iter() {
            locked = match locked.checked_add(lock.amount) {
                Some(sum) => sum,
                None => return false,
            };
        }
        locked == self.locked_balance
            && self.locked_balance.checked_add(self.available_balance) == Some(self.total_balance)
    }

    /// What `program` holds locked in this vault.
    #[inline(always)]
    pub fn locked_by(&self, program: &Pubkey) -> u64 {
        self.locks.iter().find(|lock| lock.amount != 0 && keys_eq(&lock.program, program)).map_or(0, |lock| lock.amount)
    }

    /// The slot holding `program`'s locked collateral, if it holds any.
    #[inline(always)]
    pub fn lock_of(&mut self, program: &Pubkey) -> Option<&mut ProgramLock> {
        self.locks.iter_mut().find(|lock| lock.amount != 0 && keys_eq(&lock.program, program))
    }

    /// `program`'s slot, or a free one assigned to it; None when every slot is taken by
    /// other programs.
    #[inline(always)]
    pub fn lock_slot_for(&mut self, program: &Pubkey) -> Option<&mut ProgramLock> {
        let mut free = None;
        for (index, lock) in self.locks.iter().enumerate() {
            if lock.amount == 0 {
                free = free.or(Some(index));
            } else if keys_eq(&lock.program, program) {
                return Some(&mut self.locks[index]);
            }
        }
        let slot = &mut self.locks[free?];
        slot.program = *program;
        Some(slot)
    }

    /// The next event's sequence number (recorded as the vault's last); None on overflow.
    #[inline(always)]
    pub fn next_event(&mut self) -> Option<u64> {
        self.event_seq = self.event_seq.checked_add(1)?;
        Some(self.event_seq)
    }
}

impl ProgramLock {
    /// Takes `amount` out of this lock (None above it); an emptied slot is freed.
    #[inline(always)]
    pub fn take(&mut self, amount: u64) -> Option<()> {
        self.amount = self.amount.checked_sub(amount)?;
        if self.amount == 0 {
            self.program = [0u8; 32];
        }
        Some(())
    }
}
