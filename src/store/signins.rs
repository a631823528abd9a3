//! What a sign-in reads and writes, each in as few statements as the backend allows (on
//! PostgreSQL every statement is a round trip): the account behind an email, with its
//! password and passkeys, in one; the ceremony with the passkey that answers it, in one;
//! a session's rows ([`SessionRows`]) for every way in; and a passkey sign-in as one unit —
//! the ceremony spent, the passkey's use and the session's rows — on PostgreSQL one
//! statement that commits by itself, on SQLite the same writes one by one in the writer's
//! transaction. Each function here means the same on both backends and chooses its own
//! transaction mode.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text, Timestamp};
use time::PrimitiveDateTime;

use super::audit::{AuditEvent, insert_audit_event};
use super::auth_events::{AuthEvent, insert_auth_event};
use super::ceremonies::{Ceremony, consume_ceremony, insert_ceremony};
use super::passkeys::{Passkey, PasskeyUse, update_passkey_use};
use super::prepared::{bind, prepared};
use super::schema::{passkeys, password_credentials, users, webauthn_ceremonies};
use super::sessions::{BrowserSession, end_session_by_token_hash, insert_session};
use super::users::User;
use super::{DbConn, Store, StoreError, StoreResult, per_backend};

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

/// The email step as one store job: the account is read ([`find_claimed_account`]), `start`
/// makes the ceremony from what was found — without a connection, so it cannot write — and
/// the ceremony is inserted, the job's only write (atomic alone on either backend). On
/// SQLite the job runs on the writer, whose page cache is warm (one hand-off); on
/// PostgreSQL it is two statements on a pooled connection.
pub async fn claim_and_start_ceremony<T, E, F>(
    store: &Store,
    tenant_id: String,
    email: String,
    start: F,
) -> Result<T, E>
where
    F: FnOnce(Option<Claimed>) -> Result<(Ceremony, T), E> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    store
        .on_writer_else_pooled(move |conn| {
            let claimed = find_claimed_account(conn, &tenant_id, &email)?;
            let (ceremony, answer) = start(claimed)?;
            insert_ceremony(conn, &ceremony)?;
            Ok(answer)
        })
        .await
}

/// A ceremony to finish, with the passkey that answers it and its owner when this tenant has
/// that credential.
pub struct CeremonyToFinish {
    pub ceremony: Ceremony,
    pub answering: Option<(Passkey, User)>,
}

/// The ceremony (unexpired) and, if this tenant has it, the passkey with this credential id
/// and its owner, in one statement. The sign-in's write follows: on SQLite the read runs on
/// the writer's warm cache, on PostgreSQL on a pooled connection.
pub async fn find_ceremony_to_finish(
    store: &Store,
    tenant_id: String,
    ceremony_id: String,
    credential_id: String,
    now: PrimitiveDateTime,
) -> StoreResult<Option<CeremonyToFinish>> {
    store
        .on_writer_else_pooled(move |conn| {
            find_ceremony_and_passkey(conn, &tenant_id, &ceremony_id, &credential_id, now)
        })
        .await
}

fn find_ceremony_and_passkey(
    conn: &mut DbConn,
    tenant_id: &str,
    ceremony_id: &str,
    credential_id: &str,
    now: PrimitiveDateTime,
) -> StoreResult<Option<CeremonyToFinish>> {
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
        .map(|(ceremony, passkey, user)| CeremonyToFinish {
            ceremony,
            answering: passkey.zip(user),
        }))
}

/// What establishing a session writes, whoever signs in (the domain's
/// `signin::establish_session` builds it): the browser's previous session ended (no
/// fixation), the new session, the account's last login, the auth event and the audit event.
pub struct SessionRows {
    /// The digest of the browser's session cookie before this sign-in.
    pub previous_session_hash: Option<String>,
    pub session: BrowserSession,
    pub attempt: AuthEvent,
    pub audit: AuditEvent,
}

/// Writes a session's rows, in the caller's transaction.
pub fn insert_session_rows(
    conn: &mut DbConn,
    rows: &SessionRows,
    now: PrimitiveDateTime,
) -> StoreResult<()> {
    let session = &rows.session;
    if let Some(hash) = &rows.previous_session_hash {
        end_session_by_token_hash(conn, &session.tenant_id, hash, now)?;
    }
    insert_session(conn, session)?;
    super::users::record_login(conn, &session.tenant_id, &session.user_id, now)?;
    insert_auth_event(conn, &rows.attempt)?;
    insert_audit_event(conn, &rows.audit)
}

