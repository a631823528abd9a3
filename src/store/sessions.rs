use diesel::prelude::*;
use diesel::sql_types::{Text, Timestamp};
use time::PrimitiveDateTime;

use super::prepared::{bind, prepared};
use super::schema::browser_sessions;
use super::{DbConn, StoreResult, per_backend};

/// A signed-in browser. The cookie holds a random token; only its SHA-256 is stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = browser_sessions)]
// None as NULL: one SQL text, so diesel caches the insert by type, never re-rendering it.
#[diesel(treat_none_as_default_value = false)]
pub struct BrowserSession {
    pub id: String,
    pub token_hash: String,
    pub tenant_id: String,
    pub user_id: String,
    /// JSON array of RFC 8176 method values.
    pub amr: String,
    pub acr: Option<String>,
    pub auth_time: PrimitiveDateTime,
    pub csrf_secret: String,
    pub ip: Option<String>,
    pub browser_family: Option<String>,
    pub os_family: Option<String>,
    pub created_at: PrimitiveDateTime,
    pub last_seen_at: PrimitiveDateTime,
    pub idle_expires_at: PrimitiveDateTime,
    pub absolute_expires_at: PrimitiveDateTime,
    pub ended_at: Option<PrimitiveDateTime>,
    /// The passkey that signed this session in, if one did.
    pub passkey_id: Option<String>,
}

pub fn insert_session(conn: &mut DbConn, session: &BrowserSession) -> StoreResult<()> {
    per_backend!(conn, |c| diesel::insert_into(browser_sessions::table)
        .values(session)
        .execute(c))?;
    Ok(())
}

/// The live session with this token in this tenant: not ended, not idle too long, not past
/// its absolute lifetime.
pub fn find_live_session(
    conn: &mut DbConn,
    tenant_id: &str,
    token_hash: &str,
    now: PrimitiveDateTime,
) -> StoreResult<Option<BrowserSession>> {
    Ok(browser_sessions::table
        .filter(browser_sessions::token_hash.eq(token_hash))
        .filter(browser_sessions::tenant_id.eq(tenant_id))
        .filter(browser_sessions::ended_at.is_null())
        .filter(browser_sessions::idle_expires_at.gt(now))
        .filter(browser_sessions::absolute_expires_at.gt(now))
        .select(BrowserSession::as_select())
        .first(conn)
        .optional()?)
}

pub fn find_session(
    conn: &mut DbConn,
    tenant_id: &str,
    id: &str,
) -> StoreResult<Option<BrowserSession>> {
    Ok(per_backend!(conn, |c| browser_sessions::table
        .filter(browser_sessions::tenant_id.eq(tenant_id))
        .filter(browser_sessions::id.eq(id))
        .select(BrowserSession::as_select())
        .first(c)
        .optional())?)
}

pub fn touch_session(
    conn: &mut DbConn,
    id: &str,
    now: PrimitiveDateTime,
    idle_expires_at: PrimitiveDateTime,
) -> StoreResult<()> {
    diesel::update(browser_sessions::table.find(id))
        .set((
            browser_sessions::last_seen_at.eq(now),
            browser_sessions::idle_expires_at.eq(idle_expires_at),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn end_session(
    conn: &mut DbConn,
    tenant_id: &str,
    id: &str,
    now: PrimitiveDateTime,
) -> StoreResult<usize> {
    Ok(diesel::update(browser_sessions::table)
        .filter(browser_sessions::tenant_id.eq(tenant_id))
        .filter(browser_sessions::id.eq(id))
        .filter(browser_sessions::ended_at.is_null())
        .set(browser_sessions::ended_at.eq(now))
        .execute(conn)?)
}

pub fn end_session_by_token_hash(
    conn: &mut DbConn,
    tenant_id: &str,
    token_hash: &str,
    now: PrimitiveDateTime,
) -> StoreResult<usize> {
    Ok(per_backend!(conn, |c| prepared![
        "UPDATE browser_sessions SET ended_at = ",
        " WHERE tenant_id = ", " AND token_hash = ", " AND ended_at IS NULL";
        bind::<Timestamp, _>(now),
        bind::<Text, _>(tenant_id),
        bind::<Text, _>(token_hash)
    ]
    .execute(c))?)
}

pub fn end_user_sessions(
    conn: &mut DbConn,
    tenant_id: &str,
    user_id: &str,
    now: PrimitiveDateTime,
) -> StoreResult<usize> {
    Ok(diesel::update(browser_sessions::table)
        .filter(browser_sessions::tenant_id.eq(tenant_id))
        .filter(browser_sessions::user_id.eq(user_id))
        .filter(browser_sessions::ended_at.is_null())
        .set(browser_sessions::ended_at.eq(now))
        .execute(conn)?)
}
