//! Browser sessions (server-side): started after a successful login with a fresh id (no
//! fixation), ended by sign-out, idle time or absolute lifetime.

use serde::{Deserialize, Serialize};
use time::Duration;

use crate::client::ClientInfo;
use crate::clock::UtcTime;
use crate::config::SessionSettings;
use crate::crypto::{new_id, random_token, sha256_hex};
use crate::store::sessions::{self as repo, BrowserSession};
use crate::store::users::{User, find_user};
use crate::store::{DbConn, Store, StoreResult};
use crate::users::UserStatus;

/// How a login was made, in RFC 8176 `amr` terms, plus the `acr` it satisfies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authentication {
    pub user_id: String,
    /// RFC 8176 values: `hwk`/`swk` and `user` for passkeys, `pwd` for passwords.
    pub amr: Vec<String>,
    pub acr: Option<String>,
    pub auth_time: UtcTime,
    /// The passkey used, for a passkey sign-in.
    #[serde(default)]
    pub passkey_id: Option<String>,
}

/// `acr` of a phishing-resistant login (a passkey): relying parties ask for it with
/// `acr_values=phr`.
pub const ACR_PHISHING_RESISTANT: &str = "phr";

impl Authentication {
    pub fn is_phishing_resistant(&self) -> bool {
        self.acr.as_deref() == Some(ACR_PHISHING_RESISTANT)
    }
}

/// A session just started: `token` goes into the cookie and is never stored.
pub struct StartedSession {
    pub token: String,
    pub session: BrowserSession,
}

/// The session lifetimes, as durations the clock arithmetic can use.
fn lifetimes(settings: &SessionSettings) -> (Duration, Duration) {
    let convert = |d: std::time::Duration| Duration::try_from(d).unwrap_or(Duration::DAY);
    (
        convert(settings.idle_timeout),
        convert(settings.absolute_timeout),
    )
}

/// A session made but not stored yet: its row, and the token for the cookie.
pub fn new_session(
    tenant_id: &str,
    auth: &Authentication,
    client: &ClientInfo,
    settings: &SessionSettings,
    now: UtcTime,
) -> StartedSession {
    let (idle, absolute) = lifetimes(settings);
    let token = random_token(32);
    let absolute_expires_at = now + absolute;
    let session = BrowserSession {
        id: new_id(),
        token_hash: sha256_hex(&token),
        tenant_id: tenant_id.to_string(),
        user_id: auth.user_id.clone(),
        amr: serde_json::to_string(&auth.amr).unwrap_or_else(|_| "[]".into()),
        acr: auth.acr.clone(),
        auth_time: auth.auth_time,
        csrf_secret: random_token(32),
        ip: client.ip_string(),
        browser_family: client.browser_family.clone(),
        os_family: client.os_family.clone(),
        created_at: now,
        last_seen_at: now,
        idle_expires_at: (now + idle).min(absolute_expires_at),
        absolute_expires_at,
        ended_at: None,
        passkey_id: auth.passkey_id.clone(),
    };
    StartedSession { token, session }
}

/// Finds the live session for a cookie token. Read-only: see [`needs_touch`].
pub fn find_session(
    conn: &mut DbConn,
    tenant_id: &str,
    token: &str,
    now: UtcTime,
) -> StoreResult<Option<BrowserSession>> {
    repo::find_live_session(conn, tenant_id, &sha256_hex(token), now)
}

/// The live session a cookie names and its user, while the user may still sign in. The idle
/// deadline moves forward at most once a minute ([`needs_touch`]).
pub async fn resume(
    store: &Store,
    settings: &SessionSettings,
    tenant_id: &str,
    token: &str,
    now: UtcTime,
) -> StoreResult<Option<(BrowserSession, User)>> {
    let (tenant_id, token) = (tenant_id.to_string(), token.to_string());
    let found = store
        .read(move |conn| {
            let Some(session) = find_session(conn, &tenant_id, &token, now)? else {
                return Ok::<_, crate::store::StoreError>(None);
            };
            let user = find_user(conn, &tenant_id, &session.user_id)?;
            Ok(user
                .filter(|u| UserStatus::of(u) == UserStatus::Active)
                .map(|user| (session, user)))
        })
        .await?;
    if let Some((session, _)) = &found
        && needs_touch(session, now)
    {
        let (session, settings) = (session.clone(), settings.clone());
        store
            .write(move |conn| touch_session(conn, &session, &settings, now))
            .await?;
    }
    Ok(found)
}

/// Signs out of this browser, or of every browser of the session's user.
pub async fn sign_out(
    store: &Store,
    session: BrowserSession,
    everywhere: bool,
    now: UtcTime,
) -> StoreResult<()> {
    store
        .write(move |conn| {
            if everywhere {
                end_all_sessions(conn, &session.tenant_id, &session.user_id, now)?;
            } else {
                end_session(conn, &session, now)?;
            }
            Ok(())
        })
        .await
}

/// Extending the idle deadline on every request would make every page view a write; once a
/// minute is precise enough for a deadline measured in hours.
pub fn needs_touch(session: &BrowserSession, now: UtcTime) -> bool {
    now - session.last_seen_at >= Duration::MINUTE
}

pub fn touch_session(
    conn: &mut DbConn,
    session: &BrowserSession,
    settings: &SessionSettings,
    now: UtcTime,
) -> StoreResult<()> {
    let (idle, _) = lifetimes(settings);
    let idle_expires_at = (now + idle).min(session.absolute_expires_at);
    repo::touch_session(conn, &session.id, now, idle_expires_at)
}

pub fn end_session(conn: &mut DbConn, session: &BrowserSession, now: UtcTime) -> StoreResult<()> {
    repo::end_session(conn, &session.tenant_id, &session.id, now)?;
    Ok(())
}

/// Signs the user out on every browser.
pub fn end_all_sessions(
    conn: &mut DbConn,
    tenant_id: &str,
    user_id: &str,
    now: UtcTime,
) -> StoreResult<usize> {
    repo::end_user_sessions(conn, tenant_id, user_id, now)
}

/// The session's `amr` values.
pub fn amr(session: &BrowserSession) -> Vec<String> {
    serde_json::from_str(&session.amr).unwrap_or_default()
}
