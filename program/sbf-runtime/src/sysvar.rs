//! Sysvars read through their syscalls (no sysvar account needed).
use crate::error::ProgramError;
use crate::syscalls;

/// The Clock sysvar.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct Clock {
    pub slot: u64,
    pub epoch_start_timestamp: i64,
    pub epoch: u64,
    pub leader_schedule_epoch: u64,
    pub unix_timestamp: i64,
}

impl Clock {
    pub fn get() -> Result<Clock, ProgramError> {
        let mut clock = Clock::default();
        let rc = unsafe { syscalls::sol_get_clock_sysvar(&mut clock as *mut Clock as *mut u8) };
        if rc == 0 {
            Ok(clock)
        } else {
            Err(ProgramError::InvalidAccountData)
        }
    }
}

/// The Rent sysvar (17 bytes of payload; padded by repr(C)).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct Rent {
    pub lamports_per_byte_year: u64,
    pub exemption_threshold: [u8; 8],
    pub burn_percent: u8,
}

/// Bytes of account metadata that rent is charged for on top of the data.
pub const ACCOUNT_STORAGE_OVERHEAD: u64 = 128;

impl Rent {
    pub fn get() -> Result<Rent, ProgramError> {
        let mut rent = Rent::default();
        let rc = unsafe { syscalls::sol_get_rent_sysvar(&mut rent as *mut Rent as *mut u8) };
        if rc == 0 {
            Ok(rent)
        } else {
            Err(ProgramError::InvalidAccountData)
        }
    }

    /// Rent-exempt minimum for `data_len` bytes. The threshold is an f64 (2.0 on every
    /// cluster); SBF has no floats, so only the exact value 2.0 is accepted.
    pub fn minimum_balance(&self, data_len: u64) -> Result<u64, ProgramError> {
        const TWO_F64: [u8; 8] = 2.0f64.to_le_bytes();
        if self.exemption_threshold != TWO_F64 {
            return Err(ProgramError::InvalidAccountData);
        }
        let bytes = data_len
            .checked_add(ACCOUNT_STORAGE_OVERHEAD)
            .ok_or(ProgramError::ArithmeticOverflow)?;
        let per_year = bytes
            .checked_mul(self.lamports_per_byte_year)
            .ok_or(ProgramError::ArithmeticOverflow)?;
        per_year.checked_add(per_year).ok_or(ProgramError::ArithmeticOverflow)
    }
}
