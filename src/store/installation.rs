//! The one row that describes this installation: a check value of the master key, so a node
//! started with the wrong key refuses to run instead of failing to decrypt signing keys later.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::installation;
use super::{DbConn, StoreResult, per_backend};

const ROW_ID: &str = "passgate";

#[derive(Queryable, Insertable)]
#[diesel(table_name = installation)]
struct InstallationRow {
    id: String,
    master_key_check: String,
    created_at: PrimitiveDateTime,
}

/// Records `check` if this is the first start, and returns the check value on record.
pub fn record_master_key_check(
    conn: &mut DbConn,
    check: &str,
    now: PrimitiveDateTime,
) -> StoreResult<String> {
    let row = InstallationRow {
        id: ROW_ID.to_string(),
        master_key_check: check.to_string(),
        created_at: now,
    };
    let insert = diesel::insert_into(installation::table)
        .values(&row)
        .on_conflict_do_nothing();
    per_backend!(conn, |c| insert.execute(c))?;
    Ok(installation::table
        .find(ROW_ID)
        .select(installation::master_key_check)
        .first(conn)?)
}
