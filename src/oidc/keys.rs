//! Per-tenant signing keys (O7): an ES256 and an RS256 key at any time, generated with
//! josekit, private parts sealed with the master key. Rotation publishes the new key
//! `key_publish_lead` before it signs and keeps the old one in the JWKS until every token it
//! signed has expired.

use std::collections::HashMap;
use std::time::Instant;

use josekit::jwk::Jwk;
use josekit::jws::{ES256, RS256};
use time::Duration;

use super::jwt::{Alg, PrivateKey, Signer, Verifiers};
use super::{Error, Lifetimes, Result};
use crate::clock::UtcTime;
use crate::config::OidcSettings;
use crate::crypto::{MasterKey, random_token};
use crate::policy::{AccessTokenAlg, PolicyError};
use crate::store::keys::{self as repo, SigningKey};
use crate::store::{DbConn, StoreError};

/// RSA keys of 2048 bits are the floor of RFC 7518 §3.3; verification stays cheap for RPs.
const RSA_BITS: u32 = 2048;
/// Allowance for relying parties whose clocks run a little behind ours.
const CLOCK_SKEW: Duration = Duration::minutes(5);

/// A tenant's keys as the web layer needs them: who signs now, who verifies, the JWKS bytes.
pub struct TenantKeys {
    signers: HashMap<Alg, Signer>,
    pub verifiers: Verifiers,
    /// The JWKS document, serialised once.
    pub jwks: bytes::Bytes,
    /// The tenant's access-token algorithm (its policy), cached with the keys.
    pub access_token_alg: Alg,
    /// The next instant at which the published or signing set changes (a key is published,
    /// starts or stops signing, or is removed): the cached value is stale from then on.
    pub valid_until: Option<UtcTime>,
    pub loaded_at: Instant,
}

impl TenantKeys {
    pub fn signer(&self, alg: Alg) -> Result<&Signer> {
        self.signers
            .get(&alg)
            .ok_or_else(|| Error::Keys(format!("no {} signing key", alg.name())))
    }

    fn has_all_signers(&self) -> bool {
        Alg::ALL.iter().all(|alg| self.signers.contains_key(alg))
    }
}

fn keys_err(e: impl std::fmt::Display) -> Error {
    Error::Keys(e.to_string())
}

/// Makes a key pair for `alg`; `kid`s are random so they never collide across tenants.
fn generate_key(
    alg: Alg,
    tenant_id: &str,
    master_key: &MasterKey,
    publish_at: UtcTime,
    sign_from: UtcTime,
    now: UtcTime,
) -> Result<SigningKey> {
    let kid = format!("{}-{}", alg.name().to_ascii_lowercase(), random_token(12));
    let mut private = match alg {
        Alg::Es256 => {
            josekit::jwk::KeyPair::to_jwk_key_pair(&ES256.generate_key_pair().map_err(keys_err)?)
        }
        Alg::Rs256 => josekit::jwk::KeyPair::to_jwk_key_pair(
            &RS256.generate_key_pair(RSA_BITS).map_err(keys_err)?,
        ),
    };
    private.set_key_id(&kid);
    private.set_algorithm(alg.name());
    private.set_key_use("sig");
    let mut public = private.to_public_key().map_err(keys_err)?;
    public.set_key_id(&kid);
    public.set_algorithm(alg.name());
    public.set_key_use("sig");
    let sealed = master_key
        .encrypt(private.to_string().as_bytes())
        .map_err(keys_err)?;
    Ok(SigningKey {
        kid,
        tenant_id: tenant_id.to_string(),
        alg: alg.name().to_string(),
        public_jwk: public.to_string(),
        private_jwk_encrypted: sealed,
        created_at: now,
        publish_at,
        sign_from,
        retired_at: None,
        remove_at: None,
    })
}

