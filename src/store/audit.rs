use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::{audit_events, audit_reviews};
use super::{DbConn, StoreResult, per_backend};

/// One security event. Rows are only ever inserted (reviews live in `audit_reviews`).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_events)]
// None as NULL: one SQL text, so diesel caches the insert by type, never re-rendering it.
#[diesel(treat_none_as_default_value = false)]
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
    per_backend!(conn, |c| diesel::insert_into(audit_events::table)
        .values(event)
        .execute(c))?;
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

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_reviews)]
pub struct AuditReview {
    pub event_id: String,
    pub tenant_id: Option<String>,
    pub reviewed_by: String,
    pub reviewed_at: PrimitiveDateTime,
    pub note: Option<String>,
}

/// Events of a tenant, newest first, with their review if any.
pub fn find_audit_events(
    conn: &mut DbConn,
    tenant_id: &str,
    only_unreviewed_needing_review: bool,
    since: Option<PrimitiveDateTime>,
    limit: i64,
) -> StoreResult<Vec<(AuditEvent, Option<AuditReview>)>> {
    let mut query = audit_events::table
        .left_join(audit_reviews::table.on(audit_reviews::event_id.eq(audit_events::id)))
        .filter(audit_events::tenant_id.eq(tenant_id))
        .into_boxed();
    if only_unreviewed_needing_review {
        query = query
            .filter(audit_events::needs_review.eq(true))
            .filter(audit_reviews::event_id.is_null());
    }
    if let Some(since) = since {
        query = query.filter(audit_events::occurred_at.ge(since));
    }
    Ok(query
        .order((audit_events::occurred_at.desc(), audit_events::id.desc()))
        .limit(limit)
        .select((AuditEvent::as_select(), Option::<AuditReview>::as_select()))
        .load(conn)?)
}

pub fn find_audit_event(
    conn: &mut DbConn,
    tenant_id: &str,
    id: &str,
) -> StoreResult<Option<AuditEvent>> {
    Ok(audit_events::table
        .filter(audit_events::tenant_id.eq(tenant_id))
        .filter(audit_events::id.eq(id))
        .select(AuditEvent::as_select())
        .first(conn)
        .optional()?)
}

/// Records a review once; a second review of the same event changes nothing.
pub fn insert_review(conn: &mut DbConn, review: &AuditReview) -> StoreResult<bool> {
    let insert = diesel::insert_into(audit_reviews::table)
        .values(review)
        .on_conflict_do_nothing();
    Ok(super::per_backend!(conn, |c| insert.execute(c))? == 1)
}
