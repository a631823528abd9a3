//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): who asks, and where the
//! browser may be sent afterwards.

use serde::{Deserialize, Serialize};

use super::clients::Client;
use super::jwt::{self, TokenType, Verifiers};
use super::{Error, Result};

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct LogoutParams {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token_hint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_logout_redirect_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// The claims of an ID token hint that matter here.
#[derive(Debug, Clone, Deserialize)]
pub struct IdTokenHint {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    #[serde(default)]
    pub sid: Option<String>,
}

/// Verifies an ID token we issued (§2: an expired one is still a valid hint).
pub fn verify_hint(verifiers: &Verifiers, issuer: &str, hint: &str) -> Result<IdTokenHint> {
    let claims: IdTokenHint = jwt::verify(hint, TokenType::IdToken, verifiers)?;
    if claims.iss != issuer {
        return Err(Error::InvalidToken(
            "the ID token hint is from another issuer".into(),
        ));
    }
    Ok(claims)
}

/// The client the request speaks for: `client_id`, or the hint's audience; both must agree.
pub fn client_id<'a>(
    params: &'a LogoutParams,
    hint: Option<&'a IdTokenHint>,
) -> Result<Option<&'a str>> {
    match (params.client_id.as_deref(), hint.map(|h| h.aud.as_str())) {
        (Some(a), Some(b)) if a != b => Err(Error::InvalidRequest(
            "client_id does not match the ID token hint".into(),
        )),
        (Some(id), _) | (None, Some(id)) => Ok(Some(id)),
        (None, None) => Ok(None),
    }
}

/// Where to go after logout: the requested URI only if the client registered it exactly.
pub fn redirect_target(params: &LogoutParams, client: Option<&Client>) -> Result<Option<String>> {
    let Some(uri) = params.post_logout_redirect_uri.as_deref() else {
        return Ok(None);
    };
    match client {
        Some(c) if c.is_post_logout_redirect_uri_registered(uri) => {
            Ok(Some(match params.state.as_deref() {
                Some(state) => {
                    let mut url = url::Url::parse(uri).map_err(|_| {
                        Error::InvalidRequest("post_logout_redirect_uri is malformed".into())
                    })?;
                    url.query_pairs_mut().append_pair("state", state);
                    url.to_string()
                }
                None => uri.to_string(),
            }))
        }
        Some(_) => Err(Error::InvalidRequest(
            "post_logout_redirect_uri is not registered for this application".into(),
        )),
        None => Err(Error::InvalidRequest(
            "post_logout_redirect_uri needs client_id or id_token_hint".into(),
        )),
    }
}
