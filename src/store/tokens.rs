//! Refresh-token families, refresh tokens and revoked access tokens. Refresh tokens are random
//! and stored as SHA-256 digests; access tokens are self-contained JWTs, so only a revoked
//! one leaves a row (its `jti`, until it expires).

use diesel::prelude::*;
use diesel::sql_types::{Text, Timestamp};
use time::PrimitiveDateTime;

use super::prepared::{bind, prepared};
use super::schema::{refresh_token_families, refresh_tokens, revoked_access_tokens, users};
use super::{DbConn, Store, StoreError, StoreResult, per_backend};

/// Everything issued from one authorization: every rotation stays in the family, so reuse of
/// any member revokes all of them.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = refresh_token_families)]
// None as NULL: one SQL text, so diesel caches the insert by type, never re-rendering it.
#[diesel(treat_none_as_default_value = false)]
pub struct RefreshTokenFamily {
    pub id: String,
    pub tenant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub session_id: Option<String>,
    pub scope: String,
    pub auth_time: PrimitiveDateTime,
    pub amr: String,
    pub acr: Option<String>,
    pub created_at: PrimitiveDateTime,
    pub absolute_expires_at: PrimitiveDateTime,
    pub revoked_at: Option<PrimitiveDateTime>,
    pub revoked_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
// None as NULL: one SQL text, so diesel caches the insert by type, never re-rendering it.
#[diesel(treat_none_as_default_value = false)]
pub struct RefreshToken {
    pub token_hash: String,
    pub tenant_id: String,
    pub family_id: String,
    pub created_at: PrimitiveDateTime,
    pub idle_expires_at: PrimitiveDateTime,
    pub rotated_at: Option<PrimitiveDateTime>,
    /// The access token issued together with this refresh token.
    pub access_jti: String,
    pub access_expires_at: PrimitiveDateTime,
}

pub fn insert_family(conn: &mut DbConn, family: &RefreshTokenFamily) -> StoreResult<()> {
    per_backend!(conn, |c| diesel::insert_into(refresh_token_families::table)
        .values(family)
        .execute(c))?;
    Ok(())
}

pub fn insert_refresh_token(conn: &mut DbConn, token: &RefreshToken) -> StoreResult<()> {
    per_backend!(conn, |c| diesel::insert_into(refresh_tokens::table)
        .values(token)
        .execute(c))?;
    Ok(())
}

/// A refresh token and its family, by the token's digest.
pub fn find_refresh_token(
    conn: &mut DbConn,
    tenant_id: &str,
    token_hash: &str,
) -> StoreResult<Option<(RefreshToken, RefreshTokenFamily)>> {
    Ok(per_backend!(conn, |c| refresh_tokens::table
        .inner_join(
            refresh_token_families::table.on(refresh_token_families::id
                .eq(refresh_tokens::family_id)
                .and(refresh_token_families::tenant_id.eq(refresh_tokens::tenant_id))),
        )
        .filter(refresh_tokens::tenant_id.eq(tenant_id))
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .select((RefreshToken::as_select(), RefreshTokenFamily::as_select()))
        .first(c)
        .optional())?)
}

/// A refresh token, its family and the status of the family's user, in one statement: what
/// a refresh checks before it rotates.
pub fn find_refresh_grant(
    conn: &mut DbConn,
    tenant_id: &str,
    token_hash: &str,
) -> StoreResult<Option<(RefreshToken, RefreshTokenFamily, String)>> {
    Ok(per_backend!(conn, |c| refresh_tokens::table
        .inner_join(
            refresh_token_families::table.on(refresh_token_families::id
                .eq(refresh_tokens::family_id)
                .and(refresh_token_families::tenant_id.eq(refresh_tokens::tenant_id))),
        )
        .inner_join(
            users::table.on(users::id
                .eq(refresh_token_families::user_id)
                .and(users::tenant_id.eq(refresh_token_families::tenant_id))),
        )
        .filter(refresh_tokens::tenant_id.eq(tenant_id))
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .select((
            RefreshToken::as_select(),
            RefreshTokenFamily::as_select(),
            users::status,
        ))
        .first(c)
        .optional())?)
}

/// A refresh token as presented by a client.
pub struct PresentedRefreshToken {
    pub tenant_id: String,
    pub token_hash: String,
    pub client_id: String,
    /// The status the family's user must still have (`users::UserStatus::Active`).
    pub user_status: &'static str,
}

/// The refresh token to store in the presented one's family, and the access token issued
/// with it. Its idle expiry is capped at the family's absolute expiry by the rotation.
pub struct NextRefreshToken {
    pub token_hash: String,
    pub idle_expires_at: PrimitiveDateTime,
    pub access_jti: String,
    pub access_expires_at: PrimitiveDateTime,
}

#[derive(QueryableByName)]
struct UsedRefreshToken {
    #[diesel(sql_type = Text)]
    family_id: String,
}

/// Rotation (a refresh): marks the presented token used and stores `next` in its family,
/// atomically, only if the token is unused and unexpired, its family the client's, unrevoked
/// and unexpired, and its user active — checked by the write itself, so a refresh need not
/// read first. Returns the family; `None` for the second of two uses, even concurrent ones.
/// `None` writes nothing, except when a revocation of the family commits between the two
/// steps on PostgreSQL: the token then stays marked used, in a revoked family. On PostgreSQL
/// one statement that commits by itself; the family row is share-locked so that a
/// revocation running at the same time either sees `next` (and revokes its access token) or
/// keeps it from being stored. On SQLite three statements in the writer's transaction.
pub async fn rotate_presented_refresh_token(
    store: &Store,
    presented: PresentedRefreshToken,
    next: NextRefreshToken,
    now: PrimitiveDateTime,
) -> StoreResult<Option<RefreshTokenFamily>> {
    store
        .on_writer_else_pooled(move |conn| rotate_presented(conn, &presented, &next, now))
        .await
}

/// [`find_refresh_grant`] before the rotation it decides: on SQLite on the writer's warm
/// cache, on PostgreSQL on a pooled connection.
pub async fn find_refresh_grant_to_rotate(
    store: &Store,
    tenant_id: String,
    token_hash: String,
) -> StoreResult<Option<(RefreshToken, RefreshTokenFamily, String)>> {
    store
        .on_writer_else_pooled(move |conn| find_refresh_grant(conn, &tenant_id, &token_hash))
        .await
}

fn rotate_presented(
    conn: &mut DbConn,
    presented: &PresentedRefreshToken,
    next: &NextRefreshToken,
    now: PrimitiveDateTime,
) -> Result<Option<RefreshTokenFamily>, StoreError> {
    let DbConn::Postgres(c) = conn else {
        return rotate_presented_on_sqlite(conn, presented, next, now);
    };
    Ok(prepared![
        "WITH used AS (UPDATE refresh_tokens SET rotated_at = ",
        " WHERE tenant_id = ", " AND token_hash = ",
        " AND rotated_at IS NULL AND idle_expires_at > ",
        " AND EXISTS (SELECT 1 FROM refresh_token_families f \
         JOIN users u ON u.tenant_id = f.tenant_id AND u.id = f.user_id \
         WHERE f.tenant_id = refresh_tokens.tenant_id AND f.id = refresh_tokens.family_id \
         AND u.status = ", " AND f.revoked_at IS NULL AND f.client_id = ",
        " AND f.absolute_expires_at > ",
        ") RETURNING tenant_id, family_id), \
         family AS (SELECT f.* FROM refresh_token_families f \
         WHERE f.tenant_id = (SELECT tenant_id FROM used) \
         AND f.id = (SELECT family_id FROM used) AND f.revoked_at IS NULL FOR SHARE), \
         next AS (INSERT INTO refresh_tokens (token_hash, tenant_id, family_id, created_at, \
         idle_expires_at, rotated_at, access_jti, access_expires_at) \
         SELECT ", ", tenant_id, id, ", ", LEAST(", ", absolute_expires_at), NULL, ", ", ",
        " FROM family RETURNING family_id) \
         SELECT family.* FROM family JOIN next ON next.family_id = family.id";
        bind::<Timestamp, _>(now),
        bind::<Text, _>(&presented.tenant_id),
        bind::<Text, _>(&presented.token_hash),
        bind::<Timestamp, _>(now),
        bind::<Text, _>(presented.user_status),
        bind::<Text, _>(&presented.client_id),
        bind::<Timestamp, _>(now),
        bind::<Text, _>(&next.token_hash),
        bind::<Timestamp, _>(now),
        bind::<Timestamp, _>(next.idle_expires_at),
        bind::<Text, _>(&next.access_jti),
        bind::<Timestamp, _>(next.access_expires_at)
    ]
    .get_result::<RefreshTokenFamily>(c)
    .optional()?)
}

/// SQLite has no data-modifying CTE: the same checks and writes as three statements, in the
/// writer's transaction, which no other write interleaves with.
fn rotate_presented_on_sqlite(
    conn: &mut DbConn,
    presented: &PresentedRefreshToken,
    next: &NextRefreshToken,
    now: PrimitiveDateTime,
) -> StoreResult<Option<RefreshTokenFamily>> {
    let used = per_backend!(conn, |c| prepared![
        "UPDATE refresh_tokens SET rotated_at = ",
        " WHERE tenant_id = ", " AND token_hash = ",
        " AND rotated_at IS NULL AND idle_expires_at > ",
        " AND EXISTS (SELECT 1 FROM refresh_token_families f \
         JOIN users u ON u.tenant_id = f.tenant_id AND u.id = f.user_id \
         WHERE f.tenant_id = refresh_tokens.tenant_id AND f.id = refresh_tokens.family_id \
         AND u.status = ", " AND f.revoked_at IS NULL AND f.client_id = ",
        " AND f.absolute_expires_at > ", ") RETURNING family_id";
        bind::<Timestamp, _>(now),
        bind::<Text, _>(&presented.tenant_id),
        bind::<Text, _>(&presented.token_hash),
        bind::<Timestamp, _>(now),
        bind::<Text, _>(presented.user_status),
        bind::<Text, _>(&presented.client_id),
        bind::<Timestamp, _>(now)
    ]
    .get_result::<UsedRefreshToken>(c)
    .optional())?;
    let Some(used) = used else {
        return Ok(None);
    };
    let family = per_backend!(conn, |c| refresh_token_families::table
        .filter(refresh_token_families::tenant_id.eq(&presented.tenant_id))
        .filter(refresh_token_families::id.eq(&used.family_id))
        .select(RefreshTokenFamily::as_select())
        .first(c))?;
    insert_refresh_token(
        conn,
        &RefreshToken {
            token_hash: next.token_hash.clone(),
            tenant_id: presented.tenant_id.clone(),
            family_id: family.id.clone(),
            created_at: now,
            idle_expires_at: next.idle_expires_at.min(family.absolute_expires_at),
            rotated_at: None,
            access_jti: next.access_jti.clone(),
            access_expires_at: next.access_expires_at,
        },
    )?;
    Ok(Some(family))
}

pub fn update_family_revoked(
    conn: &mut DbConn,
    tenant_id: &str,
    family_id: &str,
    reason: &str,
    now: PrimitiveDateTime,
) -> StoreResult<()> {
    diesel::update(refresh_token_families::table)
        .filter(refresh_token_families::tenant_id.eq(tenant_id))
        .filter(refresh_token_families::id.eq(family_id))
        .filter(refresh_token_families::revoked_at.is_null())
        .set((
            refresh_token_families::revoked_at.eq(now),
            refresh_token_families::revoked_reason.eq(reason),
        ))
        .execute(conn)?;
    Ok(())
}

/// The access tokens issued in a family that have not expired yet: `(jti, expires_at)`.
pub fn find_family_access_tokens(
    conn: &mut DbConn,
    tenant_id: &str,
    family_id: &str,
    now: PrimitiveDateTime,
) -> StoreResult<Vec<(String, PrimitiveDateTime)>> {
    Ok(refresh_tokens::table
        .filter(refresh_tokens::tenant_id.eq(tenant_id))
        .filter(refresh_tokens::family_id.eq(family_id))
        .filter(refresh_tokens::access_expires_at.gt(now))
        .select((
            refresh_tokens::access_jti,
            refresh_tokens::access_expires_at,
        ))
        .load(conn)?)
}

/// Remembers a revoked access token until it expires; revoking twice is harmless.
pub fn insert_revoked_access_token(
    conn: &mut DbConn,
    tenant_id: &str,
    jti: &str,
    expires_at: PrimitiveDateTime,
    now: PrimitiveDateTime,
) -> StoreResult<()> {
    let row = (
        revoked_access_tokens::jti.eq(jti),
        revoked_access_tokens::tenant_id.eq(tenant_id),
        revoked_access_tokens::expires_at.eq(expires_at),
        revoked_access_tokens::revoked_at.eq(now),
    );
    per_backend!(conn, |c| diesel::insert_into(revoked_access_tokens::table)
        .values(row)
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(())
}

pub fn is_access_token_revoked(conn: &mut DbConn, tenant_id: &str, jti: &str) -> StoreResult<bool> {
    Ok(diesel::select(diesel::dsl::exists(
        revoked_access_tokens::table
            .filter(revoked_access_tokens::tenant_id.eq(tenant_id))
            .filter(revoked_access_tokens::jti.eq(jti)),
    ))
    .get_result(conn)?)
}

/// Housekeeping: revocations of expired tokens, and families past their absolute lifetime
/// (their refresh tokens go with them by the foreign key's cascade).
pub fn delete_expired_tokens(conn: &mut DbConn, now: PrimitiveDateTime) -> StoreResult<usize> {
    let revocations = diesel::delete(
        revoked_access_tokens::table.filter(revoked_access_tokens::expires_at.lt(now)),
    )
    .execute(conn)?;
    let families = diesel::delete(
        refresh_token_families::table.filter(refresh_token_families::absolute_expires_at.lt(now)),
    )
    .execute(conn)?;
    Ok(revocations + families)
}
