use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::audit_events;
use super::{DbConn, StoreResult};

/// One security event. Rows are only ever inserted (reviews live in `audit_reviews`).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_events)]
pub struct AuditEvent {
    pub id: String,
    pub tenant_id: Option<String>,
    pub occurred_at: PrimitiveDateTime,
    pub event_type: String,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub subject_user_id: Option<String>,
    pub ip: Option<String>,
    pub browser_family: Option<String>,
    pub os_family: Option<String>,
    pub details: String,
    pub needs_review: bool,
}

pub fn insert_audit_event(conn: &mut DbConn, event: &AuditEvent) -> StoreResult<()> {
    diesel::insert_into(audit_events::table)
        .values(event)
        .execute(conn)?;
    Ok(())
}

pub fn list_audit_events(
    conn: &mut DbConn,
    tenant_id: &str,
    limit: i64,
) -> StoreResult<Vec<AuditEvent>> {
    Ok(audit_events::table
        .filter(audit_events::tenant_id.eq(tenant_id))
        .order(audit_events::occurred_at.desc())
        .limit(limit)
        .select(AuditEvent::as_select())
        .load(conn)?)
}
