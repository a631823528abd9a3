//! Cross-site request forgery defences, two layers:
//! 1. every unsafe request from a browser must come from our own origin (`Sec-Fetch-Site`,
//!    else `Origin`); the OAuth endpoints that relying parties call across sites are exempt;
//! 2. every form and page `fetch` carries a synchronizer token bound to this browser: the
//!    session's secret when signed in, otherwise an HMAC of a random per-browser cookie.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::{AppError, PageError, cookies, is_api_path};
use crate::app::AppState;
use crate::crypto::{MasterKey, constant_time_eq, random_token};

/// The per-browser random value behind the anonymous CSRF token (cookie or just minted).
#[derive(Clone)]
pub struct BrowserSecret(pub String);

/// Empty without a secret (an API call that brought no CSRF cookie): an empty token never
/// matches, so no fixed token exists that a request without the cookie could present.
pub fn anonymous_token(key: &MasterKey, browser_secret: &str) -> String {
    if browser_secret.is_empty() {
        return String::new();
    }
    URL_SAFE_NO_PAD.encode(key.mac(format!("csrf|{browser_secret}").as_bytes()))
}

/// True when `submitted` is one of the tokens this browser may hold.
pub fn token_matches(submitted: &str, expected: &[&str]) -> bool {
    !submitted.is_empty()
        && expected
            .iter()
            .any(|e| !e.is_empty() && constant_time_eq(submitted.as_bytes(), e.as_bytes()))
}

/// Endpoints relying parties reach across sites, or that carry no cookies at all.
fn is_cross_site_endpoint(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/t/") else {
        return false;
    };
    let tenant_path = rest.find('/').map(|i| &rest[i..]).unwrap_or("");
    [
        "/oauth2/authorize",
        "/oauth2/token",
        "/oauth2/revoke",
        "/oauth2/introspect",
        "/oauth2/userinfo",
        "/oauth2/logout",
    ]
    .contains(&tenant_path)
}

/// Paths that render HTML with forms (and so need this browser's CSRF secret).
fn serves_pages(path: &str) -> bool {
    !is_api_path(path) && !path.starts_with("/static/")
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Refuses unsafe cross-site browser requests and makes sure every browser has a CSRF secret.
pub async fn csrf_guard(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Err(AppError::internal("application state missing").into());
    };
    if is_unsafe(req.method()) && !is_cross_site_endpoint(req.path()) {
        let fetch_site = req
            .headers()
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok());
        let origin = req.headers().get("origin").and_then(|v| v.to_str().ok());
        let allowed = match (fetch_site, origin) {
            (Some(site), _) => site == "same-origin" || site == "none",
            (None, Some(origin)) => origin == state.settings.public_origin(),
            // Neither header: not a browser, so there is no ambient cookie to forge with.
            (None, None) => true,
        };
        if !allowed {
            let err = AppError::forbidden("Cross-site requests are not accepted here.");
            return Err(if is_api_path(req.path()) {
                err.into()
            } else {
                PageError(err).into()
            });
        }
    }
    let cookie_name = cookies::csrf_cookie_name(&state.settings);
    let existing = req
        .cookie(&cookie_name)
        .map(|c| c.value().to_string())
        .filter(|v| v.len() >= 32);
    // Only pages hand out tokens; an API call without the cookie cannot pass the check
    // anyway, and protocol endpoints (discovery, JWKS, token) should not set cookies.
    let minted = (existing.is_none() && serves_pages(req.path())).then(|| random_token(32));
    let secret = existing.or_else(|| minted.clone()).unwrap_or_default();
    req.extensions_mut().insert(BrowserSecret(secret));
    let mut res = next.call(req).await?;
    if let Some(value) = minted {
        let cookie = cookies::csrf_cookie(&state.settings, &value);
        if let Ok(header) = actix_web::http::header::HeaderValue::from_str(&cookie.to_string()) {
            res.headers_mut()
                .append(actix_web::http::header::SET_COOKIE, header);
        }
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_cross_site_oauth_endpoints_are_exempt() {
        assert!(is_cross_site_endpoint("/t/acme/oauth2/token"));
        assert!(is_cross_site_endpoint("/t/acme/oauth2/authorize"));
        assert!(!is_cross_site_endpoint("/t/acme/login"));
        assert!(!is_cross_site_endpoint("/t/acme/api/login/finish"));
        assert!(!is_cross_site_endpoint("/t/acme/oauth2/token/extra"));
    }

    #[test]
    fn only_pages_mint_a_browser_secret() {
        assert!(serves_pages("/t/acme/login"));
        assert!(serves_pages("/t/acme/oauth2/authorize"));
        assert!(!serves_pages("/t/acme/.well-known/openid-configuration"));
        assert!(!serves_pages("/t/acme/jwks.json"));
        assert!(!serves_pages("/t/acme/oauth2/token"));
        assert!(!serves_pages("/static/app.css"));
    }

    #[test]
    fn a_request_without_the_csrf_cookie_has_no_token_to_match() {
        let key = MasterKey::generate();
        assert_eq!(anonymous_token(&key, ""), "");
        assert!(!token_matches(&anonymous_token(&key, ""), &[""]));
        assert!(!anonymous_token(&key, "a-browser-secret-of-enough-length").is_empty());
    }

    #[test]
    fn tokens_match_in_constant_time_and_never_when_empty() {
        assert!(token_matches("abc", &["x", "abc"]));
        assert!(!token_matches("abd", &["abc"]));
        assert!(!token_matches("", &[""]));
    }
}
