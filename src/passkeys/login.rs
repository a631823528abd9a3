//! Authentication ceremonies (WebAuthn L3 §7.2): identified (allowCredentials, after the
//! email step) and discoverable (the account picker and conditional UI). Unknown emails get
//! a decoy ceremony shaped like a real one (P3).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use webauthn_rs_core::proto::{
    AuthenticatorTransport, Credential, PublicKeyCredential, UserVerificationPolicy,
};

use super::assertion::{AssertionRefused, LoginChallenge, verify_assertion};
use super::{PasskeyError, Passkeys, user_handle};
use crate::clock::UtcTime;
use crate::crypto::{MasterKey, new_id};
use crate::policy::{CounterRegression, TenantPolicy, UserVerification};
use crate::store::Store;
use crate::store::ceremonies::Ceremony;
use crate::store::passkeys::{Passkey, PasskeyUse};
use crate::store::signins::{CeremonyToFinish, find_ceremony_to_finish};
use crate::store::users::User;
use crate::users::UserStatus;

const IDENTIFIED: &str = "authentication";
const DISCOVERABLE: &str = "discoverable";
/// A ceremony started for an email that has no passkeys to offer; it can never succeed.
pub const DECOY_KIND: &str = "decoy";

/// What the browser needs to call `navigator.credentials.get()`.
#[derive(Debug, serde::Serialize)]
pub struct LoginStart {
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

fn stored_credential(passkey: &Passkey) -> Result<Credential, PasskeyError> {
    let mut credential: Credential = serde_json::from_str(&passkey.credential)
        .map_err(|e| PasskeyError::Internal(e.to_string()))?;
    // The columns are the truth for what changes with use.
    credential.counter = u32::try_from(passkey.sign_count).unwrap_or(u32::MAX);
    credential.backup_eligible = passkey.backup_eligible;
    Ok(credential)
}

/// A passkey as `allowCredentials` lists it, with the transports the browser reported at
/// registration (an unknown one drops the list, as webauthn-rs does).
fn allowed_credential(passkey: &Passkey) -> Value {
    let transports: Vec<AuthenticatorTransport> =
        serde_json::from_str(&passkey.transports).unwrap_or_default();
    let mut allowed = json!({"type": "public-key", "id": passkey.credential_id});
    if !transports.is_empty() {
        allowed["transports"] = json!(transports);
    }
    allowed
}

/// Whose ceremony it is: the tenant, the user when known, and the kind.
struct Owner<'a> {
    tenant_id: &'a str,
    user_id: Option<&'a str>,
    kind: &'a str,
}

/// A login ceremony made but not stored yet, and what the browser gets once it is.
pub struct PendingLogin {
    ceremony: Ceremony,
    start: LoginStart,
}

impl PendingLogin {
    /// The ceremony to store, and what the browser gets once it is stored.
    pub fn into_parts(self) -> (Ceremony, LoginStart) {
        (self.ceremony, self.start)
    }
}

