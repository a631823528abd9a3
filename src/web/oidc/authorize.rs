//! The authorization endpoint (GET and POST) and the consent form. Problems with the client
//! or its redirect URI are pages on passgate; everything after that answers the relying
//! party at its redirect URI, with `iss` (RFC 9207).

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{client, tenant_keys};
use crate::oidc::authorize::{self, AuthorizationParams, Decision, ValidRequest};
use crate::oidc::clients::Client;
use crate::oidc::{Error, Lifetimes, scopes};
use crate::web::{AppError, PageError, Visit};

pub async fn get_authorize(
    visit: Visit,
    params: web::Query<AuthorizationParams>,
) -> Result<HttpResponse, PageError> {
    authorize(visit, params.into_inner()).await
}

pub async fn post_authorize(
    visit: Visit,
    params: web::Form<AuthorizationParams>,
) -> Result<HttpResponse, PageError> {
    authorize(visit, params.into_inner()).await
}

fn redirect(location: &str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// An error for the relying party, sent to its (registered) redirect URI. Server faults are
/// not the relying party's business: they stay a 500 page.
fn error_redirect(
    visit: &Visit,
    request_redirect: &str,
    state: Option<&str>,
    error: Error,
) -> Result<HttpResponse, PageError> {
    if matches!(error, Error::Store(_) | Error::Keys(_)) {
        return Err(PageError(error.into()));
    }
    let issuer = visit.settings().issuer(&visit.tenant.slug);
    Ok(redirect(&authorize::error_redirect(
        request_redirect,
        &issuer,
        state,
        &error,
    )))
}

/// Checks the client and the rest of the request. `Err(Ok(response))` is an answer already
/// sent to the relying party; `Err(Err(page))` an error page.
async fn validated(
    visit: &Visit,
    params: &AuthorizationParams,
) -> Result<(std::sync::Arc<Client>, ValidRequest), Result<HttpResponse, PageError>> {
    let state = &visit.state;
    let found = match params.client_id.as_deref() {
        Some(id) => client(state, &visit.tenant.id, id)
            .await
            .map_err(|e| Err(PageError(e)))?,
        None => None,
    };
    let known = authorize::check_client(params, found.as_deref())
        .map_err(|message| Err(PageError(AppError::bad_request(message))))?;
    match authorize::validate(params, &known) {
        Ok(request) => Ok((
            found
                .clone()
                .ok_or_else(|| Err(PageError(AppError::internal("client vanished"))))?,
            request,
        )),
        Err(e) => Err(error_redirect(
            visit,
            &known.redirect_uri,
            params.state.as_deref(),
            e,
        )),
    }
}

async fn authorize(visit: Visit, params: AuthorizationParams) -> Result<HttpResponse, PageError> {
    let (client, mut request) = match validated(&visit, &params).await {
        Ok(valid) => valid,
        Err(answer) => return answer,
    };
    let state = visit.state.clone();
    if request.params.id_token_hint.is_some() {
        let keys = tenant_keys(&state, &visit.tenant.id).await?;
        let issuer = state.settings.issuer(&visit.tenant.slug);
        if let Err(e) =
            authorize::check_id_token_hint(&mut request, &client.id, &keys.verifiers, &issuer)
        {
            let rp_state = request.params.state.clone();
            return error_redirect(&visit, &request.redirect_uri, rp_state.as_deref(), e);
        }
    }
    let session = visit.signed_in.as_ref().map(|s| s.session.clone());
    let granted = match &session {
        Some(s) if !client.is_first_party => {
            let (tenant_id, user_id, client_id) = (
                visit.tenant.id.clone(),
                s.user_id.clone(),
                client.id.clone(),
            );
            state
                .store
                .read(move |conn| {
                    authorize::find_granted_scopes(conn, &tenant_id, &user_id, &client_id)
                })
                .await
                .map_err(AppError::from)?
        }
        _ => None,
    };
    let now = state.clock.now();
    let decision = authorize::decide(
        &request,
        &client,
        &visit.tenant.slug,
        session.as_ref(),
        granted.as_ref(),
        now,
    );
    let redirect_uri = request.redirect_uri.clone();
    let rp_state = request.params.state.clone();
    match (decision, session) {
        (Err(e), _) => error_redirect(&visit, &redirect_uri, rp_state.as_deref(), e),
        (Ok(Decision::Login(login)), _) => Ok(redirect(&login.url(&visit.tenant.slug))),
        (Ok(Decision::Consent), _) => consent_page(&visit, &client, &request),
        (Ok(Decision::Issue), Some(session)) => {
            issue(&visit, client, request, session, false).await
        }
        (Ok(Decision::Issue), None) => {
            Err(PageError(AppError::internal("issue without a session")))
        }
    }
}

/// Issues the code (recording the consent first when the user just gave it) and sends it to
/// the relying party.
async fn issue(
    visit: &Visit,
    client: std::sync::Arc<Client>,
    request: ValidRequest,
    session: crate::store::sessions::BrowserSession,
    with_consent: bool,
) -> Result<HttpResponse, PageError> {
    let state = &visit.state;
    let tenant_id = visit.tenant.id.clone();
    let lifetimes = Lifetimes::from_settings(&state.settings.oidc);
    let now = state.clock.now();
    let (redirect_uri, rp_state) = (request.redirect_uri.clone(), request.params.state.clone());
    let code = state
        .store
        .write(move |conn| {
            if with_consent {
                authorize::grant_consent(conn, &tenant_id, &client.id, &request, &session, now)?;
            }
            authorize::issue_code(
                conn, &tenant_id, &client.id, &request, &session, &lifetimes, now,
            )
        })
        .await
        .map_err(AppError::from)?;
    let issuer = state.settings.issuer(&visit.tenant.slug);
    Ok(redirect(&authorize::redirect_with(
        &redirect_uri,
        &issuer,
        rp_state.as_deref(),
        &[("code", &code)],
    )))
}

#[derive(Template)]
#[template(path = "oidc/consent.html")]
struct ConsentPage<'a> {
    tenant_name: &'a str,
    tenant_slug: &'a str,
    client_name: &'a str,
    user_email: &'a str,
    scopes: Vec<&'static str>,
    authorization_request: String,
    csrf_token: String,
}

