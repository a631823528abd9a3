//! The login page and the JSON endpoints its script calls (P3, P4, S1).

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use serde_json::json;
use webauthn_rs_core::proto::PublicKeyCredential;

use super::pages::{json_no_store, render, safe_return_to, see_other};
use super::{AppError, PageError, TenantRequest, Visit, cookies};
use crate::sessions;
use crate::signin::{self, LoginClock, LoginContext, SignedIn};
use crate::store::tenants::Tenant;
use crate::users::Email;

/// The login page, sign-out, and the JSON endpoints its script calls.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::get().to(get_login))
        .route("/signout", web::post().to(post_signout))
        .route("/api/login/identify", web::post().to(post_identify))
        .route("/api/login/discoverable", web::post().to(post_discoverable))
        .route("/api/login/passkey", web::post().to(post_passkey_finish))
        .route("/api/login/password", web::post().to(post_password));
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    return_to: Option<String>,
    login_hint: Option<String>,
    /// `passkey`: the relying party asked for phishing-resistant sign-in (acr `phr`).
    require: Option<String>,
    /// `login`: sign in again even with a session.
    prompt: Option<String>,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    tenant_name: &'a str,
    tenant_path: String,
    csrf: String,
    return_to: String,
    started: String,
    login_hint: &'a str,
    require_passkey: bool,
}

fn return_to_or_account(tenant: &Tenant, raw: Option<&str>) -> String {
    safe_return_to(raw, &tenant.slug).unwrap_or_else(|| format!("/t/{}/account", tenant.slug))
}

pub async fn get_login(
    visit: Visit,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, PageError> {
    let return_to = return_to_or_account(&visit.tenant, query.return_to.as_deref());
    let require_passkey = query.require.as_deref() == Some("passkey");
    let forced = query.prompt.as_deref() == Some("login");
    if let Some(signed_in) = &visit.signed_in {
        let strong_enough = !require_passkey
            || signed_in.session.acr.as_deref() == Some(sessions::ACR_PHISHING_RESISTANT);
        if !forced && strong_enough {
            return Ok(see_other(&return_to));
        }
    }
    let now = visit.state.clock.now();
    Ok(render(&LoginPage {
        tenant_name: &visit.tenant.name,
        tenant_path: visit.tenant_path(""),
        csrf: visit.anonymous_csrf_token(),
        return_to,
        started: LoginClock::token(&visit.state.master_key, &visit.tenant.id, now),
        login_hint: query.login_hint.as_deref().unwrap_or_default(),
        require_passkey,
    })?)
}

#[derive(Debug, Deserialize)]
pub struct IdentifyBody {
    email: String,
}

pub async fn post_identify(
    req: HttpRequest,
    visit: TenantRequest,
    body: web::Json<IdentifyBody>,
) -> Result<HttpResponse, AppError> {
    visit.check_csrf_header(&req)?;
    let email = Email::parse(&body.email).map_err(|e| AppError::bad_request(e.to_string()))?;
    let state = &visit.state;
    let now = state.clock.now();
    visit.limit("login", Some(&email)).await?;
    let answer = signin::identify(state.sign_in(), &visit.tenant.id, &email, now).await?;
    Ok(json_no_store(&answer, None))
}

pub async fn post_discoverable(
    req: HttpRequest,
    visit: TenantRequest,
) -> Result<HttpResponse, AppError> {
    visit.check_csrf_header(&req)?;
    let state = &visit.state;
    let now = state.clock.now();
    visit.limit("passkey-start", None).await?;
    let start = signin::start_discoverable(state.sign_in(), &visit.tenant.id, now).await?;
    Ok(json_no_store(&start, None))
}

fn login_context(visit: &TenantRequest, started: Option<&str>) -> LoginContext {
    let now = visit.state.clock.now();
    LoginContext {
        client: visit.client.clone(),
        duration_ms: LoginClock::elapsed_ms(
            &visit.state.master_key,
            &visit.tenant.id,
            started,
            now,
        ),
        previous_session_token: visit.session_token.clone(),
    }
}

fn signed_in_response(
    visit: &TenantRequest,
    signed_in: SignedIn,
    return_to: Option<&str>,
) -> HttpResponse {
    let cookie = cookies::session_cookie(
        visit.settings(),
        &visit.tenant.slug,
        &signed_in.started.token,
    );
    json_no_store(
        &json!({ "redirect": return_to_or_account(&visit.tenant, return_to) }),
        Some(cookie),
    )
}

#[derive(Debug, Deserialize)]
pub struct PasskeyFinishBody {
    ceremony_id: String,
    credential: PublicKeyCredential,
    started: Option<String>,
    return_to: Option<String>,
}

pub async fn post_passkey_finish(
    req: HttpRequest,
    visit: TenantRequest,
    body: web::Json<PasskeyFinishBody>,
) -> Result<HttpResponse, AppError> {
    visit.check_csrf_header(&req)?;
    let state = &visit.state;
    let now = state.clock.now();
    visit.limit("passkey-finish", None).await?;
    let body = body.into_inner();
    let ctx = login_context(&visit, body.started.as_deref());
    let signed_in = signin::finish_passkey_login(
        state.sign_in(),
        &visit.tenant.id,
        &body.ceremony_id,
        body.credential,
        &ctx,
        now,
    )
    .await?;
    Ok(signed_in_response(
        &visit,
        signed_in,
        body.return_to.as_deref(),
    ))
}

#[derive(Debug, Deserialize)]
pub struct PasswordBody {
    email: String,
    password: String,
    started: Option<String>,
    return_to: Option<String>,
}

pub async fn post_password(
    req: HttpRequest,
    visit: TenantRequest,
    body: web::Json<PasswordBody>,
) -> Result<HttpResponse, AppError> {
    visit.check_csrf_header(&req)?;
    let body = body.into_inner();
    let email = Email::parse(&body.email).map_err(|e| AppError::bad_request(e.to_string()))?;
    let state = &visit.state;
    let now = state.clock.now();
    visit.limit("password", Some(&email)).await?;
    let ctx = login_context(&visit, body.started.as_deref());
    let signed_in = signin::password_login(
        state.sign_in(),
        &visit.tenant.id,
        &email,
        body.password,
        &ctx,
        now,
    )
    .await?;
    Ok(signed_in_response(
        &visit,
        signed_in,
        body.return_to.as_deref(),
    ))
}

#[derive(Debug, Deserialize)]
pub struct SignOutForm {
    csrf_token: String,
    #[serde(default)]
    everywhere: Option<String>,
}

/// Signs out of this browser, or of every browser (`everywhere`).
pub async fn post_signout(
    visit: Visit,
    form: web::Form<SignOutForm>,
) -> Result<HttpResponse, PageError> {
    visit.check_csrf(Some(&form.csrf_token))?;
    let login = visit.tenant_path("/login");
    let Some(signed_in) = visit.signed_in.clone() else {
        return Ok(see_other(&login));
    };
    let state = &visit.state;
    let everywhere = form.everywhere.is_some();
    sessions::sign_out(
        &state.store,
        signed_in.session,
        everywhere,
        state.clock.now(),
    )
    .await
    .map_err(AppError::from)?;
    let mut res = see_other(&login);
    res.add_cookie(&cookies::removed_session_cookie(
        visit.settings(),
        &visit.tenant.slug,
    ))
    .map_err(AppError::internal)?;
    Ok(res)
}
