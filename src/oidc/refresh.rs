//! The refresh-token grant (RFC 6749 §6) with rotation: every refresh spends the presented
//! token and issues its successor in the same family.

use super::clients::Client;
use super::scopes::Scopes;
use super::token::{
    AccessToken, Issuer, TokenResponse, invalid_grant, revoke_family, sign_access_token,
    sign_access_token_as,
};
use super::{Error, Result};
use crate::crypto::{new_id, random_token, sha256_hex};
use crate::store::Store;
use crate::store::tokens::{
    self as repo, NextRefreshToken, PresentedRefreshToken, RefreshTokenFamily,
};
use crate::users::UserStatus;

/// RFC 6749 §6 with rotation (OAuth 2.0 Security BCP §4.14.2): every use returns a new
/// refresh token; presenting a rotated one again revokes the whole family. No ID token is
/// issued on refresh (OIDC Core §12.2 makes it optional).
///
/// Without a narrower scope, the token is rotated first — the write checks all the read
/// would, and on PostgreSQL is the refresh's one statement — and the access token signed
/// after. When that write refuses, or a narrower scope must be checked against the grant
/// before anything is spent, [`refresh_checked`] reads first and says why it refuses.
pub async fn refresh(
    store: &Store,
    ctx: &Issuer<'_>,
    client: &Client,
    refresh_token: &str,
    scope: Option<&str>,
) -> Result<TokenResponse> {
    if scope.is_none_or(str::is_empty)
        && let Some(response) = rotate_presented(store, ctx, client, refresh_token).await?
    {
        return Ok(response);
    }
    refresh_checked(store, ctx, client, refresh_token, scope).await
}

/// Rotation before signing: `None` when the write refused (nothing was spent, or the family
/// was revoked meanwhile).
async fn rotate_presented(
    store: &Store,
    ctx: &Issuer<'_>,
    client: &Client,
    refresh_token: &str,
) -> Result<Option<TokenResponse>> {
    // A missing signing key must refuse before the presented token is spent.
    ctx.keys.signer(ctx.keys.access_token_alg)?;
    let (jti, next_token) = (new_id(), random_token(32));
    let family = rotate(
        store,
        ctx,
        client,
        sha256_hex(refresh_token),
        &jti,
        &next_token,
    )
    .await?;
    let Some(family) = family else {
        return Ok(None);
    };
    let scope = Scopes::parse(&family.scope).unwrap_or_default().to_param();
    let access = sign_access_token_as(
        ctx,
        jti,
        &client.id,
        &family.user_id,
        &scope,
        Some(family.auth_time),
    )?;
    Ok(Some(refreshed(ctx, access, scope, next_token)))
}

/// The token, its family and its user are read first and the access token signed outside
/// any transaction; the rotation itself is one atomic write, and a rotation that finds the
/// token already used is reuse.
async fn refresh_checked(
    store: &Store,
    ctx: &Issuer<'_>,
    client: &Client,
    refresh_token: &str,
    scope: Option<&str>,
) -> Result<TokenResponse> {
    let used_hash = sha256_hex(refresh_token);
    let found =
        repo::find_refresh_grant_to_rotate(store, ctx.tenant_id.to_string(), used_hash.clone())
            .await?;
    let Some((token, family, user_status)) = found else {
        return Err(invalid_grant("the refresh token is invalid"));
    };
    if family.client_id != client.id {
        return Err(invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if family.revoked_at.is_some() {
        return Err(invalid_grant("the refresh token has been revoked"));
    }
    if let Some(rotated_at) = token.rotated_at {
        if ctx.now - rotated_at < ctx.lifetimes.refresh_reuse_grace {
            return Err(concurrent_use());
        }
        return refuse_reuse(store, ctx, family.id).await;
    }
    if token.idle_expires_at <= ctx.now || family.absolute_expires_at <= ctx.now {
        return Err(invalid_grant("the refresh token has expired"));
    }
    let granted = Scopes::parse(&family.scope).unwrap_or_default();
    let scopes = match scope.filter(|s| !s.is_empty()) {
        None => granted,
        Some(raw) => match Scopes::parse(raw) {
            Some(requested) if requested.is_subset(&granted) => requested,
            _ => {
                return Err(Error::InvalidScope(
                    "a refresh can only narrow the granted scope".into(),
                ));
            }
        },
    };
    if UserStatus::parse(&user_status) != Some(UserStatus::Active) {
        return Err(invalid_grant("the user can no longer sign in"));
    }
    let scope = scopes.to_param();
    let access = sign_access_token(
        ctx,
        &client.id,
        &family.user_id,
        &scope,
        Some(family.auth_time),
    )?;
    let next_token = random_token(32);
    // Checked again by the write: what changed since the read is a concurrent use of the
    // same token (or a revocation or expiry meanwhile): refused, the family kept.
    if rotate(store, ctx, client, used_hash, &access.jti, &next_token)
        .await?
        .is_none()
    {
        return Err(concurrent_use());
    }
    Ok(refreshed(ctx, access, scope, next_token))
}

/// The second of two uses within the reuse grace: the first one's successor stays the
/// family's live token (never a second, forked one).
fn concurrent_use() -> Error {
    invalid_grant("the refresh token was just used; use the refresh token that request returned")
}

/// A refresh's answer: no ID token (OIDC Core §12.2 makes it optional).
fn refreshed(
    ctx: &Issuer<'_>,
    access: AccessToken,
    scope: String,
    next_token: String,
) -> TokenResponse {
    TokenResponse {
        access_token: access.token,
        token_type: "Bearer",
        expires_in: ctx.lifetimes.access_token.whole_seconds(),
        scope,
        id_token: None,
        refresh_token: Some(next_token),
    }
}

/// Spends the presented token (by its digest) and stores `next_token` in its family, issued
/// with the access token `jti`; the family when every check of the write passed.
async fn rotate(
    store: &Store,
    ctx: &Issuer<'_>,
    client: &Client,
    used_hash: String,
    jti: &str,
    next_token: &str,
) -> Result<Option<RefreshTokenFamily>> {
    let now = ctx.now;
    let presented = PresentedRefreshToken {
        tenant_id: ctx.tenant_id.to_string(),
        token_hash: used_hash,
        client_id: client.id.clone(),
        user_status: UserStatus::Active.as_str(),
    };
    let next = NextRefreshToken {
        token_hash: sha256_hex(next_token),
        idle_expires_at: now + ctx.lifetimes.refresh_idle,
        access_jti: jti.to_string(),
        access_expires_at: now + ctx.lifetimes.access_token,
    };
    Ok(repo::rotate_presented_refresh_token(store, presented, next, now).await?)
}

/// A used refresh token presented again (or rotated by a concurrent request first): the
/// whole family is revoked, committed, and the grant refused.
async fn refuse_reuse(store: &Store, ctx: &Issuer<'_>, family_id: String) -> Result<TokenResponse> {
    let (tenant_id, now) = (ctx.tenant_id.to_string(), ctx.now);
    store
        .write(move |conn| revoke_family(conn, &tenant_id, &family_id, "refresh_token_reuse", now))
        .await?;
    Err(invalid_grant(
        "the refresh token was already used; its family is revoked",
    ))
}
