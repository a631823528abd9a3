use diesel::prelude::*;

use super::schema::{group_members, groups};
use super::{DbConn, StoreResult};

/// Names of the groups a user belongs to (policies name groups, e.g. "billing").
pub fn list_user_group_names(
    conn: &mut DbConn,
    tenant_id: &str,
    user_id: &str,
) -> StoreResult<Vec<String>> {
    Ok(group_members::table
        .inner_join(groups::table.on(groups::id.eq(group_members::group_id)))
        .filter(group_members::tenant_id.eq(tenant_id))
        .filter(group_members::user_id.eq(user_id))
        .select(groups::name)
        .load(conn)?)
}
