use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::mail_outbox;
use super::{DbConn, StoreResult};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = mail_outbox)]
pub struct OutboxMessage {
    pub id: String,
    pub tenant_id: Option<String>,
    pub template: String,
    pub recipient: String,
    pub sender: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: Option<String>,
    pub created_at: PrimitiveDateTime,
    pub attempts: i32,
    pub next_attempt_at: PrimitiveDateTime,
    pub claimed_by: Option<String>,
    pub claimed_until: Option<PrimitiveDateTime>,
    pub sent_at: Option<PrimitiveDateTime>,
    pub last_error: Option<String>,
}

pub fn insert_message(conn: &mut DbConn, message: &OutboxMessage) -> StoreResult<()> {
    diesel::insert_into(mail_outbox::table)
        .values(message)
        .execute(conn)?;
    Ok(())
}

/// Claims up to `limit` due messages for `node` until `lease_until`, so no other node sends
/// them meanwhile. On PostgreSQL rows locked by a concurrent claim are skipped; SQLite runs
/// one writer at a time anyway.
pub fn claim_due_messages(
    conn: &mut DbConn,
    node: &str,
    now: PrimitiveDateTime,
    lease_until: PrimitiveDateTime,
    limit: i64,
) -> StoreResult<Vec<OutboxMessage>> {
    let due = mail_outbox::table
        .filter(mail_outbox::sent_at.is_null())
        .filter(mail_outbox::next_attempt_at.le(now))
        .filter(
            mail_outbox::claimed_until
                .is_null()
                .or(mail_outbox::claimed_until.lt(now)),
        )
        .order(mail_outbox::created_at.asc())
        .limit(limit)
        .select(mail_outbox::id);
    let ids: Vec<String> = match conn {
        DbConn::Postgres(c) => due.for_update().skip_locked().load(c)?,
        DbConn::Sqlite(c) => due.load(c)?,
    };
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    diesel::update(mail_outbox::table.filter(mail_outbox::id.eq_any(&ids)))
        .set((
            mail_outbox::claimed_by.eq(node),
            mail_outbox::claimed_until.eq(lease_until),
            mail_outbox::attempts.eq(mail_outbox::attempts + 1),
        ))
        .execute(conn)?;
    Ok(mail_outbox::table
        .filter(mail_outbox::id.eq_any(&ids))
        .order(mail_outbox::created_at.asc())
        .select(OutboxMessage::as_select())
        .load(conn)?)
}

/// Marks a message sent and drops its bodies: links in them are secrets that need not
/// outlive delivery.
pub fn mark_sent(
    conn: &mut DbConn,
    id: &str,
    node: &str,
    now: PrimitiveDateTime,
) -> StoreResult<usize> {
    Ok(diesel::update(mail_outbox::table)
        .filter(mail_outbox::id.eq(id))
        .filter(mail_outbox::claimed_by.eq(node))
        .set((
            mail_outbox::sent_at.eq(now),
            mail_outbox::claimed_until.eq(None::<PrimitiveDateTime>),
            mail_outbox::body_text.eq(""),
            mail_outbox::body_html.eq(None::<String>),
            mail_outbox::last_error.eq(None::<String>),
        ))
        .execute(conn)?)
}

pub fn mark_failed(
    conn: &mut DbConn,
    id: &str,
    node: &str,
    error: &str,
    retry_at: PrimitiveDateTime,
) -> StoreResult<usize> {
    Ok(diesel::update(mail_outbox::table)
        .filter(mail_outbox::id.eq(id))
        .filter(mail_outbox::claimed_by.eq(node))
        .set((
            mail_outbox::claimed_until.eq(None::<PrimitiveDateTime>),
            mail_outbox::next_attempt_at.eq(retry_at),
            mail_outbox::last_error.eq(error),
        ))
        .execute(conn)?)
}

pub fn list_messages(conn: &mut DbConn) -> StoreResult<Vec<OutboxMessage>> {
    Ok(mail_outbox::table
        .order(mail_outbox::created_at.asc())
        .select(OutboxMessage::as_select())
        .load(conn)?)
}
