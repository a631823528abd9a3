//! HTTP endpoints of the OpenID Connect provider. Every route sits in the one `/t/{tenant}`
//! scope the sign-in pages share (a second scope with that prefix would hide the first's
//! routes), plus the RFC 8414 metadata path.

mod authorize;
mod cors;
mod documents;
mod logout;
mod token;
mod userinfo;

use std::sync::Arc;

use actix_web::middleware::from_fn;
use actix_web::web;

use super::AppError;
use crate::app::AppState;
use crate::oidc::clients::Client;
use crate::oidc::keys::{self, TenantKeys};
use crate::oidc::{Lifetimes, token::Issuer};
use crate::store::tenants::Tenant;

/// The RFC 8414 metadata path, the one OIDC route outside `/t/{tenant}`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/.well-known/oauth-authorization-server/t/{tenant}")
            .wrap(from_fn(cors::cors))
            .route(web::get().to(documents::get_discovery)),
    );
}

/// The provider's routes inside the `/t/{tenant}` scope.
pub fn configure_tenant(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/.well-known/openid-configuration")
            .wrap(from_fn(cors::cors))
            .route(web::get().to(documents::get_discovery)),
    )
    .service(
        web::resource("/jwks.json")
            .wrap(from_fn(cors::cors))
            .route(web::get().to(documents::get_jwks)),
    )
    .service(
        web::resource("/oauth2/authorize")
            .route(web::get().to(authorize::get_authorize))
            .route(web::post().to(authorize::post_authorize)),
    )
    .service(web::resource("/consent").route(web::post().to(authorize::post_consent)))
    .service(
        web::resource("/oauth2/token")
            .wrap(from_fn(cors::cors))
            .route(web::post().to(token::post_token)),
    )
    .service(
        web::resource("/oauth2/userinfo")
            .wrap(from_fn(cors::cors))
            .route(web::get().to(userinfo::get_userinfo))
            .route(web::post().to(userinfo::post_userinfo)),
    )
    .service(web::resource("/oauth2/introspect").route(web::post().to(token::post_introspect)))
    .service(
        web::resource("/oauth2/revoke")
            .wrap(from_fn(cors::cors))
            .route(web::post().to(token::post_revoke)),
    )
    .service(
        web::resource("/oauth2/logout")
            .route(web::get().to(logout::get_logout))
            .route(web::post().to(logout::post_logout)),
    );
}

use super::context::tenant_of as tenant;

/// The tenant's keys: from the cache, else loaded (and created on first use).
pub async fn tenant_keys(state: &AppState, tenant_id: &str) -> Result<Arc<TenantKeys>, AppError> {
    let now = state.clock.now();
    if let Some(keys) = state.oidc.keys(tenant_id, now) {
        return Ok(keys);
    }
    let (id, master_key) = (tenant_id.to_string(), state.master_key.clone());
    let loaded = state
        .store
        .read(move |conn| keys::load_keys(conn, &id, &master_key, now))
        .await?;
    let loaded = match loaded {
        Some(keys) => keys,
        None => {
            let (id, master_key) = (tenant_id.to_string(), state.master_key.clone());
            state
                .store
                .write(move |conn| keys::ensure_keys(conn, &id, &master_key, now))
                .await?
        }
    };
    let keys = Arc::new(loaded);
    state.oidc.put_keys(tenant_id, keys.clone());
    Ok(keys)
}

/// A client of the tenant, from the cache or the database.
async fn client(
    state: &AppState,
    tenant_id: &str,
    client_id: &str,
) -> Result<Option<Arc<Client>>, AppError> {
    if let Some(client) = state.oidc.client(tenant_id, client_id) {
        return Ok(Some(client));
    }
    if client_id.is_empty() || client_id.len() > 200 {
        return Ok(None);
    }
    let (tenant, id) = (tenant_id.to_string(), client_id.to_string());
    let found = state
        .store
        .read(move |conn| crate::oidc::clients::find_client(conn, &tenant, &id))
        .await?;
    Ok(found.map(|c| {
        let client = Arc::new(c);
        state.oidc.put_client(client.clone());
        client
    }))
}

/// What the token-issuing domain functions need, owned so it can move to the blocking pool.
#[derive(Clone)]
struct IssuerContext {
    tenant_id: String,
    issuer: String,
    keys: Arc<TenantKeys>,
    lifetimes: Lifetimes,
    now: crate::clock::UtcTime,
}

impl IssuerContext {
    async fn load(state: &AppState, tenant: &Tenant) -> Result<IssuerContext, AppError> {
        Ok(IssuerContext {
            tenant_id: tenant.id.clone(),
            issuer: state.settings.issuer(&tenant.slug),
            keys: tenant_keys(state, &tenant.id).await?,
            lifetimes: Lifetimes::from_settings(&state.settings.oidc),
            now: state.clock.now(),
        })
    }

    fn issuer(&self) -> Issuer<'_> {
        Issuer {
            tenant_id: &self.tenant_id,
            issuer: &self.issuer,
            keys: &self.keys,
            lifetimes: &self.lifetimes,
            now: self.now,
        }
    }
}

/// Verifies a bearer access token of `tenant` and returns its claims: the entry point for
/// resource endpoints of passgate itself (userinfo; the admin API with `passgate:admin`).
pub async fn verify_bearer(
    state: &AppState,
    tenant: &Tenant,
    token: String,
) -> Result<crate::oidc::claims::AccessTokenClaims, AppError> {
    let ctx = IssuerContext::load(state, tenant).await?;
    Ok(state
        .store
        .read(move |conn| crate::oidc::token::verify_access_token(conn, &ctx.issuer(), &token))
        .await?)
}
