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
        // SAFETY: the syscall writes `size_of::<Clock>()` bytes (its repr(C) layout).
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
        // SAFETY: the syscall writes the 17-byte Rent payload into the repr(C) struct.
        let rc = unsafe { syscalls::sol_get_rent_sysvar(&mut rent as *mut Rent as *mut u8) };
        if rc == 0 {
            Ok(rent)
        } else {
            Err(ProgramError::InvalidAccountData)
        }
    }

    /// The exemption threshold (an f64 in years) when it is a whole number, decoded from
    /// its bits: SBF has no floats. Clusters use 2.0 (classic) or 1.0 (SIMD-0194).
    pub fn threshold_years(&self) -> Result<u64, ProgramError> {
        let bits = u64::from_le_bytes(self.exemption_threshold);
        let exponent = ((bits >> 52) & 0x7ff) as i64 - 1023;
        let mantissa = (bits & ((1u64 << 52) - 1)) | (1u64 << 52);
        if bits >> 63 != 0 || !(0..=20).contains(&exponent) {
            return Err(ProgramError::InvalidAccountData);
        }
        let shift = 52 - exponent as u32;
        if mantissa & ((1u64 << shift) - 1) != 0 {
            return Err(ProgramError::InvalidAccountData); // not a whole number of years
        }
        Ok(mantissa >> shift)
    }

    /// Rent-exempt minimum for `data_len` bytes:
    /// `(data_len + 128) * lamports_per_byte_year * threshold`.
    pub fn minimum_balance(&self, data_len: u64) -> Result<u64, ProgramError> {
        let bytes = data_len
            .checked_add(ACCOUNT_STORAGE_OVERHEAD)
            .ok_or(ProgramError::ArithmeticOverflow)?;
        bytes
            .checked_mul(self.lamports_per_byte_year)
            .and_then(|per_year| per_year.checked_mul(self.threshold_years().ok()?))
            .ok_or(ProgramError::ArithmeticOverflow)
    }
}
