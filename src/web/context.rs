//! `Visit`: what every tenant page and API call starts from — the tenant named in the path,
//! the signed-in user (if any), the client, and the CSRF tokens this browser may hold.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use super::csrf::{BrowserSecret, anonymous_token, token_matches};
use super::{AppError, PageError, cookies, is_api_path};
use crate::app::AppState;
use crate::client::ClientInfo;
use crate::config::Settings;
use crate::ratelimit::Key;
use crate::sessions;
use crate::store::sessions::BrowserSession;
use crate::store::tenants::Tenant;
use crate::store::users::User;
use crate::users::Email;

/// A signed-in user and the session that proves it.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub session: BrowserSession,
    pub user: User,
}

/// A request to a tenant, without looking the session up: the sign-in endpoints need only
/// the tenant, the client and the anonymous CSRF token, and skipping the session saves a
/// database round trip on the hottest path.
pub struct TenantRequest {
    pub state: web::Data<AppState>,
    pub tenant: Tenant,
    pub client: ClientInfo,
    browser_secret: String,
    /// The tenant's session cookie, if the browser sent one (not checked).
    pub session_token: Option<String>,
}

impl TenantRequest {
    /// The CSRF token of a browser that is not (or not yet) signed in.
    pub fn anonymous_csrf_token(&self) -> String {
        anonymous_token(&self.state.master_key, &self.browser_secret)
    }

    /// Refuses the request unless its `X-CSRF-Token` header carries this browser's
    /// anonymous token (pages for signing in always hand out that one).
    pub fn check_csrf_header(&self, req: &HttpRequest) -> Result<(), AppError> {
        let submitted = req
            .headers()
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if token_matches(submitted, &[&self.anonymous_csrf_token()]) {
            Ok(())
        } else {
            Err(csrf_refusal())
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.state.settings
    }

    /// `/t/{slug}` plus `path`.
    pub fn tenant_path(&self, path: &str) -> String {
        format!("/t/{}{}", self.tenant.slug, path)
    }

    /// See [`rate_limit`].
    pub async fn limit(&self, action: &str, identifier: Option<&Email>) -> Result<(), AppError> {
        rate_limit(&self.state, &self.tenant, &self.client, action, identifier).await
    }
}

/// Counts the request against its action's limits (P7): always by client IP, and by
/// identifier when the request names an account.
async fn rate_limit(
    state: &AppState,
    tenant: &Tenant,
    client: &ClientInfo,
    action: &str,
    identifier: Option<&Email>,
) -> Result<(), AppError> {
    let ip = Key::Ip(client.ip_string().unwrap_or_default());
    let keys = match identifier {
        Some(email) => vec![ip, Key::Identifier(format!("{}|{email}", tenant.id))],
        None => vec![ip],
    };
    state.limiter.check(&state.store, action, &keys).await?;
    Ok(())
}

fn csrf_refusal() -> AppError {
    AppError::forbidden(
        "This form has expired or did not come from this site. Reload the page and try again.",
    )
}

/// A request to a tenant with its signed-in user (if any): what pages start from.
pub struct Visit {
    pub state: web::Data<AppState>,
    pub tenant: Tenant,
    pub signed_in: Option<SignedIn>,
    pub client: ClientInfo,
    browser_secret: String,
    /// The tenant's session cookie, if the browser sent one (live or not).
    pub session_token: Option<String>,
}

impl Visit {
    /// The CSRF token for pages whose scripts call the sign-in endpoints.
    pub fn anonymous_csrf_token(&self) -> String {
        anonymous_token(&self.state.master_key, &self.browser_secret)
    }

    /// The token to put in forms and the `X-CSRF-Token` header of page scripts.
    pub fn csrf_token(&self) -> String {
        match &self.signed_in {
            Some(s) => s.session.csrf_secret.clone(),
            None => anonymous_token(&self.state.master_key, &self.browser_secret),
        }
    }

    /// Refuses the request unless it carries this browser's token: once signed in, the
    /// session's own (a token from before the sign-in is not bound to the session, and stops
    /// counting the moment there is one); before, the anonymous one.
    pub fn check_csrf(&self, submitted: Option<&str>) -> Result<(), AppError> {
        if token_matches(submitted.unwrap_or_default(), &[&self.csrf_token()]) {
            Ok(())
        } else {
            Err(csrf_refusal())
        }
    }

