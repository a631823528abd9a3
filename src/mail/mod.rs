//! Mail (D4): every message is written to the outbox in the transaction of the change that
//! causes it, and delivered by a worker (see [`worker`]); nothing is lost while the SMTP
//! server is down, and nothing is sent from inside a request.

mod messages;
pub mod worker;

use askama::Template;

use crate::clock::UtcTime;
use crate::crypto::new_id;
use crate::store::mail::{OutboxMessage, insert_message};
use crate::store::tenants::Tenant;
use crate::store::{DbConn, StoreError};

pub use messages::{AdminRecoveryLink, EmailRecoveryLink, Invitation, PasskeyAdded};

/// A message kind: its templates (plain text and HTML) and subject.
pub trait Mail {
    /// Which message this is, kept in the outbox (for operators and tests).
    const TEMPLATE: &'static str;
    fn subject(&self) -> String;
    fn text(&self) -> askama::Result<String>;
    fn html(&self) -> askama::Result<String>;
}

/// Who sends for a tenant: its own address, or the installation's.
pub fn sender(tenant: &Tenant, default_from: &str) -> String {
    tenant
        .mail_from
        .clone()
        .unwrap_or_else(|| default_from.to_string())
}

/// Writes a message to the outbox, in the caller's transaction.
pub fn enqueue<M: Mail>(
    conn: &mut DbConn,
    tenant: &Tenant,
    from: &str,
    to: &str,
    mail: &M,
    now: UtcTime,
) -> Result<(), StoreError> {
    let render_failed = |e: askama::Error| StoreError::Task(format!("mail template: {e}"));
    insert_message(
        conn,
        &OutboxMessage {
            id: new_id(),
            tenant_id: Some(tenant.id.clone()),
            template: M::TEMPLATE.to_string(),
            recipient: to.to_string(),
            sender: sender(tenant, from),
            subject: mail.subject(),
            body_text: mail.text().map_err(render_failed)?,
            body_html: Some(mail.html().map_err(render_failed)?),
            created_at: now,
            attempts: 0,
            next_attempt_at: now,
            claimed_by: None,
            claimed_until: None,
            sent_at: None,
            last_error: None,
        },
    )
}

/// Renders a template that shares its fields with the message.
fn render<T: Template>(template: &T) -> askama::Result<String> {
    template.render()
}
