//! Helpers shared by the page handlers.

use actix_web::HttpResponse;
use actix_web::cookie::Cookie;
use actix_web::http::header;
use askama::Template;
use serde::Serialize;

use super::AppError;

/// Renders a page; pages that carry tokens or personal data are never cached.
pub fn render<T: Template>(page: &T) -> Result<HttpResponse, AppError> {
    let html = page.render().map_err(AppError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(html))
}

/// 303: after a form post, the browser follows with a GET.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// A JSON answer to a page script, optionally setting a cookie.
pub fn json_no_store<T: Serialize>(body: &T, cookie: Option<Cookie<'static>>) -> HttpResponse {
    let mut res = HttpResponse::Ok();
    res.insert_header((header::CACHE_CONTROL, "no-store"));
    if let Some(cookie) = cookie {
        res.cookie(cookie);
    }
    res.json(body)
}

/// Where to go after signing in: only a relative path inside this tenant, so the parameter
/// cannot be used to send people to another site (open redirect) or another tenant.
pub fn safe_return_to(raw: Option<&str>, tenant_slug: &str) -> Option<String> {
    let raw = raw?;
    let prefix = format!("/t/{tenant_slug}/");
    let ok = raw.starts_with(&prefix)
        && raw.len() <= 4096
        && !raw.contains('\\')
        && !raw.chars().any(|c| c.is_control() || c.is_whitespace())
        && !raw.contains("/../")
        && !raw.contains("/./");
    ok.then(|| raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::safe_return_to;

    #[test]
    fn return_to_stays_inside_the_tenant() {
        let ok = "/t/acme/oauth2/authorize?client_id=x&state=y";
        assert_eq!(safe_return_to(Some(ok), "acme").as_deref(), Some(ok));
        for bad in [
            "https://evil.example/t/acme/",
            "//evil.example/t/acme/",
            "/t/other/account",
            "/t/acme",
            "/t/acme/../other/account",
            "/t/acme/\\evil",
            "/t/acme/x\ny",
            "javascript:alert(1)",
        ] {
            assert_eq!(safe_return_to(Some(bad), "acme"), None, "{bad}");
        }
    }
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage;

/// `GET /`: says passgate is running and where an organisation's pages are, without naming
/// any organisation.
pub async fn get_home() -> Result<HttpResponse, super::PageError> {
    Ok(render(&HomePage)?)
}
