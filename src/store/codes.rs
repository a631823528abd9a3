//! Authorization codes (RFC 6749 §4.1.2): stored as SHA-256 digests, single use; what the
//! redemption issued is recorded so a replay can revoke it.

use diesel::prelude::*;
use diesel::sql_types::{Bool, Nullable, Text, Timestamp};
use time::PrimitiveDateTime;

use super::prepared::{bind, prepared};
use super::schema::authorization_codes;
use super::tokens::{RefreshToken, RefreshTokenFamily, insert_family, insert_refresh_token};
use super::{DbConn, Store, StoreError, StoreResult, per_backend};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = authorization_codes)]
// None as NULL: one SQL text, so diesel caches the insert by type, never re-rendering it.
#[diesel(treat_none_as_default_value = false)]
pub struct AuthorizationCode {
    pub code_hash: String,
    pub tenant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub session_id: Option<String>,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub auth_time: PrimitiveDateTime,
    pub amr: String,
    pub acr: Option<String>,
    pub created_at: PrimitiveDateTime,
    pub expires_at: PrimitiveDateTime,
    pub redeemed_at: Option<PrimitiveDateTime>,
    pub issued_family_id: Option<String>,
    pub issued_access_jti: Option<String>,
    pub issued_access_expires_at: Option<PrimitiveDateTime>,
}

pub fn insert_code(conn: &mut DbConn, code: &AuthorizationCode) -> StoreResult<()> {
    per_backend!(conn, |c| diesel::insert_into(authorization_codes::table)
        .values(code)
        .execute(c))?;
    Ok(())
}

pub fn find_code(
    conn: &mut DbConn,
    tenant_id: &str,
    code_hash: &str,
) -> StoreResult<Option<AuthorizationCode>> {
    Ok(per_backend!(conn, |c| authorization_codes::table
        .filter(authorization_codes::tenant_id.eq(tenant_id))
        .filter(authorization_codes::code_hash.eq(code_hash))
        .select(AuthorizationCode::as_select())
        .first(c)
        .optional())?)
}

/// Claims the code for one redemption: true only for the first caller, also when two
/// redemptions race (the conditional UPDATE is atomic on both backends).
pub fn update_code_redeemed(
    conn: &mut DbConn,
    tenant_id: &str,
    code_hash: &str,
    now: PrimitiveDateTime,
) -> StoreResult<bool> {
    let claimed = per_backend!(conn, |c| prepared![
        "UPDATE authorization_codes SET redeemed_at = ",
        " WHERE tenant_id = ", " AND code_hash = ", " AND redeemed_at IS NULL";
        bind::<Timestamp, _>(now),
        bind::<Text, _>(tenant_id),
        bind::<Text, _>(code_hash)
    ]
    .execute(c))?;
    Ok(claimed == 1)
}

/// A code as presented at the token endpoint, with everything its redemption must match.
pub struct PresentedCode {
    pub tenant_id: String,
    pub code_hash: String,
    pub client_id: String,
    pub redirect_uri: String,
    /// BASE64URL(SHA256(code_verifier)), compared with the stored challenge by the database
    /// (not in constant time: the challenge crossed the front channel in the clear, and
    /// learning it gives no verifier).
    pub code_challenge: String,
    /// The status the code's user must still have (`users::UserStatus::Active`).
    pub user_status: &'static str,
}

/// What a redemption issues: the access token, and a refresh-token family when the code's
/// scope includes `offline_access` or the client always gets one.
pub struct Redemption {
    pub access_jti: String,
    pub access_expires_at: PrimitiveDateTime,
    /// `None` when the client may not use the refresh grant at all.
    pub family: Option<NewFamily>,
    pub is_refresh_always_issued: bool,
    /// A LIKE pattern matching a space-separated scope that grants offline access (built
    /// from `oidc::scopes::OFFLINE_ACCESS`).
    pub offline_scope_pattern: String,
}

/// The family a redemption would start, and its first refresh token.
pub struct NewFamily {
    pub id: String,
    pub absolute_expires_at: PrimitiveDateTime,
    pub refresh_token_hash: String,
    pub refresh_idle_expires_at: PrimitiveDateTime,
}