    /// The header form of [`Visit::check_csrf`], for page scripts' `fetch` calls.
    pub fn check_csrf_header(&self, req: &HttpRequest) -> Result<(), AppError> {
        self.check_csrf(
            req.headers()
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok()),
        )
    }

    pub fn settings(&self) -> &Settings {
        &self.state.settings
    }

    /// `/t/{slug}` plus `path`.
    pub fn tenant_path(&self, path: &str) -> String {
        format!("/t/{}{}", self.tenant.slug, path)
    }

    /// See [`rate_limit`].
    pub async fn limit(&self, action: &str, identifier: Option<&Email>) -> Result<(), AppError> {
        rate_limit(&self.state, &self.tenant, &self.client, action, identifier).await
    }

    pub fn require_signed_in(&self) -> Result<&SignedIn, AppError> {
        self.signed_in
            .as_ref()
            .ok_or_else(|| AppError::unauthorized("Sign in first."))
    }
}

fn for_path(req: &HttpRequest, e: AppError) -> actix_web::Error {
    if is_api_path(req.path()) {
        e.into()
    } else {
        PageError(e).into()
    }
}

impl FromRequest for TenantRequest {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<TenantRequest, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { load(&req).await.map_err(|e| for_path(&req, e)) })
    }
}

impl FromRequest for Visit {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Visit, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let found = load(&req).await.map_err(|e| for_path(&req, e))?;
            let signed_in = match &found.session_token {
                Some(token) => find_signed_in(&found.state, &found.tenant, token.clone())
                    .await
                    .map_err(|e| for_path(&req, e))?,
                None => None,
            };
            Ok(Visit {
                state: found.state,
                tenant: found.tenant,
                signed_in,
                client: found.client,
                browser_secret: found.browser_secret,
                session_token: found.session_token,
            })
        })
    }
}

async fn load(req: &HttpRequest) -> Result<TenantRequest, AppError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| AppError::internal("application state missing"))?;
    let tenant = tenant_of(req, &state).await?;
    let slug = tenant.slug.clone();
    let client = client_info(req, &state.settings);
    let browser_secret = req
        .extensions()
        .get::<BrowserSecret>()
        .map(|s| s.0.clone())
        .unwrap_or_default();
    let session_token = req
        .cookie(&cookies::session_cookie_name(&state.settings, &slug))
        .map(|c| c.value().to_string())
        .filter(|t| !t.is_empty());
    Ok(TenantRequest {
        state,
        tenant,
        client,
        browser_secret,
        session_token,
    })
}

async fn find_signed_in(
    state: &web::Data<AppState>,
    tenant: &Tenant,
    token: String,
) -> Result<Option<SignedIn>, AppError> {
    let found = sessions::resume(
        &state.store,
        &state.settings.session,
        &tenant.id,
        &token,
        state.clock.now(),
    )
    .await?;
    Ok(found.map(|(session, user)| SignedIn { session, user }))
}

/// The tenant's slug, from the `/t/{tenant}` path every tenant route sits under.
pub fn tenant_slug(req: &HttpRequest) -> Result<&str, AppError> {
    req.match_info()
        .get("tenant")
        .ok_or_else(|| AppError::not_found("There is nothing at this address."))
}

/// The active tenant the path names (cached briefly, like every tenant lookup).
pub async fn tenant_of(req: &HttpRequest, state: &AppState) -> Result<Tenant, AppError> {
    Ok(state
        .tenants
        .find_active(&state.store, tenant_slug(req)?)
        .await?)
}

/// The client's IP: the peer, or — when the peer is a trusted proxy — the right-most
/// `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(req: &HttpRequest, settings: &Settings) -> Option<IpAddr> {
    let peer = req.peer_addr().map(|a| a.ip())?;
    let trusted = |ip: &IpAddr| settings.trusted_proxies.iter().any(|net| net.contains(ip));
    if !trusted(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !trusted(ip))
            .unwrap_or(peer),
    )
}

pub fn client_info(req: &HttpRequest, settings: &Settings) -> ClientInfo {
    ClientInfo::new(
        client_ip(req, settings),
        req.headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok()),
    )
}
