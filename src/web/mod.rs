//! The web layer: routes, extractors, middleware and page handlers, one module per area
//! (sign-in, enrollment, recovery, account, admin, OIDC), each with its `configure`.
//! Handlers parse, authorize, call one domain function and render; the domain's errors
//! become HTTP in `error/`.

mod account;
mod admin;
mod assets;
pub mod context;
pub mod cookies;
pub mod csrf;
mod enroll;
pub mod error;
mod extract;
mod health;
mod login;
mod middleware;
pub mod oidc;
mod pages;
mod recover;

use actix_web::{HttpRequest, HttpResponse, web};

pub use context::{SignedIn, TenantRequest, Visit};
pub use error::{AppError, PageError};
pub use middleware::{RequestSpan, request_id_header, security_headers};

/// Every route of the application.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(extract::json_config())
        .app_data(extract::form_config())
        .app_data(extract::query_config())
        .app_data(extract::path_config())
        .route("/", web::get().to(pages::get_home))
        .route("/healthz", web::get().to(health::get_healthz))
        .route("/readyz", web::get().to(health::get_readyz))
        .route("/static/{file}", web::get().to(assets::get_static))
        .configure(oidc::configure)
        // One scope for everything under a tenant (a second scope with the same prefix would
        // hide the first's routes), each area adding its own.
        .service(
            web::scope("/t/{tenant}")
                .configure(oidc::configure_tenant)
                .configure(login::configure)
                .configure(enroll::configure)
                .configure(recover::configure)
                .configure(account::configure)
                .configure(admin::configure),
        )
        .default_service(web::to(not_found));
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, actix_web::Error> {
    let err = AppError::not_found("There is nothing at this address.");
    if is_api_path(req.path()) {
        Err(err.into())
    } else {
        Err(PageError(err).into())
    }
}

/// Paths whose errors are JSON for programs rather than HTML for people. The authorization
/// and logout endpoints are browser-facing even though they sit under `oauth2/`.
pub fn is_api_path(path: &str) -> bool {
    if ["/healthz", "/readyz", "/metrics", "/.well-known/"]
        .iter()
        .any(|p| path.starts_with(p))
    {
        return true;
    }
    let Some(rest) = path.strip_prefix("/t/") else {
        return false;
    };
    let tenant_path = rest.find('/').map(|i| &rest[i..]).unwrap_or("");
    if tenant_path.starts_with("/oauth2/authorize") || tenant_path.starts_with("/oauth2/logout") {
        return false;
    }
    [
        "/oauth2/",
        "/api/",
        "/admin/api/",
        "/.well-known/",
        "/jwks.json",
    ]
    .iter()
    .any(|p| tenant_path.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::is_api_path;

    #[test]
    fn protocol_and_api_paths_get_json_errors_and_pages_get_html() {
        for api in [
            "/healthz",
            "/readyz",
            "/.well-known/oauth-authorization-server/t/acme",
            "/t/acme/oauth2/token",
            "/t/acme/oauth2/userinfo",
            "/t/acme/api/login/start",
            "/t/acme/admin/api/users",
            "/t/acme/.well-known/openid-configuration",
            "/t/acme/jwks.json",
        ] {
            assert!(is_api_path(api), "{api}");
        }
        for page in [
            "/",
            "/t/acme/login",
            "/t/acme/oauth2/authorize",
            "/t/acme/oauth2/logout",
            "/t/acme/account",
            "/t/acme",
        ] {
            assert!(!is_api_path(page), "{page}");
        }
    }
}
