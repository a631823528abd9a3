//! The authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2): validates a request,
//! decides whether the user must sign in or consent first, and issues a code.
//!
//! Errors before the client and its redirect URI are known are shown on a passgate page and
//! never redirected (RFC 6749 §4.1.2.1); later ones go back to the redirect URI with `state`
//! and `iss` (RFC 9207).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::clients::{Client, GRANT_AUTHORIZATION_CODE};
use super::jwt::Verifiers;
use super::scopes::{self, Scopes};
use super::{Error, Lifetimes, Result};
use crate::clock::{UtcTime, unix_seconds};
use crate::crypto::{random_token, sha256_hex};
use crate::sessions::ACR_PHISHING_RESISTANT;
use crate::store::DbConn;
use crate::store::codes::{self as repo, AuthorizationCode};
use crate::store::sessions::BrowserSession;

/// The request parameters, from the query (GET) or the form (POST, OIDC Core §3.1.2.1).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AuthorizationParams {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_challenge: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_challenge_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_hint: Option<String>,
    /// OIDC Core §3.1.2.1: an ID token this provider issued, naming who the relying party
    /// expects to be signed in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token_hint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr_values: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_uri: Option<String>,
    /// Ours, added when we send the user to sign in: a sign-in at or after this Unix time
    /// satisfies `prompt=login`, `prompt=create` and `max_age`, so coming back does not loop.
    /// Forging it gains nothing: whoever can edit the URL can also drop `prompt=login`, and
    /// the relying party sees the real `auth_time` in the ID token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pg_auth_after: Option<String>,
}

/// The client and redirect URI of a request are known and registered.
pub struct KnownClient<'a> {
    pub client: &'a Client,
    pub redirect_uri: String,
}

/// First checks: whose request is it and where may answers go. An `Err` is for the user's
/// eyes only.
pub fn check_client<'a>(
    params: &AuthorizationParams,
    client: Option<&'a Client>,
) -> std::result::Result<KnownClient<'a>, String> {
    if params.client_id.as_deref().is_none_or(str::is_empty) {
        return Err("The application did not say who it is (client_id is missing).".into());
    }
    let client = client.ok_or("This application is not registered with your organisation.")?;
    let redirect_uri = params
        .redirect_uri
        .as_deref()
        .ok_or("The application did not say where to return to (redirect_uri is missing).")?;
    if !client.is_redirect_uri_registered(redirect_uri) {
        return Err("The application asked to return to an address it has not registered.".into());
    }
    if !client.allows_grant(GRANT_AUTHORIZATION_CODE) {
        return Err("This application is not allowed to sign users in.".into());
    }
    Ok(KnownClient {
        client,
        redirect_uri: redirect_uri.to_string(),
    })
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
    pub create: bool,
}

/// A request that passed every check; answers may now be redirected.
#[derive(Debug, Clone)]
pub struct ValidRequest {
    pub params: AuthorizationParams,
    pub redirect_uri: String,
    pub scopes: Scopes,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// `acr_values` asked for `phr`: only a passkey sign-in will do.
    pub requires_passkey: bool,
    pub auth_after: Option<i64>,
    /// The subject of a verified `id_token_hint` ([`check_id_token_hint`]): only a session of
    /// that user may answer.
    pub hinted_subject: Option<String>,
}

fn bounded(value: &Option<String>, name: &str, max: usize) -> Result<Option<String>> {
    match value {
        Some(v) if v.len() > max => Err(Error::InvalidRequest(format!("{name} is too long"))),
        Some(v) if v.is_empty() => Ok(None),
        other => Ok(other.clone()),
    }
}

