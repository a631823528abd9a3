//! Enrolling passkeys: invitation and first-run setup pages, the account's "add a passkey",
//! and the JSON endpoints behind them (P1, P2, S5, M5).

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use serde_json::json;
use webauthn_rs_core::proto::RegisterPublicKeyCredential;

use super::pages::{json_no_store, render};
use super::{AppError, PageError, TenantRequest, Visit, cookies};
use crate::app::AppState;
use crate::client::ClientInfo;
use crate::enrollment;
use crate::passkeys::purpose;
use crate::ratelimit::Key;
use crate::store::users as user_repo;
use crate::users::Email;

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

#[derive(Template)]
#[template(path = "enroll.html")]
struct EnrollPage<'a> {
    tenant_name: &'a str,
    tenant_path: String,
    csrf: String,
    token: &'a str,
    /// `invite` (the account exists) or `setup` (the first owner gives their email).
    mode: &'static str,
    email: String,
}

/// The invitation link: what a passkey is, then one button.
pub async fn get_enroll(
    visit: Visit,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, PageError> {
    let token = query.token.clone().unwrap_or_default();
    let (tenant_id, now) = (visit.tenant.id.clone(), visit.state.clock.now());
    let lookup = token.clone();
    let email = visit
        .state
        .store
        .read(move |conn| {
            let link = enrollment::find_link(conn, &tenant_id, &lookup, purpose::INVITE, now)?;
            let user = match &link.user_id {
                Some(id) => user_repo::find_user(conn, &tenant_id, id)?,
                None => None,
            };
            user.map(|u| u.email)
                .ok_or(enrollment::EnrollmentError::LinkInvalid)
        })
        .await
        .map_err(AppError::from)?;
    Ok(render(&EnrollPage {
        tenant_name: &visit.tenant.name,
        tenant_path: visit.tenant_path(""),
        csrf: visit.anonymous_csrf_token(),
        token: &token,
        mode: purpose::INVITE,
        email,
    })?)
}

/// The first-run setup link printed by `serve`: the first owner enrolls with a passkey.
pub async fn get_setup(
    visit: Visit,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, PageError> {
    let token = query.token.clone().unwrap_or_default();
    let (tenant_id, now) = (visit.tenant.id.clone(), visit.state.clock.now());
    let lookup = token.clone();
    visit
        .state
        .store
        .read(move |conn| enrollment::find_link(conn, &tenant_id, &lookup, purpose::SETUP, now))
        .await
        .map_err(AppError::from)?;
    Ok(render(&EnrollPage {
        tenant_name: &visit.tenant.name,
        tenant_path: visit.tenant_path(""),
        csrf: visit.anonymous_csrf_token(),
        token: &token,
        mode: purpose::SETUP,
        email: String::new(),
    })?)
}

async fn limit_ip(state: &AppState, client: &ClientInfo, action: &str) -> Result<(), AppError> {
    state
        .limiter
        .check(
            &state.store,
            action,
            &[Key::Ip(client.ip_string().unwrap_or_default())],
            state.clock.now(),
        )
        .await?;
    Ok(())
}

#[derive(Debug, Deserialize)]
pub struct InviteStartBody {
    token: String,
}

pub async fn post_invite_start(
    req: HttpRequest,
    visit: TenantRequest,
    body: web::Json<InviteStartBody>,
) -> Result<HttpResponse, AppError> {
    visit.check_csrf_header(&req)?;
    limit_ip(&visit.state, &visit.client, "enroll").await?;
    let (state, tenant_id, now) = (
        visit.state.clone(),
        visit.tenant.id.clone(),
        visit.state.clock.now(),
    );
    let token = body.into_inner().token;
    let start = visit
        .state
        .store
        .write(move |conn| enrollment::start_invited(conn, &state, &tenant_id, &token, now))
        .await?;
    Ok(json_no_store(&start, None))
}

#[derive(Debug, Deserialize)]
pub struct SetupStartBody {
    token: String,
    email: String,
    name: Option<String>,
}

pub async fn post_setup_start(
    req: HttpRequest,
    visit: TenantRequest,
    body: web::Json<SetupStartBody>,
) -> Result<HttpResponse, AppError> {
    visit.check_csrf_header(&req)?;
    limit_ip(&visit.state, &visit.client, "enroll").await?;
    let body = body.into_inner();
    let email = Email::parse(&body.email).map_err(|e| AppError::bad_request(e.to_string()))?;
    let name = body.name.filter(|n| n.chars().count() <= 200);
    let (state, tenant_id, now) = (
        visit.state.clone(),
        visit.tenant.id.clone(),
        visit.state.clock.now(),
    );
    let start = visit
        .state
        .store
        .write(move |conn| {
            enrollment::start_setup(
                conn,
                &state,
                &tenant_id,
                &body.token,
                &email,
                name.as_deref(),
                now,
            )
        })
        .await?;
    Ok(json_no_store(&start, None))
}

/// A signed-in user starts adding another passkey.
pub async fn post_additional_start(
    req: HttpRequest,
    visit: Visit,
) -> Result<HttpResponse, AppError> {
    visit.check_csrf_header(&req)?;
    let user = visit.require_signed_in()?.user.clone();
    let (state, now) = (visit.state.clone(), visit.state.clock.now());
    let start = visit
        .state
        .store
        .write(move |conn| enrollment::start_additional(conn, &state, &user, now))
        .await?;
    Ok(json_no_store(&start, None))
}

#[derive(Debug, Deserialize)]
pub struct FinishBody {
    ceremony_id: String,
    credential: RegisterPublicKeyCredential,
    label: Option<String>,
}

/// Finishes any registration ceremony; what it means depends on how it was started.
pub async fn post_finish(
    req: HttpRequest,
    visit: Visit,
    body: web::Json<FinishBody>,
) -> Result<HttpResponse, AppError> {
    visit.check_csrf_header(&req)?;
    limit_ip(&visit.state, &visit.client, "enroll").await?;
    let body = body.into_inner();
    let now = visit.state.clock.now();
    let enrolled = enrollment::finish(
        &visit.state,
        &visit.tenant.id,
        enrollment::RegistrationResponse {
            ceremony_id: body.ceremony_id,
            credential: body.credential,
            label: body.label,
        },
        visit.signed_in.as_ref().map(|s| &s.user),
        &visit.client,
        now,
    )
    .await?;
    let cookie = enrolled
        .session
        .as_ref()
        .map(|s| cookies::session_cookie(visit.settings(), &visit.tenant.slug, &s.token));
    let redirect = if enrolled.session.is_some() {
        visit.tenant_path("/account?welcome=1")
    } else {
        visit.tenant_path("/account?added=1")
    };
    Ok(json_no_store(
        &json!({ "redirect": redirect, "passkey_id": enrolled.passkey.id, "label": enrolled.passkey.label }),
        cookie,
    ))
}
