use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::rate_limit_windows;
use super::{DbConn, StoreResult, per_backend};

/// Counts one hit in a fixed window and returns the window's count after it.
pub fn hit_window(
    conn: &mut DbConn,
    bucket: &str,
    window_start: PrimitiveDateTime,
    expires_at: PrimitiveDateTime,
) -> StoreResult<i64> {
    let upsert = diesel::insert_into(rate_limit_windows::table)
        .values((
            rate_limit_windows::bucket.eq(bucket),
            rate_limit_windows::window_start.eq(window_start),
            rate_limit_windows::hits.eq(1i64),
            rate_limit_windows::expires_at.eq(expires_at),
        ))
        .on_conflict((rate_limit_windows::bucket, rate_limit_windows::window_start))
        .do_update()
        .set(rate_limit_windows::hits.eq(rate_limit_windows::hits + 1i64))
        .returning(rate_limit_windows::hits);
    Ok(per_backend!(conn, |c| upsert.get_result::<i64>(c))?)
}

pub fn delete_expired_windows(conn: &mut DbConn, now: PrimitiveDateTime) -> StoreResult<usize> {
    Ok(
        diesel::delete(rate_limit_windows::table.filter(rate_limit_windows::expires_at.le(now)))
            .execute(conn)?,
    )
}
