//! C1: one recovery code per account, 16 characters from an unambiguous alphabet (80 bits),
//! shown once and stored only as a keyed digest. It opens a passkey registration, not a
//! session; wrong codes count, and too many lock the code path for a while.

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use serde_json::json;

use super::RecoveryError;
use crate::audit::{self, Actor, Record};
use crate::client::ClientInfo;
use crate::clock::UtcTime;
use crate::config::RecoverySettings;
use crate::crypto::{MasterKey, constant_time_eq};
use crate::passkeys::{self, Passkeys, Purpose, RegistrationStart};
use crate::store::recovery_codes as repo;
use crate::store::users::{self as user_repo, User};
use crate::store::{DbConn, Store};
use crate::users::{Email, UserStatus};

/// No 0/O, 1/I/L: the code is read off paper and typed on a phone.
const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
const LENGTH: usize = 16;

/// A recovery code in the clear: exists only between its making and its display.
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryCode(String);

impl RecoveryCode {
    pub fn generate() -> RecoveryCode {
        let mut rng = rand::rng();
        RecoveryCode(
            (0..LENGTH)
                .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
                .collect(),
        )
    }

    /// What a person typed: case, spaces and dashes do not matter.
    pub fn parse(raw: &str) -> Option<RecoveryCode> {
        let cleaned: String = raw
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        (cleaned.len() == LENGTH && cleaned.bytes().all(|b| ALPHABET.contains(&b)))
            .then_some(RecoveryCode(cleaned))
    }

    /// Keyed with the master key: a stolen database alone does not allow guessing offline.
    pub fn digest(&self, key: &MasterKey) -> String {
        URL_SAFE_NO_PAD.encode(key.mac(format!("recovery-code|{}", self.0).as_bytes()))
    }

    /// Grouped 4×4 for reading: `ABCD-EFGH-JKMN-PQRS`.
    pub fn grouped(&self) -> String {
        self.0
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("-")
    }
}

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCode(****)")
    }
}

/// Issues a new code for `user`, replacing any old one. Returns the code to show once.
pub fn issue(
    conn: &mut DbConn,
    key: &MasterKey,
    user: &User,
    now: UtcTime,
) -> Result<RecoveryCode, RecoveryError> {
    let code = RecoveryCode::generate();
    repo::replace_code(conn, &user.tenant_id, &user.id, &code.digest(key), now)?;
    Ok(code)
}

/// What a code check decided; a failure still commits (the attempt is counted).
pub enum CodeCheck {
    Accepted(RegistrationStart),
    Refused,
}

/// What a code check uses: the key the codes are digested with, the attempt limits, and the
/// relying party the new passkey's ceremony is made with.
#[derive(Clone)]
pub struct CodeTerms {
    pub key: Arc<MasterKey>,
    pub settings: RecoverySettings,
    pub passkeys: Passkeys,
}

/// Checks email + code and, if they match, starts a registration ceremony for the account
/// (the code itself is consumed when the new passkey is saved). A failed attempt is counted
/// (and a lock audited) though the answer is a refusal: the check commits either way.
pub async fn start_with_code(
    store: &Store,
    terms: CodeTerms,
    tenant_id: &str,
    email: Email,
    code: Option<RecoveryCode>,
    client: &ClientInfo,
    now: UtcTime,
) -> Result<CodeCheck, RecoveryError> {
    let (tenant_id, client) = (tenant_id.to_string(), client.clone());
    store
        .write(move |conn| {
            check_code(
                conn,
                &terms,
                &tenant_id,
                &email,
                code.as_ref(),
                &client,
                now,
            )
        })
        .await
}

fn check_code(
    conn: &mut DbConn,
    terms: &CodeTerms,
    tenant_id: &str,
    email: &Email,
    code: Option<&RecoveryCode>,
    client: &ClientInfo,
    now: UtcTime,
) -> Result<CodeCheck, RecoveryError> {
    let key = &terms.key;
    let user = user_repo::find_user_by_email(conn, tenant_id, email.as_str())?
        .filter(|u| UserStatus::of(u) == UserStatus::Active);
    let stored = match &user {
        Some(u) => repo::find_code(conn, tenant_id, &u.id)?,
        None => None,
    };
    let presented = code.map(|c| c.digest(key)).unwrap_or_default();
    let (Some(user), Some(stored)) = (user, stored) else {
        return Ok(CodeCheck::Refused);
    };
    if stored.locked_until.is_some_and(|until| until > now) {
        return Ok(CodeCheck::Refused);
    }
    if !constant_time_eq(presented.as_bytes(), stored.code_hash.as_bytes()) {
        let settings = &terms.settings;
        let attempts = stored.failed_attempts + 1;
        if attempts >= i32::try_from(settings.code_attempts).unwrap_or(5) {
            let lockout =
                time::Duration::try_from(settings.code_lockout).unwrap_or(time::Duration::HOUR);
            repo::lock_code(conn, tenant_id, &user.id, now + lockout)?;
            audit::record(
                conn,
                Record {
                    tenant_id,
                    event_type: "recovery.code_locked",
                    actor: Actor::System,
                    subject_user_id: Some(&user.id),
                    client: Some(client),
                    details: json!({ "failed_attempts": attempts, "locked_until": crate::clock::display(now + lockout) }),
                    needs_review: true,
                },
                now,
            )?;
        } else {
            repo::count_failure(conn, tenant_id, &user.id)?;
        }
        return Ok(CodeCheck::Refused);
    }
    let policy =
        crate::policy::load(conn, tenant_id).map_err(crate::passkeys::PasskeyError::from)?;
    let start = passkeys::start_registration(
        conn,
        &terms.passkeys,
        &policy,
        &user,
        Purpose::RecoveryCode,
        json!({ "code_hash": stored.code_hash }),
        now,
    )?;
    Ok(CodeCheck::Accepted(start))
}

/// At the end of a code recovery: the code that opened it must still be the account's
/// (used once), and is replaced by a fresh one, returned to show.
pub fn consume(
    conn: &mut DbConn,
    key: &MasterKey,
    user: &User,
    code_hash: &str,
    now: UtcTime,
) -> Result<RecoveryCode, RecoveryError> {
    let current = repo::find_code(conn, &user.tenant_id, &user.id)?;
    match current {
        Some(c) if constant_time_eq(c.code_hash.as_bytes(), code_hash.as_bytes()) => {
            issue(conn, key, user, now)
        }
        _ => Err(RecoveryError::WrongCode),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_16_unambiguous_characters_grouped_in_fours() {
        let code = RecoveryCode::generate();
        assert_eq!(code.0.len(), 16);
        assert!(code.0.bytes().all(|b| ALPHABET.contains(&b)));
        let grouped = code.grouped();
        assert_eq!(grouped.len(), 19);
        assert_eq!(
            RecoveryCode::parse(&grouped.to_lowercase()),
            Some(code.clone())
        );
        assert_eq!(
            RecoveryCode::parse(&format!(" {} ", grouped.replace('-', " "))),
            Some(code)
        );
        assert_eq!(
            RecoveryCode::parse("ABCD-EFGH-JKMN-PQR0"),
            None,
            "0 is not in the alphabet"
        );
        assert_eq!(RecoveryCode::parse("short"), None);
        assert_ne!(RecoveryCode::generate(), RecoveryCode::generate());
    }

    #[test]
    fn the_digest_depends_on_the_master_key() {
        let code = RecoveryCode::generate();
        assert_ne!(
            code.digest(&MasterKey::generate()),
            code.digest(&MasterKey::generate())
        );
        assert!(!format!("{code:?}").contains(&code.0));
    }
}
