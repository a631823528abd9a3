//! Registration ceremonies (WebAuthn L3 §7.1): discoverable credentials only (so the account
//! picker works on a shared device), user verification per tenant policy, attestation only
//! where a sensitive-role rule asks for it (P2, P8).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use webauthn_rs_core::internals::AuthenticatorData;
use webauthn_rs_core::proto::{
    AttestationCaList, AttestationCaListBuilder, AttestationConveyancePreference,
    AuthenticatorAttachment, AuthenticatorTransport, CreationChallengeResponse, Credential,
    RegisterPublicKeyCredential, Registration, RegistrationState, RequestRegistrationExtensions,
    UserVerificationPolicy,
};

use super::aaguid::{authenticator_name, format_aaguid};
use super::{PasskeyError, Passkeys, Purpose, clean_label, user_handle};
use crate::clock::UtcTime;
use crate::crypto::new_id;
use crate::policy::{self, SensitiveRoleRule, TenantPolicy, UserVerification};
use crate::store::ceremonies::{self, Ceremony};
use crate::store::passkeys::{self as repo, Passkey};
use crate::store::users::User;
use crate::store::{DbConn, Store, groups};

const KIND: &str = "registration";

/// What the browser needs to call `navigator.credentials.create()`.
#[derive(Debug, serde::Serialize)]
pub struct RegistrationStart {
    pub ceremony_id: String,
    #[serde(rename = "publicKey")]
    pub options: Value,
}

fn uv_policy(policy: &TenantPolicy) -> UserVerificationPolicy {
    match policy.user_verification {
        UserVerification::Preferred => UserVerificationPolicy::Preferred,
        UserVerification::Required => UserVerificationPolicy::Required,
    }
}

fn applicable_rules(
    conn: &mut DbConn,
    policy: &TenantPolicy,
    user: &User,
) -> Result<Vec<SensitiveRoleRule>, PasskeyError> {
    let groups = groups::list_user_group_names(conn, &user.tenant_id, &user.id)?;
    Ok(policy.rules_for(&user.role, &groups).cloned().collect())
}

/// Starts a registration for `user`, within the caller's transaction. `context` is kept with
/// the ceremony for whoever finishes it (an invitation id, a return path).
pub fn start_registration(
    conn: &mut DbConn,
    passkeys: &Passkeys,
    policy: &TenantPolicy,
    user: &User,
    purpose: Purpose,
    context: Value,
    now: UtcTime,
) -> Result<RegistrationStart, PasskeyError> {
    let rules = applicable_rules(conn, policy, user)?;
    let wants_attestation = rules.iter().any(|r| !r.authenticators.is_empty());
    let wants_roaming = rules.iter().any(|r| {
        r.transports
            .iter()
            .any(|t| matches!(t.as_str(), "usb" | "nfc" | "ble"))
    });
    let existing = repo::list_user_passkeys(conn, &user.tenant_id, &user.id)?;
    let exclude: Vec<Vec<u8>> = existing
        .iter()
        .filter_map(|p| URL_SAFE_NO_PAD.decode(&p.credential_id).ok())
        .collect();
    let handle = user_handle(&user.id)?;
    let display = user.display_name.as_deref().unwrap_or(&user.email);
    let builder = passkeys
        .core
        .new_challenge_register_builder(&handle, &user.email, display)
        .map_err(PasskeyError::from_webauthn)?
        .attestation(if wants_attestation {
            AttestationConveyancePreference::Direct
        } else {
            AttestationConveyancePreference::None
        })
        .user_verification_policy(uv_policy(policy))
        .require_resident_key(true)
        .authenticator_attachment(wants_roaming.then_some(AuthenticatorAttachment::CrossPlatform))
        .exclude_credentials(Some(exclude))
        .extensions(Some(RequestRegistrationExtensions {
            cred_protect: None,
            uvm: None,
            cred_props: Some(true),
            min_pin_length: None,
            hmac_create_secret: None,
        }));
    let (ccr, state) = passkeys
        .core
        .generate_challenge_register(builder)
        .map_err(PasskeyError::from_webauthn)?;
    let ceremony = Ceremony {
        id: new_id(),
        tenant_id: user.tenant_id.clone(),
        user_id: Some(user.id.clone()),
        kind: KIND.into(),
        purpose: purpose.as_str().into(),
        state: serde_json::to_string(&state).map_err(|e| PasskeyError::Internal(e.to_string()))?,
        context: context.to_string(),
        created_at: now,
        expires_at: passkeys.ceremony_expiry(now),
    };
    ceremonies::insert_ceremony(conn, &ceremony)?;
    Ok(RegistrationStart {
        ceremony_id: ceremony.id,
        options: public_key_options(&ccr)?,
    })
}

fn public_key_options(ccr: &CreationChallengeResponse) -> Result<Value, PasskeyError> {
    let mut value = serde_json::to_value(ccr).map_err(|e| PasskeyError::Internal(e.to_string()))?;
    Ok(value
        .get_mut("publicKey")
        .map(Value::take)
        .unwrap_or(Value::Null))
}

