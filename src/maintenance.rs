//! Housekeeping: expired ceremonies and rate-limit windows are deleted, idle in-memory
//! limiter keys forgotten. Safe on several nodes at once (the deletes are idempotent).

use std::time::Duration;

use crate::clock::UtcTime;
use crate::ratelimit::RateLimiter;
use crate::scheduler::{Job, JobFuture};
use crate::store::{Store, StoreError, ceremonies, rate_limits};

pub struct Housekeeping {
    pub limiter: RateLimiter,
}

impl Housekeeping {
    /// One pass; returns how many rows went.
    pub async fn sweep(&self, store: &Store, now: UtcTime) -> Result<usize, StoreError> {
        self.limiter.shrink();
        store
            .write(move |conn| {
                Ok(ceremonies::delete_expired_ceremonies(conn, now)?
                    + rate_limits::delete_expired_windows(conn, now)?)
            })
            .await
    }
}

impl Job for Housekeeping {
    fn name(&self) -> &'static str {
        "housekeeping"
    }

    fn every(&self) -> Duration {
        Duration::from_secs(60)
    }

    fn run<'a>(&'a self, store: &'a Store, now: UtcTime) -> JobFuture<'a> {
        Box::pin(async move { self.sweep(store, now).await.map_err(|e| e.to_string()) })
    }
}
