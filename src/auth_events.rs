//! Auth events: one row per authentication attempt, successful or not, by every way in
//! (passkey, password, enrollment and recovery links, recovery codes), for the migration
//! metrics (X1–X5). This module is the only one that makes them, so the metrics read one
//! vocabulary and nothing is left out.

use crate::client::ClientInfo;
use crate::clock::UtcTime;
use crate::crypto::new_id;
use crate::store::Store;
use crate::store::auth_events::{AuthEvent, insert_auth_event};

/// How someone got in, or tried to (the event's `method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    Passkey,
    Password,
    /// A passkey enrolled from an invitation or the first-run setup link.
    Enrollment,
    /// Recoveries (X2): each ends in a new passkey, never in a session by itself.
    RecoveryCode,
    EmailRecovery,
    AdminRecovery,
    /// A passkey added on a new device from a link made on a signed-in one (C2).
    TrustedDevice,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Passkey => "passkey",
            AuthMethod::Password => "password",
            AuthMethod::Enrollment => "enrollment",
            AuthMethod::RecoveryCode => "recovery_code",
            AuthMethod::EmailRecovery => "email_recovery",
            AuthMethod::AdminRecovery => "admin_recovery",
            AuthMethod::TrustedDevice => "trusted_device",
        }
    }

    /// Whether the attempt is a recovery (X2's numerator).
    pub fn is_recovery(self) -> bool {
        matches!(
            self,
            AuthMethod::RecoveryCode | AuthMethod::EmailRecovery | AuthMethod::AdminRecovery
        )
    }
}

/// Why an attempt failed (the event's `failure_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureReason {
    CeremonyExpiredOrUsed,
    UnknownCredential,
    UserVerificationMissing,
    CounterRegression,
    AccountInactive,
    Policy,
    VerificationFailed,
    WrongPassword,
    UnknownAccount,
}

impl FailureReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::CeremonyExpiredOrUsed => "ceremony_expired_or_used",
            FailureReason::UnknownCredential => "unknown_credential",
            FailureReason::UserVerificationMissing => "user_verification_missing",
            FailureReason::CounterRegression => "counter_regression",
            FailureReason::AccountInactive => "account_inactive",
            FailureReason::Policy => "policy",
            FailureReason::VerificationFailed => "verification_failed",
            FailureReason::WrongPassword => "wrong_password",
            FailureReason::UnknownAccount => "unknown_account",
        }
    }
}

/// What kind of passkey answered: synced (backup eligible) or bound to one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthenticatorKind {
    Synced,
    DeviceBound,
}

impl AuthenticatorKind {
    pub fn of(is_backup_eligible: bool) -> AuthenticatorKind {
        if is_backup_eligible {
            AuthenticatorKind::Synced
        } else {
            AuthenticatorKind::DeviceBound
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AuthenticatorKind::Synced => "synced",
            AuthenticatorKind::DeviceBound => "device_bound",
        }
    }
}

/// One attempt, as the event records it.
pub struct Attempt<'a> {
    pub tenant_id: &'a str,
    pub user_id: Option<&'a str>,
    pub method: AuthMethod,
    /// `None`: it succeeded.
    pub failure: Option<FailureReason>,
    pub authenticator: Option<AuthenticatorKind>,
    pub client: &'a ClientInfo,
    /// Milliseconds from the login page to now (X4), when known.
    pub duration_ms: Option<i64>,
}

/// The row an attempt is stored as, for a caller that writes it with others.
pub fn row(attempt: Attempt<'_>, now: UtcTime) -> AuthEvent {
    AuthEvent {
        id: new_id(),
        tenant_id: attempt.tenant_id.to_string(),
        user_id: attempt.user_id.map(str::to_string),
        occurred_at: now,
        method: attempt.method.as_str().to_string(),
        outcome: if attempt.failure.is_none() {
            "success"
        } else {
            "failure"
        }
        .to_string(),
        failure_reason: attempt.failure.map(|r| r.as_str().to_string()),
        authenticator: attempt.authenticator.map(|a| a.as_str().to_string()),
        browser_family: attempt.client.browser_family.clone(),
        os_family: attempt.client.os_family.clone(),
        duration_ms: attempt.duration_ms,
    }
}

/// A failed attempt, written on its own: the operation it belongs to rolled back. A failure
/// to record it is logged, never shown to the person signing in.
pub async fn record_failure(store: &Store, event: AuthEvent) {
    let result = store
        .write(move |conn| insert_auth_event(conn, &event))
        .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not record a failed sign-in attempt");
    }
}
