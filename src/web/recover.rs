//! The recovery page (C1, C3): recover with the recovery code, or ask for an emailed link.
//! Neither gives a session: both lead to registering a new passkey.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use serde_json::json;

use super::pages::{json_no_store, render};
use super::{AppError, PageError, Visit};
use crate::recovery::codes::{self, CodeCheck, RecoveryCode};
use crate::recovery::{RecoveryError, links};
use crate::users::Email;

/// The recovery page and its two endpoints.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/recover", web::get().to(get_recover))
        .route("/api/recover/code", web::post().to(post_code))
        .route("/api/recover/email", web::post().to(post_email));
}

#[derive(Template)]
#[template(path = "recover.html")]
struct RecoverPage<'a> {
    tenant_name: &'a str,
    tenant_path: String,
    csrf: String,
}

pub async fn get_recover(visit: Visit) -> Result<HttpResponse, PageError> {
    Ok(render(&RecoverPage {
        tenant_name: &visit.tenant.name,
        tenant_path: visit.tenant_path(""),
        csrf: visit.csrf_token(),
    })?)
}

#[derive(Debug, Deserialize)]
pub struct CodeBody {
    email: String,
    code: String,
}

/// C1: email + recovery code → a registration ceremony (not a session).
pub async fn post_code(
    req: HttpRequest,
    request: Visit,
    body: web::Json<CodeBody>,
) -> Result<HttpResponse, AppError> {
    request.check_csrf_header(&req)?;
    let body = body.into_inner();
    let email = Email::parse(&body.email).map_err(|e| AppError::bad_request(e.to_string()))?;
    request.limit("recovery-code", Some(&email)).await?;
    let code = RecoveryCode::parse(&body.code);
    let state = &request.state;
    let terms = codes::CodeTerms {
        key: state.master_key.clone(),
        settings: state.settings.recovery.clone(),
        passkeys: state.passkeys.clone(),
    };
    let check = codes::start_with_code(
        &state.store,
        terms,
        &request.tenant.id,
        email,
        code,
        &request.client,
        state.clock.now(),
    )
    .await?;
    match check {
        CodeCheck::Accepted(start) => Ok(json_no_store(&start, None)),
        CodeCheck::Refused => Err(RecoveryError::WrongCode.into()),
    }
}

#[derive(Debug, Deserialize)]
pub struct EmailBody {
    email: String,
}

/// C3: mails a single-use link; the answer is the same whether or not the email has an
/// account.
pub async fn post_email(
    req: HttpRequest,
    request: Visit,
    body: web::Json<EmailBody>,
) -> Result<HttpResponse, AppError> {
    request.check_csrf_header(&req)?;
    let email = Email::parse(&body.email).map_err(|e| AppError::bad_request(e.to_string()))?;
    request.limit("recovery-email", Some(&email)).await?;
    let (tenant, settings, now) = (
        request.tenant.clone(),
        request.state.settings.clone(),
        request.state.clock.now(),
    );
    request
        .state
        .store
        .write(move |conn| links::request_email_recovery(conn, &tenant, &email, &settings, now))
        .await?;
    request.state.mailer.wake();
    Ok(json_no_store(
        &json!({
            "message": "If an account exists for that address, we've emailed it a link to create a new passkey. The link works once and expires in a few minutes."
        }),
        None,
    ))
}
