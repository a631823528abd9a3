//! Signing keys per tenant (O7). A key is published (`publish_at`) before it signs
//! (`sign_from`), stops signing when it retires (`retired_at`) and leaves the JWKS only when
//! everything it signed has expired (`remove_at`). Private JWKs are sealed with the master key.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::signing_keys;
use super::{DbConn, StoreResult};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = signing_keys)]
pub struct SigningKey {
    pub kid: String,
    pub tenant_id: String,
    pub alg: String,
    pub public_jwk: String,
    /// Compact JWE (A256GCM, `dir`) under the master key.
    pub private_jwk_encrypted: String,
    pub created_at: PrimitiveDateTime,
    pub publish_at: PrimitiveDateTime,
    pub sign_from: PrimitiveDateTime,
    pub retired_at: Option<PrimitiveDateTime>,
    pub remove_at: Option<PrimitiveDateTime>,
}

pub fn insert_signing_key(conn: &mut DbConn, key: &SigningKey) -> StoreResult<()> {
    diesel::insert_into(signing_keys::table)
        .values(key)
        .execute(conn)?;
    Ok(())
}

/// The tenant's keys that are, or will be, in its JWKS (not yet removed at `now`).
pub fn find_live_signing_keys(
    conn: &mut DbConn,
    tenant_id: &str,
    now: PrimitiveDateTime,
) -> StoreResult<Vec<SigningKey>> {
    Ok(signing_keys::table
        .filter(signing_keys::tenant_id.eq(tenant_id))
        .filter(
            signing_keys::remove_at
                .is_null()
                .or(signing_keys::remove_at.gt(now)),
        )
        .order((signing_keys::sign_from.asc(), signing_keys::kid.asc()))
        .select(SigningKey::as_select())
        .load(conn)?)
}

/// Sets when a key stops signing and when it leaves the JWKS.
pub fn update_signing_key_retired(
    conn: &mut DbConn,
    tenant_id: &str,
    kid: &str,
    retired_at: PrimitiveDateTime,
    remove_at: PrimitiveDateTime,
) -> StoreResult<()> {
    diesel::update(signing_keys::table)
        .filter(signing_keys::tenant_id.eq(tenant_id))
        .filter(signing_keys::kid.eq(kid))
        .set((
            signing_keys::retired_at.eq(retired_at),
            signing_keys::remove_at.eq(remove_at),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn delete_signing_keys_removed_before(
    conn: &mut DbConn,
    before: PrimitiveDateTime,
) -> StoreResult<usize> {
    Ok(
        diesel::delete(signing_keys::table.filter(signing_keys::remove_at.lt(before)))
            .execute(conn)?,
    )
}

/// Serialises key changes of one tenant across nodes: on PostgreSQL a transaction-scoped
/// advisory lock; on SQLite the store's single-writer lock already does it.
pub fn lock_tenant_keys(conn: &mut DbConn, tenant_id: &str) -> StoreResult<()> {
    if let DbConn::Postgres(pg) = conn {
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext('passgate-keys:' || $1))")
            .bind::<diesel::sql_types::Text, _>(tenant_id)
            .execute(pg)?;
    }
    Ok(())
}
