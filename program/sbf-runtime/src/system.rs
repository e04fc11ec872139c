//! System program CPIs. Arguments travel in a struct: BPF passes at most five registers.
use crate::account::AccountView;
use crate::cpi::{invoke_signed, AccountMeta, Instruction, Signer};
use crate::error::ProgramError;
use crate::programs::SYSTEM_PROGRAM_ID;
use crate::pubkey::Pubkey;

fn invoke_system(
    metas: &[AccountMeta],
    data: &[u8],
    accounts: &[&AccountView],
    signers: &[Signer<'_, '_>],
) -> Result<(), ProgramError> {
    invoke_signed(&Instruction::new(&SYSTEM_PROGRAM_ID, metas, data), accounts, signers)
}

/// `Transfer`: moves `lamports` from `from` (a signer) to `to`.
pub fn transfer(from: &AccountView, to: &AccountView, lamports: u64) -> Result<(), ProgramError> {
    let mut data = [0u8; 12];
    data[0] = 2;
    data[4..12].copy_from_slice(&lamports.to_le_bytes());
    let metas = [AccountMeta::writable(from, true), AccountMeta::writable(to, false)];
    invoke_system(&metas, &data, &[from, to], &[])
}

/// The rent-exempt minimum for an account of `space` bytes, from the Rent sysvar.
#[inline]
pub fn rent_exempt(space: usize) -> Result<u64, ProgramError> {
    crate::sysvar::Rent::get()?.minimum_balance(space as u64)
}

/// A program-owned account to create at a PDA: `payer` funds `account` up to
/// `rent_exempt` lamports, allocates `space` bytes and assigns it to `owner`.
pub struct NewAccount<'a> {
    pub payer: &'a AccountView,
    pub account: &'a AccountView,
    pub rent_exempt: u64,
    pub space: u64,
    pub owner: &'a Pubkey,
}

impl NewAccount<'_> {
    /// Creates the account, `signers` signing for the PDA. Works even when someone sent
    /// lamports to the address beforehand (which makes plain `CreateAccount` fail, a
    /// cheap way to grief a PDA): then it tops up, allocates and assigns instead.
    pub fn create(&self, signers: &[Signer<'_, '_>]) -> Result<(), ProgramError> {
        let current = self.account.lamports();
        if current == 0 {
            let mut data = [0u8; 52];
            data[4..12].copy_from_slice(&self.rent_exempt.to_le_bytes());
            data[12..20].copy_from_slice(&self.space.to_le_bytes());
            data[20..52].copy_from_slice(self.owner);
            let metas = [AccountMeta::writable(self.payer, true), AccountMeta::writable(self.account, true)];
            return invoke_system(&metas, &data, &[self.payer, self.account], signers);
        }
        if current < self.rent_exempt {
            transfer(self.payer, self.account, self.rent_exempt - current)?;
        }
        let metas = [AccountMeta::writable(self.account, true)];
        let mut allocate = [0u8; 12];
        allocate[0] = 8;
        allocate[4..12].copy_from_slice(&self.space.to_le_bytes());
        invoke_system(&metas, &allocate, &[self.account], signers)?;
        let mut assign = [0u8; 36];
        assign[0] = 1;
        assign[4..36].copy_from_slice(self.owner);
        invoke_system(&metas, &assign, &[self.account], signers)
    }
}

/// Creates the account at the PDA `seeds` (with its bump) for a zero-copy layout `T`:
/// `payer` funds it rent-exempt, it is allocated `size_of::<T>()` bytes and assigned to
/// `owner` (the calling program); returns the new layout, discriminator written.
pub fn create_zero_copy<'a, T: crate::zero_copy::ZeroCopy>(
    payer: &AccountView,
    account: &'a AccountView,
    owner: &Pubkey,
    seeds: &[&[u8]],
) -> Result<&'a mut T, ProgramError> {
    let space = core::mem::size_of::<T>();
    NewAccount { payer, account, rent_exempt: rent_exempt(space)?, space: space as u64, owner }.create(&[seeds])?;
    T::try_init(account).map_err(|_| ProgramError::AccountBorrowFailed)
}
