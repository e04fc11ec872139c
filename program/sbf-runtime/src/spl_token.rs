//! SPL Token: zero-copy token account reads and the CPIs this project makes.
use crate::account::AccountView;
use crate::cpi::{invoke_signed, AccountMeta, Instruction, Signer};
use crate::error::ProgramError;
use crate::programs::TOKEN_PROGRAM_ID;
use crate::pubkey::{keys_eq, Pubkey};

/// Size of a classic token account.
pub const ACCOUNT_LEN: usize = 165;
/// `AccountState::Initialized`.
const STATE_INITIALIZED: u8 = 1;
const STATE_OFFSET: usize = 108;

/// A read-only view of an initialized SPL Token account.
#[derive(Clone, Copy)]
pub struct TokenAccountView<'a> {
    data: &'a [u8],
}

impl<'a> TokenAccountView<'a> {
    /// Validates that `account` is an initialized account of the Token program.
    #[inline(always)]
    pub fn new(account: &'a AccountView) -> Option<Self> {
        if !account.is_owned_by(&TOKEN_PROGRAM_ID) {
            return None;
        }
        let data = account.try_borrow_data().ok()?;
        if data.len() != ACCOUNT_LEN || data[STATE_OFFSET] != STATE_INITIALIZED {
            return None;
        }
        Some(Self { data })
    }

    #[inline(always)]
    pub fn mint(&self) -> &Pubkey {
        // SAFETY: `data` is exactly ACCOUNT_LEN (165) bytes (checked in `new`); the mint is
        // bytes 0..32, and `Pubkey` is a byte array (alignment 1).
        unsafe { &*(self.data.as_ptr() as *const Pubkey) }
    }

    #[inline(always)]
    pub fn owner(&self) -> &Pubkey {
        // SAFETY: as `mint`: the owner is bytes 32..64 of the 165.
        unsafe { &*(self.data.as_ptr().add(32) as *const Pubkey) }
    }

    #[inline(always)]
    pub fn amount(&self) -> u64 {
        // SAFETY: the amount is bytes 64..72 of the 165 (checked in `new`).
        let at = unsafe { self.data.as_ptr().add(64) };
        crate::pubkey::load_u64(at)
    }

    #[inline(always)]
    pub fn has_mint(&self, mint: &Pubkey) -> bool {
        keys_eq(self.mint(), mint)
    }

    #[inline(always)]
    pub fn has_owner(&self, owner: &Pubkey) -> bool {
        keys_eq(self.owner(), owner)
    }
}

/// The amount in a token account (None if it is not one).
#[inline(always)]
pub fn amount_of(account: &AccountView) -> Option<u64> {
    TokenAccountView::new(account).map(|t| t.amount())
}

/// `Transfer { amount }` from `source` to `destination`, authorized by `authority`.
pub struct Transfer<'a> {
    pub token_program: &'a AccountView,
    pub source: &'a AccountView,
    pub destination: &'a AccountView,
    pub authority: &'a AccountView,
    pub amount: u64,
}

impl Transfer<'_> {
    /// Invokes the transfer; `signers` sign for a PDA `authority`.
    #[inline]
    pub fn invoke_signed(&self, signers: &[Signer<'_, '_>]) -> Result<(), ProgramError> {
        let mut data = [0u8; 9];
        data[0] = 3;
        data[1..9].copy_from_slice(&self.amount.to_le_bytes());
        let metas = [
            AccountMeta::writable(self.source, false),
            AccountMeta::writable(self.destination, false),
            AccountMeta::readonly(self.authority, true),
        ];
        invoke_signed(
            &Instruction::new(self.token_program.key(), &metas, &data),
            &[self.source, self.destination, self.authority, self.token_program],
            signers,
        )
    }
}

/// `CloseAccount`: closes the empty `account`, sending its rent to `destination`.
pub struct CloseAccount<'a> {
    pub token_program: &'a AccountView,
    pub account: &'a AccountView,
    pub destination: &'a AccountView,
    pub authority: &'a AccountView,
}

impl CloseAccount<'_> {
    #[inline]
    pub fn invoke_signed(&self, signers: &[Signer<'_, '_>]) -> Result<(), ProgramError> {
        let data = [9u8];
        let metas = [
            AccountMeta::writable(self.account, false),
            AccountMeta::writable(self.destination, false),
            AccountMeta::readonly(self.authority, true),
        ];
        invoke_signed(
            &Instruction::new(self.token_program.key(), &metas, &data),
            &[self.account, self.destination, self.authority, self.token_program],
            signers,
        )
    }
}
