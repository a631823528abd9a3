//! Discovery (OIDC Discovery §4, RFC 8414 §3) and the JWKS: served from bytes serialised
//! once per tenant (the JWKS again after every key change), with `Cache-Control`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::{tenant, tenant_keys};
use crate::app::AppState;
use crate::web::AppError;

pub async fn get_discovery(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let tenant = tenant(&req, &state).await?;
    let document = match state.oidc.discovery(&tenant.slug) {
        Some(bytes) => bytes,
        None => {
            let issuer = state.settings.issuer(&tenant.slug);
            let bytes: bytes::Bytes =
                serde_json::to_vec(&crate::oidc::discovery::document(&issuer))
                    .map_err(AppError::internal)?
                    .into();
            state.oidc.put_discovery(&tenant.slug, bytes.clone());
            bytes
        }
    };
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(document))
}

/// Five minutes: relying parties refetch soon after a rotation, and a new key is published
/// a whole `key_publish_lead` before it signs.
pub async fn get_jwks(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let tenant = tenant(&req, &state).await?;
    let keys = tenant_keys(&state, &tenant.id).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/jwk-set+json")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(keys.jwks.clone()))
}
