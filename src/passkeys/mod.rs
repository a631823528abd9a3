//! Passkeys (P1–P10): registration and authentication ceremonies on webauthn-rs's engine,
//! with state kept in the database, and the tenant's policy applied.
//!
//! Verification (`assertion.rs`) runs outside any write transaction; the write that follows
//! consumes the ceremony and compare-and-sets the counter, so replays and races still fail.

pub mod aaguid;
mod assertion;
mod login;
mod registration;
mod shape;

use std::time::Duration;

use webauthn_rs_core::WebauthnCore;
use webauthn_rs_core::error::WebauthnError;

use crate::config::Settings;
use crate::store::StoreError;

pub use login::{
    Claimant, DECOY_KIND, LoginStart, PendingLogin, VerifiedLogin, start_discoverable_login,
    start_identified_login, verify_login,
};
pub use registration::{
    RegistrationStart, VerifiedRegistration, save_registration, start_registration,
    verify_registration,
};

/// Why a ceremony or a link was made: recorded on the passkey it enrolls (`enrolled_via`),
/// and it tells what finishing the ceremony means (S5, C1–C4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// A sign-in (WebAuthn L3 §7.2): no passkey is enrolled.
    Login,
    /// The first owner of a fresh installation.
    Setup,
    /// An invitation to a named seat.
    Invite,
    /// A signed-in user adds a passkey from the account page.
    Account,
    /// C1: after the recovery code was accepted.
    RecoveryCode,
    /// C3: an emailed link.
    EmailRecovery,
    /// C4: a link an administrator started.
    AdminRecovery,
    /// C2: a link made on a signed-in device, opened on a new one.
    TrustedDevice,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Login => "login",
            Purpose::Setup => "setup",
            Purpose::Invite => "invite",
            Purpose::Account => "account",
            Purpose::RecoveryCode => "recovery_code",
            Purpose::EmailRecovery => "email_recovery",
            Purpose::AdminRecovery => "admin_recovery",
            Purpose::TrustedDevice => "trusted_device",
        }
    }

    /// A stored purpose; `None` for a value this version does not know (such a ceremony or
    /// link is refused, never taken for another purpose).
    pub fn parse(raw: &str) -> Option<Purpose> {
        [
            Purpose::Login,
            Purpose::Setup,
            Purpose::Invite,
            Purpose::Account,
            Purpose::RecoveryCode,
            Purpose::EmailRecovery,
            Purpose::AdminRecovery,
            Purpose::TrustedDevice,
        ]
        .into_iter()
        .find(|p| p.as_str() == raw)
    }
}

/// The relying party: one per deployment (the rp id is the public host).
#[derive(Clone)]
pub struct Passkeys {
    core: std::sync::Arc<WebauthnCore>,
    relying_party: assertion::RelyingParty,
    ceremony_timeout: Duration,
}

impl Passkeys {
    pub fn new(settings: &Settings) -> Result<Passkeys, url::ParseError> {
        let origin = url::Url::parse(&settings.public_origin())?;
        let lifetime = settings.webauthn.ceremony_timeout;
        // The browser is told a little less than the ceremony lives, so a response sent at
        // the browser's last moment still arrives in time.
        let round_trip = (lifetime / 10).min(Duration::from_secs(5));
        let core = WebauthnCore::new_unsafe_experts_only(
            &settings.webauthn.rp_name,
            settings.rp_id(),
            vec![origin.clone()],
            lifetime - round_trip,
            Some(false),
            Some(false),
        );
        let relying_party = assertion::RelyingParty {
            origin,
            rp_id_hash: openssl::sha::sha256(settings.rp_id().as_bytes()),
        };
        Ok(Passkeys {
            core: std::sync::Arc::new(core),
            relying_party,
            ceremony_timeout: settings.webauthn.ceremony_timeout,
        })
    }

    /// A ceremony lives exactly `webauthn.ceremony_timeout`; at that instant it has expired.
    fn ceremony_expiry(&self, now: crate::clock::UtcTime) -> crate::clock::UtcTime {
        now + time::Duration::try_from(self.ceremony_timeout).unwrap_or(time::Duration::minutes(5))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    #[error("this sign-in or registration attempt expired or was already used")]
    CeremonyNotFound,
    #[error("the passkey response could not be verified: {0}")]
    Verification(String),
    #[error(
        "the response does not name one credential: its id and rawId differ, or its type is not public-key"
    )]
    AmbiguousCredential,
    #[error("this passkey is not registered here")]
    UnknownCredential,
    #[error("this passkey is already registered")]
    AlreadyRegistered,
    #[error("your organisation requires a PIN or biometric check on your passkey")]
    UserVerificationRequired,
    #[error("{reason} (policy '{rule}')")]
    PolicyRefused { rule: String, reason: String },
    #[error(
        "this passkey's signature counter went backwards, which can mean it was copied; your organisation refuses such sign-ins"
    )]
    CounterRegression,
    #[error("this account cannot sign in")]
    AccountInactive,
    #[error("passkey names must be 1-64 characters")]
    InvalidLabel,
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal: {0}")]
    Internal(String),
}

impl PasskeyError {
    fn from_webauthn(e: WebauthnError) -> PasskeyError {
        match e {
            WebauthnError::UserNotVerified => PasskeyError::UserVerificationRequired,
            WebauthnError::CredentialNotFound => PasskeyError::UnknownCredential,
            WebauthnError::CredentialExcludedFromRequest
            | WebauthnError::CredentialAlteredAlgFromRequest => PasskeyError::AlreadyRegistered,
            other => PasskeyError::Verification(other.to_string()),
        }
    }
}

/// A passkey label chosen by its owner: trimmed, 1–64 characters.
pub fn clean_label(raw: &str) -> Result<String, PasskeyError> {
    let label = raw.trim();
    if label.is_empty() || label.chars().count() > 64 || label.chars().any(char::is_control) {
        return Err(PasskeyError::InvalidLabel);
    }
    Ok(label.to_string())
}

/// The WebAuthn user handle of a passkey owner: the 16 bytes of their UUID.
pub(crate) fn user_handle(user_id: &str) -> Result<Vec<u8>, PasskeyError> {
    uuid::Uuid::parse_str(user_id)
        .map(|u| u.as_bytes().to_vec())
        .map_err(|_| PasskeyError::Internal("user id is not a UUID".into()))
}