/// What a passkey sign-in proves, written with its session: the ceremony is spent and the
/// passkey's use recorded, compare-and-set on the counter the assertion was checked against
/// (a concurrent use moved it).
pub struct PasskeyProof {
    pub ceremony_id: String,
    pub passkey_id: String,
    pub expected_sign_count: i64,
    pub passkey_use: PasskeyUse,
    /// The review event of a counter that went backwards and that policy only flags (P5).
    pub flagged: Option<AuditEvent>,
}

/// What became of a passkey sign-in's write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInRecorded {
    Recorded,
    /// The ceremony was spent already (a replay) or the counter moved since the assertion
    /// was checked (a concurrent use): nothing was written, on either backend.
    Refused,
}

/// A refusal inside a store job: returned as an error so the job's writes roll back.
enum Refusal {
    Refused,
    Store(StoreError),
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        Refusal::Store(e)
    }
}

/// Writes a passkey sign-in — its proof and its session's rows — or nothing. On PostgreSQL
/// one statement that commits by itself (with the flagged counter's review event, a
/// transaction around it and that insert); on SQLite the writes one by one in the writer's
/// transaction.
pub async fn record_passkey_sign_in(
    store: &Store,
    proof: PasskeyProof,
    rows: SessionRows,
    now: PrimitiveDateTime,
) -> StoreResult<SignInRecorded> {
    // Without a review event the write is one statement, atomic by itself on PostgreSQL.
    let is_one_statement = proof.flagged.is_none();
    let work = move |conn: &mut DbConn| {
        let recorded = match conn {
            DbConn::Postgres(c) => record_on_postgres(c, &proof, &rows, now)?,
            DbConn::Sqlite(_) => record_on_sqlite(conn, &proof, &rows, now)?,
        };
        if !recorded {
            return Err(Refusal::Refused);
        }
        if let Some(flagged) = &proof.flagged {
            insert_audit_event(conn, flagged)?;
        }
        Ok(SignInRecorded::Recorded)
    };
    let outcome = if is_one_statement {
        store.on_writer_else_pooled(work).await
    } else {
        store.write(work).await
    };
    match outcome {
        Ok(recorded) => Ok(recorded),
        Err(Refusal::Refused) => Ok(SignInRecorded::Refused),
        Err(Refusal::Store(e)) => Err(e),
    }
}

#[derive(QueryableByName)]
struct Recorded {
    #[diesel(sql_type = BigInt)]
    recorded: i64,
}

/// The sign-in as one data-modifying CTE: every write is conditional on the ceremony's
/// deletion and the counter's compare-and-set, so `false` means nothing was written.
fn record_on_postgres(
    c: &mut diesel::PgConnection,
    proof: &PasskeyProof,
    rows: &SessionRows,
    now: PrimitiveDateTime,
) -> StoreResult<bool> {
    let tenant_id = &rows.session.tenant_id;
    let (e, n, a, u) = (
        &rows.attempt,
        &rows.session,
        &rows.audit,
        &proof.passkey_use,
    );
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
        bind::<Text, _>(tenant_id),
        bind::<Text, _>(&proof.ceremony_id),
        bind::<BigInt, _>(u.sign_count),
        bind::<Bool, _>(u.backup_eligible),
        bind::<Bool, _>(u.backup_state),
        bind::<Nullable<Timestamp>, _>(u.last_used_at),
        bind::<Nullable<Timestamp>, _>(u.counter_flagged_at),
        bind::<Text, _>(&proof.passkey_id),
        bind::<BigInt, _>(proof.expected_sign_count),
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
        bind::<Text, _>(tenant_id),
        bind::<Nullable<Text>, _>(&rows.previous_session_hash),
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
        bind::<Text, _>(tenant_id),
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

/// The same writes one by one, in the writer's transaction; `false` before any write is
/// kept (the caller's job then rolls back).
fn record_on_sqlite(
    conn: &mut DbConn,
    proof: &PasskeyProof,
    rows: &SessionRows,
    now: PrimitiveDateTime,
) -> StoreResult<bool> {
    let tenant_id = &rows.session.tenant_id;
    if !consume_ceremony(conn, tenant_id, &proof.ceremony_id)? {
        return Ok(false);
    }
    if update_passkey_use(
        conn,
        &proof.passkey_id,
        proof.expected_sign_count,
        &proof.passkey_use,
    )? != 1
    {
        return Ok(false);
    }
    insert_session_rows(conn, rows, now)?;
    Ok(true)
}
