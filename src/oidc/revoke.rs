//! Token revocation (RFC 7009). Revoking a refresh token revokes its whole family and every
//! access token issued in it; revoking an access token remembers its `jti` until it expires.
//! Unknown tokens, and tokens of other clients, are answered like success (RFC 7009 §2.2), so
//! the endpoint cannot be used to probe for valid tokens.

use super::Result;
use super::clients::Client;
use super::token::{Issuer, revoke_family, verify_access_token_signature};
use crate::clock::UtcTime;
use crate::crypto::sha256_hex;
use crate::store::DbConn;
use crate::store::tokens as repo;

pub fn revoke(conn: &mut DbConn, ctx: &Issuer<'_>, client: &Client, token: &str) -> Result<()> {
    if let Some((_, family)) = repo::find_refresh_token(conn, ctx.tenant_id, &sha256_hex(token))? {
        if family.client_id == client.id {
            revoke_family(
                conn,
                ctx.tenant_id,
                &family.id,
                "revoked_by_client",
                ctx.now,
            )?;
        }
        return Ok(());
    }
    if let Ok(claims) = verify_access_token_signature(ctx, token)
        && claims.client_id == client.id
    {
        let expires_at = UtcTime::from(
            time::OffsetDateTime::from_unix_timestamp(claims.exp)
                .map(|t| time::PrimitiveDateTime::new(t.date(), t.time()))
                .unwrap_or(ctx.now),
        );
        repo::insert_revoked_access_token(conn, ctx.tenant_id, &claims.jti, expires_at, ctx.now)?;
    }
    Ok(())
}
