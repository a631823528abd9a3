//! The token endpoint's grants (RFC 6749 §4.1.3, §4.4; OIDC Core §3.1.3; the refresh grant
//! is in [`super::refresh`]) and the verification of the access tokens it issues.
//!
//! Redemption returns `Ok(Err(e))` for a refusal that must still be committed (the burnt
//! code, the revoked family); an outer `Err` rolls the transaction back.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::claims::{AccessTokenClaims, IdTokenClaims};
use super::clients::{Client, GRANT_REFRESH_TOKEN};
use super::jwt::{self, TokenType};
use super::keys::TenantKeys;
use super::scopes::{self, Scopes};
use super::{Error, Lifetimes, Result};
use crate::clock::{UtcTime, unix_seconds};
use crate::crypto::{constant_time_eq, new_id, random_token, sha256_hex};
use crate::store::DbConn;
use crate::store::codes::{self, AuthorizationCode};
use crate::store::tokens::{self as repo, RefreshToken, RefreshTokenFamily};
use crate::users::status;

/// What a grant needs besides the connection.
pub struct Issuer<'a> {
    pub tenant_id: &'a str,
    /// `{public_url}/t/{slug}`, byte for byte as in discovery.
    pub issuer: &'a str,
    pub keys: &'a TenantKeys,
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

/// The user's authorization that tokens are issued from (a code, or a refresh family).
struct Authorization {
    user_id: String,
    scopes: Scopes,
    auth_time: UtcTime,
    amr: String,
    acr: Option<String>,
    session_id: Option<String>,
}

pub(super) struct AccessToken {
    pub(super) token: String,
    pub(super) jti: String,
    expires_at: UtcTime,
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

/// [`sign_access_token`] with a `jti` chosen beforehand, for a refresh that records the
/// access token before signing it. Its expiry follows from the clock, as there.
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
    Ok(AccessToken {
        token,
        jti,
        expires_at,
    })
}

fn sign_id_token(
    ctx: &Issuer<'_>,
    client: &Client,
    auth: &Authorization,
    nonce: Option<String>,
    access_token: &str,
) -> Result<String> {
    let claims = IdTokenClaims {
        iss: ctx.issuer.to_string(),
        sub: auth.user_id.clone(),
        aud: client.id.clone(),
        azp: client.id.clone(),
        exp: unix_seconds(ctx.now + ctx.lifetimes.id_token),
        iat: unix_seconds(ctx.now),
        auth_time: unix_seconds(auth.auth_time),
        nonce,
        amr: serde_json::from_str(&auth.amr).unwrap_or_default(),
        acr: auth.acr.clone(),
        at_hash: Some(jwt::at_hash(access_token)),
        sid: auth.session_id.clone(),
    };
    ctx.keys
        .signer(client.id_token_alg)?
        .sign(TokenType::IdToken, &claims)
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

/// RFC 7636 §4.6: BASE64URL(SHA256(verifier)) == challenge, for a verifier of 43–128
/// unreserved characters.
fn is_verifier_valid(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    well_formed & constant_time_eq(computed.as_bytes(), challenge.as_bytes())
}

/// A grant refused with `invalid_grant` (RFC 6749 §5.2); the transaction still commits, so
/// a burnt code or a revoked family stays so.
fn refused(why: &str) -> Result<Result<TokenResponse>> {
    Ok(Err(invalid_grant(why)))
}

pub(super) fn invalid_grant(why: &str) -> Error {
    Error::InvalidGrant(why.to_string())
}

/// RFC 6749 §4.1.3 with PKCE. A code is single use whatever happens: a refused redemption
/// (wrong verifier, another client, an expired code) burns it, and a second redemption
/// revokes what the first one issued (RFC 6749 §4.1.2).
pub fn redeem_code(
    conn: &mut DbConn,
    ctx: &Issuer<'_>,
    client: &Client,
    code: &str,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
) -> Result<Result<TokenResponse>> {
    let code_hash = sha256_hex(code);
    let Some(found) = codes::find_code(conn, ctx.tenant_id, &code_hash)? else {
        return refused("the code is invalid");
    };
    if found.redeemed_at.is_some() {
        return replayed(conn, ctx, &found);
    }
    if let Some(why) = redemption_refusal(conn, ctx, client, &found, redirect_uri, verifier)? {
        if !codes::update_code_redeemed(conn, ctx.tenant_id, &code_hash, ctx.now)? {
            return reread_replayed(conn, ctx, &code_hash);
        }
        return refused(why);
    }
    let auth = Authorization {
        user_id: found.user_id.clone(),
        scopes: Scopes::parse(&found.scope).unwrap_or_default(),
        auth_time: found.auth_time,
        amr: found.amr.clone(),
        acr: found.acr.clone(),
        session_id: found.session_id.clone(),
    };
    let access = sign_access_token(
        ctx,
        &client.id,
        &auth.user_id,
        &found.scope,
        Some(auth.auth_time),
    )?;
    let id_token = sign_id_token(ctx, client, &auth, found.nonce.clone(), &access.token)?;
    let wants_refresh =
        auth.scopes.contains(scopes::OFFLINE_ACCESS) || client.is_refresh_always_issued;
    let family =
        (wants_refresh && client.allows_grant(GRANT_REFRESH_TOKEN)).then(|| RefreshTokenFamily {
            id: new_id(),
            tenant_id: ctx.tenant_id.to_string(),
            client_id: client.id.clone(),
            user_id: auth.user_id.clone(),
            session_id: auth.session_id.clone(),
            scope: found.scope.clone(),
            auth_time: auth.auth_time,
            amr: auth.amr.clone(),
            acr: auth.acr.clone(),
            created_at: ctx.now,
            absolute_expires_at: ctx.now + ctx.lifetimes.refresh_absolute,
            revoked_at: None,
            revoked_reason: None,
        });
    let issued = codes::Issued {
        family_id: family.as_ref().map(|f| f.id.as_str()),
        access_jti: &access.jti,
        access_expires_at: access.expires_at,
    };
    // Claimed and recorded in one statement; nothing is written before it, so a redemption
    // that loses a race leaves nothing behind.
    if !codes::update_code_redeemed_issuing(conn, ctx.tenant_id, &code_hash, ctx.now, &issued)? {
        return reread_replayed(conn, ctx, &code_hash);
    }
    let refresh_token = match &family {
        Some(family) => {
            repo::insert_family(conn, family)?;
            Some(insert_refresh_token(conn, ctx, family, &access)?)
        }
        None => None,
    };
    Ok(Ok(TokenResponse {
        access_token: access.token,
        token_type: "Bearer",
        expires_in: ctx.lifetimes.access_token.whole_seconds(),
        scope: found.scope,
        id_token: Some(id_token),
        refresh_token,
    }))
}

/// Why this redemption of an unused code is refused, if it is.
fn redemption_refusal(
    conn: &mut DbConn,
    ctx: &Issuer<'_>,
    client: &Client,
    found: &AuthorizationCode,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
) -> Result<Option<&'static str>> {
    if found.expires_at <= ctx.now {
        return Ok(Some("the code has expired"));
    }
    if found.client_id != client.id {
        return Ok(Some("the code was issued to another client"));
    }
    if redirect_uri != Some(found.redirect_uri.as_str()) {
        return Ok(Some(
            "redirect_uri does not match the authorization request",
        ));
    }
    match verifier {
        None => return Ok(Some("code_verifier is missing")),
        Some(v) if !is_verifier_valid(v, &found.code_challenge) => {
            return Ok(Some("code_verifier does not match the code_challenge"));
        }
        Some(_) => {}
    }
    if !is_user_active(conn, ctx.tenant_id, &found.user_id)? {
        return Ok(Some("the user can no longer sign in"));
    }
    Ok(None)
}

