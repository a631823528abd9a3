//! Cookie names and attributes. Each tenant has its own session cookie, so a person can be
//! signed in to two organisations and nothing about one session reaches the other (O1).
//! Over https the names carry the `__Host-` prefix (Secure, Path=/, no Domain).

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};

use crate::config::Settings;

pub fn session_cookie_name(settings: &Settings, tenant_slug: &str) -> String {
    format!("{}pg-session-{tenant_slug}", prefix(settings))
}

pub fn csrf_cookie_name(settings: &Settings) -> String {
    format!("{}pg-csrf", prefix(settings))
}

fn prefix(settings: &Settings) -> &'static str {
    if settings.is_https() { "__Host-" } else { "" }
}

fn base(settings: &Settings, name: String, value: String) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .secure(settings.is_https())
        .same_site(SameSite::Lax)
        .finish()
}

pub fn session_cookie(settings: &Settings, tenant_slug: &str, token: &str) -> Cookie<'static> {
    let mut cookie = base(
        settings,
        session_cookie_name(settings, tenant_slug),
        token.to_string(),
    );
    let max_age = i64::try_from(settings.session.absolute_timeout.as_secs()).unwrap_or(86_400);
    cookie.set_max_age(CookieDuration::seconds(max_age));
    cookie
}

pub fn removed_session_cookie(settings: &Settings, tenant_slug: &str) -> Cookie<'static> {
    let mut cookie = base(
        settings,
        session_cookie_name(settings, tenant_slug),
        String::new(),
    );
    cookie.make_removal();
    cookie
}

pub fn csrf_cookie(settings: &Settings, value: &str) -> Cookie<'static> {
    base(settings, csrf_cookie_name(settings), value.to_string())
}
