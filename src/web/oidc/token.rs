//! The token endpoint (RFC 6749 §3.2), introspection (RFC 7662) and revocation (RFC 7009):
//! client authentication, then one domain call. Answers carry `Cache-Control: no-store`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use super::{IssuerContext, client, tenant};
use crate::app::AppState;
use crate::oidc::clients::{
    self, Client, Credentials, GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS,
    GRANT_REFRESH_TOKEN,
};
use crate::oidc::{Error, introspect, redeem, refresh, revoke, token};
use crate::web::AppError;

#[derive(Debug, Deserialize)]
pub struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
    scope: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// `token_type_hint` is accepted and ignored (unknown fields are): both kinds are looked up.
#[derive(Debug, Deserialize)]
pub struct TokenHintForm {
    token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

fn no_store(mut res: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    res.insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    res
}

/// RFC 6749 §2.3.1: HTTP Basic (form-urlencoded id and secret) or the body; never both.
fn credentials(
    req: &HttpRequest,
    client_id: Option<&str>,
    client_secret: Option<&str>,
) -> Result<Credentials, Error> {
    let basic_fail = || Error::invalid_client("malformed Basic credentials", true);
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let raw = value.to_str().map_err(|_| basic_fail())?;
        let (scheme, encoded) = raw.split_once(' ').ok_or_else(basic_fail)?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(Error::invalid_client(
                "use HTTP Basic or client_secret_post",
                false,
            ));
        }
        let decoded = STANDARD.decode(encoded.trim()).map_err(|_| basic_fail())?;
        let decoded = String::from_utf8(decoded).map_err(|_| basic_fail())?;
        let (id, secret) = decoded.split_once(':').ok_or_else(basic_fail)?;
        let unescape = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let (id, secret) = (unescape(id), unescape(secret));
        if client_secret.is_some() || client_id.is_some_and(|c| c != id) {
            return Err(Error::InvalidRequest(
                "use one client authentication method".into(),
            ));
        }
        return Ok(Credentials::Basic {
            client_id: id,
            secret,
        });
    }
    match (client_id, client_secret) {
        (Some(id), Some(secret)) => Ok(Credentials::Post {
            client_id: id.to_string(),
            secret: secret.to_string(),
        }),
        (Some(id), None) => Ok(Credentials::None {
            client_id: id.to_string(),
        }),
        _ => Err(Error::invalid_client(
            "client authentication is missing",
            false,
        )),
    }
}

/// Authenticates the calling client of `tenant_id`.
async fn authenticate(
    req: &HttpRequest,
    state: &AppState,
    tenant_id: &str,
    client_id: Option<&str>,
    client_secret: Option<&str>,
) -> Result<std::sync::Arc<Client>, AppError> {
    let creds = credentials(req, client_id, client_secret)?;
    let found = client(state, tenant_id, creds.client_id()).await?;
    clients::authenticate(found.as_deref(), &creds)?;
    found.ok_or_else(|| {
        Error::invalid_client("client authentication failed", creds.is_basic()).into()
    })
}

pub async fn post_token(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<TokenForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let tenant = tenant(&req, &state).await?;
    let client = authenticate(
        &req,
        &state,
        &tenant.id,
        form.client_id.as_deref(),
        form.client_secret.as_deref(),
    )
    .await?;
    let grant = form
        .grant_type
        .as_deref()
        .ok_or_else(|| Error::InvalidRequest("grant_type is missing".into()))?;
    let known = [
        GRANT_AUTHORIZATION_CODE,
        GRANT_REFRESH_TOKEN,
        GRANT_CLIENT_CREDENTIALS,
    ];
    if !known.contains(&grant) {
        return Err(Error::UnsupportedGrantType.into());
    }
    if !client.allows_grant(grant) || (grant == GRANT_CLIENT_CREDENTIALS && client.is_public) {
        return Err(Error::UnauthorizedClient(format!("this client may not use {grant}")).into());
    }
    let ctx = IssuerContext::load(&state, &tenant).await?;
    let response = match grant {
        GRANT_CLIENT_CREDENTIALS => {
            token::client_credentials(&ctx.issuer(), &client, form.scope.as_deref())?
        }
        GRANT_AUTHORIZATION_CODE => {
            let code = form
                .code
                .ok_or_else(|| Error::InvalidRequest("code is missing".into()))?;
            redeem::redeem(
                &state.store,
                &ctx.issuer(),
                &client,
                &code,
                form.redirect_uri.as_deref(),
                form.code_verifier.as_deref(),
            )
            .await?
        }
        _ => {
            let refresh_token = form
                .refresh_token
                .ok_or_else(|| Error::InvalidRequest("refresh_token is missing".into()))?;
            refresh::refresh(
                &state.store,
                &ctx.issuer(),
                &client,
                &refresh_token,
                form.scope.as_deref(),
            )
            .await?
        }
    };
    Ok(no_store(HttpResponse::Ok()).json(response))
}

pub async fn post_introspect(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<TokenHintForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let tenant = tenant(&req, &state).await?;
    let client = authenticate(
        &req,
        &state,
        &tenant.id,
        form.client_id.as_deref(),
        form.client_secret.as_deref(),
    )
    .await?;
    if client.is_public {
        return Err(
            Error::UnauthorizedClient("introspection is for confidential clients".into()).into(),
        );
    }
    let token = form
        .token
        .ok_or_else(|| Error::InvalidRequest("token is missing".into()))?;
    let ctx = IssuerContext::load(&state, &tenant).await?;
    let answer = state
        .store
        .read(move |conn| introspect::introspect(conn, &ctx.issuer(), &client, &token))
        .await?;
    Ok(no_store(HttpResponse::Ok()).json(answer))
}

pub async fn post_revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<TokenHintForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let tenant = tenant(&req, &state).await?;
    let client = authenticate(
        &req,
        &state,
        &tenant.id,
        form.client_id.as_deref(),
        form.client_secret.as_deref(),
    )
    .await?;
    let token = form
        .token
        .ok_or_else(|| Error::InvalidRequest("token is missing".into()))?;
    let ctx = IssuerContext::load(&state, &tenant).await?;
    state
        .store
        .write(move |conn| revoke::revoke(conn, &ctx.issuer(), &client, &token))
        .await?;
    Ok(no_store(HttpResponse::Ok()).finish())
}