/// Checks the rest of the request (after [`check_client`]).
pub fn validate(params: &AuthorizationParams, known: &KnownClient<'_>) -> Result<ValidRequest> {
    if params.request.is_some() {
        return Err(Error::RequestNotSupported);
    }
    if params.request_uri.is_some() {
        return Err(Error::RequestUriNotSupported);
    }
    if params.response_type.as_deref() != Some("code") {
        return Err(Error::UnsupportedResponseType);
    }
    if params
        .response_mode
        .as_deref()
        .is_some_and(|m| m != "query")
    {
        return Err(Error::InvalidRequest(
            "only response_mode=query is supported".into(),
        ));
    }
    let scopes = params
        .scope
        .as_deref()
        .and_then(Scopes::parse)
        .ok_or_else(|| Error::InvalidScope("scope is missing or malformed".into()))?;
    if !scopes.contains(scopes::OPENID) {
        return Err(Error::InvalidScope("scope must include openid".into()));
    }
    if let Some(other) = scopes
        .iter()
        .find(|s| !scopes::is_oidc_scope(s) || !known.client.scopes.contains(s))
    {
        return Err(Error::InvalidScope(format!(
            "scope '{other}' is not available here"
        )));
    }
    let code_challenge = match (
        params.code_challenge.as_deref(),
        params.code_challenge_method.as_deref(),
    ) {
        (None, _) => {
            return Err(Error::InvalidRequest(
                "PKCE is required: send code_challenge with code_challenge_method=S256".into(),
            ));
        }
        (Some(_), Some("S256")) => params.code_challenge.clone().unwrap_or_default(),
        (Some(_), _) => {
            return Err(Error::InvalidRequest(
                "code_challenge_method must be S256 (plain is not accepted)".into(),
            ));
        }
    };
    // RFC 7636 §4.2: BASE64URL(SHA256(verifier)) is 43 characters.
    if code_challenge.len() != 43 || URL_SAFE_NO_PAD.decode(&code_challenge).is_err() {
        return Err(Error::InvalidRequest(
            "code_challenge is not a base64url SHA-256 digest".into(),
        ));
    }
    let mut prompt = Prompt::default();
    for value in params
        .prompt
        .as_deref()
        .unwrap_or_default()
        .split(' ')
        .filter(|v| !v.is_empty())
    {
        match value {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            "create" => prompt.create = true,
            other => {
                return Err(Error::InvalidRequest(format!(
                    "prompt value '{other}' is not supported"
                )));
            }
        }
    }
    if prompt.none && (prompt.login || prompt.consent || prompt.create) {
        return Err(Error::InvalidRequest(
            "prompt=none cannot be combined with other values".into(),
        ));
    }
    let max_age = match params.max_age.as_deref().filter(|v| !v.is_empty()) {
        None => None,
        Some(raw) => Some(raw.parse::<i64>().ok().filter(|v| *v >= 0).ok_or_else(|| {
            Error::InvalidRequest("max_age must be a non-negative integer".into())
        })?),
    };
    let requires_passkey = params
        .acr_values
        .as_deref()
        .is_some_and(|v| v.split(' ').any(|a| a == ACR_PHISHING_RESISTANT));
    let auth_after = params
        .pg_auth_after
        .as_deref()
        .and_then(|v| v.parse::<i64>().ok());
    Ok(ValidRequest {
        params: params.clone(),
        redirect_uri: known.redirect_uri.clone(),
        scopes,
        nonce: bounded(&params.nonce, "nonce", 512)?,
        code_challenge,
        prompt,
        max_age,
        login_hint: bounded(&params.login_hint, "login_hint", 254)?,
        requires_passkey,
        auth_after,
        hinted_subject: None,
    })
    .and_then(|r| bounded(&params.state, "state", 2048).map(|_| r))
    .and_then(|r| bounded(&params.id_token_hint, "id_token_hint", 16 * 1024).map(|_| r))
}

/// OIDC Core §3.1.2.1: an `id_token_hint` must be an ID token of this tenant — its keys,
/// its issuer — issued to the requesting client; an expired one is still a good hint. A
/// forged or foreign hint is refused; a good one names the only user whose session may
/// answer (see [`decide`]).
pub fn check_id_token_hint(
    request: &mut ValidRequest,
    client_id: &str,
    verifiers: &Verifiers,
    issuer: &str,
) -> Result<()> {
    let Some(raw) = request
        .params
        .id_token_hint
        .as_deref()
        .filter(|h| !h.is_empty())
    else {
        return Ok(());
    };
    let hint = super::logout::verify_hint(verifiers, issuer, raw).map_err(|_| {
        Error::InvalidRequest("the id_token_hint is not an ID token of this issuer".into())
    })?;
    if hint.aud != client_id {
        return Err(Error::InvalidRequest(
            "the id_token_hint was issued to another client".into(),
        ));
    }
    request.hinted_subject = Some(hint.sub);
    Ok(())
}

