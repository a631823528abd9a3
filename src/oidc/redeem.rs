//! The authorization-code grant (RFC 6749 §4.1.3 with PKCE, RFC 7636; OIDC Core §3.1.3). A
//! code is single use whatever happens: a refused redemption (wrong verifier, another client,
//! an expired code) burns it, and a second redemption revokes what the first one issued
//! (RFC 6749 §4.1.2).
//!
//! Claiming first: one write checks everything the redemption must match, spends the code
//! and stores what it issues — on PostgreSQL one statement that commits by itself — and the
//! tokens are signed after, with the `jti` the write recorded. Only when that write refuses
//! does a transaction read the code, to say why, burn it, and revoke on a replay.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::claims::IdTokenClaims;
use super::clients::{Client, GRANT_REFRESH_TOKEN};
use super::scopes;
use super::token::{Issuer, TokenResponse, invalid_grant, revoke_family, sign_access_token_as};
use super::{Error, Result, jwt};
use crate::clock::{UtcTime, unix_seconds};
use crate::crypto::{constant_time_eq, new_id, random_token, sha256_hex};
use crate::store::codes::{self, AuthorizationCode, NewFamily, PresentedCode, Redemption};
use crate::store::tokens as repo;
use crate::store::{DbConn, Store};
use crate::users::UserStatus;

/// Redeems `code` for an ID token, an access token and, with `offline_access` (or by client
/// policy), a refresh token.
pub async fn redeem(
    store: &Store,
    ctx: &Issuer<'_>,
    client: &Client,
    code: &str,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
) -> Result<TokenResponse> {
    let code_hash = sha256_hex(code);
    if let (Some(redirect_uri), Some(challenge)) = (redirect_uri, verifier.and_then(challenge_of))
        && let Some(response) =
            claim_first(store, ctx, client, &code_hash, redirect_uri, &challenge).await?
    {
        return Ok(response);
    }
    let attempt = Attempt {
        tenant_id: ctx.tenant_id.to_string(),
        code_hash,
        client_id: client.id.clone(),
        redirect_uri: redirect_uri.map(str::to_string),
        verifier: verifier.map(str::to_string),
        now: ctx.now,
    };
    Err(store.write(move |conn| refusal(conn, &attempt)).await?)
}

/// RFC 7636 §4.6: BASE64URL(SHA256(verifier)), for a verifier of 43–128 unreserved
/// characters; `None` for any other verifier.
fn challenge_of(verifier: &str) -> Option<String> {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    well_formed.then(|| URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())))
}

/// The redemption when the write claimed the code; `None` when it refused (nothing written).
/// The tokens are signed in the claim's store job (see [`codes::claim_code_then`]).
async fn claim_first(
    store: &Store,
    ctx: &Issuer<'_>,
    client: &Client,
    code_hash: &str,
    redirect_uri: &str,
    challenge: &str,
) -> Result<Option<TokenResponse>> {
    // A missing signing key must refuse before the code is spent.
    ctx.keys.signer(ctx.keys.access_token_alg)?;
    ctx.keys.signer(client.id_token_alg)?;
    let now = ctx.now;
    let (tenant_id, issuer, keys, lifetimes) = (
        ctx.tenant_id.to_string(),
        ctx.issuer.to_string(),
        Arc::clone(ctx.keys),
        *ctx.lifetimes,
    );
    let (client, code_hash, redirect_uri, challenge) = (
        client.clone(),
        code_hash.to_string(),
        redirect_uri.to_string(),
        challenge.to_string(),
    );
    let refresh_allowed = client.allows_grant(GRANT_REFRESH_TOKEN);
    let is_refresh_always_issued = client.is_refresh_always_issued;
    let prepare = move || {
        let presented = PresentedCode {
            code_hash,
            client_id: client.id.clone(),
            redirect_uri,
            code_challenge: challenge,
            tenant_id: tenant_id.clone(),
            user_status: UserStatus::Active.as_str(),
        };
        let (jti, refresh_token) = (new_id(), random_token(32));
        let absolute_expires_at = now + lifetimes.refresh_absolute;
        let redemption = Redemption {
            access_jti: jti.clone(),
            access_expires_at: now + lifetimes.access_token,
            family: refresh_allowed.then(|| NewFamily {
                id: new_id(),
                absolute_expires_at,
                refresh_token_hash: sha256_hex(&refresh_token),
                refresh_idle_expires_at: (now + lifetimes.refresh_idle).min(absolute_expires_at),
            }),
            is_refresh_always_issued,
            offline_scope_pattern: scopes::like_pattern(scopes::OFFLINE_ACCESS),
        };
        (
            presented,
            redemption,
            (tenant_id, issuer, keys, client, jti, refresh_token),
        )
    };
    codes::claim_code_then(store, now, prepare, move |code, issued| {
        let (tenant_id, issuer, keys, client, jti, refresh_token) = issued;
        let ctx = Issuer {
            tenant_id: &tenant_id,
            issuer: &issuer,
            keys: &keys,
            lifetimes: &lifetimes,
            now,
        };
        sign_redeemed(&ctx, &client, &code, jti, refresh_token)
    })
    .await
}