/// Redeems the code if everything matches — unused, unexpired, this client, this redirect
/// URI, this PKCE challenge, its user active — spending it and storing what it issues (the
/// access token's `jti`; the refresh family and its first token) in one atomic write: on
/// PostgreSQL one statement, on SQLite the writer's transaction. The code as it was
/// (`issued_family_id` set when a family was started); `None` when anything did not match,
/// and then nothing was written.
fn claim_code(
    conn: &mut DbConn,
    presented: &PresentedCode,
    redemption: &Redemption,
    now: PrimitiveDateTime,
) -> StoreResult<Option<AuthorizationCode>> {
    let family = redemption.family.as_ref();
    let DbConn::Postgres(c) = conn else {
        return claim_code_on_sqlite(conn, presented, redemption, now);
    };
    // The family is started when the code's scope matches the offline-access pattern or the
    // client always gets one. Data-modifying CTEs run once whether or not the final SELECT reads
    // them; the family and its token are inserted only when the claim started one.
    Ok(prepared![
        "WITH claimed AS (UPDATE authorization_codes SET redeemed_at = ",
        ", issued_family_id = CASE WHEN ",
        " OR (' ' || scope || ' ') LIKE ", " ESCAPE '\\' THEN ",
        " END, issued_access_jti = ", ", issued_access_expires_at = ",
        " WHERE tenant_id = ", " AND code_hash = ", " AND redeemed_at IS NULL AND expires_at > ",
        " AND client_id = ", " AND redirect_uri = ", " AND code_challenge = ",
        " AND EXISTS (SELECT 1 FROM users u WHERE u.tenant_id = authorization_codes.tenant_id \
         AND u.id = authorization_codes.user_id AND u.status = ", ") RETURNING *), \
         family AS (INSERT INTO refresh_token_families (id, tenant_id, client_id, user_id, \
         session_id, scope, auth_time, amr, acr, created_at, absolute_expires_at, revoked_at, \
         revoked_reason) SELECT issued_family_id, tenant_id, client_id, user_id, session_id, \
         scope, auth_time, amr, acr, redeemed_at, ",
        ", NULL, NULL FROM claimed WHERE issued_family_id IS NOT NULL RETURNING id, tenant_id), \
         token AS (INSERT INTO refresh_tokens (token_hash, tenant_id, family_id, created_at, \
         idle_expires_at, rotated_at, access_jti, access_expires_at) SELECT ",
        ", family.tenant_id, family.id, claimed.redeemed_at, ",
        ", NULL, claimed.issued_access_jti, claimed.issued_access_expires_at \
         FROM family, claimed RETURNING 1) SELECT * FROM claimed";
        bind::<Timestamp, _>(now),
        bind::<Bool, _>(redemption.is_refresh_always_issued),
        bind::<Text, _>(&redemption.offline_scope_pattern),
        bind::<Nullable<Text>, _>(family.map(|f| f.id.as_str())),
        bind::<Text, _>(&redemption.access_jti),
        bind::<Timestamp, _>(redemption.access_expires_at),
        bind::<Text, _>(&presented.tenant_id),
        bind::<Text, _>(&presented.code_hash),
        bind::<Timestamp, _>(now),
        bind::<Text, _>(&presented.client_id),
        bind::<Text, _>(&presented.redirect_uri),
        bind::<Text, _>(&presented.code_challenge),
        bind::<Text, _>(presented.user_status),
        bind::<Timestamp, _>(family.map_or(now, |f| f.absolute_expires_at)),
        bind::<Text, _>(family.map_or("", |f| f.refresh_token_hash.as_str())),
        bind::<Timestamp, _>(family.map_or(now, |f| f.refresh_idle_expires_at))
    ]
    .get_result::<AuthorizationCode>(c)
    .optional()?)
}

