use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::tenant_policies;
use super::{DbConn, StoreResult, per_backend};

pub fn find_policy_document(conn: &mut DbConn, tenant_id: &str) -> StoreResult<Option<String>> {
    Ok(tenant_policies::table
        .find(tenant_id)
        .select(tenant_policies::document)
        .first(conn)
        .optional()?)
}

/// Inserts or replaces the document, counting versions.
pub fn upsert_policy_document(
    conn: &mut DbConn,
    tenant_id: &str,
    document: &str,
    updated_by: Option<&str>,
    now: PrimitiveDateTime,
) -> StoreResult<()> {
    let insert = diesel::insert_into(tenant_policies::table)
        .values((
            tenant_policies::tenant_id.eq(tenant_id),
            tenant_policies::document.eq(document),
            tenant_policies::version.eq(1i64),
            tenant_policies::updated_at.eq(now),
            tenant_policies::updated_by.eq(updated_by),
        ))
        .on_conflict(tenant_policies::tenant_id)
        .do_update()
        .set((
            tenant_policies::document.eq(document),
            tenant_policies::version.eq(tenant_policies::version + 1i64),
            tenant_policies::updated_at.eq(now),
            tenant_policies::updated_by.eq(updated_by),
        ));
    per_backend!(conn, |c| insert.execute(c))?;
    Ok(())
}