fn describe(scope: &str) -> Option<&'static str> {
    match scope {
        scopes::OPENID => Some("Know who you are (a stable identifier for your account)"),
        scopes::PROFILE => Some("See your name"),
        scopes::EMAIL => Some("See your email address"),
        scopes::OFFLINE_ACCESS => Some("Stay connected when you are not using it"),
        _ => None,
    }
}

fn consent_page(
    visit: &Visit,
    client: &Client,
    request: &ValidRequest,
) -> Result<HttpResponse, PageError> {
    let signed_in = visit.require_signed_in()?;
    let page = ConsentPage {
        tenant_name: &visit.tenant.name,
        tenant_slug: &visit.tenant.slug,
        client_name: &client.name,
        user_email: &signed_in.user.email,
        scopes: request.scopes.iter().filter_map(describe).collect(),
        authorization_request: serde_urlencoded::to_string(&request.params).unwrap_or_default(),
        csrf_token: visit.csrf_token(),
    };
    let html = page.render().map_err(AppError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(html))
}

#[derive(Debug, Deserialize)]
pub struct ConsentForm {
    authorization_request: String,
    csrf_token: Option<String>,
    decision: String,
}

/// The consent form's answer. The authorization request is checked again from scratch:
/// nothing in the form is trusted beyond what the endpoint itself would accept.
pub async fn post_consent(
    visit: Visit,
    form: web::Form<ConsentForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    visit.check_csrf(form.csrf_token.as_deref())?;
    let params: AuthorizationParams = serde_urlencoded::from_str(&form.authorization_request)
        .map_err(|_| AppError::bad_request("The consent form is malformed."))?;
    let (client, request) = match validated(&visit, &params).await {
        Ok(valid) => valid,
        Err(answer) => return answer,
    };
    let Some(signed_in) = visit.signed_in.clone() else {
        // The session ended while the page was open: start over from the request.
        return Ok(redirect(&authorize::authorize_path(
            &visit.tenant.slug,
            &params,
        )));
    };
    match form.decision.as_str() {
        "allow" => issue(&visit, client, request, signed_in.session, true).await,
        "deny" => {
            let denied = Error::AccessDenied("the user declined".into());
            error_redirect(
                &visit,
                &request.redirect_uri,
                request.params.state.as_deref(),
                denied,
            )
        }
        _ => Err(PageError(AppError::bad_request("Choose allow or deny."))),
    }
}
