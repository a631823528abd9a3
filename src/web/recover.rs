//! The recovery page (C1, C3): recover with the recovery code, or ask for an emailed link.
//! Neither gives a session: both lead to registering a new passkey.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use serde_json::json;

use super::pages::{json_no_store, render};
use super::{AppError, PageError, TenantRequest, Visit};
use crate::ratelimit::Key;
use crate::recovery::codes::{self, CodeCheck, RecoveryCode};
use crate::recovery::{RecoveryError, links};
use crate::users::Email;

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
        csrf: visit.anonymous_csrf_token(),
    })?)
}

async fn limit(request: &TenantRequest, action: &str, email: &Email) -> Result<(), AppError> {
    let state = &request.state;
    state
        .limiter
        .check(
            &state.store,
            action,
            &[
                Key::Ip(request.client.ip_string().unwrap_or_default()),
                Key::Identifier(format!("{}|{}", request.tenant.id, email)),
            ],
            state.clock.now(),
        )
        .await?;
    Ok(())
}

#[derive(Debug, Deserialize)]
pub struct CodeBody {
    email: String,
    code: String,
}

/// C1: email + recovery code → a registration ceremony (not a session).
pub async fn post_code(
    req: HttpRequest,
    request: TenantRequest,
    body: web::Json<CodeBody>,
) -> Result<HttpResponse, AppError> {
    request.check_csrf_header(&req)?;
    let body = body.into_inner();
    let email = Email::parse(&body.email).map_err(|e| AppError::bad_request(e.to_string()))?;
    limit(&request, "recovery-code", &email).await?;
    let code = RecoveryCode::parse(&body.code);
    let (state, tenant_id, client, now) = (
        request.state.clone(),
        request.tenant.id.clone(),
        request.client.clone(),
        request.state.clock.now(),
    );
    // The failed attempt is counted (and a lock audited) even though the answer is an error.
    let check = request
        .state
        .store
        .write(move |conn| {
            codes::start_with_code(
                conn,
                &state,
                &tenant_id,
                &email,
                code.as_ref(),
                &client,
                now,
            )
        })
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
    request: TenantRequest,
    body: web::Json<EmailBody>,
) -> Result<HttpResponse, AppError> {
    request.check_csrf_header(&req)?;
    let email = Email::parse(&body.email).map_err(|e| AppError::bad_request(e.to_string()))?;
    limit(&request, "recovery-email", &email).await?;
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
