//! Tenants (organisations): each has its own issuer, users, clients, keys and policies (O1).

use std::fmt;

use crate::clock::UtcTime;
use crate::store::tenants::{self as repo, Tenant};
use crate::store::{DbConn, StoreError};

/// A tenant's URL name: lowercase letters, digits and `-`, 2–63 characters, not starting or
/// ending with `-` (so it is also a valid DNS label, for deployments that map tenants to
/// subdomains).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slug(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid tenant slug '{0}': use 2-63 lowercase letters, digits and '-', not starting or ending with '-'"
)]
pub struct InvalidSlug(pub String);

impl Slug {
    pub fn parse(raw: &str) -> Result<Slug, InvalidSlug> {
        let ok_chars = raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let ok_len = (2..=63).contains(&raw.len());
        let ok_edges = !raw.starts_with('-') && !raw.ends_with('-');
        if ok_chars && ok_len && ok_edges {
            Ok(Slug(raw.to_string()))
        } else {
            Err(InvalidSlug(raw.chars().take(80).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error(transparent)]
    InvalidSlug(#[from] InvalidSlug),
    #[error("a tenant with slug '{0}' already exists")]
    SlugTaken(String),
    #[error("no tenant '{0}'")]
    NotFound(String),
    #[error("tenant name must be 1-200 characters")]
    InvalidName,
    #[error("'{0}' is not a mail address (e.g. \"Acme Sign-in <signin@acme.example>\")")]
    InvalidSender(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub fn create_tenant(
    conn: &mut DbConn,
    slug: &Slug,
    name: Option<&str>,
    now: UtcTime,
) -> Result<Tenant, TenantError> {
    let name = name.map(str::trim).unwrap_or(slug.as_str());
    if name.is_empty() || name.chars().count() > 200 {
        return Err(TenantError::InvalidName);
    }
    if repo::find_tenant_by_slug(conn, slug.as_str())?.is_some() {
        return Err(TenantError::SlugTaken(slug.to_string()));
    }
    let tenant = Tenant {
        id: crate::crypto::new_id(),
        slug: slug.to_string(),
        name: name.to_string(),
        mail_from: None,
        is_disabled: false,
        created_at: now,
        updated_at: now,
    };
    repo::insert_tenant(conn, &tenant).map_err(|e| {
        if e.is_unique_violation() {
            TenantError::SlugTaken(slug.to_string())
        } else {
            e.into()
        }
    })?;
    Ok(tenant)
}

/// D4: the address a tenant's mail comes from; `None` goes back to the installation's
/// `mail_from`. Audited.
pub fn set_mail_from(
    conn: &mut DbConn,
    tenant: &Tenant,
    mail_from: Option<&str>,
    now: UtcTime,
) -> Result<(), TenantError> {
    if let Some(address) = mail_from
        && address.parse::<lettre::message::Mailbox>().is_err()
    {
        return Err(TenantError::InvalidSender(
            address.chars().take(200).collect(),
        ));
    }
    repo::update_mail_from(conn, &tenant.id, mail_from, now)?;
    crate::audit::record(
        conn,
        crate::audit::Record {
            tenant_id: &tenant.id,
            event_type: "tenant.mail_from_changed",
            actor: crate::audit::Actor::Cli,
            subject_user_id: None,
            client: None,
            details: serde_json::json!({ "mail_from": mail_from }),
            needs_review: false,
        },
        now,
    )?;
    Ok(())
}

pub fn list_tenants(conn: &mut DbConn) -> Result<Vec<Tenant>, TenantError> {
    Ok(repo::list_tenants(conn)?)
}

/// Finds an enabled tenant by the slug in a URL; a disabled tenant is as absent as an
/// unknown one.
pub fn find_active_tenant(conn: &mut DbConn, slug: &str) -> Result<Tenant, TenantError> {
    match repo::find_tenant_by_slug(conn, slug)? {
        Some(t) if !t.is_disabled => Ok(t),
        _ => Err(TenantError::NotFound(slug.chars().take(80).collect())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_follow_the_rules() {
        for good in ["acme", "a1", "acme-corp", "x9-2", &"a".repeat(63)] {
            assert!(Slug::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "a",
            "Acme",
            "acme_corp",
            "acme corp",
            "-acme",
            "acme-",
            "ac/me",
            "äcme",
            "",
            &"a".repeat(64),
        ] {
            assert!(Slug::parse(bad).is_err(), "{bad}");
        }
    }
}

/// Tenants by slug, cached briefly: every tenant URL needs one, and a disabled tenant stops
/// within the TTL.
#[derive(Clone)]
pub struct TenantCache(crate::cache::TtlCache<String, Tenant>);

impl Default for TenantCache {
    fn default() -> Self {
        TenantCache(crate::cache::TtlCache::new(std::time::Duration::from_secs(
            10,
        )))
    }
}

impl TenantCache {
    pub async fn find_active(
        &self,
        store: &crate::store::Store,
        slug: &str,
    ) -> Result<Tenant, TenantError> {
        let owned = slug.to_string();
        self.0
            .get_or_load(&owned, || {
                let owned = owned.clone();
                async move {
                    store
                        .read(move |conn| find_active_tenant(conn, &owned))
                        .await
                }
            })
            .await
    }

    /// Forgets a tenant after it changed on this node.
    pub fn forget(&self, slug: &str) {
        self.0.forget(&slug.to_string());
    }
}
