use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::auth_events;
use super::{DbConn, StoreResult, per_backend};

/// One authentication attempt, for the migration metrics (X1–X5).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = auth_events)]
// None as NULL: one SQL text, so diesel caches the insert by type, never re-rendering it.
#[diesel(treat_none_as_default_value = false)]
pub struct AuthEvent {
    pub id: String,
    pub tenant_id: String,
    pub user_id: Option<String>,
    pub occurred_at: PrimitiveDateTime,
    pub method: String,
    pub outcome: String,
    pub failure_reason: Option<String>,
    pub authenticator: Option<String>,
    pub browser_family: Option<String>,
    pub os_family: Option<String>,
    pub duration_ms: Option<i64>,
}

pub fn insert_auth_event(conn: &mut DbConn, event: &AuthEvent) -> StoreResult<()> {
    per_backend!(conn, |c| diesel::insert_into(auth_events::table)
        .values(event)
        .execute(c))?;
    Ok(())
}

pub fn list_auth_events(conn: &mut DbConn, tenant_id: &str) -> StoreResult<Vec<AuthEvent>> {
    Ok(auth_events::table
        .filter(auth_events::tenant_id.eq(tenant_id))
        .order(auth_events::occurred_at.asc())
        .select(AuthEvent::as_select())
        .load(conn)?)
}
