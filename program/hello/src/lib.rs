//! `hello`: the SBF pipeline's regression program.
//!
//! Instruction data starts with a tag byte.
//!
//! * `0, amount: u64` — transfer. Accounts: `[payer (signer), source token account
//!   (writable, owned by the PDA), destination token account (writable), pda authority,
//!   token program]`.
//! * `1, a: u64, b: u64, n: u64` — self-test of the build limits (no accounts): returns,
//!   as return data, results that the pipeline test recomputes in Python: `checked_mul`
//!   (rewritten IR), variable-length copy/move/fill (`sol_mem*_` syscalls), dynamic
//!   dispatch (`callx`) and a 3,200-byte stack array.
//! * `2, n: u8` — `BorshWriter<16>` self-test: writes `n` bytes; returns them as return
//!   data, or fails with `BorshIoError` when they do not fit (never a silent cut).
//! * `3, index: u8` — returns the runtime's `ProgramError::BUILTINS[index]`, so a test can
//!   check that the loader reports each under its own name.
//! * `4, mode: u8` — borrow tracking self-test on accounts `[a (writable), b (writable)]`:
//!   mode 0 borrows `a` exclusively then `b` exclusively, mode 1 `a` exclusively then `b`
//!   shared, mode 2 `a` shared then `b` exclusively; return data: 1 when the second borrow
//!   was granted (always, for two accounts; never, for one account passed twice).
//! * `5, data..` — forwards `data` by CPI to the program in account 0, with the other
//!   accounts as they were passed (signer and writable flags kept): a caller one level
//!   down, for tests of programs that must only run at the top level.
//! * `6, code: u32` — returns `ProgramError::Custom(code)`: hello declares no error enum,
//!   so the entrypoint logs the line Anchor logs for an unnamed custom error (the runtime's
//!   fallback, formatted on the stack).
//!
//! The transfer logs a line, emits `sol_log_data`, derives the PDA `[b"hello", payer]` with
//! `sol_try_find_program_address`, checks it against account 3, and moves `amount`
//! tokens from source to destination by a CPI to SPL Token signed with the PDA's seeds.
#![no_std]

use sbf_runtime::cpi::{invoke_signed, AccountMeta, Instruction};
use sbf_runtime::entrypoint::InstructionContext;
use sbf_runtime::log::{log, log_data, log_u64};
use sbf_runtime::pubkey::{find_program_address, keys_eq};
use sbf_runtime::anchor::BorshWriter;
use sbf_runtime::{entrypoint, ProgramError, ProgramResult};

entrypoint!(process);

/// The SPL Token `Transfer` instruction's tag.
const TOKEN_TRANSFER: u8 = 3;

fn process(ctx: &InstructionContext) -> ProgramResult {
    match ctx.data.split_first() {
        Some((0, rest)) => transfer(ctx, rest),
        Some((1, rest)) => selftest(rest),
        Some((2, [n])) => borsh_selftest(*n),
        Some((3, [index])) => Err(*ProgramError::BUILTINS.get(*index as usize).ok_or(ProgramError::InvalidArgument)?),
        Some((4, [mode])) => borrow_selftest(ctx, *mode),
        Some((5, rest)) => forward(ctx, rest),
        Some((6, rest)) => Err(ProgramError::Custom(read_u32(rest)?)),
        _ => Err(ProgramError::InvalidInstructionData),
    }
}

fn read_u32(data: &[u8]) -> Result<u32, ProgramError> {
    match data {
        [a, b, c, d] => Ok(u32::from_le_bytes([*a, *b, *c, *d])),
        _ => Err(ProgramError::InvalidInstructionData),
    }
}

fn read_u64(data: &[u8], index: usize) -> Result<u64, ProgramError> {
    data.get(index * 8..index * 8 + 8)
        .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
        .map(u64::from_le_bytes)
        .ok_or(ProgramError::InvalidInstructionData)
}

fn transfer(ctx: &InstructionContext, data: &[u8]) -> ProgramResult {
    let [payer, source, destination, authority, token_program] = ctx.accounts() else {
        return Err(ProgramError::NotEnoughAccountKeys);
    };
    if !payer.is_signer() {
        return Err(ProgramError::MissingRequiredSignature);
    }
    let amount = read_u64(data, 0)?;
    log("hello from sbf");

    let (pda, bump) = find_program_address(&[b"hello", payer.key()], ctx.program_id)?;
    if !keys_eq(&pda, authority.key()) {
        return Err(ProgramError::InvalidSeeds);
    }
    log_u64(0, 0, 0, bump as u64, amount);

    let mut data = [0u8; 9];
    data[0] = TOKEN_TRANSFER;
    data[1..].copy_from_slice(&amount.to_le_bytes());
    let metas = [
        AccountMeta::writable(source, false),
        AccountMeta::writable(destination, false),
        AccountMeta::readonly(authority, true),
    ];
    let instruction = Instruction::new(token_program.key(), &metas, &data);
    let bump_seed = [bump];
    invoke_signed(
        &instruction,
        &[source, destination, authority, token_program],
        &[&[b"hello", payer.key(), &bump_seed]],
    )?;

    log_data(&[b"hello-event", &amount.to_le_bytes(), &pda]);
    Ok(())
}