/// The OpenSSL key behind a private P-256 JWK (josekit checks the JWK's type and curve).
fn p256_private_key(jwk: &Jwk) -> Result<openssl::ec::EcKey<openssl::pkey::Private>> {
    ES256.signer_from_jwk(jwk).map_err(keys_err)?;
    let pair = josekit::jwk::alg::ec::EcKeyPair::from_jwk(jwk).map_err(keys_err)?;
    let der = josekit::jwk::KeyPair::to_der_private_key(&pair);
    openssl::pkey::PKey::private_key_from_der(&der)
        .and_then(|key| key.ec_key())
        .map_err(keys_err)
}

fn is_signing(key: &SigningKey, now: UtcTime) -> bool {
    key.sign_from <= now && key.retired_at.is_none_or(|r| r > now)
}

/// Builds the signing and verifying view of `keys` at `now`.
fn build(keys: &[SigningKey], master_key: &MasterKey, now: UtcTime) -> Result<TenantKeys> {
    let mut signers: HashMap<Alg, Signer> = HashMap::new();
    let mut verifiers = Verifiers::default();
    let mut published = Vec::new();
    // `keys` is ordered by sign_from, so a later signing key replaces an earlier one.
    for key in keys {
        let Some(alg) = Alg::parse(&key.alg) else {
            continue;
        };
        if key.publish_at <= now {
            let jwk = Jwk::from_bytes(key.public_jwk.as_bytes()).map_err(keys_err)?;
            let verifier: Box<dyn josekit::jws::JwsVerifier> = match alg {
                Alg::Es256 => Box::new(ES256.verifier_from_jwk(&jwk).map_err(keys_err)?),
                Alg::Rs256 => Box::new(RS256.verifier_from_jwk(&jwk).map_err(keys_err)?),
            };
            verifiers.0.insert(key.kid.clone(), (alg, verifier));
            published.push(serde_json::Value::Object(jwk.as_ref().clone()));
        }
        if is_signing(key, now) {
            let plain = master_key
                .decrypt(&key.private_jwk_encrypted)
                .map_err(keys_err)?;
            let jwk = Jwk::from_bytes(plain).map_err(keys_err)?;
            let private = match alg {
                Alg::Es256 => PrivateKey::Es256(p256_private_key(&jwk)?),
                Alg::Rs256 => {
                    PrivateKey::Rs256(Box::new(RS256.signer_from_jwk(&jwk).map_err(keys_err)?))
                }
            };
            signers.insert(alg, Signer::new(key.kid.clone(), alg, private));
        }
    }
    let valid_until = keys
        .iter()
        .flat_map(|k| {
            [
                Some(k.publish_at),
                Some(k.sign_from),
                k.retired_at,
                k.remove_at,
            ]
        })
        .flatten()
        .filter(|t| *t > now)
        .min();
    let jwks = serde_json::to_vec(&serde_json::json!({ "keys": published })).map_err(keys_err)?;
    Ok(TenantKeys {
        signers,
        verifiers,
        jwks: jwks.into(),
        access_token_alg: Alg::Es256,
        valid_until,
        loaded_at: Instant::now(),
    })
}

/// The tenant's keys at `now`, reading only. `None` when a key must first be created.
pub fn load_keys(
    conn: &mut DbConn,
    tenant_id: &str,
    master_key: &MasterKey,
    now: UtcTime,
) -> Result<Option<TenantKeys>> {
    let keys = repo::find_live_signing_keys(conn, tenant_id, now)?;
    let mut built = build(&keys, master_key, now)?;
    built.access_token_alg = access_token_alg(conn, tenant_id)?;
    Ok(built.has_all_signers().then_some(built))
}

/// Creates whatever key a tenant lacks (on first use), under the tenant's key lock so two
/// nodes do not both create one, then loads. Run in a write transaction.
pub fn ensure_keys(
    conn: &mut DbConn,
    tenant_id: &str,
    master_key: &MasterKey,
    now: UtcTime,
) -> Result<TenantKeys> {
    repo::lock_tenant_keys(conn, tenant_id)?;
    let keys = repo::find_live_signing_keys(conn, tenant_id, now)?;
    for alg in Alg::ALL {
        let has_signer = keys
            .iter()
            .any(|k| k.alg == alg.name() && is_signing(k, now));
        if !has_signer {
            // Nobody can have cached a JWKS without this alg's key yet, so it may sign at once.
            repo::insert_signing_key(
                conn,
                &generate_key(alg, tenant_id, master_key, now, now, now)?,
            )?;
        }
    }
    let keys = repo::find_live_signing_keys(conn, tenant_id, now)?;
    let mut built = build(&keys, master_key, now)?;
    built.access_token_alg = access_token_alg(conn, tenant_id)?;
    Ok(built)
}

