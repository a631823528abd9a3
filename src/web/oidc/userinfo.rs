//! Userinfo (OIDC Core §5.3): GET or POST with the access token in the `Authorization`
//! header only. A token in the query or the body is refused (RFC 6750 §2.3 tokens end up in
//! logs and caches).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::{tenant, verify_bearer};
use crate::app::AppState;
use crate::oidc::{Error, claims, scopes};
use crate::web::AppError;

pub async fn get_userinfo(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    userinfo(&req, &state, &[]).await
}

/// The body is only looked at for a token that should not be there; it is small.
const BODY_LIMIT: usize = 16 * 1024;

pub async fn post_userinfo(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Payload,
) -> Result<HttpResponse, AppError> {
    let body = match body.to_bytes_limited(BODY_LIMIT).await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => return Err(AppError::bad_request("The request body could not be read.")),
        Err(_) => {
            return Err(AppError::payload_too_large(format!(
                "The request body is larger than {BODY_LIMIT} bytes."
            )));
        }
    };
    userinfo(&req, &state, &body).await
}

fn has_access_token_param(raw: &[u8]) -> bool {
    url::form_urlencoded::parse(raw).any(|(k, _)| k == "access_token")
}

async fn userinfo(
    req: &HttpRequest,
    state: &AppState,
    body: &[u8],
) -> Result<HttpResponse, AppError> {
    let tenant = tenant(req, state).await?;
    let realm = state.settings.issuer(&tenant.slug);
    if has_access_token_param(req.query_string().as_bytes()) || has_access_token_param(body) {
        return Err(Error::InvalidRequest(
            "send the access token in the Authorization header (Bearer), not in the URL or body"
                .into(),
        )
        .into());
    }
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_string())
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        // RFC 6750 §3.1: no error code when the request carried no token at all.
        return Err(AppError::new(
            actix_web::http::StatusCode::UNAUTHORIZED,
            "invalid_token",
            "an access token is required",
        )
        .with_www_authenticate(format!("Bearer realm=\"{realm}\"")));
    };
    let claims = verify_bearer(state, &tenant, token).await?;
    if !claims.is_for_user() || !claims.scopes().contains(scopes::OPENID) {
        return Err(
            Error::InvalidToken("the access token was not issued for userinfo".into()).into(),
        );
    }
    let answer = claims::userinfo_for(&state.store, &tenant.id, &claims).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(answer))
}
