//! Authorization codes (RFC 6749 §4.1.2): stored as SHA-256 digests, single use; what the
//! redemption issued is recorded so a replay can revoke it.

use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text, Timestamp};
use time::PrimitiveDateTime;

use super::prepared::{bind, prepared};
use super::schema::authorization_codes;
use super::{DbConn, StoreResult, per_backend};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
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

/// Claims the code and records what its redemption issues, in one statement: true only for
/// the first caller, also when two redemptions race.
pub fn update_code_redeemed_issuing(
    conn: &mut DbConn,
    tenant_id: &str,
    code_hash: &str,
    now: PrimitiveDateTime,
    issued: &Issued<'_>,
) -> StoreResult<bool> {
    let claimed = per_backend!(conn, |c| prepared![
        "UPDATE authorization_codes SET redeemed_at = ", ", issued_family_id = ",
        ", issued_access_jti = ", ", issued_access_expires_at = ", " WHERE tenant_id = ",
        " AND code_hash = ", " AND redeemed_at IS NULL";
        bind::<Timestamp, _>(now),
        bind::<Nullable<Text>, _>(issued.family_id),
        bind::<Text, _>(issued.access_jti),
        bind::<Timestamp, _>(issued.access_expires_at),
        bind::<Text, _>(tenant_id),
        bind::<Text, _>(code_hash)
    ]
    .execute(c))?;
    Ok(claimed == 1)
}

/// What a redemption issues, recorded on the code so a replay can revoke it.
pub struct Issued<'a> {
    pub family_id: Option<&'a str>,
    pub access_jti: &'a str,
    pub access_expires_at: PrimitiveDateTime,
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