/// What a rotation did, for the CLI.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rotation {
    pub new_kids: Vec<String>,
    pub retired_kids: Vec<String>,
    /// When the new keys start signing (RFC 3339).
    pub sign_from: String,
    /// When the retired keys leave the JWKS.
    pub remove_at: String,
}

/// Replaces both of a tenant's keys: the new ones are published now and sign from
/// `now + lead`; the old ones stop signing then and stay published until the longest-lived
/// token they signed has expired. Run in a write transaction.
pub fn rotate_keys(
    conn: &mut DbConn,
    tenant_id: &str,
    master_key: &MasterKey,
    lifetimes: &Lifetimes,
    lead: Duration,
    actor: crate::audit::Actor,
    now: UtcTime,
) -> Result<Rotation> {
    repo::lock_tenant_keys(conn, tenant_id)?;
    let existing = repo::find_live_signing_keys(conn, tenant_id, now)?;
    let sign_from = now + lead;
    let remove_at = sign_from + lifetimes.longest_jwt() + CLOCK_SKEW;
    let mut rotation = Rotation {
        new_kids: Vec::new(),
        retired_kids: Vec::new(),
        sign_from: rfc3339(sign_from),
        remove_at: rfc3339(remove_at),
    };
    for key in existing.iter().filter(|k| k.retired_at.is_none()) {
        repo::update_signing_key_retired(conn, tenant_id, &key.kid, sign_from, remove_at)?;
        rotation.retired_kids.push(key.kid.clone());
    }
    for alg in Alg::ALL {
        let key = generate_key(alg, tenant_id, master_key, now, sign_from, now)?;
        repo::insert_signing_key(conn, &key)?;
        rotation.new_kids.push(key.kid);
    }
    crate::audit::record(
        conn,
        crate::audit::Record {
            tenant_id,
            event_type: "keys.rotated",
            actor,
            subject_user_id: None,
            client: None,
            details: serde_json::to_value(&rotation).unwrap_or_default(),
            needs_review: false,
        },
        now,
    )?;
    Ok(rotation)
}

/// What a revocation did.
#[derive(Debug, serde::Serialize)]
pub struct Revocation {
    pub revoked_kid: String,
    /// The key made to sign at once in its place, when the revoked key was signing.
    pub replacement_kid: Option<String>,
}

/// Withdraws a key at once (a suspected compromise): out of the JWKS from `now`, so every
/// token it signed fails verification — userinfo, introspection, the admin API — on each
/// node as soon as its cached keys expire (at most a minute). When it was signing, a new key
/// of its algorithm signs from now. Audited for review. Run in a write transaction; `None`
/// when the tenant has no such key in its JWKS.
pub fn revoke_key(
    conn: &mut DbConn,
    tenant_id: &str,
    kid: &str,
    master_key: &MasterKey,
    actor: crate::audit::Actor,
    now: UtcTime,
) -> Result<Option<Revocation>> {
    repo::lock_tenant_keys(conn, tenant_id)?;
    let live = repo::find_live_signing_keys(conn, tenant_id, now)?;
    let Some(key) = live.iter().find(|k| k.kid == kid) else {
        return Ok(None);
    };
    let was_signing = is_signing(key, now);
    repo::update_signing_key_retired(conn, tenant_id, kid, now, now)?;
    let replacement_kid = match Alg::parse(&key.alg) {
        Some(alg) if was_signing => {
            let fresh = generate_key(alg, tenant_id, master_key, now, now, now)?;
            repo::insert_signing_key(conn, &fresh)?;
            Some(fresh.kid)
        }
        _ => None,
    };
    let revocation = Revocation {
        revoked_kid: kid.to_string(),
        replacement_kid,
    };
    crate::audit::record(
        conn,
        crate::audit::Record {
            tenant_id,
            event_type: "keys.revoked",
            actor,
            subject_user_id: None,
            client: None,
            details: serde_json::to_value(&revocation).unwrap_or_default(),
            needs_review: true,
        },
        now,
    )?;
    Ok(Some(revocation))
}