trait Op {
    fn apply(&self, x: u64) -> u64;
}
struct AddSeven;
struct Double;
struct Invert;
impl Op for AddSeven {
    fn apply(&self, x: u64) -> u64 {
        x.wrapping_add(7)
    }
}
impl Op for Double {
    fn apply(&self, x: u64) -> u64 {
        x.wrapping_add(x)
    }
}
impl Op for Invert {
    fn apply(&self, x: u64) -> u64 {
        !x
    }
}
static OPS: [&(dyn Op + Sync); 3] = [&AddSeven, &Double, &Invert];

#[inline(never)]
fn stack_sum(seed: u64) -> u64 {
    let mut big = [0u64; 400]; // 3,200 bytes in one frame
    for (i, slot) in big.iter_mut().enumerate() {
        *slot = seed.wrapping_add(i as u64);
    }
    let mut sum = 0u64;
    for value in big.iter().rev() {
        sum = sum.wrapping_add(*value ^ (sum >> 3));
    }
    sum
}

/// Return data: mul_ok u8, product u64, op u64, stack u64, buffer [u8; 64].
fn selftest(data: &[u8]) -> ProgramResult {
    let a = read_u64(data, 0)?;
    let b = read_u64(data, 1)?;
    let n = read_u64(data, 2)? as usize;
    if n > 48 {
        return Err(ProgramError::InvalidArgument);
    }
    let mut out = [0u8; 1 + 8 + 8 + 8 + 64];
    match a.checked_mul(b) {
        Some(product) => {
            out[0] = 1;
            out[1..9].copy_from_slice(&product.to_le_bytes());
        }
        None => out[0] = 0,
    }
    let op = OPS[(a % 3) as usize];
    out[9..17].copy_from_slice(&op.apply(b).to_le_bytes());
    out[17..25].copy_from_slice(&stack_sum(a).to_le_bytes());

    let mut pattern = [0u8; 64];
    for (i, byte) in pattern.iter_mut().enumerate() {
        *byte = (i as u8).wrapping_mul(3).wrapping_add(1);
    }
    let buffer = &mut out[25..];
    buffer[..n].copy_from_slice(&pattern[..n]); // variable memcpy
    buffer.copy_within(0..n, 8); // variable memmove (overlapping)
    buffer[n + 8..].fill(0xAB); // variable memset
    set_return_data(&out);
    Ok(())
}

fn set_return_data(data: &[u8]) {
    // SAFETY: the syscall reads `len` bytes at `ptr`: exactly the slice.
    unsafe { sbf_runtime::syscalls::sol_set_return_data(data.as_ptr(), data.len() as u64) };
}

fn borsh_selftest(n: u8) -> ProgramResult {
    let mut writer = BorshWriter::<16>::new();
    for i in 0..n {
        writer.u8(i);
    }
    set_return_data(writer.finish()?);
    Ok(())
}

fn forward(ctx: &InstructionContext, data: &[u8]) -> ProgramResult {
    let Some((program, accounts)) = ctx.accounts().split_first() else {
        return Err(ProgramError::NotEnoughAccountKeys);
    };
    if accounts.len() + 1 > sbf_runtime::cpi::MAX_CPI_ACCOUNTS {
        return Err(ProgramError::NotEnoughAccountKeys);
    }
    let mut metas = [AccountMeta::readonly(program, false); sbf_runtime::cpi::MAX_CPI_ACCOUNTS];
    let mut views = [program; sbf_runtime::cpi::MAX_CPI_ACCOUNTS];
    for (i, account) in accounts.iter().enumerate() {
        metas[i] = AccountMeta {
            pubkey: account.key(),
            is_writable: account.is_writable(),
            is_signer: account.is_signer(),
        };
        views[i] = account;
    }
    views[accounts.len()] = program;
    invoke_signed(
        &Instruction::new(program.key(), &metas[..accounts.len()], data),
        &views[..accounts.len() + 1],
        &[],
    )
}

fn borrow_selftest(ctx: &InstructionContext, mode: u8) -> ProgramResult {
    let [a, b, ..] = ctx.accounts() else {
        return Err(ProgramError::NotEnoughAccountKeys);
    };
    let granted = match mode {
        0 => {
            let first = a.try_borrow_mut_data()?;
            let granted = b.try_borrow_mut_data().is_ok();
            first.fill(0); // the first borrow stays usable
            granted
        }
        1 => {
            let first = a.try_borrow_mut_data()?;
            let granted = b.try_borrow_data().is_ok();
            first.fill(0);
            granted
        }
        _ => {
            let first = a.try_borrow_data()?;
            let granted = b.try_borrow_mut_data().is_ok();
            granted && first.len() == 8
        }
    };
    set_return_data(&[granted as u8]);
    Ok(())
}