/// Claims the code ([`claim_code`], the job's only write, atomic alone on either backend)
/// and hands what it claimed to `then`. `prepare` (what the claim presents and would issue)
/// and `then` (the signing) get no connection and run in the claim's store job: on SQLite on
/// the writer, which then batches fewer, longer jobs per commit (docs/performance.md); on
/// PostgreSQL on a pooled connection without a transaction.
pub async fn claim_code_then<T, E, X, P, F>(
    store: &Store,
    now: PrimitiveDateTime,
    prepare: P,
    then: F,
) -> Result<Option<T>, E>
where
    P: FnOnce() -> (PresentedCode, Redemption, X) + Send + 'static,
    F: FnOnce(AuthorizationCode, X) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    store
        .on_writer_else_pooled(move |conn| {
            let (presented, redemption, issued) = prepare();
            match claim_code(conn, &presented, &redemption, now)? {
                Some(code) => then(code, issued).map(Some),
                None => Ok(None),
            }
        })
        .await
}

/// SQLite has no data-modifying CTE: the claim, then the family and its token, in the
/// writer's transaction, which no other write interleaves with.
fn claim_code_on_sqlite(
    conn: &mut DbConn,
    presented: &PresentedCode,
    redemption: &Redemption,
    now: PrimitiveDateTime,
) -> StoreResult<Option<AuthorizationCode>> {
    let family = redemption.family.as_ref();
    let claimed = per_backend!(conn, |c| {
        prepared![
        "UPDATE authorization_codes SET redeemed_at = ", ", issued_family_id = CASE WHEN ",
        " OR (' ' || scope || ' ') LIKE ", " ESCAPE '\\' THEN ",
        " END, issued_access_jti = ", ", issued_access_expires_at = ",
        " WHERE tenant_id = ", " AND code_hash = ", " AND redeemed_at IS NULL AND expires_at > ",
        " AND client_id = ", " AND redirect_uri = ", " AND code_challenge = ",
        " AND EXISTS (SELECT 1 FROM users u WHERE u.tenant_id = authorization_codes.tenant_id \
         AND u.id = authorization_codes.user_id AND u.status = ", ") RETURNING *";
        bind::<Timestamp, _>(now),
        bind::<Bool, _>(redemption.is_refresh_always_issued),
        bind::<Text, _>(&redemption.offline_scope_pattern),
        bind::<Nullable<Text>, _>(family.map(|f| f.id.as_str())),
        bind::<Text, _>(&redemption.access_jti),
        bind::<Timestamp, _>(redemption.access_expires_at),
        bind::<Text, _>(&presented.tenant_id),
        bind::<Text, _>(&presented.code_hash),
        bind::<Timestamp, _>(now),
        bind::<Text, _>(&presented.client_id),
        bind::<Text, _>(&presented.redirect_uri),
        bind::<Text, _>(&presented.code_challenge),
        bind::<Text, _>(presented.user_status)
    ]
    .get_result::<AuthorizationCode>(c)
    .optional()
    })?;
    if let (Some(code), Some(family)) = (&claimed, family)
        && code.issued_family_id.is_some()
    {
        insert_family(
            conn,
            &RefreshTokenFamily {
                id: family.id.clone(),
                tenant_id: code.tenant_id.clone(),
                client_id: code.client_id.clone(),
                user_id: code.user_id.clone(),
                session_id: code.session_id.clone(),
                scope: code.scope.clone(),
                auth_time: code.auth_time,
                amr: code.amr.clone(),
                acr: code.acr.clone(),
                created_at: now,
                absolute_expires_at: family.absolute_expires_at,
                revoked_at: None,
                revoked_reason: None,
            },
        )?;
        insert_refresh_token(
            conn,
            &RefreshToken {
                token_hash: family.refresh_token_hash.clone(),
                tenant_id: code.tenant_id.clone(),
                family_id: family.id.clone(),
                created_at: now,
                idle_expires_at: family.refresh_idle_expires_at,
                rotated_at: None,
                access_jti: redemption.access_jti.clone(),
                access_expires_at: redemption.access_expires_at,
            },
        )?;
    }
    Ok(claimed)
}

/// Codes live 60 seconds; the rows are kept a while longer so a late replay is still
/// recognised, then removed by the key/housekeeping task.
pub fn delete_codes_expired_before(
    conn: &mut DbConn,
    before: PrimitiveDateTime,
) -> StoreResult<usize> {
    Ok(diesel::delete(
        authorization_codes::table.filter(authorization_codes::expires_at.lt(before)),
    )
    .execute(conn)?)
}
