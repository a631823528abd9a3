//! The security audit log: append-only, written in the same transaction as the change it
//! records, so an event exists exactly when its change committed.

use serde_json::Value;

use crate::client::ClientInfo;
use crate::clock::UtcTime;
use crate::crypto::new_id;
use crate::store::audit::{AuditEvent, insert_audit_event};
use crate::store::{DbConn, StoreResult};

/// Who caused an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    User(String),
    Client(String),
    Cli,
    System,
}

impl Actor {
    fn kind_and_id(&self) -> (&'static str, Option<String>) {
        match self {
            Actor::User(id) => ("user", Some(id.clone())),
            Actor::Client(id) => ("client", Some(id.clone())),
            Actor::Cli => ("cli", None),
            Actor::System => ("system", None),
        }
    }
}

/// An event to record.
pub struct Record<'a> {
    pub tenant_id: &'a str,
    pub event_type: &'static str,
    pub actor: Actor,
    pub subject_user_id: Option<&'a str>,
    pub client: Option<&'a ClientInfo>,
    pub details: Value,
    pub needs_review: bool,
}

pub fn record(conn: &mut DbConn, event: Record<'_>, now: UtcTime) -> StoreResult<()> {
    insert_audit_event(conn, &row(event, now))
}

/// The row an event is stored as, for a caller that writes it with others.
pub fn row(event: Record<'_>, now: UtcTime) -> AuditEvent {
    let (actor_kind, actor_id) = event.actor.kind_and_id();
    AuditEvent {
        id: new_id(),
        tenant_id: Some(event.tenant_id.to_string()),
        occurred_at: now,
        event_type: event.event_type.to_string(),
        actor_kind: actor_kind.to_string(),
        actor_id,
        subject_user_id: event.subject_user_id.map(str::to_string),
        ip: event.client.and_then(ClientInfo::ip_string),
        browser_family: event.client.and_then(|c| c.browser_family.clone()),
        os_family: event.client.and_then(|c| c.os_family.clone()),
        details: event.details.to_string(),
        needs_review: event.needs_review,
    }
}

/// An event as the audit list shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ListedEvent {
    pub id: String,
    pub occurred_at: String,
    pub event_type: String,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub subject_user_id: Option<String>,
    pub ip: Option<String>,
    pub browser_family: Option<String>,
    pub os_family: Option<String>,
    pub details: serde_json::Value,
    pub needs_review: bool,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<String>,
}

/// How the audit log and the admin API write instants.
pub fn rfc3339(t: UtcTime) -> String {
    t.assume_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[derive(Debug, thiserror::Error)]
#[error("since must be an RFC 3339 time, e.g. 2026-01-31T00:00:00Z")]
pub struct InvalidSince;

/// The `since` of a listing, from a query or the command line (RFC 3339, any offset).
pub fn parse_since(raw: &str) -> Result<UtcTime, InvalidSince> {
    time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .map(|t| {
            let t = t.to_offset(time::UtcOffset::UTC);
            UtcTime::new(t.date(), t.time())
        })
        .map_err(|_| InvalidSince)
}

#[derive(Debug, thiserror::Error)]
#[error("limit must be between 1 and {MAX_LISTED}")]
pub struct InvalidLimit;

/// The most events one listing returns.
pub const MAX_LISTED: i64 = 1000;

/// A listing's `limit`, from a query or the command line: 1 to [`MAX_LISTED`].
pub fn parse_limit(limit: i64) -> Result<i64, InvalidLimit> {
    (1..=MAX_LISTED)
        .contains(&limit)
        .then_some(limit)
        .ok_or(InvalidLimit)
}

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only events flagged for review and not reviewed yet.
    pub needs_review: bool,
    pub since: Option<UtcTime>,
    pub limit: Option<i64>,
}

pub fn list(conn: &mut DbConn, tenant_id: &str, filter: &Filter) -> StoreResult<Vec<ListedEvent>> {
    let limit = filter.limit.unwrap_or(100).clamp(1, MAX_LISTED);
    let rows = crate::store::audit::find_audit_events(
        conn,
        tenant_id,
        filter.needs_review,
        filter.since,
        limit,
    )?;
    Ok(rows
        .into_iter()
        .map(|(e, review)| ListedEvent {
            id: e.id,
            occurred_at: rfc3339(e.occurred_at),
            event_type: e.event_type,
            actor_kind: e.actor_kind,
            actor_id: e.actor_id,
            subject_user_id: e.subject_user_id,
            ip: e.ip,
            browser_family: e.browser_family,
            os_family: e.os_family,
            details: serde_json::from_str(&e.details).unwrap_or(Value::Null),
            needs_review: e.needs_review,
            reviewed_by: review.as_ref().map(|r| r.reviewed_by.clone()),
            reviewed_at: review.map(|r| rfc3339(r.reviewed_at)),
        })
        .collect())
}

/// Marks an event reviewed by `reviewer`; `Ok(false)` when there is no such event in the
/// tenant. Reviewing twice keeps the first review.
pub fn mark_reviewed(
    conn: &mut DbConn,
    tenant_id: &str,
    event_id: &str,
    reviewer: &str,
    note: Option<&str>,
    now: UtcTime,
) -> StoreResult<bool> {
    if crate::store::audit::find_audit_event(conn, tenant_id, event_id)?.is_none() {
        return Ok(false);
    }
    crate::store::audit::insert_review(
        conn,
        &crate::store::audit::AuditReview {
            event_id: event_id.to_string(),
            tenant_id: Some(tenant_id.to_string()),
            reviewed_by: reviewer.to_string(),
            reviewed_at: now,
            note: note.map(str::to_string),
        },
    )?;
    Ok(true)
}
