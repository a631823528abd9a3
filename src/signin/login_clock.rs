//! When the login page was served, carried by the page in a MAC'd token, so time-to-login
//! (X4) is measured from the page to the session without keeping per-visit state.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::clock::UtcTime;
use crate::crypto::{MasterKey, constant_time_eq};

pub struct LoginClock;

impl LoginClock {
    pub fn token(key: &MasterKey, tenant_id: &str, now: UtcTime) -> String {
        let millis = now.assume_utc().unix_timestamp_nanos() / 1_000_000;
        format!("{millis}.{}", Self::mac(key, tenant_id, millis))
    }

    fn mac(key: &MasterKey, tenant_id: &str, millis: i128) -> String {
        URL_SAFE_NO_PAD
            .encode(&key.mac(format!("login-start|{tenant_id}|{millis}").as_bytes())[..16])
    }

    /// Milliseconds since the page was served, if the token is genuine and recent.
    pub fn elapsed_ms(
        key: &MasterKey,
        tenant_id: &str,
        token: Option<&str>,
        now: UtcTime,
    ) -> Option<i64> {
        let (millis, mac) = token?.split_once('.')?;
        let millis: i128 = millis.parse().ok()?;
        if !constant_time_eq(mac.as_bytes(), Self::mac(key, tenant_id, millis).as_bytes()) {
            return None;
        }
        let now_ms = now.assume_utc().unix_timestamp_nanos() / 1_000_000;
        let elapsed = i64::try_from(now_ms - millis).ok()?;
        (0..=3_600_000).contains(&elapsed).then_some(elapsed)
    }
}