/// The tokens of a claimed code: the access token with the claim's `jti`, the ID token, and
/// the refresh token when the claim started a family.
fn sign_redeemed(
    ctx: &Issuer<'_>,
    client: &Client,
    code: &AuthorizationCode,
    jti: String,
    refresh_token: String,
) -> Result<TokenResponse> {
    let access = sign_access_token_as(
        ctx,
        jti,
        &client.id,
        &code.user_id,
        &code.scope,
        Some(code.auth_time),
    )?;
    let id_token = sign_id_token(ctx, client, code, &access.token)?;
    Ok(TokenResponse {
        access_token: access.token,
        token_type: "Bearer",
        expires_in: ctx.lifetimes.access_token.whole_seconds(),
        refresh_token: code.issued_family_id.is_some().then_some(refresh_token),
        scope: code.scope.clone(),
        id_token: Some(id_token),
    })
}

fn sign_id_token(
    ctx: &Issuer<'_>,
    client: &Client,
    code: &AuthorizationCode,
    access_token: &str,
) -> Result<String> {
    let claims = IdTokenClaims {
        iss: ctx.issuer.to_string(),
        sub: code.user_id.clone(),
        aud: client.id.clone(),
        azp: client.id.clone(),
        exp: unix_seconds(ctx.now + ctx.lifetimes.id_token),
        iat: unix_seconds(ctx.now),
        auth_time: unix_seconds(code.auth_time),
        nonce: code.nonce.clone(),
        amr: serde_json::from_str(&code.amr).unwrap_or_default(),
        acr: code.acr.clone(),
        at_hash: Some(jwt::at_hash(access_token)),
        sid: code.session_id.clone(),
    };
    ctx.keys
        .signer(client.id_token_alg)?
        .sign(jwt::TokenType::IdToken, &claims)
}

/// A redemption the claim refused, as presented.
struct Attempt {
    tenant_id: String,
    code_hash: String,
    client_id: String,
    redirect_uri: Option<String>,
    verifier: Option<String>,
    now: UtcTime,
}

/// Why the claim refused, in the transaction that burns the code (or revokes what a first
/// redemption issued); the refusal is returned as `Ok`, so what it wrote commits.
fn refusal(conn: &mut DbConn, attempt: &Attempt) -> Result<Error> {
    let (tenant_id, code_hash) = (attempt.tenant_id.as_str(), attempt.code_hash.as_str());
    let Some(found) = codes::find_code(conn, tenant_id, code_hash)? else {
        return Ok(invalid_grant("the code is invalid"));
    };
    if found.redeemed_at.is_some() {
        return replayed(conn, &found, attempt.now);
    }
    // Nothing wrong now means something changed since the claim (the user, say): refused all
    // the same, as the claim was.
    let why = mismatch(conn, attempt, &found)?.unwrap_or("the code is invalid");
    if !codes::update_code_redeemed(conn, tenant_id, code_hash, attempt.now)? {
        // Another redemption claimed it since the read (PostgreSQL lets two run at once):
        // what that one issued, committed by now, is revoked.
        return match codes::find_code(conn, tenant_id, code_hash)? {
            Some(code) => replayed(conn, &code, attempt.now),
            None => Ok(invalid_grant("the code is invalid")),
        };
    }
    Ok(invalid_grant(why))
}

/// What about this redemption of an unused code does not match, if anything.
fn mismatch(
    conn: &mut DbConn,
    attempt: &Attempt,
    found: &AuthorizationCode,
) -> Result<Option<&'static str>> {
    if found.expires_at <= attempt.now {
        return Ok(Some("the code has expired"));
    }
    if found.client_id != attempt.client_id {
        return Ok(Some("the code was issued to another client"));
    }
    if attempt.redirect_uri.as_deref() != Some(found.redirect_uri.as_str()) {
        return Ok(Some(
            "redirect_uri does not match the authorization request",
        ));
    }
    let Some(verifier) = attempt.verifier.as_deref() else {
        return Ok(Some("code_verifier is missing"));
    };
    let matches = challenge_of(verifier)
        .is_some_and(|c| constant_time_eq(c.as_bytes(), found.code_challenge.as_bytes()));
    if !matches {
        return Ok(Some("code_verifier does not match the code_challenge"));
    }
    let user = crate::store::users::find_user(conn, &attempt.tenant_id, &found.user_id)?;
    if user.is_none_or(|u| UserStatus::of(&u) != UserStatus::Active) {
        return Ok(Some("the user can no longer sign in"));
    }
    Ok(None)
}

/// A second redemption: what the first one issued is revoked.
fn replayed(conn: &mut DbConn, code: &AuthorizationCode, now: UtcTime) -> Result<Error> {
    if let Some(family) = &code.issued_family_id {
        revoke_family(conn, &code.tenant_id, family, "code_replay", now)?;
    }
    if let (Some(jti), Some(exp)) = (&code.issued_access_jti, code.issued_access_expires_at) {
        repo::insert_revoked_access_token(conn, &code.tenant_id, jti, exp, now)?;
    }
    Ok(invalid_grant(
        "the code was already used; the tokens issued for it are revoked",
    ))
}