/// A registration whose response verified; nothing is written yet.
#[derive(Debug)]
pub struct VerifiedRegistration {
    pub ceremony: Ceremony,
    /// What finishing the ceremony means.
    pub purpose: Purpose,
    pub user: User,
    pub passkey: Passkey,
}

/// Verifies the browser's response against the ceremony and the tenant's policy. Reads only.
pub async fn verify_registration(
    store: &Store,
    passkeys: &Passkeys,
    tenant_id: &str,
    ceremony_id: &str,
    response: RegisterPublicKeyCredential,
    label: Option<String>,
    now: UtcTime,
) -> Result<VerifiedRegistration, PasskeyError> {
    if !super::shape::names_one_credential(&response.id, &response.raw_id, &response.type_) {
        return Err(PasskeyError::AmbiguousCredential);
    }
    let label = label
        .filter(|l| !l.trim().is_empty())
        .map(|l| clean_label(&l))
        .transpose()?;
    let (tenant_id, ceremony_id) = (tenant_id.to_string(), ceremony_id.to_string());
    let (ceremony, purpose, user, rules) = store
        .read(move |conn| {
            let ceremony = ceremonies::find_live_ceremony(conn, &tenant_id, &ceremony_id, now)?
                .filter(|c| c.kind == KIND)
                .ok_or(PasskeyError::CeremonyNotFound)?;
            // A purpose this version does not know is no ceremony it can finish.
            let purpose = Purpose::parse(&ceremony.purpose)
                .filter(|p| *p != Purpose::Login)
                .ok_or(PasskeyError::CeremonyNotFound)?;
            let user_id = ceremony.user_id.clone().unwrap_or_default();
            let user = crate::store::users::find_user(conn, &tenant_id, &user_id)?
                .ok_or(PasskeyError::CeremonyNotFound)?;
            let policy = policy::load(conn, &tenant_id)?;
            let rules = applicable_rules(conn, &policy, &user)?;
            Ok::<_, PasskeyError>((ceremony, purpose, user, rules))
        })
        .await?;
    let state: RegistrationState =
        serde_json::from_str(&ceremony.state).map_err(|e| PasskeyError::Internal(e.to_string()))?;
    let ca_list = attestation_cas(&rules)?;
    let credential = passkeys
        .core
        .register_credential(&response, &state, ca_list.as_ref())
        .map_err(|e| match (&ca_list, e) {
            // Attestation that does not lead to an allowed model is a policy refusal, not a
            // broken response.
            (
                Some(_),
                WebauthnError::AttestationNotVerifiable
                | WebauthnError::AttestationTrustFailure
                | WebauthnError::AttestationUntrustedAaguid
                | WebauthnError::AttestationFormatMissingAaguid
                | WebauthnError::AttestationChainNotTrusted(_)
                | WebauthnError::AttestationCertificateTrustStoreEmpty
                | WebauthnError::AttestationLeafCertMissing,
            ) => refused_authenticator(&rules),
            (_, e) => PasskeyError::from_webauthn(e),
        })?;
    let aaguid = registered_aaguid(&response)?;
    // As the browser reported them: webauthn-rs keeps transports only for attested
    // credentials, but they are hints either way (P1 stores them; allowCredentials uses them).
    let transports: Vec<String> = response
        .response
        .transports
        .iter()
        .flatten()
        .filter(|t| !matches!(t, AuthenticatorTransport::Unknown))
        .filter_map(|t| serde_json::to_value(t).ok())
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    enforce_rules(&rules, &aaguid, &transports)?;
    let passkey = new_passkey(
        &user,
        &ceremony,
        &credential,
        aaguid,
        transports,
        label,
        now,
    )?;
    Ok(VerifiedRegistration {
        ceremony,
        purpose,
        user,
        passkey,
    })
}

use webauthn_rs_core::error::WebauthnError;

/// The union of the CAs that the applicable rules trust, if any rule asks for attestation.
fn attestation_cas(rules: &[SensitiveRoleRule]) -> Result<Option<AttestationCaList>, PasskeyError> {
    let allowed: Vec<_> = rules.iter().flat_map(|r| &r.authenticators).collect();
    if allowed.is_empty() {
        return Ok(None);
    }
    let mut builder = AttestationCaListBuilder::new();
    for a in allowed {
        builder
            .insert_device_pem(
                a.ca_pem.as_bytes(),
                a.aaguid,
                a.name.clone(),
                Default::default(),
            )
            .map_err(|e| PasskeyError::Internal(format!("policy CA for '{}': {e:?}", a.name)))?;
    }
    Ok(Some(builder.build()))
}

fn refused_authenticator(rules: &[SensitiveRoleRule]) -> PasskeyError {
    let rule = rules
        .iter()
        .find(|r| !r.authenticators.is_empty())
        .map(|r| {
            (
                r.name.clone(),
                r.authenticators
                    .iter()
                    .map(|a| a.name.clone())
                    .collect::<Vec<_>>(),
            )
        });
    let (rule, names) = rule.unwrap_or_default();
    PasskeyError::PolicyRefused {
        rule,
        reason: format!(
            "Your role needs one of these authenticators, proven by attestation: {}",
            names.join(", ")
        ),
    }
}