/// What the endpoint does next.
#[derive(Debug)]
pub enum Decision {
    /// Send the user to the sign-in page, which comes back to `return_to`.
    Login(LoginRedirect),
    /// Ask the user to approve the client's scopes.
    Consent,
    /// Everything is in place: issue a code.
    Issue,
}

/// The contract with the sign-in pages (issue 3):
/// `/t/{tenant}/login?return_to=…[&login_hint=…][&require=passkey][&prompt=login|create]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRedirect {
    /// A same-origin relative path back to this authorization request.
    pub return_to: String,
    pub login_hint: Option<String>,
    pub requires_passkey: bool,
    pub prompt: Option<&'static str>,
}

impl LoginRedirect {
    pub fn url(&self, tenant_slug: &str) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("return_to", &self.return_to);
        if let Some(hint) = &self.login_hint {
            query.append_pair("login_hint", hint);
        }
        if self.requires_passkey {
            query.append_pair("require", "passkey");
        }
        if let Some(prompt) = self.prompt {
            query.append_pair("prompt", prompt);
        }
        format!("/t/{tenant_slug}/login?{}", query.finish())
    }
}

/// Decides between sign-in, consent and issuing, given the browser's session (if any) and
/// the scopes the user already granted this client (`None`: never asked).
pub fn decide(
    request: &ValidRequest,
    client: &Client,
    tenant_slug: &str,
    session: Option<&BrowserSession>,
    granted: Option<&Scopes>,
    now: UtcTime,
) -> Result<Decision> {
    let signed_in_after_marker = |s: &BrowserSession| {
        request
            .auth_after
            .is_some_and(|t| unix_seconds(s.auth_time) >= t)
    };
    let is_phr = |s: &BrowserSession| s.acr.as_deref() == Some(ACR_PHISHING_RESISTANT);
    let is_hinted = |s: &BrowserSession| {
        request
            .hinted_subject
            .as_deref()
            .is_none_or(|sub| sub == s.user_id)
    };
    if let Some(s) = session
        && !is_hinted(s)
    {
        // §3.1.2.6: the relying party expects another user than the one signed in.
        if request.prompt.none {
            return Err(Error::LoginRequired);
        }
        // Signed in again since, and still as someone else: asking once more loops.
        if signed_in_after_marker(s) {
            return Err(Error::AccessDenied(
                "the account signed in is not the one this application asked for".into(),
            ));
        }
        let mut login = login_redirect(request, tenant_slug, now);
        // The login page would otherwise send the signed-in browser straight back.
        login.prompt = Some("login");
        return Ok(Decision::Login(login));
    }
    let needs_login = match session {
        None => true,
        Some(s) => {
            let fresh = signed_in_after_marker(s);
            let too_old = request
                .max_age
                .is_some_and(|max| unix_seconds(s.auth_time) + max < unix_seconds(now));
            ((request.prompt.login || request.prompt.create || too_old) && !fresh)
                || (request.requires_passkey && !is_phr(s))
        }
    };
    if needs_login {
        if request.prompt.none {
            return Err(Error::LoginRequired);
        }
        if let Some(s) = session
            && signed_in_after_marker(s)
            && request.requires_passkey
            && !is_phr(s)
        {
            // The user just signed in again, still without a passkey: asking once more loops.
            return Err(Error::AccessDenied(
                "this application requires signing in with a passkey".into(),
            ));
        }
        return Ok(Decision::Login(login_redirect(request, tenant_slug, now)));
    }
    let has_consent = !request.prompt.consent
        && (client.is_first_party || granted.is_some_and(|g| request.scopes.is_subset(g)));
    if !has_consent {
        if request.prompt.none {
            return Err(Error::ConsentRequired);
        }
        return Ok(Decision::Consent);
    }
    Ok(Decision::Issue)
}

