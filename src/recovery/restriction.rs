//! C3 "verify on next sensitive action": for 7 days after an email recovery (when the
//! tenant's policy says `on_restricted`), adding or removing passkeys, renewing the recovery
//! code, making device links and admin actions need a recent sign-in with a passkey that
//! existed before the recovery — which whoever controls the mailbox does not have.

use time::Duration;

use super::RecoveryError;
use crate::clock::UtcTime;
use crate::store::passkeys as passkey_repo;
use crate::store::sessions::BrowserSession;
use crate::store::users::User;
use crate::store::{DbConn, Store, StoreError};

pub const RESTRICTION: Duration = Duration::days(7);
/// How recent the confirming sign-in must be.
pub const FRESH: Duration = Duration::minutes(10);

pub fn is_restricted(user: &User, now: UtcTime) -> bool {
    user.restricted_until.is_some_and(|until| until > now)
}

/// Refuses a sensitive action from a restricted account unless this session was signed in,
/// within the last minutes, with a passkey older than the recovery.
pub fn require_trusted_session(
    conn: &mut DbConn,
    user: &User,
    session: &BrowserSession,
    now: UtcTime,
) -> Result<(), RecoveryError> {
    if !is_restricted(user, now) {
        return Ok(());
    }
    let since = user.restricted_since.unwrap_or(now);
    let fresh = now - session.auth_time <= FRESH;
    let older_passkey = match &session.passkey_id {
        Some(id) => passkey_repo::find_user_passkey(conn, &user.tenant_id, &user.id, id)?
            .is_some_and(|p| p.created_at < since),
        None => false,
    };
    if fresh && older_passkey {
        Ok(())
    } else {
        Err(RecoveryError::StepUpRequired)
    }
}

/// [`require_trusted_session`] on its own, before an action that runs elsewhere.
pub async fn check_trusted_session(
    store: &Store,
    user: User,
    session: BrowserSession,
    now: UtcTime,
) -> Result<(), RecoveryError> {
    store
        .read(move |conn| require_trusted_session(conn, &user, &session, now))
        .await
}

/// Puts the account in restricted mode from `now`.
pub fn restrict(conn: &mut DbConn, user: &User, now: UtcTime) -> Result<(), StoreError> {
    crate::store::users::set_restriction(conn, &user.tenant_id, &user.id, now, now + RESTRICTION)
}
