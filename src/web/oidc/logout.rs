//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2–§3). With a valid ID token
//! hint for the signed-in user the session ends at once; without one the user confirms on a
//! page first, so a cross-site link cannot sign anybody out. A `post_logout_redirect_uri`
//! is followed only when the client registered it exactly; otherwise an error page.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{client, tenant_keys};
use crate::oidc::logout::{self, LogoutParams};
use crate::web::{AppError, PageError, Visit, cookies};

pub async fn get_logout(
    visit: Visit,
    params: web::Query<LogoutParams>,
) -> Result<HttpResponse, PageError> {
    logout(visit, params.into_inner(), None).await
}

#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    #[serde(flatten)]
    params: LogoutParams,
    csrf_token: Option<String>,
    confirm: Option<String>,
}

pub async fn post_logout(
    visit: Visit,
    form: web::Form<LogoutForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    let confirmed = form.confirm.as_deref() == Some("yes");
    if confirmed {
        visit.check_csrf(form.csrf_token.as_deref())?;
    }
    logout(visit, form.params, Some(confirmed)).await
}

#[derive(Template)]
#[template(path = "oidc/logout_confirm.html")]
struct ConfirmPage<'a> {
    tenant_name: &'a str,
    tenant_slug: &'a str,
    client_name: Option<&'a str>,
    user_email: &'a str,
    fields: Vec<(&'static str, String)>,
    csrf_token: String,
}

#[derive(Template)]
#[template(path = "oidc/signed_out.html")]
struct SignedOutPage<'a> {
    tenant_name: &'a str,
    login_path: String,
}

fn html(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

async fn logout(
    visit: Visit,
    params: LogoutParams,
    confirmed: Option<bool>,
) -> Result<HttpResponse, PageError> {
    let state = visit.state.clone();
    let issuer = state.settings.issuer(&visit.tenant.slug);
    let hint = match params.id_token_hint.as_deref().filter(|h| !h.is_empty()) {
        Some(raw) => {
            let keys = tenant_keys(&state, &visit.tenant.id).await?;
            Some(
                logout::verify_hint(&keys.verifiers, &issuer, raw).map_err(|_| {
                    AppError::bad_request(
                        "The sign-out request carries an ID token that is not valid here.",
                    )
                })?,
            )
        }
        None => None,
    };
    let client_id = logout::client_id(&params, hint.as_ref())
        .map_err(|e| AppError::bad_request(e.to_string()))?;
    let found = match client_id {
        Some(id) => Some(client(&state, &visit.tenant.id, id).await?.ok_or_else(|| {
            AppError::bad_request("This application is not registered with your organisation.")
        })?),
        None => None,
    };
    let target = logout::redirect_target(&params, found.as_deref())
        .map_err(|e| AppError::bad_request(e.to_string()))?;
    if let Some(signed_in) = &visit.signed_in {
        let hint_is_for_user = hint.as_ref().is_some_and(|h| h.sub == signed_in.user.id);
        if !hint_is_for_user && confirmed != Some(true) {
            let fields = [
                ("id_token_hint", params.id_token_hint.clone()),
                ("client_id", params.client_id.clone()),
                (
                    "post_logout_redirect_uri",
                    params.post_logout_redirect_uri.clone(),
                ),
                ("state", params.state.clone()),
            ]
            .into_iter()
            .filter_map(|(name, value)| value.map(|v| (name, v)))
            .collect();
            let page = ConfirmPage {
                tenant_name: &visit.tenant.name,
                tenant_slug: &visit.tenant.slug,
                client_name: found.as_deref().map(|c| c.name.as_str()),
                user_email: &signed_in.user.email,
                fields,
                csrf_token: visit.csrf_token(),
            };
            return Ok(html(page.render().map_err(AppError::internal)?));
        }
        let session = signed_in.session.clone();
        let now = state.clock.now();
        state
            .store
            .write(move |conn| crate::sessions::end_session(conn, &session, now))
            .await
            .map_err(AppError::from)?;
    }
    let mut res = match target {
        Some(location) => {
            let mut res = HttpResponse::Found();
            res.insert_header((header::LOCATION, location));
            res.finish()
        }
        None => html(
            SignedOutPage {
                tenant_name: &visit.tenant.name,
                login_path: visit.tenant_path("/login"),
            }
            .render()
            .map_err(AppError::internal)?,
        ),
    };
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    if visit.signed_in.is_some() {
        res.add_cookie(&cookies::removed_session_cookie(
            &state.settings,
            &visit.tenant.slug,
        ))
        .map_err(AppError::internal)?;
    }
    Ok(res)
}
