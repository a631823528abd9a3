use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::webauthn_ceremonies;
use super::{DbConn, Store, StoreResult, per_backend};

/// WebAuthn ceremony state, kept server-side (never in a cookie) so any node can finish
/// what another started; consumed once.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = webauthn_ceremonies)]
// None as NULL: one SQL text, so diesel caches the insert by type, never re-rendering it.
#[diesel(treat_none_as_default_value = false)]
pub struct Ceremony {
    pub id: String,
    pub tenant_id: String,
    pub user_id: Option<String>,
    pub kind: String,
    pub purpose: String,
    pub state: String,
    pub context: String,
    pub created_at: PrimitiveDateTime,
    pub expires_at: PrimitiveDateTime,
}

pub fn insert_ceremony(conn: &mut DbConn, ceremony: &Ceremony) -> StoreResult<()> {
    per_backend!(conn, |c| diesel::insert_into(webauthn_ceremonies::table)
        .values(ceremony)
        .execute(c))?;
    Ok(())
}

/// Stores a ceremony made for the browser (one statement).
pub async fn save_ceremony(store: &Store, ceremony: Ceremony) -> StoreResult<()> {
    store
        .on_writer_else_pooled(move |conn| insert_ceremony(conn, &ceremony))
        .await
}

/// The unexpired ceremony, without consuming it (verification happens outside the write
/// transaction; [`consume_ceremony`] then makes it single use).
pub fn find_live_ceremony(
    conn: &mut DbConn,
    tenant_id: &str,
    id: &str,
    now: PrimitiveDateTime,
) -> StoreResult<Option<Ceremony>> {
    // Expiry is checked here, not in the WHERE clause: with `expires_at > now` there,
    // PostgreSQL may read the ceremony through the expiry index, which walks every unexpired
    // (and every recently spent) ceremony; by key it is one row.
    let ceremony = per_backend!(conn, |c| webauthn_ceremonies::table
        .filter(webauthn_ceremonies::id.eq(id))
        .filter(webauthn_ceremonies::tenant_id.eq(tenant_id))
        .select(Ceremony::as_select())
        .first(c)
        .optional())?;
    Ok(ceremony.filter(|c| c.expires_at > now))
}

/// Deletes the ceremony; `false` when it was already consumed (a replay or a race).
pub fn consume_ceremony(conn: &mut DbConn, tenant_id: &str, id: &str) -> StoreResult<bool> {
    let deleted = per_backend!(conn, |c| diesel::delete(
        webauthn_ceremonies::table
            .filter(webauthn_ceremonies::id.eq(id))
            .filter(webauthn_ceremonies::tenant_id.eq(tenant_id)),
    )
    .execute(c))?;
    Ok(deleted == 1)
}

pub fn delete_expired_ceremonies(conn: &mut DbConn, now: PrimitiveDateTime) -> StoreResult<usize> {
    Ok(
        diesel::delete(webauthn_ceremonies::table.filter(webauthn_ceremonies::expires_at.le(now)))
            .execute(conn)?,
    )
}
