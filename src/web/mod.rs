//! The web layer: routes, extractors, middleware and page handlers. Handlers parse, authorize,
//! call one domain function and render.

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
        .route("/healthz", web::get().to(health::get_healthz))
        .route("/readyz", web::get().to(health::get_readyz))
        .route("/static/{file}", web::get().to(assets::get_static))
        .configure(oidc::configure)
        // One scope for everything under a tenant: its pattern is matched once, and the
        // routes inside it are mostly literal paths, compared as strings.
        .service(
            web::scope("/t/{tenant}")
                .configure(oidc::configure_tenant)
                .route("/login", web::get().to(login::get_login))
                .route("/signout", web::post().to(login::post_signout))
                .route("/enroll", web::get().to(enroll::get_enroll))
                .route("/admin/api/audit", web::get().to(admin::get_audit))
                .route("/recover", web::get().to(recover::get_recover))
                .route("/recover/link", web::get().to(enroll::get_recovery_link))
                .route("/api/recover/code", web::post().to(recover::post_code))
                .route("/api/recover/email", web::post().to(recover::post_email))
                .route("/device", web::get().to(enroll::get_device))
                .route("/setup", web::get().to(enroll::get_setup))
                .route("/account", web::get().to(account::get_account))
                .route(
                    "/account/recovery-code",
                    web::post().to(account::post_recovery_code),
                )
                .route(
                    "/account/device-link",
                    web::post().to(account::post_device_link),
                )
                .route("/api/login/identify", web::post().to(login::post_identify))
                .route(
                    "/api/login/discoverable",
                    web::post().to(login::post_discoverable),
                )
                .route(
                    "/api/login/passkey",
                    web::post().to(login::post_passkey_finish),
                )
                .route("/api/login/password", web::post().to(login::post_password))
                .route("/api/links/start", web::post().to(enroll::post_link_start))
                .route("/api/setup/start", web::post().to(enroll::post_setup_start))
                .route(
                    "/api/passkeys/start",
                    web::post().to(enroll::post_additional_start),
                )
                .route("/api/passkeys/finish", web::post().to(enroll::post_finish))
                // Patterns with a parameter are matched by regex: after the literal paths.
                .route(
                    "/admin/api/users/{id}/recovery",
                    web::post().to(admin::post_user_recovery),
                )
                .route(
                    "/admin/api/audit/{id}/review",
                    web::post().to(admin::post_review),
                )
                .route(
                    "/account/passkeys/{id}/rename",
                    web::post().to(account::post_rename),
                )
                .route(
                    "/account/passkeys/{id}/remove",
                    web::get().to(account::get_remove),
                )
                .route(
                    "/account/passkeys/{id}/remove",
                    web::post().to(account::post_remove),
                ),
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
