//! Account recovery without a password backdoor (C1–C7): every path ends in registering a
//! new passkey — a recovery code, an emailed link, an administrator's link, or a link from a
//! signed-in device — never in a session by itself and never in a password.

pub mod codes;
pub mod links;
pub mod restriction;

use crate::passkeys::PasskeyError;
use crate::store::StoreError;

pub use codes::RecoveryCode;

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// One answer for an unknown email, a wrong code and a locked code path (no
    /// enumeration); the lock itself is audited.
    #[error(
        "that email and recovery code don't match, or the code is locked after too many attempts"
    )]
    WrongCode,
    #[error("recovery by email is turned off in this organisation; ask your administrator")]
    EmailRecoveryOff,
    #[error("no such user in this organisation")]
    UserNotFound,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("confirm it's you with a passkey you had before the recovery")]
    StepUpRequired,
    #[error(transparent)]
    Passkey(#[from] PasskeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}