/// A ceremony whose options list `allowed` (none: any discoverable passkey may answer).
/// webauthn-rs makes the options; the ceremony keeps only their challenge and the policy,
/// which is all the assertion is checked against besides the stored passkey.
fn start(
    passkeys: &Passkeys,
    policy: &TenantPolicy,
    owner: Owner<'_>,
    allowed: Vec<Value>,
    now: UtcTime,
) -> Result<PendingLogin, PasskeyError> {
    let builder = passkeys
        .core
        .new_challenge_authenticate_builder(Vec::new(), Some(uv_policy(policy)))
        .map_err(PasskeyError::from_webauthn)?;
    let (rcr, _) = passkeys
        .core
        .generate_challenge_authenticate(builder)
        .map_err(PasskeyError::from_webauthn)?;
    let mut value =
        serde_json::to_value(&rcr).map_err(|e| PasskeyError::Internal(e.to_string()))?;
    let mut options = value
        .get_mut("publicKey")
        .map(Value::take)
        .unwrap_or(Value::Null);
    if !allowed.is_empty() {
        options["allowCredentials"] = Value::Array(allowed);
    }
    let challenge = LoginChallenge {
        challenge: options["challenge"]
            .as_str()
            .ok_or_else(|| PasskeyError::Internal("options without a challenge".into()))?
            .to_string(),
        user_verification_required: policy.user_verification == UserVerification::Required,
    };
    let ceremony = Ceremony {
        id: new_id(),
        tenant_id: owner.tenant_id.to_string(),
        user_id: owner.user_id.map(str::to_string),
        kind: owner.kind.to_string(),
        purpose: super::Purpose::Login.as_str().into(),
        state: serde_json::to_string(&challenge)
            .map_err(|e| PasskeyError::Internal(e.to_string()))?,
        context: "{}".into(),
        created_at: now,
        expires_at: passkeys.ceremony_expiry(now),
    };
    let start = LoginStart {
        ceremony_id: ceremony.id.clone(),
        options,
    };
    Ok(PendingLogin { ceremony, start })
}

/// A discoverable ceremony: any passkey of this tenant may answer (account picker, S1, and
/// the conditional UI of the email field, P4).
pub fn start_discoverable_login(
    passkeys: &Passkeys,
    policy: &TenantPolicy,
    tenant_id: &str,
    now: UtcTime,
) -> Result<PendingLogin, PasskeyError> {
    let owner = Owner {
        tenant_id,
        user_id: None,
        kind: DISCOVERABLE,
    };
    start(passkeys, policy, owner, Vec::new(), now)
}

/// Who the email step says is signing in: the account (if the email has one here, is active
/// and has passkeys) and those passkeys.
pub struct Claimant<'a> {
    pub tenant_id: &'a str,
    pub email: &'a str,
    pub user: Option<&'a User>,
    pub passkeys: &'a [Passkey],
}

/// After the email step: a ceremony listing the user's passkeys, or — for an email with no
/// passkeys here — a decoy with stable fake credential ids derived from the email, so the
/// answer has the same shape and repeats like a real one.
pub fn start_identified_login(
    passkeys: &Passkeys,
    policy: &TenantPolicy,
    master_key: &MasterKey,
    claimant: Claimant<'_>,
    now: UtcTime,
) -> Result<PendingLogin, PasskeyError> {
    let tenant_id = claimant.tenant_id;
    let active = claimant
        .user
        .filter(|u| UserStatus::of(u) == UserStatus::Active);
    if let (Some(user), false) = (active, claimant.passkeys.is_empty()) {
        let allowed = claimant.passkeys.iter().map(allowed_credential).collect();
        let owner = Owner {
            tenant_id,
            user_id: Some(&user.id),
            kind: IDENTIFIED,
        };
        return start(passkeys, policy, owner, allowed, now);
    }
    let owner = Owner {
        tenant_id,
        user_id: None,
        kind: DECOY_KIND,
    };
    start(
        passkeys,
        policy,
        owner,
        decoy_credentials(master_key, tenant_id, claimant.email),
        now,
    )
}

fn decoy_credentials(master_key: &MasterKey, tenant_id: &str, email: &str) -> Vec<Value> {
    let seed = master_key.mac(format!("decoy|{tenant_id}|{email}").as_bytes());
    let count = 1 + usize::from(seed[0] % 2);
    let transports = [json!(["internal", "hybrid"]), json!(["usb", "nfc"])];
    let creds: Vec<Value> = (0..count)
        .map(|i| {
            let id = master_key.mac(&[&seed[..], &[i as u8]].concat());
            json!({
                "type": "public-key",
                "id": URL_SAFE_NO_PAD.encode(id),
                "transports": transports[usize::from(seed[1 + i] % 2)],
            })
        })
        .collect();
    creds
}

