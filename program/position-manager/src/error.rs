//! Program errors: Anchor-style custom codes from 6000, each named in the IDL. Each
//! variant's one-line doc comment is its message: on failure the entrypoint logs the line
//! Anchor programs log (`AnchorError occurred. Error Code: <Name>. ...`, `anchor_errors!`).
use sbf_runtime::zero_copy::LoadError;
use sbf_runtime::ProgramError;

sbf_runtime::anchor_errors! {
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ExchangeError {
    /// The instruction data could not be decoded.
    InvalidInstruction = 6000,
    /// Not enough accounts were passed.
    MissingAccounts = 6001,
    /// A required signature is missing.
    MissingSigner = 6002,
    /// This program was built for another program id.
    WrongProgramId = 6003,
    /// An account is not the one this instruction expects (a program, sysvar or PDA).
    InvalidAccount = 6004,
    /// Only the program's upgrade authority may initialize the exchange.
    NotUpgradeAuthority = 6005,
    /// The exchange configuration already exists.
    AlreadyInitialized = 6006,
    /// The signer is not the exchange's admin.
    NotAdmin = 6007,
    /// The signer is not the exchange's operator.
    NotOperator = 6008,
    /// The account is not a collateral vault.
    InvalidVault = 6009,
    /// The grant is not this trader's (or not a grant of this program).
    GrantMismatch = 6010,
    /// Operator instructions must be top-level instructions.
    NotTopLevel = 6011,
    /// An operator instruction must be the only one of this program in its transaction.
    OperatorInstructionNotAlone = 6012,
    /// The operation id is not above the trader's last one: a replay or an out-of-order operation.
    OperationReplayed = 6013,
    /// The trader revoked the grant.
    GrantRevoked = 6014,
    /// The grant has expired.
    GrantExpired = 6015,
    /// The lock would exceed what the trader granted.
    GrantExceeded = 6016,
    /// The trader requested an exit: no new locks.
    ExitPending = 6017,
    /// The exit deadline has passed: only releases, and the trader's own exit.
    ExitDue = 6018,
    /// The trader has not requested an exit.
    ExitNotRequested = 6019,
    /// The exit delay has not passed yet.
    ExitNotDue = 6020,
    /// An exit is already requested.
    ExitAlreadyRequested = 6021,
    /// The grant's expiry is not in the future.
    InvalidExpiry = 6022,
    /// The configuration change is malformed (unknown kind, or a key where a value belongs).
    InvalidConfigChange = 6023,
    /// No change of this kind is pending.
    NoPendingChange = 6024,
    /// The change's delay has not passed yet.
    ChangeNotDue = 6025,
    /// A settlement needs between 1 and MAX_SETTLE_PAIRS pairs, with 5 accounts each.
    InvalidSettleBatch = 6026,
    /// A number would overflow u64.
    Overflow = 6027,
    /// The same account was passed where two different accounts are expected.
    DuplicateAccount = 6028,
}
}

impl From<ExchangeError> for ProgramError {
    #[inline(always)]
    fn from(e: ExchangeError) -> Self {
        ProgramError::Custom(e as u32)
    }
}

impl ExchangeError {
    /// A zero-copy load's failure, `invalid` when the account is not the expected kind.
    #[inline(always)]
    pub fn load(e: LoadError, invalid: ExchangeError) -> ExchangeError {
        match e {
            LoadError::Invalid => invalid,
            LoadError::NotWritable => ExchangeError::InvalidAccount,
            LoadError::Borrowed => ExchangeError::DuplicateAccount,
        }
    }
}