fn login_redirect(request: &ValidRequest, tenant_slug: &str, now: UtcTime) -> LoginRedirect {
    let mut params = request.params.clone();
    // Coming back must not ask again: the marker says which sign-ins satisfy the request.
    params.pg_auth_after = Some(unix_seconds(now).to_string());
    let prompt = if request.prompt.create {
        Some("create")
    } else if request.prompt.login || request.max_age.is_some() {
        Some("login")
    } else {
        None
    };
    LoginRedirect {
        return_to: authorize_path(tenant_slug, &params),
        login_hint: request.login_hint.clone(),
        requires_passkey: request.requires_passkey,
        prompt,
    }
}

/// The relative URL of an authorization request with these parameters.
pub fn authorize_path(tenant_slug: &str, params: &AuthorizationParams) -> String {
    let query = serde_urlencoded::to_string(params).unwrap_or_default();
    format!("/t/{tenant_slug}/oauth2/authorize?{query}")
}

/// Issues a single-use code bound to the client, the redirect URI, the PKCE challenge and the
/// session's sign-in (RFC 6749 §4.1.2). Only its digest is stored.
pub fn issue_code(
    conn: &mut DbConn,
    tenant_id: &str,
    client_id: &str,
    request: &ValidRequest,
    session: &BrowserSession,
    lifetimes: &Lifetimes,
    now: UtcTime,
) -> Result<String> {
    let code = random_token(32);
    repo::insert_code(
        conn,
        &AuthorizationCode {
            code_hash: sha256_hex(&code),
            tenant_id: tenant_id.to_string(),
            client_id: client_id.to_string(),
            user_id: session.user_id.clone(),
            session_id: Some(session.id.clone()),
            redirect_uri: request.redirect_uri.clone(),
            scope: request.scopes.to_param(),
            nonce: request.nonce.clone(),
            code_challenge: request.code_challenge.clone(),
            auth_time: session.auth_time,
            amr: session.amr.clone(),
            acr: session.acr.clone(),
            created_at: now,
            expires_at: now + lifetimes.code,
            redeemed_at: None,
            issued_family_id: None,
            issued_access_jti: None,
            issued_access_expires_at: None,
        },
    )?;
    Ok(code)
}

/// The scopes this user already granted this client.
pub fn find_granted_scopes(
    conn: &mut DbConn,
    tenant_id: &str,
    user_id: &str,
    client_id: &str,
) -> Result<Option<Scopes>> {
    Ok(
        crate::store::consents::find_consent(conn, tenant_id, user_id, client_id)?
            .and_then(|s| Scopes::parse(&s)),
    )
}

/// Remembers the user's approval (adding to what was granted before) and issues the code.
pub fn grant_consent(
    conn: &mut DbConn,
    tenant_id: &str,
    client_id: &str,
    request: &ValidRequest,
    session: &BrowserSession,
    now: UtcTime,
) -> Result<()> {
    let before =
        find_granted_scopes(conn, tenant_id, &session.user_id, client_id)?.unwrap_or_default();
    let all = Scopes::of(before.iter().chain(request.scopes.iter()));
    crate::store::consents::upsert_consent(
        conn,
        tenant_id,
        &session.user_id,
        client_id,
        &all.to_param(),
        now,
    )?;
    Ok(())
}

/// `redirect_uri` with `pairs` added to its query (keeping the query it was registered with),
/// always including `iss` (RFC 9207 §2).
pub fn redirect_with(
    redirect_uri: &str,
    issuer: &str,
    state: Option<&str>,
    pairs: &[(&str, &str)],
) -> String {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return redirect_uri.to_string();
    };
    {
        let mut query = url.query_pairs_mut();
        for (k, v) in pairs {
            query.append_pair(k, v);
        }
        if let Some(state) = state {
            query.append_pair("state", state);
        }
        query.append_pair("iss", issuer);
    }
    url.to_string()
}

/// The error response of RFC 6749 §4.1.2.1, as a redirect URL.
pub fn error_redirect(
    redirect_uri: &str,
    issuer: &str,
    state: Option<&str>,
    error: &Error,
) -> String {
    let description = error.to_string();
    redirect_with(
        redirect_uri,
        issuer,
        state,
        &[("error", error.code()), ("error_description", &description)],
    )
}
