//! Time is injected (STYLE lesson 3): domain code takes `now` from here, so expiry, rollout
//! dates and token lifetimes are testable with a fixed clock.

use std::sync::{Arc, Mutex};

use time::{Duration, OffsetDateTime, PrimitiveDateTime};

/// UTC wall-clock time as stored in the database (`Timestamp` columns hold UTC).
pub type UtcTime = PrimitiveDateTime;

#[derive(Clone, Debug, Default)]
pub enum Clock {
    #[default]
    System,
    Fixed(Arc<Mutex<UtcTime>>),
}

impl Clock {
    pub fn fixed(at: UtcTime) -> Clock {
        Clock::Fixed(Arc::new(Mutex::new(truncate(at))))
    }

    /// Now in UTC, truncated to microseconds (PostgreSQL's precision) so a value read back
    /// equals the value written.
    pub fn now(&self) -> UtcTime {
        match self {
            Clock::System => {
                let now = OffsetDateTime::now_utc();
                truncate(PrimitiveDateTime::new(now.date(), now.time()))
            }
            Clock::Fixed(at) => *at.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }

    /// Moves a fixed clock forward; the system clock cannot be moved.
    pub fn advance(&self, by: Duration) {
        if let Clock::Fixed(at) = self {
            let mut at = at.lock().unwrap_or_else(|p| p.into_inner());
            *at += by;
        }
    }
}

fn truncate(t: UtcTime) -> UtcTime {
    let micros = t.microsecond();
    t.replace_microsecond(micros).unwrap_or(t)
}

/// Seconds since the Unix epoch, for JWT claims.
pub fn unix_seconds(t: UtcTime) -> i64 {
    t.assume_utc().unix_timestamp()
}

/// For pages: `2026-03-02 09:00 UTC`.
pub fn display(t: UtcTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_fixed_clock_moves_only_when_advanced() {
        let clock = Clock::fixed(datetime!(2026-01-01 00:00:00.123456789));
        assert_eq!(clock.now(), datetime!(2026-01-01 00:00:00.123456));
        clock.advance(Duration::minutes(5));
        assert_eq!(clock.now(), datetime!(2026-01-01 00:05:00.123456));
    }
}
