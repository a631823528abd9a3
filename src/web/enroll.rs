//! Enrolling passkeys: the pages a link opens (invitation, recovery, new device), first-run
//! setup, the account's "add a passkey", and the JSON endpoints behind them (P1, P2, S5, M5,
//! C2–C4).

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use serde_json::json;
use webauthn_rs_core::proto::RegisterPublicKeyCredential;

use super::pages::{json_no_store, render};
use super::{AppError, PageError, Visit, cookies};
use crate::enrollment::{self, EnrollmentTerms};
use crate::passkeys::Purpose;
use crate::signin::LoginContext;
use crate::users::Email;

/// The pages links open, first-run setup, and the registration endpoints.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/enroll", web::get().to(get_enroll))
        .route("/recover/link", web::get().to(get_recovery_link))
        .route("/device", web::get().to(get_device))
        .route("/setup", web::get().to(get_setup))
        .route("/api/links/start", web::post().to(post_link_start))
        .route("/api/setup/start", web::post().to(post_setup_start))
        .route("/api/passkeys/start", web::post().to(post_additional_start))
        .route("/api/passkeys/finish", web::post().to(post_finish));
}

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

/// The kinds of link page; each names the link purposes it accepts.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    Invite,
    Recovery,
    Device,
}

impl LinkKind {
    fn purposes(self) -> &'static [Purpose] {
        match self {
            LinkKind::Invite => &[Purpose::Invite],
            LinkKind::Recovery => &[Purpose::EmailRecovery, Purpose::AdminRecovery],
            LinkKind::Device => &[Purpose::TrustedDevice],
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            LinkKind::Invite => "invite",
            LinkKind::Recovery => "recovery",
            LinkKind::Device => "device",
        }
    }
}

#[derive(Template)]
#[template(path = "enroll.html")]
struct EnrollPage<'a> {
    tenant_name: &'a str,
    tenant_path: String,
    csrf: String,
    token: &'a str,
    /// `invite`, `recovery`, `device` (the account exists) or `setup` (the first owner).
    mode: &'static str,
    email: String,
}

async fn link_page(
    visit: Visit,
    token: Option<String>,
    kind: LinkKind,
) -> Result<HttpResponse, PageError> {
    let token = token.unwrap_or_default();
    let state = &visit.state;
    let user = enrollment::open_link(
        &state.store,
        &visit.tenant.id,
        &token,
        kind.purposes(),
        state.clock.now(),
    )
    .await
    .map_err(AppError::from)?;
    Ok(render(&EnrollPage {
        tenant_name: &visit.tenant.name,
        tenant_path: visit.tenant_path(""),
        csrf: visit.csrf_token(),
        token: &token,
        mode: kind.as_str(),
        email: user.email,
    })?)
}

/// The invitation link: what a passkey is, then one button.
pub async fn get_enroll(
    visit: Visit,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, PageError> {
    link_page(visit, query.into_inner().token, LinkKind::Invite).await
}

/// A recovery link (emailed, or from an administrator).
pub async fn get_recovery_link(
    visit: Visit,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, PageError> {
    link_page(visit, query.into_inner().token, LinkKind::Recovery).await
}

/// A link made on a signed-in device, opened on a new one (C2).
pub async fn get_device(
    visit: Visit,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, PageError> {
    link_page(visit, query.into_inner().token, LinkKind::Device).await
}

/// The first-run setup link printed by `serve`: the first owner enrolls with a passkey.
pub async fn get_setup(
    visit: Visit,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, PageError> {
    let token = query.token.clone().unwrap_or_default();
    let state = &visit.state;
    enrollment::check_setup_link(&state.store, &visit.tenant.id, &token, state.clock.now())
        .await
        .map_err(AppError::from)?;
    Ok(render(&EnrollPage {
        tenant_name: &visit.tenant.name,
        tenant_path: visit.tenant_path(""),
        csrf: visit.csrf_token(),
        token: &token,
        mode: "setup",
        email: String::new(),
    })?)
}

#[derive(Debug, Deserialize)]
pub struct LinkStartBody {
    token: String,
    kind: LinkKind,
}

/// Starts the ceremony a link opens.
pub async fn post_link_start(
    req: HttpRequest,
    visit: Visit,
    body: web::Json<LinkStartBody>,
) -> Result<HttpResponse, AppError> {
    visit.check_csrf_header(&req)?;
    visit.limit("enroll", None).await?;
    let LinkStartBody { token, kind } = body.into_inner();
    let state = &visit.state;
    let start = enrollment::begin_from_link(
        &state.store,
        &state.passkeys,
        &visit.tenant.id,
        &token,
        kind.purposes(),
        state.clock.now(),
    )
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
    visit: Visit,
    body: web::Json<SetupStartBody>,
) -> Result<HttpResponse, AppError> {
    visit.check_csrf_header(&req)?;
    visit.limit("enroll", None).await?;
    let body = body.into_inner();
    let email = Email::parse(&body.email).map_err(|e| AppError::bad_request(e.to_string()))?;
    let name = body.name.filter(|n| n.chars().count() <= 200);
    let state = &visit.state;
    let start = enrollment::begin_setup(
        &state.store,
        &state.passkeys,
        &visit.tenant.id,
        &body.token,
        email,
        name,
        state.clock.now(),
    )
    .await?;
    Ok(json_no_store(&start, None))
}

/// A signed-in user starts adding another passkey (a sensitive action under C3).
pub async fn post_additional_start(
    req: HttpRequest,
    visit: Visit,
) -> Result<HttpResponse, AppError> {
    visit.check_csrf_header(&req)?;
    let signed_in = visit.require_signed_in()?.clone();
    let state = &visit.state;
    let start = enrollment::begin_additional(
        &state.store,
        &state.passkeys,
        signed_in.user,
        signed_in.session,
        state.clock.now(),
    )
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
    visit.limit("enroll", None).await?;
    let body = body.into_inner();
    let state = &visit.state;
    let terms = EnrollmentTerms {
        passkeys: state.passkeys.clone(),
        master_key: state.master_key.clone(),
        settings: state.settings.clone(),
    };
    let ctx = LoginContext {
        client: visit.client.clone(),
        duration_ms: None,
        previous_session_token: visit.session_token.clone(),
    };
    let enrolled = enrollment::finish(
        &state.store,
        terms,
        &visit.tenant,
        enrollment::RegistrationResponse {
            ceremony_id: body.ceremony_id,
            credential: body.credential,
            label: body.label,
        },
        visit.signed_in.as_ref().map(|s| &s.user),
        &ctx,
        state.clock.now(),
    )
    .await?;
    visit.state.mailer.wake();
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
        &json!({
            "redirect": redirect,
            "passkey_id": enrolled.passkey.id,
            "label": enrolled.passkey.label,
            "recovery_code": enrolled.recovery_code.map(|c| c.grouped()),
            "second_passkey": enrolled.needs_second_passkey,
        }),
        cookie,
    ))
}
