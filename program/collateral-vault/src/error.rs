//! Program errors: Anchor-style custom codes from 6000, each named in the IDL. Each
//! variant's one-line doc comment is its message: on failure the entrypoint logs the line
//! Anchor programs log (`AnchorError occurred. Error Code: <Name>. ...`, `anchor_errors!`).
use sbf_runtime::ProgramError;

sbf_runtime::anchor_errors! {
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum VaultError {
    /// The signer is not the vault's owner (or not the admin).
    Unauthorized = 6000,
    /// Amounts must be greater than zero.
    InvalidAmount = 6001,
    /// The amount exceeds the vault's available balance.
    InsufficientAvailableBalance = 6002,
    /// The amount exceeds the vault's locked balance.
    InsufficientLockedBalance = 6003,
    /// A balance would overflow u64.
    Overflow = 6004,
    /// The operation is paused by the vault authority.
    OperationPaused = 6005,
    /// The caller is not the signing PDA of an authorized program.
    UnauthorizedCaller = 6006,
    /// The account is not a collateral vault of this program.
    InvalidVault = 6007,
    /// The account is not this program's VaultAuthority.
    InvalidAuthority = 6008,
    /// The token mint is not the accepted USDT mint.
    InvalidMint = 6009,
    /// The token account is not the expected one (wrong vault account or wrong owner).
    InvalidTokenAccount = 6010,
    /// The address is not the expected program-derived address.
    InvalidPda = 6011,
    /// The vault still holds collateral.
    VaultNotEmpty = 6012,
    /// The authorized-program list is full.
    AuthorityListFull = 6013,
    /// The program is already authorized.
    ProgramAlreadyAuthorized = 6014,
    /// The program is not in the authorized list.
    ProgramNotAuthorized = 6015,
    /// No admin transfer is pending for this signer.
    NoPendingAdmin = 6016,
    /// A required signature is missing.
    MissingSigner = 6017,
    /// An account that must be writable is not.
    AccountNotWritable = 6018,
    /// A program account (system, token, associated token) is not the expected program.
    InvalidProgramAccount = 6019,
    /// The vault token account does not hold exactly the vault's total balance.
    InvariantViolation = 6020,
    /// The vault (or authority) already exists.
    AlreadyInitialized = 6021,
    /// The instruction data could not be decoded.
    InvalidInstruction = 6022,
    /// Only the program's upgrade authority may initialize the vault authority.
    NotUpgradeAuthority = 6023,
    /// Source and destination vaults are the same.
    SameVault = 6024,
    /// Not enough accounts were passed.
    MissingAccounts = 6025,
    /// This program was built for another program id.
    WrongProgramId = 6026,
    /// Four other programs already hold collateral locked in this vault.
    LockSlotsFull = 6027,
    /// The program is still authorized: only it can release what it locked.
    ProgramStillAuthorized = 6028,
    /// The vault holds no collateral locked by that program.
    NoLockForProgram = 6029,
    /// The same account was passed where two different accounts are expected.
    DuplicateAccount = 6030,
    /// The change's timelock delay has not passed yet.
    ChangeNotReady = 6031,
    /// No queued change has this id.
    ChangeNotFound = 6032,
    /// The queue of pending changes is full.
    ChangeQueueFull = 6033,
    /// An admin transfer takes effect when the new admin signs accept_admin.
    AcceptanceRequired = 6034,
    /// The timelock delay must be between 0 and 30 days.
    InvalidTimelockDelay = 6035,
    /// Withdrawal limits out of range (bps at most 10000, window 1 to 2^32-1 slots).
    InvalidWithdrawLimits = 6036,
    /// The withdrawal exceeds what the protocol-wide throttle allows now.
    WithdrawalThrottled = 6037,
}
}

impl From<VaultError> for ProgramError {
    #[inline(always)]
    fn from(e: VaultError) -> Self {
        ProgramError::Custom(e as u32)
    }
}
