//! The one place a login becomes a session (DESIGN "Login" step 4): the browser's previous
//! session ends (no fixation), a new one starts, and the audit row and the auth event are
//! written with it — in the caller's transaction, or, for a passkey assertion, together with
//! what the assertion spends (the ceremony, the counter) in the store's one statement.

use serde_json::json;

use super::{LoginContext, LoginResult, SignInError, SignedIn};
use crate::audit::{self, Actor, Record};
use crate::auth_events::{self, Attempt};
use crate::clock::UtcTime;
use crate::config::SessionSettings;
use crate::crypto::sha256_hex;
use crate::passkeys::PasskeyError;
use crate::sessions::{self, StartedSession};
use crate::store::signins::{self, PasskeyProof, SessionRows, SignInRecorded};
use crate::store::{DbConn, Store, StoreError};

/// The session a login starts and the rows that go with it, made but not written.
fn session_rows(
    login: &LoginResult,
    ctx: &LoginContext,
    settings: &SessionSettings,
    now: UtcTime,
) -> (StartedSession, SessionRows) {
    let user = &login.user;
    let client = &ctx.client;
    let started = sessions::new_session(
        &user.tenant_id,
        &login.authentication(),
        client,
        settings,
        now,
    );
    let attempt = auth_events::row(
        Attempt {
            tenant_id: &user.tenant_id,
            user_id: Some(&user.id),
            method: login.method,
            failure: None,
            authenticator: login.authenticator.as_ref().map(|a| a.kind),
            client,
            duration_ms: ctx.duration_ms,
        },
        now,
    );
    // Refused attempts are auth events (for the metrics), not audit.
    let audit = audit::row(
        Record {
            tenant_id: &user.tenant_id,
            event_type: "signin.succeeded",
            actor: Actor::User(user.id.clone()),
            subject_user_id: Some(&user.id),
            client: Some(client),
            details: json!({
                "session_id": started.session.id,
                "amr": started.session.amr,
                "method": login.method.as_str(),
            }),
            needs_review: false,
        },
        now,
    );
    let rows = SessionRows {
        previous_session_hash: ctx.previous_session_token.as_deref().map(sha256_hex),
        session: started.session.clone(),
        attempt,
        audit,
    };
    (started, rows)
}

/// Starts the session of `login` in the caller's transaction (a password login, a passkey
/// just enrolled).
pub fn establish_session(
    conn: &mut DbConn,
    login: LoginResult,
    ctx: &LoginContext,
    settings: &SessionSettings,
    now: UtcTime,
) -> Result<SignedIn, StoreError> {
    let (started, rows) = session_rows(&login, ctx, settings, now);
    signins::insert_session_rows(conn, &rows, now)?;
    Ok(SignedIn {
        started,
        user: login.user,
    })
}

/// Starts the session of a passkey assertion together with what the assertion spends: the
/// ceremony and the counter, so a replayed or raced assertion starts nothing.
pub(super) async fn establish_passkey_session(
    store: &Store,
    login: LoginResult,
    proof: PasskeyProof,
    ctx: &LoginContext,
    settings: &SessionSettings,
    now: UtcTime,
) -> Result<SignedIn, SignInError> {
    let (started, rows) = session_rows(&login, ctx, settings, now);
    match signins::record_passkey_sign_in(store, proof, rows, now).await? {
        SignInRecorded::Recorded => Ok(SignedIn {
            started,
            user: login.user,
        }),
        SignInRecorded::Refused => Err(PasskeyError::CeremonyNotFound.into()),
    }
}
