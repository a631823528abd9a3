//! Consents: which scopes a user granted a (third-party) client, remembered per user+client.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::consents;
use super::{DbConn, StoreResult, per_backend};

/// The scopes (space-separated) the user granted the client, if any.
pub fn find_consent(
    conn: &mut DbConn,
    tenant_id: &str,
    user_id: &str,
    client_id: &str,
) -> StoreResult<Option<String>> {
    Ok(consents::table
        .filter(consents::tenant_id.eq(tenant_id))
        .filter(consents::user_id.eq(user_id))
        .filter(consents::client_id.eq(client_id))
        .select(consents::scopes)
        .first(conn)
        .optional()?)
}

pub fn upsert_consent(
    conn: &mut DbConn,
    tenant_id: &str,
    user_id: &str,
    client_id: &str,
    scopes: &str,
    now: PrimitiveDateTime,
) -> StoreResult<()> {
    let row = (
        consents::tenant_id.eq(tenant_id),
        consents::user_id.eq(user_id),
        consents::client_id.eq(client_id),
        consents::scopes.eq(scopes),
        consents::granted_at.eq(now),
    );
    per_backend!(conn, |c| diesel::insert_into(consents::table)
        .values(row)
        .on_conflict((consents::tenant_id, consents::user_id, consents::client_id))
        .do_update()
        .set((consents::scopes.eq(scopes), consents::granted_at.eq(now)))
        .execute(c))?;
    Ok(())
}
