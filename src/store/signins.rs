//! What a passkey sign-in reads and writes, each in as few statements as the backend allows
//! (on PostgreSQL every statement is a round trip): the account behind an email, with its
//! password and passkeys, in one; the ceremony with the passkey that answers it, in one;
//! and, as one unit, the ceremony spent, the passkey's use, the auth event, the browser's
//! previous session ended, the new session, the account's last login and the audit event —
//! on PostgreSQL one statement that commits by itself (it was nine round trips: `BEGIN`,
//! seven writes, `COMMIT`), on SQLite the same writes one by one in the writer's
//! transaction.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text, Timestamp};
use time::PrimitiveDateTime;

use super::audit::{AuditEvent, insert_audit_event};
use super::auth_events::{AuthEvent, insert_auth_event};
use super::ceremonies::{Ceremony, consume_ceremony};
use super::passkeys::{Passkey, PasskeyUse, update_passkey_use};
use super::prepared::{bind, prepared};
use super::schema::{passkeys, password_credentials, users, webauthn_ceremonies};
use super::sessions::{BrowserSession, end_session_by_token_hash, insert_session};
use super::users::User;
use super::{DbConn, StoreResult, per_backend};

/// An account as the email step sees it.
pub struct Claimed {
    pub user: User,
    pub password_hash: Option<String>,
    /// Oldest first.
    pub passkeys: Vec<Passkey>,
}

/// The account with this email in this tenant, its password hash and its passkeys, in one
/// statement — the same one whether or not the email has an account (P3).
pub fn find_claimed_account(
    conn: &mut DbConn,
    tenant_id: &str,
    email: &str,
) -> StoreResult<Option<Claimed>> {
    let rows: Vec<(User, Option<String>, Option<Passkey>)> = per_backend!(conn, |c| users::table
        .left_join(
            password_credentials::table.on(password_credentials::tenant_id
                .eq(users::tenant_id)
                .and(password_credentials::user_id.eq(users::id))),
        )
        .left_join(
            passkeys::table.on(passkeys::tenant_id
                .eq(users::tenant_id)
                .and(passkeys::user_id.eq(users::id))),
        )
        .filter(users::tenant_id.eq(tenant_id))
        .filter(users::email.eq(email))
        .order(passkeys::created_at.asc())
        .select((
            User::as_select(),
            password_credentials::phc_hash.nullable(),
            Option::<Passkey>::as_select(),
        ))
        .load(c))?;
    let mut rows = rows.into_iter();
    let Some((user, password_hash, first)) = rows.next() else {
        return Ok(None);
    };
    let passkeys = first
        .into_iter()
        .chain(rows.filter_map(|(_, _, passkey)| passkey))
        .collect();
    Ok(Some(Claimed {
        user,
        password_hash,
        passkeys,
    }))
}

/// The ceremony (unexpired) and, if this tenant has it, the passkey with this credential id
/// and its owner, in one statement.
#[allow(clippy::type_complexity)]
pub fn find_ceremony_and_passkey(
    conn: &mut DbConn,
    tenant_id: &str,
    ceremony_id: &str,
    credential_id: &str,
    now: PrimitiveDateTime,
) -> StoreResult<Option<(Ceremony, Option<(Passkey, User)>)>> {
    let row: Option<(Ceremony, Option<Passkey>, Option<User>)> =
        per_backend!(conn, |c| webauthn_ceremonies::table
            .left_join(
                passkeys::table.on(passkeys::tenant_id
                    .eq(webauthn_ceremonies::tenant_id)
                    // Owned: diesel does not take a borrowed value in this join condition.
                    .and(passkeys::credential_id.eq(credential_id.to_string()))),
            )
            .left_join(
                users::table.on(users::tenant_id
                    .eq(passkeys::tenant_id)
                    .and(users::id.eq(passkeys::user_id))),
            )
            .filter(webauthn_ceremonies::id.eq(ceremony_id))
            .filter(webauthn_ceremonies::tenant_id.eq(tenant_id))
            .select((
                Ceremony::as_select(),
                Option::<Passkey>::as_select(),
                Option::<User>::as_select(),
            ))
            .first(c)
            .optional())?;
    // Expiry is checked here rather than in SQL: see `ceremonies::find_live_ceremony`.
    Ok(row
        .filter(|(ceremony, _, _)| ceremony.expires_at > now)
        .map(|(ceremony, passkey, user)| (ceremony, passkey.zip(user))))
}

