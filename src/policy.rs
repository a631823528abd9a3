//! A tenant's policy: one versioned JSON document, so new knobs need no schema change.
//! Unknown fields are refused, so a typo in a policy is an error rather than a silently
//! ignored rule.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::UtcTime;
use crate::store::policies as repo;
use crate::store::{DbConn, StoreError};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantPolicy {
    /// P2: `preferred` lets a security key without a PIN register and sign in with a touch;
    /// `required` demands a PIN or biometric on every ceremony.
    pub user_verification: UserVerification,
    /// P5: what a signature counter that did not increase (a possible clone) does.
    pub counter_regression: CounterRegression,
    /// P8: stricter authenticators for sensitive roles, enforced at registration.
    pub sensitive_roles: Vec<SensitiveRoleRule>,
    /// C3: whether people may recover by an emailed link, and whether the account is then
    /// restricted for 7 days.
    pub email_recovery: EmailRecovery,
    /// C6: new accounts enroll a second passkey right after the first.
    pub require_two_passkeys: bool,
    /// O3: what the tenant's JWT access tokens are signed with; RS256 for resource servers
    /// that cannot verify ES256.
    pub access_token_signing_alg: AccessTokenAlg,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccessTokenAlg {
    #[default]
    #[serde(rename = "ES256")]
    Es256,
    #[serde(rename = "RS256")]
    Rs256,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserVerification {
    #[default]
    Preferred,
    Required,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CounterRegression {
    /// Allow the sign-in, flag the passkey and write an audit event for review.
    #[default]
    Flag,
    /// Refuse the sign-in.
    Refuse,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailRecovery {
    Off,
    On,
    /// Allowed, then sensitive actions need a passkey from before the recovery for 7 days.
    #[default]
    OnRestricted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensitiveRoleRule {
    /// Shown to users when the rule refuses a passkey.
    pub name: String,
    /// Roles (`owner`, `admin`, `member`) or group names the rule applies to.
    pub roles: Vec<String>,
    /// When not empty: only these authenticators, proven by attestation.
    #[serde(default)]
    pub authenticators: Vec<AllowedAuthenticator>,
    /// When not empty: the passkey must report one of these transports (`usb`, `nfc`, …).
    #[serde(default)]
    pub transports: Vec<String>,
}

/// An authenticator model a rule allows: its AAGUID and the root certificate its
/// attestation chains to (from the vendor or the FIDO Metadata Service).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowedAuthenticator {
    pub aaguid: Uuid,
    pub name: String,
    pub ca_pem: String,
}

impl TenantPolicy {
    /// The rules that apply to someone with `role` and `groups`.
    pub fn rules_for<'a>(
        &'a self,
        role: &'a str,
        groups: &'a [String],
    ) -> impl Iterator<Item = &'a SensitiveRoleRule> + 'a {
        self.sensitive_roles
            .iter()
            .filter(move |rule| rule.roles.iter().any(|r| r == role || groups.contains(r)))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("invalid policy: {0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub fn parse(document: &str) -> Result<TenantPolicy, PolicyError> {
    let policy: TenantPolicy =
        serde_json::from_str(document).map_err(|e| PolicyError::Invalid(e.to_string()))?;
    for rule in &policy.sensitive_roles {
        if rule.roles.is_empty() {
            return Err(PolicyError::Invalid(format!(
                "rule '{}' names no roles",
                rule.name
            )));
        }
        for a in &rule.authenticators {
            webauthn_rs_core::proto::AttestationCaListBuilder::new()
                .insert_device_pem(
                    a.ca_pem.as_bytes(),
                    a.aaguid,
                    a.name.clone(),
                    Default::default(),
                )
                .map_err(|_| {
                    PolicyError::Invalid(format!("ca_pem of '{}' is not a PEM certificate", a.name))
                })?;
        }
    }
    Ok(policy)
}

/// The tenant's policy; the defaults when none was ever set.
pub fn load(conn: &mut DbConn, tenant_id: &str) -> Result<TenantPolicy, PolicyError> {
    match repo::find_policy_document(conn, tenant_id)? {
        Some(document) => parse(&document),
        None => Ok(TenantPolicy::default()),
    }
}

pub fn save(
    conn: &mut DbConn,
    tenant_id: &str,
    policy: &TenantPolicy,
    updated_by: Option<&str>,
    now: UtcTime,
) -> Result<(), PolicyError> {
    let document =
        serde_json::to_string_pretty(policy).map_err(|e| PolicyError::Invalid(e.to_string()))?;
    repo::upsert_policy_document(conn, tenant_id, &document, updated_by, now)?;
    Ok(())
}

/// Tenant policies, cached for a few seconds: they are read on every ceremony and change
/// rarely; a change made on another node applies within the TTL.
#[derive(Clone)]
pub struct PolicyCache(crate::cache::TtlCache<String, std::sync::Arc<TenantPolicy>>);

impl Default for PolicyCache {
    fn default() -> Self {
        PolicyCache(crate::cache::TtlCache::new(std::time::Duration::from_secs(
            5,
        )))
    }
}

impl PolicyCache {
    pub async fn get(
        &self,
        store: &crate::store::Store,
        tenant_id: &str,
    ) -> Result<std::sync::Arc<TenantPolicy>, PolicyError> {
        let key = tenant_id.to_string();
        self.0
            .get_or_load(&key, || {
                let key = key.clone();
                async move {
                    store
                        .read(move |conn| load(conn, &key).map(std::sync::Arc::new))
                        .await
                }
            })
            .await
    }

    /// Forgets a tenant's policy after it changed on this node.
    pub fn forget(&self, tenant_id: &str) {
        self.0.forget(&tenant_id.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_document_is_the_default_policy() {
        assert_eq!(parse("{}").unwrap(), TenantPolicy::default());
    }

    #[test]
    fn unknown_fields_and_bad_certificates_are_refused() {
        assert!(parse(r#"{"user_verfication": "required"}"#).is_err());
        let bad = r#"{"sensitive_roles": [{"name": "keys", "roles": ["admin"],
            "authenticators": [{"aaguid": "cb69481e-8ff7-4039-93ec-0a2729a154a8", "name": "YubiKey", "ca_pem": "nope"}]}]}"#;
        assert!(parse(bad).unwrap_err().to_string().contains("YubiKey"));
    }

    #[test]
    fn rules_apply_by_role_or_group() {
        let policy = parse(
            r#"{"sensitive_roles": [{"name": "usb keys", "roles": ["admin", "billing"], "transports": ["usb"]}]}"#,
        )
        .unwrap();
        assert_eq!(policy.rules_for("admin", &[]).count(), 1);
        assert_eq!(policy.rules_for("member", &["billing".into()]).count(), 1);
        assert_eq!(policy.rules_for("member", &[]).count(), 0);
    }
}
