//! Cross-program invocation through `sol_invoke_signed_c`, with PDA signers.
use crate::account::AccountView;
use crate::error::ProgramError;
use crate::pubkey::Pubkey;
use crate::syscalls;

/// Most accounts one CPI passes (the callee's program account included).
pub const MAX_CPI_ACCOUNTS: usize = 16;

/// `SolAccountMeta`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct AccountMeta {
    pub pubkey: *const Pubkey,
    pub is_writable: bool,
    pub is_signer: bool,
}

impl AccountMeta {
    #[inline(always)]
    pub fn writable(account: &AccountView, is_signer: bool) -> Self {
        Self { pubkey: account.key() as *const Pubkey, is_writable: true, is_signer }
    }

    #[inline(always)]
    pub fn readonly(account: &AccountView, is_signer: bool) -> Self {
        Self { pubkey: account.key() as *const Pubkey, is_writable: false, is_signer }
    }
}

/// `SolInstruction`.
#[repr(C)]
pub struct Instruction<'a> {
    program_id: *const Pubkey,
    accounts: *const AccountMeta,
    accounts_len: u64,
    data: *const u8,
    data_len: u64,
    _marker: core::marker::PhantomData<&'a ()>,
}

impl<'a> Instruction<'a> {
    #[inline(always)]
    pub fn new(program_id: &'a Pubkey, accounts: &'a [AccountMeta], data: &'a [u8]) -> Self {
        Self {
            program_id: program_id as *const Pubkey,
            accounts: accounts.as_ptr(),
            accounts_len: accounts.len() as u64,
            data: data.as_ptr(),
            data_len: data.len() as u64,
            _marker: core::marker::PhantomData,
        }
    }
}

/// `SolAccountInfo`, pointing into the input region so the callee's changes are seen.
#[repr(C)]
#[derive(Clone, Copy)]
struct AccountInfoC {
    key: *const Pubkey,
    lamports: *mut u64,
    data_len: u64,
    data: *mut u8,
    owner: *const Pubkey,
    rent_epoch: u64,
    is_signer: bool,
    is_writable: bool,
    executable: bool,
}

impl AccountInfoC {
    #[inline(always)]
    fn from_view(view: &AccountView) -> Self {
        let raw = view.raw();
        // SAFETY: `raw` points to a live account header in the input region; the pointers
        // taken here point into it and stay valid for the whole instruction.
        unsafe {
            AccountInfoC {
                key: &(*raw).key,
                lamports: &mut (*raw).lamports,
                data_len: (*raw).data_len,
                data: view.data_ptr(),
                owner: &(*raw).owner,
                rent_epoch: 0,
                is_signer: (*raw).is_signer != 0,
                is_writable: (*raw).is_writable != 0,
                executable: (*raw).executable != 0,
            }
        }
    }
}

/// One signer's seeds (each a byte string; the bump is the last seed), laid out as
/// `SolSignerSeeds` since a `&[&[u8]]` is already (ptr, len) of (ptr, len) pairs.
pub type Signer<'a, 'b> = &'a [&'b [u8]];

/// Invokes `instruction` with `accounts` (every account the instruction names) and
/// the PDA `signers`.
#[inline]
pub fn invoke_signed(
    instruction: &Instruction<'_>,
    accounts: &[&AccountView],
    signers: &[Signer<'_, '_>],
) -> Result<(), ProgramError> {
    if accounts.len() > MAX_CPI_ACCOUNTS {
        return Err(ProgramError::NotEnoughAccountKeys);
    }
    let mut infos = [core::mem::MaybeUninit::<AccountInfoC>::uninit(); MAX_CPI_ACCOUNTS];
    for (slot, account) in infos.iter_mut().zip(accounts.iter()) {
        slot.write(AccountInfoC::from_view(account));
    }
    // SAFETY: `instruction`, its metas and data, the first `accounts.len()` infos (written
    // above) and the signer seeds are all live for the call, in the C ABI layouts the
    // syscall reads (`SolInstruction`, `SolAccountInfo`, `SolSignerSeedsC`).
    let rc = unsafe {
        syscalls::sol_invoke_signed_c(
            instruction as *const Instruction as *const u8,
            infos.as_ptr() as *const u8,
            accounts.len() as u64,
            signers.as_ptr() as *const u8,
            signers.len() as u64,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        // The runtime aborts the transaction on a failed CPI; this is for completeness.
        Err(ProgramError::Custom(rc as u32))
    }
}

/// Invokes without PDA signers.
#[inline]
pub fn invoke(instruction: &Instruction<'_>, accounts: &[&AccountView]) -> Result<(), ProgramError> {
    invoke_signed(instruction, accounts, &[])
}
