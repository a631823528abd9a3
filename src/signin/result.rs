//! What every way in ends in (DESIGN "Login" step 2): one `LoginResult` — who, how, with
//! which `amr` and `acr`, when, and what the authenticator showed — whether it came from a
//! passkey assertion, a password, or a passkey enrolled from a link or a recovery.

use crate::auth_events::{AuthMethod, AuthenticatorKind};
use crate::clock::UtcTime;
use crate::sessions::{ACR_PHISHING_RESISTANT, Authentication};
use crate::store::users::User;

/// What the authenticator showed, for a login made with a passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatorFacts {
    pub passkey_id: String,
    pub kind: AuthenticatorKind,
    /// The authenticator verified the user (PIN or biometric), WebAuthn L3 §6.1 flag UV.
    pub is_user_verified: bool,
}

/// A successful ceremony, before anything decides what it may do or starts a session.
#[derive(Debug, Clone)]
pub struct LoginResult {
    pub user: User,
    pub method: AuthMethod,
    /// RFC 8176 values.
    pub amr: Vec<String>,
    pub acr: Option<String>,
    pub auth_time: UtcTime,
    pub authenticator: Option<AuthenticatorFacts>,
}

impl LoginResult {
    /// A login with a passkey — an assertion, or one just created. RFC 8176: `hwk` for a
    /// device-bound key, `swk` for a synced one; `user` for the presence test; `mfa` when the
    /// authenticator also verified the user, which makes the passkey multi-factor on its own.
    /// Phishing-resistant: `acr` is `phr`.
    pub fn passkey(
        user: User,
        method: AuthMethod,
        authenticator: AuthenticatorFacts,
        now: UtcTime,
    ) -> LoginResult {
        let mut amr = vec![
            match authenticator.kind {
                AuthenticatorKind::Synced => "swk",
                AuthenticatorKind::DeviceBound => "hwk",
            }
            .to_string(),
            "user".to_string(),
        ];
        if authenticator.is_user_verified {
            amr.push("mfa".to_string());
        }
        LoginResult {
            user,
            method,
            amr,
            acr: Some(ACR_PHISHING_RESISTANT.to_string()),
            auth_time: now,
            authenticator: Some(authenticator),
        }
    }

    /// A password login: `pwd`, and no `acr` (it is not phishing-resistant).
    pub fn password(user: User, now: UtcTime) -> LoginResult {
        LoginResult {
            user,
            method: AuthMethod::Password,
            amr: vec!["pwd".to_string()],
            acr: None,
            auth_time: now,
            authenticator: None,
        }
    }

    /// What the session and the tokens it leads to say about this login.
    pub fn authentication(&self) -> Authentication {
        Authentication {
            user_id: self.user.id.clone(),
            amr: self.amr.clone(),
            acr: self.acr.clone(),
            auth_time: self.auth_time,
            passkey_id: self.authenticator.as_ref().map(|a| a.passkey_id.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;

    fn user() -> User {
        crate::users::sample_user("u1", crate::users::Role::Member)
    }

    #[test]
    fn amr_and_acr_say_how_the_login_was_made_o4() {
        let now = Clock::default().now();
        let facts = |kind, is_user_verified| AuthenticatorFacts {
            passkey_id: "p1".into(),
            kind,
            is_user_verified,
        };
        let table = [
            (
                facts(AuthenticatorKind::Synced, true),
                vec!["swk", "user", "mfa"],
            ),
            (
                facts(AuthenticatorKind::DeviceBound, true),
                vec!["hwk", "user", "mfa"],
            ),
            (
                facts(AuthenticatorKind::DeviceBound, false),
                vec!["hwk", "user"],
            ),
        ];
        for (authenticator, amr) in table {
            let login = LoginResult::passkey(user(), AuthMethod::Passkey, authenticator, now);
            assert_eq!(login.amr, amr);
            assert!(login.authentication().is_phishing_resistant());
            assert_eq!(login.authentication().passkey_id.as_deref(), Some("p1"));
        }
        let password = LoginResult::password(user(), now);
        assert_eq!(password.amr, vec!["pwd"]);
        assert!(!password.authentication().is_phishing_resistant());
        assert_eq!(password.authentication().passkey_id, None);
    }
}
