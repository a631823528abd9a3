//! P7: separate limits per client IP (credential stuffing from one place) and per identifier
//! (guessing against one account from many places). On PostgreSQL the windows live in the
//! database, so every node counts the same hits; on SQLite (one node) in memory.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::Quota;
use governor::state::keyed::DefaultKeyedStateStore;

use crate::clock::{Clock, UtcTime, unix_seconds};
use crate::config::RateLimitSettings;
use crate::store::{Backend, Store, StoreError, rate_limits};

/// What is being limited: the endpoint family and whose attempts.
#[derive(Debug, Clone)]
pub enum Key {
    Ip(String),
    Identifier(String),
    /// Whoever acts through the admin API.
    Admin(String),
}

#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    #[error("rate limited; retry after {0} s")]
    Limited(u64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone)]
pub struct RateLimiter {
    settings: RateLimitSettings,
    clock: Clock,
    memory: Option<Arc<MemoryLimits>>,
}

/// The injected clock as governor's time source, so a fixed clock moves the windows in
/// memory as it moves them in the database.
#[derive(Clone)]
struct LimiterClock(Clock);

impl governor::clock::Clock for LimiterClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        let nanos = self.0.now().assume_utc().unix_timestamp_nanos();
        Duration::from_nanos(u64::try_from(nanos).unwrap_or_default())
    }
}

type Keyed = governor::RateLimiter<
    String,
    DefaultKeyedStateStore<String>,
    LimiterClock,
    governor::middleware::NoOpMiddleware<Duration>,
>;

struct MemoryLimits {
    clock: LimiterClock,
    per_ip: Keyed,
    per_identifier: Keyed,
    per_admin: Keyed,
}

fn quota(max: u32, window: Duration) -> Quota {
    let max = NonZeroU32::new(max.max(1)).unwrap_or(NonZeroU32::MIN);
    let period = window / max.get();
    Quota::with_period(period.max(Duration::from_nanos(1)))
        .unwrap_or_else(|| Quota::per_second(max))
        .allow_burst(max)
}

impl RateLimiter {
    pub fn new(settings: &RateLimitSettings, backend: Backend, clock: Clock) -> RateLimiter {
        let memory = (backend == Backend::Sqlite).then(|| {
            let clock = LimiterClock(clock.clone());
            let keyed = |max| {
                governor::RateLimiter::new(
                    quota(max, settings.window),
                    DefaultKeyedStateStore::default(),
                    clock.clone(),
                )
            };
            Arc::new(MemoryLimits {
                per_ip: keyed(settings.per_ip),
                per_identifier: keyed(settings.per_identifier),
                per_admin: keyed(settings.per_admin),
                clock: clock.clone(),
            })
        });
        RateLimiter {
            settings: settings.clone(),
            clock,
            memory,
        }
    }

    /// Counts one attempt against every key, at the injected clock's time; refuses if any
    /// is over its limit.
    pub async fn check(
        &self,
        store: &Store,
        action: &str,
        keys: &[Key],
    ) -> Result<(), RateLimitError> {
        match &self.memory {
            Some(memory) => memory.check(action, keys),
            None => {
                self.check_database(store, action, keys, self.clock.now())
                    .await
            }
        }
    }

    async fn check_database(
        &self,
        store: &Store,
        action: &str,
        keys: &[Key],
        now: UtcTime,
    ) -> Result<(), RateLimitError> {
        let window = i64::try_from(self.settings.window.as_secs().max(1)).unwrap_or(60);
        let now_s = unix_seconds(now);
        let start_s = now_s - now_s.rem_euclid(window);
        let window_start = time::OffsetDateTime::from_unix_timestamp(start_s)
            .map(|t| UtcTime::new(t.date(), t.time()))
            .unwrap_or(now);
        let expires_at = window_start + time::Duration::seconds(window);
        let limits: Vec<(String, u32)> = keys
            .iter()
            .map(|k| match k {
                Key::Ip(ip) => (format!("{action}|ip|{ip}"), self.settings.per_ip),
                Key::Identifier(id) => (format!("{action}|id|{id}"), self.settings.per_identifier),
                Key::Admin(actor) => (format!("{action}|admin|{actor}"), self.settings.per_admin),
            })
            .collect();
        let buckets: Vec<String> = limits.iter().map(|(bucket, _)| bucket.clone()).collect();
        let counts = rate_limits::hit_windows(store, buckets, window_start, expires_at).await?;
        let over = limits.iter().any(|(bucket, max)| {
            counts
                .iter()
                .any(|(counted, hits)| counted == bucket && *hits > i64::from(*max))
        });
        if over {
            Err(RateLimitError::Limited(
                u64::try_from(start_s + window - now_s).unwrap_or(1).max(1),
            ))
        } else {
            Ok(())
        }
    }

    /// Forgets idle in-memory keys; called by the maintenance task.
    pub fn shrink(&self) {
        if let Some(memory) = &self.memory {
            memory.per_ip.retain_recent();
            memory.per_identifier.retain_recent();
            memory.per_admin.retain_recent();
        }
    }
}

impl MemoryLimits {
    fn check(&self, action: &str, keys: &[Key]) -> Result<(), RateLimitError> {
        let mut wait = Duration::ZERO;
        for key in keys {
            let (limiter, name) = match key {
                Key::Ip(ip) => (&self.per_ip, format!("{action}|{ip}")),
                Key::Identifier(id) => (&self.per_identifier, format!("{action}|{id}")),
                Key::Admin(actor) => (&self.per_admin, format!("{action}|{actor}")),
            };
            if let Err(not_until) = limiter.check_key(&name) {
                let now = governor::clock::Clock::now(&self.clock);
                wait = wait.max(not_until.wait_time_from(now));
            }
        }
        if wait.is_zero() {
            Ok(())
        } else {
            Err(RateLimitError::Limited(wait.as_secs().max(1)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DatabaseUrl;

    /// On SQLite the windows are in memory; they follow the injected clock like the
    /// database's windows on PostgreSQL, so a fixed clock moved on opens the next window.
    #[tokio::test]
    async fn in_memory_limits_follow_the_injected_clock() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, _) =
            Store::open(&DatabaseUrl::sqlite(dir.path().join("p.db")), 1).expect("store");
        let clock = Clock::fixed(Clock::System.now());
        let settings = RateLimitSettings {
            per_ip: 2,
            per_identifier: 2,
            per_admin: 2,
            window: Duration::from_secs(60),
        };
        let limiter = RateLimiter::new(&settings, Backend::Sqlite, clock.clone());
        let keys = [Key::Ip("192.0.2.1".into())];
        for _ in 0..2 {
            assert!(limiter.check(&store, "login", &keys).await.is_ok());
        }
        assert!(matches!(
            limiter.check(&store, "login", &keys).await,
            Err(RateLimitError::Limited(_))
        ));
        clock.advance(time::Duration::seconds(60));
        assert!(
            limiter.check(&store, "login", &keys).await.is_ok(),
            "the next window"
        );
    }
}
