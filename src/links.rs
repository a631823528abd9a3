//! Single-use links (invitations, setup, recovery, new devices): a random token in the URL,
//! only its SHA-256 stored; expiring; used once; a newer link of the same purpose for the
//! same account voids the older one.

use time::Duration;

use crate::clock::UtcTime;
use crate::crypto::{new_id, random_token, sha256_hex};
use crate::passkeys::Purpose;
use crate::store::links::{self as repo, LinkToken};
use crate::store::tenants::Tenant;
use crate::store::users::User;
use crate::store::{DbConn, StoreError};

/// A link just made: the token appears only here and in the URL.
#[derive(Debug)]
pub struct IssuedLink {
    pub user: Option<User>,
    pub url: String,
}

/// Where links point and how long they live.
#[derive(Debug, Clone, Copy)]
pub struct LinkTerms<'a> {
    pub base_url: &'a str,
    pub ttl: Duration,
}

/// A link to make: for whom, for what, opening which page.
pub struct LinkRequest<'a> {
    pub tenant: &'a Tenant,
    pub user_id: Option<&'a str>,
    pub purpose: Purpose,
    pub page: &'a str,
    pub created_by: Option<&'a str>,
}

/// Makes a link and returns its URL.
pub fn issue_link(
    conn: &mut DbConn,
    request: LinkRequest<'_>,
    terms: LinkTerms<'_>,
    now: UtcTime,
) -> Result<String, StoreError> {
    let LinkRequest {
        tenant,
        user_id,
        purpose,
        page,
        created_by,
    } = request;
    repo::void_links(conn, &tenant.id, user_id, purpose.as_str(), now)?;
    let token = random_token(32);
    repo::insert_link(
        conn,
        &LinkToken {
            id: new_id(),
            tenant_id: tenant.id.clone(),
            user_id: user_id.map(str::to_string),
            purpose: purpose.as_str().to_string(),
            token_hash: sha256_hex(&token),
            created_by: created_by.map(str::to_string),
            details: "{}".into(),
            created_at: now,
            expires_at: now + terms.ttl,
            used_at: None,
        },
    )?;
    Ok(format!(
        "{}/t/{}/{page}?token={token}",
        terms.base_url, tenant.slug
    ))
}

/// The link behind a token, if it can still be used for `purpose`.
pub fn find_usable(
    conn: &mut DbConn,
    tenant_id: &str,
    token: &str,
    purpose: Purpose,
    now: UtcTime,
) -> Result<Option<LinkToken>, StoreError> {
    repo::find_usable_link(conn, tenant_id, &sha256_hex(token), purpose.as_str(), now)
}

/// Marks a link used; `false` when it already was (a replay or a race).
pub fn use_link(conn: &mut DbConn, id: &str, now: UtcTime) -> Result<bool, StoreError> {
    repo::use_link(conn, id, now)
}
