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
    let (actor_kind, actor_id) = event.actor.kind_and_id();
    insert_audit_event(
        conn,
        &AuditEvent {
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
        },
    )
}
