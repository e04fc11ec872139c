//! Instruction decoding: 8-byte Anchor discriminator `sha256("global:<name>")[..8]`, then
//! the Borsh arguments.
use sbf_runtime::anchor::as_u64;
use sbf_runtime::pubkey::load_u64;
use sbf_runtime::Pubkey;

use crate::error::VaultError;

pub use collateral_vault_interface::instruction::*;

/// A decoded instruction.
pub enum VaultInstruction {
    InitializeAuthority { timelock_delay: i64 },
    AddAuthorizedProgram,
    RemoveAuthorizedProgram { program_id: Pubkey },
    SetPaused { flags: u8 },
    TransferAdmin { new_admin: Pubkey },
    AcceptAdmin,
    SetTimelockDelay { delay: i64 },
    SetWithdrawLimits { limits: [u64; 4] },
    ExecuteChange { change_id: u64 },
    CancelChange { change_id: u64 },
    InitializeVault,
    Deposit { amount: u64 },
    Withdraw { amount: u64 },
    LockCollateral { amount: u64 },
    UnlockCollateral { amount: u64 },
    TransferCollateral { amount: u64 },
    ReleaseOrphanedLock { program: Pubkey },
    CloseVault,
}

#[inline(always)]
fn u64_arg(args: &[u8]) -> Result<u64, VaultError> {
    if args.len() == 8 {
        Ok(load_u64(args.as_ptr()))
    } else {
        Err(VaultError::InvalidInstruction)
    }
}

#[inline(always)]
fn limits_arg(args: &[u8]) -> Result<[u64; 4], VaultError> {
    if args.len() == 32 {
        Ok([u64_arg(&args[..8])?, u64_arg(&args[8..16])?, u64_arg(&args[16..24])?, u64_arg(&args[24..])?])
    } else {
        Err(VaultError::InvalidInstruction)
    }
}

#[inline(always)]
fn pubkey_arg(args: &[u8]) -> Result<Pubkey, VaultError> {
    <[u8; 32]>::try_from(args).map_err(|_| VaultError::InvalidInstruction)
}

#[inline(always)]
fn no_args(args: &[u8]) -> Result<(), VaultError> {
    if args.is_empty() {
        Ok(())
    } else {
        Err(VaultError::InvalidInstruction)
    }
}

impl VaultInstruction {
    /// Decodes instruction data; any other length or discriminator is `InvalidInstruction`.
    #[inline(always)]
    pub fn unpack(data: &[u8]) -> Result<Self, VaultError> {
        if data.len() < 8 {
            return Err(VaultError::InvalidInstruction);
        }
        let (tag, args) = data.split_at(8);
        let tag = load_u64(tag.as_ptr());
        const D_DEPOSIT: u64 = as_u64(DEPOSIT);
        const D_WITHDRAW: u64 = as_u64(WITHDRAW);
        const D_LOCK: u64 = as_u64(LOCK_COLLATERAL);
        const D_UNLOCK: u64 = as_u64(UNLOCK_COLLATERAL);
        const D_TRANSFER: u64 = as_u64(TRANSFER_COLLATERAL);
        const D_INIT_VAULT: u64 = as_u64(INITIALIZE_VAULT);
        const D_CLOSE: u64 = as_u64(CLOSE_VAULT);
        const D_INIT_AUTH: u64 = as_u64(INITIALIZE_AUTHORITY);
        const D_ADD: u64 = as_u64(ADD_AUTHORIZED_PROGRAM);
        const D_REMOVE: u64 = as_u64(REMOVE_AUTHORIZED_PROGRAM);
        const D_PAUSE: u64 = as_u64(SET_PAUSED);
        const D_TRANSFER_ADMIN: u64 = as_u64(TRANSFER_ADMIN);
        const D_ACCEPT: u64 = as_u64(ACCEPT_ADMIN);
        const D_RELEASE_ORPHANED: u64 = as_u64(RELEASE_ORPHANED_LOCK);
        const D_SET_DELAY: u64 = as_u64(SET_TIMELOCK_DELAY);
        const D_SET_LIMITS: u64 = as_u64(SET_WITHDRAW_LIMITS);
        const D_EXECUTE: u64 = as_u64(EXECUTE_CHANGE);
        const D_CANCEL: u64 = as_u64(CANCEL_CHANGE);
        Ok(match tag {
            D_DEPOSIT => Self::Deposit { amount: u64_arg(args)? },
            D_WITHDRAW => Self::Withdraw { amount: u64_arg(args)? },
            D_LOCK => Self::LockCollateral { amount: u64_arg(args)? },
            D_UNLOCK => Self::UnlockCollateral { amount: u64_arg(args)? },
            D_TRANSFER => Self::TransferCollateral { amount: u64_arg(args)? },
            D_INIT_VAULT => no_args(args).map(|_| Self::InitializeVault)?,
            D_CLOSE => no_args(args).map(|_| Self::CloseVault)?,
            D_INIT_AUTH => Self::InitializeAuthority { timelock_delay: u64_arg(args)? as i64 },
            D_ADD => no_args(args).map(|_| Self::AddAuthorizedProgram)?,
            D_REMOVE => Self::RemoveAuthorizedProgram { program_id: pubkey_arg(args)? },
            D_PAUSE => match args {
                [flags] => Self::SetPaused { flags: *flags },
                _ => return Err(VaultError::InvalidInstruction),
            },
            D_TRANSFER_ADMIN => Self::TransferAdmin { new_admin: pubkey_arg(args)? },
            D_ACCEPT => no_args(args).map(|_| Self::AcceptAdmin)?,
            D_SET_DELAY => Self::SetTimelockDelay { delay: u64_arg(args)? as i64 },
            D_SET_LIMITS => Self::SetWithdrawLimits { limits: limits_arg(args)? },
            D_EXECUTE => Self::ExecuteChange { change_id: u64_arg(args)? },
            D_CANCEL => Self::CancelChange { change_id: u64_arg(args)? },
            D_RELEASE_ORPHANED => Self::ReleaseOrphanedLock { program: pubkey_arg(args)? },
            _ => return Err(VaultError::InvalidInstruction),
        })
    }
}