fn rfc3339(t: UtcTime) -> String {
    t.assume_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The automatic schedule: rotates the tenant's keys when its newest key started signing
/// more than `interval - lead` ago, so the next one signs `interval` after it. The check
/// runs under the tenant's key lock, so several nodes rotate a tenant once. Run in a write
/// transaction; `Some` when it rotated.
pub fn rotate_if_due(
    conn: &mut DbConn,
    tenant_id: &str,
    master_key: &MasterKey,
    settings: &OidcSettings,
    now: UtcTime,
) -> Result<Option<Rotation>> {
    let convert = |d: std::time::Duration| Duration::try_from(d).unwrap_or(Duration::DAY);
    let (interval, lead) = (
        convert(settings.key_rotation_interval),
        convert(settings.key_publish_lead),
    );
    if interval.is_zero() {
        return Ok(None);
    }
    repo::lock_tenant_keys(conn, tenant_id)?;
    let keys = repo::find_live_signing_keys(conn, tenant_id, now)?;
    let Some(newest) = keys.iter().map(|k| k.sign_from).max() else {
        // Keys are made on first use; a tenant nobody has used yet has nothing to rotate.
        return Ok(None);
    };
    if newest + interval - lead > now {
        return Ok(None);
    }
    let lifetimes = Lifetimes::from_settings(settings);
    rotate_keys(
        conn,
        tenant_id,
        master_key,
        &lifetimes,
        lead,
        crate::audit::Actor::System,
        now,
    )
    .map(Some)
}

/// Deletes what nobody can use any more: keys past `remove_at`, codes a day past expiry
/// (kept that long so a late replay is still recognised), expired revocations and families.
pub fn delete_expired(conn: &mut DbConn, now: UtcTime) -> Result<usize, StoreError> {
    Ok(repo::delete_signing_keys_removed_before(conn, now)?
        + crate::store::codes::delete_codes_expired_before(conn, now - Duration::DAY)?
        + crate::store::tokens::delete_expired_tokens(conn, now)?)
}

/// The algorithm a tenant's access tokens are signed with: ES256 unless the tenant's policy
/// says `"access_token_signing_alg": "RS256"` (for resource servers that need it).
pub fn access_token_alg(conn: &mut DbConn, tenant_id: &str) -> Result<Alg, StoreError> {
    match crate::policy::load(conn, tenant_id) {
        Ok(policy) => Ok(match policy.access_token_signing_alg {
            AccessTokenAlg::Es256 => Alg::Es256,
            AccessTokenAlg::Rs256 => Alg::Rs256,
        }),
        Err(PolicyError::Store(e)) => Err(e),
        Err(PolicyError::Invalid(why)) => {
            // The policy is validated when saved; a damaged one must not stop token issuance.
            tracing::error!(tenant_id, %why, "tenant policy unreadable; signing access tokens with ES256");
            Ok(Alg::Es256)
        }
    }
}

/// Sets the tenant's access-token algorithm in its policy, keeping the rest of it.
pub fn set_access_token_alg(
    conn: &mut DbConn,
    tenant_id: &str,
    alg: Alg,
    now: UtcTime,
) -> Result<(), PolicyError> {
    let mut policy = crate::policy::load(conn, tenant_id)?;
    policy.access_token_signing_alg = match alg {
        Alg::Es256 => AccessTokenAlg::Es256,
        Alg::Rs256 => AccessTokenAlg::Rs256,
    };
    crate::policy::save(conn, tenant_id, &policy, None, now)
}
