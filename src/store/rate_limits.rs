use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::rate_limit_windows;
use super::{DbConn, Store, StoreResult, per_backend};

/// Counts one hit in a fixed window for each bucket, in one statement that commits by
/// itself (the windows are counters; the hot row of a busy client IP stays locked only for
/// the update), and returns each bucket's count after it.
pub async fn hit_windows(
    store: &Store,
    buckets: Vec<String>,
    window_start: PrimitiveDateTime,
    expires_at: PrimitiveDateTime,
) -> StoreResult<Vec<(String, i64)>> {
    store
        .on_writer_else_pooled(move |conn| upsert_hits(conn, &buckets, window_start, expires_at))
        .await
}

/// Buckets are upserted in sorted order so that concurrent calls lock shared rows (one
/// client IP, many identifiers) in the same order.
fn upsert_hits(
    conn: &mut DbConn,
    buckets: &[String],
    window_start: PrimitiveDateTime,
    expires_at: PrimitiveDateTime,
) -> StoreResult<Vec<(String, i64)>> {
    let mut sorted: Vec<&String> = buckets.iter().collect();
    sorted.sort();
    sorted.dedup();
    let rows: Vec<_> = sorted
        .into_iter()
        .map(|bucket| {
            (
                rate_limit_windows::bucket.eq(bucket),
                rate_limit_windows::window_start.eq(window_start),
                rate_limit_windows::hits.eq(1i64),
                rate_limit_windows::expires_at.eq(expires_at),
            )
        })
        .collect();
    let upsert = diesel::insert_into(rate_limit_windows::table)
        .values(rows)
        .on_conflict((rate_limit_windows::bucket, rate_limit_windows::window_start))
        .do_update()
        .set(rate_limit_windows::hits.eq(rate_limit_windows::hits + 1i64))
        .returning((rate_limit_windows::bucket, rate_limit_windows::hits));
    Ok(per_backend!(conn, |c| upsert.get_results(c))?)
}

pub fn delete_expired_windows(conn: &mut DbConn, now: PrimitiveDateTime) -> StoreResult<usize> {
    Ok(
        diesel::delete(rate_limit_windows::table.filter(rate_limit_windows::expires_at.le(now)))
            .execute(conn)?,
    )
}
