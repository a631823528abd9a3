use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::recovery_codes;
use super::{DbConn, StoreResult, per_backend};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = recovery_codes)]
pub struct StoredRecoveryCode {
    pub user_id: String,
    pub tenant_id: String,
    pub code_hash: String,
    pub created_at: PrimitiveDateTime,
    pub failed_attempts: i32,
    pub locked_until: Option<PrimitiveDateTime>,
}

pub fn find_code(
    conn: &mut DbConn,
    tenant_id: &str,
    user_id: &str,
) -> StoreResult<Option<StoredRecoveryCode>> {
    Ok(recovery_codes::table
        .filter(recovery_codes::tenant_id.eq(tenant_id))
        .filter(recovery_codes::user_id.eq(user_id))
        .select(StoredRecoveryCode::as_select())
        .first(conn)
        .optional()?)
}

/// The account's one code: a new one replaces the old and clears failures and locks.
pub fn replace_code(
    conn: &mut DbConn,
    tenant_id: &str,
    user_id: &str,
    code_hash: &str,
    now: PrimitiveDateTime,
) -> StoreResult<()> {
    let row = StoredRecoveryCode {
        user_id: user_id.to_string(),
        tenant_id: tenant_id.to_string(),
        code_hash: code_hash.to_string(),
        created_at: now,
        failed_attempts: 0,
        locked_until: None,
    };
    let upsert = diesel::insert_into(recovery_codes::table)
        .values(&row)
        .on_conflict(recovery_codes::user_id)
        .do_update()
        .set((
            recovery_codes::code_hash.eq(code_hash),
            recovery_codes::created_at.eq(now),
            recovery_codes::failed_attempts.eq(0),
            recovery_codes::locked_until.eq(None::<PrimitiveDateTime>),
        ));
    per_backend!(conn, |c| upsert.execute(c))?;
    Ok(())
}

pub fn count_failure(conn: &mut DbConn, tenant_id: &str, user_id: &str) -> StoreResult<()> {
    diesel::update(recovery_codes::table)
        .filter(recovery_codes::tenant_id.eq(tenant_id))
        .filter(recovery_codes::user_id.eq(user_id))
        .set(recovery_codes::failed_attempts.eq(recovery_codes::failed_attempts + 1))
        .execute(conn)?;
    Ok(())
}

/// Locks the code path until `until`; the count starts over after it.
pub fn lock_code(
    conn: &mut DbConn,
    tenant_id: &str,
    user_id: &str,
    until: PrimitiveDateTime,
) -> StoreResult<()> {
    diesel::update(recovery_codes::table)
        .filter(recovery_codes::tenant_id.eq(tenant_id))
        .filter(recovery_codes::user_id.eq(user_id))
        .set((
            recovery_codes::failed_attempts.eq(0),
            recovery_codes::locked_until.eq(Some(until)),
        ))
        .execute(conn)?;
    Ok(())
}