/// The rows of one passkey sign-in, built by the domain.
pub struct PasskeySignIn<'a> {
    pub tenant_id: &'a str,
    pub ceremony_id: &'a str,
    pub passkey_id: &'a str,
    /// The counter the assertion was checked against: a concurrent use moved it.
    pub expected_sign_count: i64,
    pub passkey_use: &'a PasskeyUse,
    pub attempt: &'a AuthEvent,
    /// The digest of the browser's session cookie before this sign-in, ended (no fixation).
    pub previous_session_hash: Option<&'a str>,
    pub session: &'a BrowserSession,
    pub audit: &'a AuditEvent,
}

#[derive(QueryableByName)]
struct Recorded {
    #[diesel(sql_type = BigInt)]
    recorded: i64,
}

/// Writes the sign-in, unless the ceremony was spent already (a replay) or the passkey's
/// counter moved since the assertion was checked (a concurrent use). `false` means the
/// sign-in must not stand: on PostgreSQL nothing was written; on SQLite the caller's
/// transaction has to roll back (return an error from it).
pub fn record_passkey_sign_in(
    conn: &mut DbConn,
    s: &PasskeySignIn<'_>,
    now: PrimitiveDateTime,
) -> StoreResult<bool> {
    let DbConn::Postgres(c) = conn else {
        return record_on_sqlite(conn, s, now);
    };
    let (e, n, a, u) = (s.attempt, s.session, s.audit, s.passkey_use);
    let recorded = prepared![
        "WITH spent AS (DELETE FROM webauthn_ceremonies WHERE tenant_id = ", " AND id = ",
        " RETURNING id), \
         used AS (UPDATE passkeys SET sign_count = ", ", backup_eligible = ",
        ", backup_state = ", ", last_used_at = ", ", counter_flagged_at = ",
        " WHERE id = ", " AND sign_count = ", " AND EXISTS (SELECT 1 FROM spent) RETURNING id), \
         attempt AS (INSERT INTO auth_events (id, tenant_id, user_id, occurred_at, method, \
         outcome, failure_reason, authenticator, browser_family, os_family, duration_ms) \
         SELECT ", " WHERE EXISTS (SELECT 1 FROM used)), \
         ended AS (UPDATE browser_sessions SET ended_at = ", " WHERE tenant_id = ",
        " AND token_hash = ", " AND ended_at IS NULL AND EXISTS (SELECT 1 FROM used)), \
         started AS (INSERT INTO browser_sessions (id, token_hash, tenant_id, user_id, amr, \
         acr, auth_time, csrf_secret, ip, browser_family, os_family, created_at, \
         last_seen_at, idle_expires_at, absolute_expires_at, ended_at, passkey_id) \
         SELECT ", " WHERE EXISTS (SELECT 1 FROM used)), \
         login AS (UPDATE users SET last_login_at = ", " WHERE tenant_id = ", " AND id = ",
        " AND EXISTS (SELECT 1 FROM used)), \
         audited AS (INSERT INTO audit_events (id, tenant_id, occurred_at, event_type, \
         actor_kind, actor_id, subject_user_id, ip, browser_family, os_family, details, \
         needs_review) SELECT ", " WHERE EXISTS (SELECT 1 FROM used)) \
         SELECT count(*) AS recorded FROM used";
        bind::<Text, _>(s.tenant_id),
        bind::<Text, _>(s.ceremony_id),
        bind::<BigInt, _>(u.sign_count),
        bind::<Bool, _>(u.backup_eligible),
        bind::<Bool, _>(u.backup_state),
        bind::<Nullable<Timestamp>, _>(u.last_used_at),
        bind::<Nullable<Timestamp>, _>(u.counter_flagged_at),
        bind::<Text, _>(s.passkey_id),
        bind::<BigInt, _>(s.expected_sign_count),
        (
            bind::<Text, _>(&e.id),
            bind::<Text, _>(&e.tenant_id),
            bind::<Nullable<Text>, _>(&e.user_id),
            bind::<Timestamp, _>(e.occurred_at),
            bind::<Text, _>(&e.method),
            bind::<Text, _>(&e.outcome),
            bind::<Nullable<Text>, _>(&e.failure_reason),
            bind::<Nullable<Text>, _>(&e.authenticator),
            bind::<Nullable<Text>, _>(&e.browser_family),
            bind::<Nullable<Text>, _>(&e.os_family),
            bind::<Nullable<BigInt>, _>(e.duration_ms),
        ),
        bind::<Timestamp, _>(now),
        bind::<Text, _>(s.tenant_id),
        bind::<Nullable<Text>, _>(s.previous_session_hash),
        (
            bind::<Text, _>(&n.id),
            bind::<Text, _>(&n.token_hash),
            bind::<Text, _>(&n.tenant_id),
            bind::<Text, _>(&n.user_id),
            bind::<Text, _>(&n.amr),
            bind::<Nullable<Text>, _>(&n.acr),
            bind::<Timestamp, _>(n.auth_time),
            bind::<Text, _>(&n.csrf_secret),
            bind::<Nullable<Text>, _>(&n.ip),
            bind::<Nullable<Text>, _>(&n.browser_family),
            bind::<Nullable<Text>, _>(&n.os_family),
            bind::<Timestamp, _>(n.created_at),
            bind::<Timestamp, _>(n.last_seen_at),
            bind::<Timestamp, _>(n.idle_expires_at),
            bind::<Timestamp, _>(n.absolute_expires_at),
            bind::<Nullable<Timestamp>, _>(n.ended_at),
            bind::<Nullable<Text>, _>(&n.passkey_id),
        ),
        bind::<Timestamp, _>(now),
        bind::<Text, _>(s.tenant_id),
        bind::<Text, _>(&n.user_id),
        (
            bind::<Text, _>(&a.id),
            bind::<Nullable<Text>, _>(&a.tenant_id),
            bind::<Timestamp, _>(a.occurred_at),
            bind::<Text, _>(&a.event_type),
            bind::<Text, _>(&a.actor_kind),
            bind::<Nullable<Text>, _>(&a.actor_id),
            bind::<Nullable<Text>, _>(&a.subject_user_id),
            bind::<Nullable<Text>, _>(&a.ip),
            bind::<Nullable<Text>, _>(&a.browser_family),
            bind::<Nullable<Text>, _>(&a.os_family),
            bind::<Text, _>(&a.details),
            bind::<Bool, _>(a.needs_review),
        )
    ]
    .get_result::<Recorded>(c)?;
    Ok(recorded.recorded == 1)
}

fn record_on_sqlite(
    conn: &mut DbConn,
    s: &PasskeySignIn<'_>,
    now: PrimitiveDateTime,
) -> StoreResult<bool> {
    if !consume_ceremony(conn, s.tenant_id, s.ceremony_id)? {
        return Ok(false);
    }
    if update_passkey_use(conn, s.passkey_id, s.expected_sign_count, s.passkey_use)? != 1 {
        return Ok(false);
    }
    insert_auth_event(conn, s.attempt)?;
    if let Some(hash) = s.previous_session_hash {
        end_session_by_token_hash(conn, s.tenant_id, hash, now)?;
    }
    insert_session(conn, s.session)?;
    super::users::record_login(conn, s.tenant_id, &s.session.user_id, now)?;
    insert_audit_event(conn, s.audit)?;
    Ok(true)
}
