//! Events (Anchor `emit!` style: one `sol_log_data` part, discriminator + Borsh fields);
//! every event ends with the cluster's unix timestamp.
use sbf_runtime::anchor::event;

pub const EXCHANGE_INITIALIZED: [u8; 8] = event("ExchangeInitialized");
pub const CONFIG_CHANGE_PROPOSED: [u8; 8] = event("ConfigChangeProposed");
pub const CONFIG_CHANGE_APPLIED: [u8; 8] = event("ConfigChangeApplied");
pub const CONFIG_CHANGE_CANCELLED: [u8; 8] = event("ConfigChangeCancelled");
pub const GRANT_SET: [u8; 8] = event("GrantSet");
pub const GRANT_REVOKED: [u8; 8] = event("GrantRevoked");
pub const EXIT_REQUESTED: [u8; 8] = event("ExitRequested");
pub const EXIT_SERVED: [u8; 8] = event("ExitServed");
pub const OPERATOR_ACTION: [u8; 8] = event("OperatorAction");

/// `OperatorAction.action`.
pub mod action {
    pub const LOCK: u8 = 0;
    pub const RELEASE: u8 = 1;
    pub const SETTLE: u8 = 2;
    pub const LIQUIDATE: u8 = 3;
}

/// An event of this program; the largest (ExchangeInitialized) is 160 bytes.
pub type Event = sbf_runtime::anchor::Event<168>;
