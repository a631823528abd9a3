//! The token endpoint's client-credentials grant (RFC 6749 §4.4), what every grant shares
//! (the issuer, access tokens, the response, revoking a family), and the verification of the
//! access tokens it issues. The code grant is in [`super::redeem`], the refresh grant in
//! [`super::refresh`].

use std::sync::Arc;

use serde::Serialize;

use super::claims::AccessTokenClaims;
use super::clients::Client;
use super::jwt::{self, TokenType};
use super::keys::TenantKeys;
use super::scopes::{self, Scopes};
use super::{Error, Lifetimes, Result};
use crate::clock::{UtcTime, unix_seconds};
use crate::crypto::new_id;
use crate::store::DbConn;
use crate::store::tokens as repo;

/// What a grant needs besides the connection.
pub struct Issuer<'a> {
    pub tenant_id: &'a str,
    /// `{public_url}/t/{slug}`, byte for byte as in discovery.
    pub issuer: &'a str,
    pub keys: &'a Arc<TenantKeys>,
    pub lifetimes: &'a Lifetimes,
    pub now: UtcTime,
}

/// RFC 6749 §5.1 (plus `id_token`, OIDC Core §3.1.3.3).
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

pub(super) struct AccessToken {
    pub(super) token: String,
    pub(super) jti: String,
}

pub(super) fn sign_access_token(
    ctx: &Issuer<'_>,
    client_id: &str,
    sub: &str,
    scope: &str,
    auth_time: Option<UtcTime>,
) -> Result<AccessToken> {
    sign_access_token_as(ctx, new_id(), client_id, sub, scope, auth_time)
}

/// [`sign_access_token`] with a `jti` chosen beforehand, for a grant that records the access
/// token before signing it. Its expiry follows from the clock: `now` plus the lifetime.
pub(super) fn sign_access_token_as(
    ctx: &Issuer<'_>,
    jti: String,
    client_id: &str,
    sub: &str,
    scope: &str,
    auth_time: Option<UtcTime>,
) -> Result<AccessToken> {
    let expires_at = ctx.now + ctx.lifetimes.access_token;
    let claims = AccessTokenClaims {
        iss: ctx.issuer.to_string(),
        sub: sub.to_string(),
        aud: ctx.issuer.to_string(),
        exp: unix_seconds(expires_at),
        iat: unix_seconds(ctx.now),
        jti: jti.clone(),
        client_id: client_id.to_string(),
        scope: scope.to_string(),
        auth_time: auth_time.map(unix_seconds),
    };
    let token = ctx
        .keys
        .signer(ctx.keys.access_token_alg)?
        .sign(TokenType::AccessToken, &claims)?;
    Ok(AccessToken { token, jti })
}

/// RFC 6749 §4.4: a confidential client on its own behalf. No ID token, no refresh token,
/// no database access (the client and keys come from the cache).
pub fn client_credentials(
    ctx: &Issuer<'_>,
    client: &Client,
    scope: Option<&str>,
) -> Result<TokenResponse> {
    let api_scopes = Scopes::of(client.scopes.iter().filter(|s| !scopes::is_oidc_scope(s)));
    let granted = match scope.filter(|s| !s.is_empty()) {
        None => api_scopes,
        Some(raw) => {
            let requested = Scopes::parse(raw)
                .ok_or_else(|| Error::InvalidScope("scope is malformed".into()))?;
            if !requested.is_subset(&api_scopes) {
                return Err(Error::InvalidScope(
                    "a requested scope is not registered for this client".into(),
                ));
            }
            requested
        }
    };
    let scope = granted.to_param();
    let access = sign_access_token(ctx, &client.id, &client.id, &scope, None)?;
    Ok(TokenResponse {
        access_token: access.token,
        token_type: "Bearer",
        expires_in: ctx.lifetimes.access_token.whole_seconds(),
        scope,
        id_token: None,
        refresh_token: None,
    })
}

pub(super) fn invalid_grant(why: &str) -> Error {
    Error::InvalidGrant(why.to_string())
}

/// Revokes a refresh-token family and every unexpired access token issued in it.
pub fn revoke_family(
    conn: &mut DbConn,
    tenant_id: &str,
    family_id: &str,
    reason: &str,
    now: UtcTime,
) -> Result<()> {
    repo::update_family_revoked(conn, tenant_id, family_id, reason, now)?;
    for (jti, expires_at) in repo::find_family_access_tokens(conn, tenant_id, family_id, now)? {
        repo::insert_revoked_access_token(conn, tenant_id, &jti, expires_at, now)?;
    }
    Ok(())
}

/// Verifies an access token of this tenant and returns its claims: signature by one of the
/// tenant's published keys, `typ` at+jwt, issuer and audience, expiry, and not revoked. A
/// token of another tenant fails here (other keys, other issuer). For userinfo, and for the
/// admin API, which accepts client-credentials tokens with scope `passgate:admin`.
pub fn verify_access_token(
    conn: &mut DbConn,
    ctx: &Issuer<'_>,
    token: &str,
) -> Result<AccessTokenClaims> {
    let claims = verify_access_token_signature(ctx, token)?;
    if repo::is_access_token_revoked(conn, ctx.tenant_id, &claims.jti)? {
        return Err(Error::InvalidToken(
            "the access token has been revoked".into(),
        ));
    }
    Ok(claims)
}

/// The stateless part of [`verify_access_token`]: everything but the revocation list.
pub fn verify_access_token_signature(ctx: &Issuer<'_>, token: &str) -> Result<AccessTokenClaims> {
    let claims: AccessTokenClaims =
        jwt::verify(token, TokenType::AccessToken, &ctx.keys.verifiers)?;
    if claims.iss != ctx.issuer || claims.aud != ctx.issuer {
        return Err(Error::InvalidToken(
            "the access token is for another issuer".into(),
        ));
    }
    if claims.exp <= unix_seconds(ctx.now) {
        return Err(Error::InvalidToken("the access token has expired".into()));
    }
    Ok(claims)
}