/// Every applicable rule must hold: an allowed authenticator model, an allowed transport.
fn enforce_rules(
    rules: &[SensitiveRoleRule],
    aaguid: &str,
    transports: &[String],
) -> Result<(), PasskeyError> {
    for rule in rules {
        if !rule.authenticators.is_empty()
            && !rule
                .authenticators
                .iter()
                .any(|a| a.aaguid.to_string() == aaguid)
        {
            return Err(refused_authenticator(std::slice::from_ref(rule)));
        }
        if !rule.transports.is_empty() && !transports.iter().any(|t| rule.transports.contains(t)) {
            return Err(PasskeyError::PolicyRefused {
                rule: rule.name.clone(),
                reason: format!(
                    "Your role needs a security key connected by {} — insert or tap your security key",
                    rule.transports.join(" or ")
                ),
            });
        }
    }
    Ok(())
}

/// The AAGUID from the attested credential data of the attestation object's authData.
fn registered_aaguid(response: &RegisterPublicKeyCredential) -> Result<String, PasskeyError> {
    let object: ciborium::Value =
        ciborium::from_reader(response.response.attestation_object.as_slice())
            .map_err(|e| PasskeyError::Verification(e.to_string()))?;
    let auth_data = object
        .as_map()
        .and_then(|m| {
            m.iter()
                .find(|(k, _)| k.as_text() == Some("authData"))
                .and_then(|(_, v)| v.as_bytes())
        })
        .ok_or_else(|| PasskeyError::Verification("attestation object has no authData".into()))?;
    // WebAuthn L3 §6.1: nothing beyond what the flags declare; and the credential the
    // request names (rawId) is the one the authenticator attested.
    if !super::shape::is_exact_authenticator_data(auth_data) {
        return Err(PasskeyError::Verification(
            "the authenticator data has bytes its flags do not declare".into(),
        ));
    }
    if super::shape::attested_credential_id(auth_data) != Some(response.raw_id.as_slice()) {
        return Err(PasskeyError::AmbiguousCredential);
    }
    let data = AuthenticatorData::<Registration>::try_from(auth_data.as_slice())
        .map_err(|e| PasskeyError::Verification(e.to_string()))?;
    Ok(data
        .acd
        .map(|acd| format_aaguid(&acd.aaguid))
        .unwrap_or_else(|| super::aaguid::UNKNOWN.to_string()))
}

fn new_passkey(
    user: &User,
    ceremony: &Ceremony,
    credential: &Credential,
    aaguid: String,
    transports: Vec<String>,
    label: Option<String>,
    now: UtcTime,
) -> Result<Passkey, PasskeyError> {
    let internal = |e: serde_json::Error| PasskeyError::Internal(e.to_string());
    let label = label.unwrap_or_else(|| authenticator_name(&aaguid, credential.backup_eligible));
    Ok(Passkey {
        id: new_id(),
        tenant_id: user.tenant_id.clone(),
        user_id: user.id.clone(),
        credential_id: URL_SAFE_NO_PAD.encode(&credential.cred_id),
        public_key: serde_cbor_public_key(credential)?,
        sign_count: i64::from(credential.counter),
        aaguid,
        transports: serde_json::to_string(&transports).map_err(internal)?,
        backup_eligible: credential.backup_eligible,
        backup_state: credential.backup_state,
        user_verified: credential.user_verified,
        attestation_format: format!("{:?}", credential.attestation_format).to_lowercase(),
        label,
        credential: serde_json::to_string(credential).map_err(internal)?,
        enrolled_via: ceremony.purpose.clone(),
        created_at: now,
        last_used_at: None,
        counter_flagged_at: None,
    })
}

/// The public key as stored (P1): the COSE key, serialised as JSON by webauthn-rs.
fn serde_cbor_public_key(credential: &Credential) -> Result<Vec<u8>, PasskeyError> {
    serde_json::to_vec(&credential.cred).map_err(|e| PasskeyError::Internal(e.to_string()))
}

/// Consumes the ceremony and stores the passkey, in the caller's transaction. A second
/// finish of the same ceremony, or a credential id registered to anyone, is refused.
pub fn save_registration(
    conn: &mut DbConn,
    registration: &VerifiedRegistration,
) -> Result<Passkey, PasskeyError> {
    let ceremony = &registration.ceremony;
    if !ceremonies::consume_ceremony(conn, &ceremony.tenant_id, &ceremony.id)? {
        return Err(PasskeyError::CeremonyNotFound);
    }
    let passkey = &registration.passkey;
    if repo::find_passkey_by_credential_id(conn, &passkey.credential_id)?.is_some() {
        return Err(PasskeyError::AlreadyRegistered);
    }
    repo::insert_passkey(conn, passkey).map_err(|e| {
        if e.is_unique_violation() {
            PasskeyError::AlreadyRegistered
        } else {
            e.into()
        }
    })?;
    Ok(passkey.clone())
}
