use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::link_tokens;
use super::{DbConn, StoreResult};

/// A single-use link (invitation, first-run setup, …); only the token's SHA-256 is stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = link_tokens)]
pub struct LinkToken {
    pub id: String,
    pub tenant_id: String,
    pub user_id: Option<String>,
    pub purpose: String,
    pub token_hash: String,
    pub created_by: Option<String>,
    pub details: String,
    pub created_at: PrimitiveDateTime,
    pub expires_at: PrimitiveDateTime,
    pub used_at: Option<PrimitiveDateTime>,
}

pub fn insert_link(conn: &mut DbConn, link: &LinkToken) -> StoreResult<()> {
    diesel::insert_into(link_tokens::table)
        .values(link)
        .execute(conn)?;
    Ok(())
}

/// The unused, unexpired link with this token hash and purpose.
pub fn find_usable_link(
    conn: &mut DbConn,
    tenant_id: &str,
    token_hash: &str,
    purpose: &str,
    now: PrimitiveDateTime,
) -> StoreResult<Option<LinkToken>> {
    Ok(link_tokens::table
        .filter(link_tokens::tenant_id.eq(tenant_id))
        .filter(link_tokens::token_hash.eq(token_hash))
        .filter(link_tokens::purpose.eq(purpose))
        .filter(link_tokens::used_at.is_null())
        .filter(link_tokens::expires_at.gt(now))
        .select(LinkToken::as_select())
        .first(conn)
        .optional()?)
}

/// Marks the link used; `false` if someone used it first.
pub fn use_link(conn: &mut DbConn, id: &str, now: PrimitiveDateTime) -> StoreResult<bool> {
    let changed = diesel::update(link_tokens::table)
        .filter(link_tokens::id.eq(id))
        .filter(link_tokens::used_at.is_null())
        .set(link_tokens::used_at.eq(now))
        .execute(conn)?;
    Ok(changed == 1)
}

/// Voids the unused links of a purpose (a new invitation replaces the old one).
pub fn void_links(
    conn: &mut DbConn,
    tenant_id: &str,
    user_id: Option<&str>,
    purpose: &str,
    now: PrimitiveDateTime,
) -> StoreResult<usize> {
    let base = link_tokens::table
        .filter(link_tokens::tenant_id.eq(tenant_id))
        .filter(link_tokens::purpose.eq(purpose))
        .filter(link_tokens::used_at.is_null());
    let changed = match user_id {
        Some(user_id) => diesel::update(base.filter(link_tokens::user_id.eq(user_id)))
            .set(link_tokens::expires_at.eq(now))
            .execute(conn)?,
        None => diesel::update(base.filter(link_tokens::user_id.is_null()))
            .set(link_tokens::expires_at.eq(now))
            .execute(conn)?,
    };
    Ok(changed)
}