/// A verified assertion; nothing is written yet.
#[derive(Debug)]
pub struct VerifiedLogin {
    pub ceremony: Ceremony,
    pub user: User,
    pub passkey: Passkey,
    pub counter: u32,
    pub user_verified: bool,
    pub backup_eligible: bool,
    pub backup_state: bool,
    /// The counter did not increase and policy is `flag`: allowed, to be reviewed.
    pub counter_flagged: bool,
}

impl VerifiedLogin {
    /// What this use changes on the passkey: its counter, backup flags, last use, and the
    /// time a counter regression was flagged (kept from an earlier flag).
    pub fn passkey_use(&self, now: UtcTime) -> PasskeyUse {
        PasskeyUse {
            sign_count: i64::from(self.counter),
            backup_eligible: self.backup_eligible,
            backup_state: self.backup_state,
            last_used_at: Some(now),
            counter_flagged_at: if self.counter_flagged {
                Some(now)
            } else {
                self.passkey.counter_flagged_at
            },
        }
    }
}

/// Verifies an assertion against its ceremony and the stored passkey. Writes nothing.
pub async fn verify_login(
    store: &Store,
    passkeys: &Passkeys,
    policy: &TenantPolicy,
    tenant_id: &str,
    ceremony_id: &str,
    response: PublicKeyCredential,
    now: UtcTime,
) -> Result<VerifiedLogin, PasskeyError> {
    if !super::shape::names_one_credential(&response.id, &response.raw_id, &response.type_) {
        return Err(PasskeyError::AmbiguousCredential);
    }
    let credential_id = URL_SAFE_NO_PAD.encode(&response.raw_id);
    let found = find_ceremony_to_finish(
        store,
        tenant_id.to_string(),
        ceremony_id.to_string(),
        credential_id,
        now,
    )
    .await?;
    let CeremonyToFinish {
        ceremony,
        answering,
    } = found
        .filter(|f| [IDENTIFIED, DISCOVERABLE, DECOY_KIND].contains(&f.ceremony.kind.as_str()))
        .ok_or(PasskeyError::CeremonyNotFound)?;
    if ceremony.kind == DECOY_KIND {
        return Err(PasskeyError::UnknownCredential);
    }
    let (passkey, user) = answering.ok_or(PasskeyError::UnknownCredential)?;
    if UserStatus::of(&user) != UserStatus::Active {
        return Err(PasskeyError::AccountInactive);
    }
    match ceremony.kind.as_str() {
        IDENTIFIED if ceremony.user_id.as_deref() != Some(user.id.as_str()) => {
            return Err(PasskeyError::UnknownCredential);
        }
        DISCOVERABLE
            if response.get_user_unique_id() != Some(user_handle(&user.id)?.as_slice()) =>
        {
            return Err(PasskeyError::UnknownCredential);
        }
        _ => {}
    }
    // A ceremony stored by an earlier version has another shape: it is as good as expired.
    let challenge: LoginChallenge =
        serde_json::from_str(&ceremony.state).map_err(|_| PasskeyError::CeremonyNotFound)?;
    let credential = stored_credential(&passkey)?;
    let asserted = verify_assertion(&passkeys.relying_party, &challenge, &credential, &response)
        .map_err(|refused| match refused {
            AssertionRefused::UserNotVerified => PasskeyError::UserVerificationRequired,
            other => PasskeyError::Verification(other.to_string()),
        })?;
    // Only once the signature verified (§7.2 steps 22–23): the assertion is genuine but the
    // counter did not increase.
    let counter_flagged = asserted.counter_regressed;
    if counter_flagged && policy.counter_regression == CounterRegression::Refuse {
        return Err(PasskeyError::CounterRegression);
    }
    Ok(VerifiedLogin {
        ceremony,
        user,
        // A flagged counter never moves the stored one back.
        counter: if counter_flagged {
            passkey.sign_count.try_into().unwrap_or(asserted.counter)
        } else {
            asserted.counter
        },
        passkey,
        user_verified: asserted.user_verified,
        backup_eligible: asserted.backup_eligible,
        backup_state: asserted.backup_state,
        counter_flagged,
    })
}
