use diesel::prelude::*;
use diesel::sql_types::{Text, Timestamp};
use time::PrimitiveDateTime;

use super::prepared::{bind, prepared};
use super::schema::{password_credentials, users};
use super::{DbConn, StoreResult, per_backend};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: String,
    pub tenant_id: String,
    pub email: String,
    pub email_verified: bool,
    pub display_name: Option<String>,
    pub role: String,
    pub status: String,
    pub is_password_disabled: bool,
    pub enrollment_dismissals: i32,
    pub enrollment_opt_out_reason: Option<String>,
    pub enrollment_opt_out_at: Option<PrimitiveDateTime>,
    pub restricted_since: Option<PrimitiveDateTime>,
    pub restricted_until: Option<PrimitiveDateTime>,
    pub deadline_notice_sent_at: Option<PrimitiveDateTime>,
    pub created_at: PrimitiveDateTime,
    pub updated_at: PrimitiveDateTime,
    pub last_login_at: Option<PrimitiveDateTime>,
}

pub fn insert_user(conn: &mut DbConn, user: &User) -> StoreResult<()> {
    diesel::insert_into(users::table)
        .values(user)
        .execute(conn)?;
    Ok(())
}

pub fn find_user(conn: &mut DbConn, tenant_id: &str, id: &str) -> StoreResult<Option<User>> {
    Ok(per_backend!(conn, |c| users::table
        .filter(users::tenant_id.eq(tenant_id))
        .filter(users::id.eq(id))
        .select(User::as_select())
        .first(c)
        .optional())?)
}

pub fn find_user_by_email(
    conn: &mut DbConn,
    tenant_id: &str,
    email: &str,
) -> StoreResult<Option<User>> {
    Ok(users::table
        .filter(users::tenant_id.eq(tenant_id))
        .filter(users::email.eq(email))
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

/// The account an email names here, with its password hash if it has one: the sign-in's
/// lookup, one statement.
pub fn find_user_by_email_with_password(
    conn: &mut DbConn,
    tenant_id: &str,
    email: &str,
) -> StoreResult<Option<(User, Option<String>)>> {
    Ok(per_backend!(conn, |c| users::table
        .left_join(
            password_credentials::table.on(password_credentials::tenant_id
                .eq(users::tenant_id)
                .and(password_credentials::user_id.eq(users::id))),
        )
        .filter(users::tenant_id.eq(tenant_id))
        .filter(users::email.eq(email))
        .select((User::as_select(), password_credentials::phc_hash.nullable()))
        .first(c)
        .optional())?)
}

pub fn list_users(conn: &mut DbConn, tenant_id: &str) -> StoreResult<Vec<User>> {
    Ok(users::table
        .filter(users::tenant_id.eq(tenant_id))
        .order(users::email.asc())
        .select(User::as_select())
        .load(conn)?)
}

pub fn count_users(conn: &mut DbConn) -> StoreResult<i64> {
    Ok(users::table.count().get_result(conn)?)
}

/// Owners who finished enrolling, in any tenant: none means the installation is unclaimed.
pub fn count_active_owners(conn: &mut DbConn) -> StoreResult<i64> {
    Ok(users::table
        .filter(users::role.eq("owner"))
        .filter(users::status.eq("active"))
        .count()
        .get_result(conn)?)
}

/// An invited account becomes active once its first credential is enrolled; the email is
/// then taken as verified, since the organisation named it and the link reached its owner.
pub fn activate_user(
    conn: &mut DbConn,
    tenant_id: &str,
    id: &str,
    now: PrimitiveDateTime,
) -> StoreResult<()> {
    diesel::update(users::table)
        .filter(users::tenant_id.eq(tenant_id))
        .filter(users::id.eq(id))
        .set((
            users::status.eq("active"),
            users::email_verified.eq(true),
            users::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn set_restriction(
    conn: &mut DbConn,
    tenant_id: &str,
    id: &str,
    since: PrimitiveDateTime,
    until: PrimitiveDateTime,
) -> StoreResult<()> {
    diesel::update(users::table)
        .filter(users::tenant_id.eq(tenant_id))
        .filter(users::id.eq(id))
        .set((
            users::restricted_since.eq(Some(since)),
            users::restricted_until.eq(Some(until)),
            users::updated_at.eq(since),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn update_user_status(
    conn: &mut DbConn,
    tenant_id: &str,
    id: &str,
    status: &str,
    now: PrimitiveDateTime,
) -> StoreResult<()> {
    diesel::update(users::table)
        .filter(users::tenant_id.eq(tenant_id))
        .filter(users::id.eq(id))
        .set((users::status.eq(status), users::updated_at.eq(now)))
        .execute(conn)?;
    Ok(())
}

pub fn record_login(
    conn: &mut DbConn,
    tenant_id: &str,
    id: &str,
    now: PrimitiveDateTime,
) -> StoreResult<()> {
    per_backend!(conn, |c| prepared![
        "UPDATE users SET last_login_at = ", " WHERE tenant_id = ", " AND id = ", "";
        bind::<Timestamp, _>(now),
        bind::<Text, _>(tenant_id),
        bind::<Text, _>(id)
    ]
    .execute(c))?;
    Ok(())
}

pub fn insert_password_hash(
    conn: &mut DbConn,
    tenant_id: &str,
    user_id: &str,
    phc_hash: &str,
    now: PrimitiveDateTime,
) -> StoreResult<()> {
    diesel::insert_into(password_credentials::table)
        .values((
            password_credentials::user_id.eq(user_id),
            password_credentials::tenant_id.eq(tenant_id),
            password_credentials::phc_hash.eq(phc_hash),
            password_credentials::created_at.eq(now),
            password_credentials::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Replaces the stored hash only if it is still `old` (a concurrent rehash wins once).
pub fn replace_password_hash(
    conn: &mut DbConn,
    tenant_id: &str,
    user_id: &str,
    old: &str,
    new: &str,
    now: PrimitiveDateTime,
) -> StoreResult<()> {
    diesel::update(password_credentials::table)
        .filter(password_credentials::tenant_id.eq(tenant_id))
        .filter(password_credentials::user_id.eq(user_id))
        .filter(password_credentials::phc_hash.eq(old))
        .set((
            password_credentials::phc_hash.eq(new),
            password_credentials::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}
