use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::tenants;
use super::{DbConn, StoreResult};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = tenants)]
pub struct Tenant {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub mail_from: Option<String>,
    pub is_disabled: bool,
    pub created_at: PrimitiveDateTime,
    pub updated_at: PrimitiveDateTime,
}

pub fn insert_tenant(conn: &mut DbConn, tenant: &Tenant) -> StoreResult<()> {
    diesel::insert_into(tenants::table)
        .values(tenant)
        .execute(conn)?;
    Ok(())
}

pub fn find_tenant_by_slug(conn: &mut DbConn, slug: &str) -> StoreResult<Option<Tenant>> {
    Ok(tenants::table
        .filter(tenants::slug.eq(slug))
        .select(Tenant::as_select())
        .first(conn)
        .optional()?)
}

pub fn find_tenant(conn: &mut DbConn, id: &str) -> StoreResult<Option<Tenant>> {
    Ok(tenants::table
        .find(id)
        .select(Tenant::as_select())
        .first(conn)
        .optional()?)
}

pub fn list_tenants(conn: &mut DbConn) -> StoreResult<Vec<Tenant>> {
    Ok(tenants::table
        .order(tenants::slug.asc())
        .select(Tenant::as_select())
        .load(conn)?)
}

pub fn count_tenants(conn: &mut DbConn) -> StoreResult<i64> {
    Ok(tenants::table.count().get_result(conn)?)
}

pub fn update_mail_from(
    conn: &mut DbConn,
    id: &str,
    mail_from: Option<&str>,
    now: PrimitiveDateTime,
) -> StoreResult<usize> {
    Ok(diesel::update(tenants::table.find(id))
        .set((
            tenants::mail_from.eq(mail_from),
            tenants::updated_at.eq(now),
        ))
        .execute(conn)?)
}