/// A second redemption: what the first one issued is revoked.
fn replayed(
    conn: &mut DbConn,
    ctx: &Issuer<'_>,
    code: &AuthorizationCode,
) -> Result<Result<TokenResponse>> {
    if let Some(family) = &code.issued_family_id {
        revoke_family(conn, ctx.tenant_id, family, "code_replay", ctx.now)?;
    }
    if let (Some(jti), Some(exp)) = (&code.issued_access_jti, code.issued_access_expires_at) {
        repo::insert_revoked_access_token(conn, ctx.tenant_id, jti, exp, ctx.now)?;
    }
    refused("the code was already used; the tokens issued for it are revoked")
}

/// Another redemption claimed the code after this one read it (PostgreSQL lets two run at
/// once): what that one issued is read again, now committed, and revoked.
fn reread_replayed(
    conn: &mut DbConn,
    ctx: &Issuer<'_>,
    code_hash: &str,
) -> Result<Result<TokenResponse>> {
    match codes::find_code(conn, ctx.tenant_id, code_hash)? {
        Some(code) => replayed(conn, ctx, &code),
        None => refused("the code is invalid"),
    }
}

fn insert_refresh_token(
    conn: &mut DbConn,
    ctx: &Issuer<'_>,
    family: &RefreshTokenFamily,
    access: &AccessToken,
) -> Result<String> {
    let (row, token) = next_refresh_token(ctx, family, access);
    repo::insert_refresh_token(conn, &row)?;
    Ok(token)
}

/// A new refresh token of `family`, issued with `access`: its row and the token itself.
fn next_refresh_token(
    ctx: &Issuer<'_>,
    family: &RefreshTokenFamily,
    access: &AccessToken,
) -> (RefreshToken, String) {
    let token = random_token(32);
    let row = RefreshToken {
        token_hash: sha256_hex(&token),
        tenant_id: ctx.tenant_id.to_string(),
        family_id: family.id.clone(),
        created_at: ctx.now,
        idle_expires_at: (ctx.now + ctx.lifetimes.refresh_idle).min(family.absolute_expires_at),
        rotated_at: None,
        access_jti: access.jti.clone(),
        access_expires_at: access.expires_at,
    };
    (row, token)
}

fn is_user_active(conn: &mut DbConn, tenant_id: &str, user_id: &str) -> Result<bool> {
    Ok(crate::store::users::find_user(conn, tenant_id, user_id)?
        .is_some_and(|u| u.status == status::ACTIVE))
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
