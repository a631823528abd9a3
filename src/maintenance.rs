//! Housekeeping every node runs: expired ceremonies and rate-limit windows are deleted, idle
//! in-memory limiter keys forgotten. Safe on several nodes at once (the deletes are idempotent).

use std::time::Duration;

use crate::app::AppState;
use crate::store::{StoreError, ceremonies, rate_limits};

const INTERVAL: Duration = Duration::from_secs(60);

pub async fn run(state: AppState) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = sweep(&state).await {
            tracing::warn!(error = %e, "housekeeping failed; will retry");
        }
    }
}

/// One pass; returns how many rows went.
pub async fn sweep(state: &AppState) -> Result<usize, StoreError> {
    let now = state.clock.now();
    state.limiter.shrink();
    state
        .store
        .write(move |conn| {
            Ok(ceremonies::delete_expired_ceremonies(conn, now)?
                + rate_limits::delete_expired_windows(conn, now)?)
        })
        .await
}
