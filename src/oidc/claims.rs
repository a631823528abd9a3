//! The claims we sign and serve: ID tokens (OIDC Core §2), JWT access tokens (RFC 9068 §2.2)
//! and userinfo (OIDC Core §5.1), by scope.

use serde::{Deserialize, Serialize};

use super::scopes::{self, Scopes};
use crate::store::users::User;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub azp: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub nonce: Option<String>,
    pub amr: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub acr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub at_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sid: Option<String>,
}

/// RFC 9068 §2.2. `sub` is the user, or the client itself for client credentials; `aud` is
/// the issuer, whose userinfo and admin API accept the token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub auth_time: Option<i64>,
}

impl AccessTokenClaims {
    pub fn scopes(&self) -> Scopes {
        Scopes::parse(&self.scope).unwrap_or_default()
    }

    /// True for a token issued to a user (not to a client on its own behalf).
    pub fn is_for_user(&self) -> bool {
        self.sub != self.client_id
    }
}

/// Userinfo claims allowed by the token's scopes.
pub fn userinfo(user: &User, scopes: &Scopes) -> serde_json::Value {
    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), user.id.clone().into());
    if scopes.contains(scopes::PROFILE) {
        claims.insert("name".into(), crate::users::display_name(user).into());
    }
    if scopes.contains(scopes::EMAIL) {
        claims.insert("email".into(), user.email.clone().into());
        claims.insert("email_verified".into(), user.email_verified.into());
    }
    serde_json::Value::Object(claims)
}

/// The userinfo answer (OIDC Core §5.3) for a verified access token's claims, while its user
/// may still sign in.
pub async fn userinfo_for(
    store: &crate::store::Store,
    tenant_id: &str,
    claims: &AccessTokenClaims,
) -> Result<serde_json::Value, super::Error> {
    let (tenant_id, user_id) = (tenant_id.to_string(), claims.sub.clone());
    let user = store
        .read(move |conn| crate::store::users::find_user(conn, &tenant_id, &user_id))
        .await?
        .filter(|u| crate::users::UserStatus::of(u) == crate::users::UserStatus::Active)
        .ok_or_else(|| {
            super::Error::InvalidToken("the user of this token can no longer sign in".into())
        })?;
    Ok(userinfo(&user, &claims.scopes()))
}
