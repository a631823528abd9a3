//! Token introspection (RFC 7662) for authenticated clients. A client learns about its own
//! tokens only; everything else (unknown, expired, revoked, another client's) is simply
//! `{"active": false}` (RFC 7662 §2.2).

use serde_json::{Value, json};

use super::Result;
use super::clients::Client;
use super::token::{Issuer, verify_access_token};
use crate::clock::unix_seconds;
use crate::crypto::sha256_hex;
use crate::store::DbConn;
use crate::store::tokens as repo;

fn inactive() -> Value {
    json!({ "active": false })
}

pub fn introspect(
    conn: &mut DbConn,
    ctx: &Issuer<'_>,
    client: &Client,
    token: &str,
) -> Result<Value> {
    if token.matches('.').count() == 2 {
        return Ok(match verify_access_token(conn, ctx, token) {
            Ok(claims) if claims.client_id == client.id => json!({
                "active": true,
                "token_type": "Bearer",
                "scope": claims.scope,
                "client_id": claims.client_id,
                "sub": claims.sub,
                "aud": claims.aud,
                "iss": claims.iss,
                "exp": claims.exp,
                "iat": claims.iat,
                "jti": claims.jti,
            }),
            _ => inactive(),
        });
    }
    let Some((refresh, family)) =
        repo::find_refresh_token(conn, ctx.tenant_id, &sha256_hex(token))?
    else {
        return Ok(inactive());
    };
    let expires_at = refresh.idle_expires_at.min(family.absolute_expires_at);
    let is_active = family.client_id == client.id
        && family.revoked_at.is_none()
        && refresh.rotated_at.is_none()
        && expires_at > ctx.now;
    if !is_active {
        return Ok(inactive());
    }
    Ok(json!({
        "active": true,
        "token_type": "refresh_token",
        "scope": family.scope,
        "client_id": family.client_id,
        "sub": family.user_id,
        "iss": ctx.issuer,
        "exp": unix_seconds(expires_at),
        "iat": unix_seconds(refresh.created_at),
    }))
}
