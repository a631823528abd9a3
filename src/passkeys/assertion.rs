//! Verifying an assertion (WebAuthn L3 §7.2, steps 11–23) against its login ceremony and
//! the stored passkey.
//!
//! webauthn-rs parses the structures (client data, authenticator data, the stored
//! credential's COSE key) and runs registration; the checks of §7.2 and the signature are
//! here, so the signature is verified with OpenSSL (the signature is the largest cost of a
//! sign-in; docs/performance.md has the measurements). The checks follow §7.2's steps in
//! order: the client data's type, challenge and origin (steps 11–14; an assertion made in a
//! cross-origin frame is refused, since passgate's pages are never framed), the RP ID hash
//! (15), user presence and verification (16–17), the backup flags (18–19: "backed up" needs
//! "backup eligible" in the flags presented; no extensions are requested, step 20), the
//! signature over authenticatorData ‖ hash(clientDataJSON) (21–22), and the signature
//! counter (23). The negative tests of
//! `tests/it/passkey_refusals.rs` and the unit tests below hold them.

use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::{MessageDigest, hash};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::sign::Verifier;
use serde::{Deserialize, Serialize};
use webauthn_rs_core::internals::AuthenticatorData;
use webauthn_rs_core::proto::origin::origins_match;
use webauthn_rs_core::proto::{
    Authentication, COSEKey, COSEKeyType, CollectedClientData, Credential, ECDSACurve,
    PublicKeyCredential, UserVerificationPolicy,
};

/// What a login ceremony keeps between the options it handed out and the assertion.
#[derive(Debug, Serialize, Deserialize)]
pub struct LoginChallenge {
    /// The challenge, base64url as in the options and the client data.
    pub challenge: String,
    /// The tenant's policy when the ceremony started (P2).
    pub user_verification_required: bool,
}

/// Who the assertions are for: the one origin and the rp id's hash.
#[derive(Debug, Clone)]
pub struct RelyingParty {
    pub origin: url::Url,
    pub rp_id_hash: [u8; 32],
}

/// An assertion that verified: what the authenticator reported.
#[derive(Debug)]
pub struct Asserted {
    pub counter: u32,
    pub user_verified: bool,
    pub backup_eligible: bool,
    pub backup_state: bool,
    /// The counter is in use and did not increase (§7.2 step 23): a possible clone, for
    /// the tenant's policy to decide.
    pub counter_regressed: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AssertionRefused {
    #[error("the response could not be parsed: {0}")]
    Malformed(String),
    #[error("the client data is not of an assertion")]
    WrongType,
    #[error("the challenge is not this ceremony's")]
    WrongChallenge,
    #[error("the origin {0} is not this relying party's")]
    WrongOrigin(String),
    #[error("the assertion was made inside a cross-origin frame")]
    CrossOrigin,
    #[error("the authenticator data is for another relying party id")]
    WrongRpId,
    #[error("the user was not present")]
    UserNotPresent,
    #[error("user verification is required and was not performed")]
    UserNotVerified,
    #[error("the passkey's backup eligibility changed")]
    BackupEligibilityChanged,
    #[error("the passkey reports a backup without being backup eligible")]
    BackedUpWithoutEligibility,
    #[error("the passkey's public key is not supported: {0}")]
    UnsupportedKey(&'static str),
    #[error("the signature does not verify")]
    BadSignature,
}

/// §7.2 steps 11–23 for `response` to the ceremony `challenge`, by the stored `credential`.
/// Backup eligibility must equal the stored value in both directions (§7.2 step 19, since
/// passgate's logic reads it: synced vs device-bound): a change means another authenticator
/// or tampering.
pub fn verify_assertion(
    rp: &RelyingParty,
    challenge: &LoginChallenge,
    credential: &Credential,
    response: &PublicKeyCredential,
) -> Result<Asserted, AssertionRefused> {
    let raw = &response.response;
    if !super::shape::is_exact_authenticator_data(&raw.authenticator_data) {
        return Err(AssertionRefused::Malformed(
            "the authenticator data has bytes its flags do not declare".into(),
        ));
    }
    let client_data: CollectedClientData = serde_json::from_slice(&raw.client_data_json)
        .map_err(|e| AssertionRefused::Malformed(e.to_string()))?;
    let data = AuthenticatorData::<Authentication>::try_from(raw.authenticator_data.as_slice())
        .map_err(|e| AssertionRefused::Malformed(e.to_string()))?;

    if client_data.type_ != "webauthn.get" {
        return Err(AssertionRefused::WrongType);
    }
    if URL_SAFE_NO_PAD.encode(&client_data.challenge) != challenge.challenge {
        return Err(AssertionRefused::WrongChallenge);
    }
    if !origins_match(false, false, &client_data.origin, &rp.origin) {
        return Err(AssertionRefused::WrongOrigin(
            client_data.origin.origin().ascii_serialization(),
        ));
    }
    // Our pages are never framed (CSP frame-ancestors 'none'); an assertion made in a
    // cross-origin frame is someone else's page.
    if client_data.cross_origin == Some(true) {
        return Err(AssertionRefused::CrossOrigin);
    }
    // The data parsed, so it starts with the 32 bytes of the rp id hash.
    if raw.authenticator_data.get(..32) != Some(rp.rp_id_hash.as_slice()) {
        return Err(AssertionRefused::WrongRpId);
    }
    if !data.user_present {
        return Err(AssertionRefused::UserNotPresent);
    }
    // Required now or at registration; or the passkey verified its user at registration
    // under "preferred", which told the user a PIN or biometric protects it.
    let verification_needed = challenge.user_verification_required
        || credential.registration_policy == UserVerificationPolicy::Required
        || (credential.registration_policy == UserVerificationPolicy::Preferred
            && credential.user_verified);
    if verification_needed && !data.user_verified {
        return Err(AssertionRefused::UserNotVerified);
    }
    if credential.backup_eligible != data.backup_eligible {
        return Err(AssertionRefused::BackupEligibilityChanged);
    }
    if data.backup_state && !data.backup_eligible {
        return Err(AssertionRefused::BackedUpWithoutEligibility);
    }

    let mut signed = raw.authenticator_data.to_vec();
    signed.extend_from_slice(&openssl::sha::sha256(&raw.client_data_json));
    if !signature_verifies(&credential.cred, &raw.signature, &signed)? {
        return Err(AssertionRefused::BadSignature);
    }

    let counter_in_use = data.counter > 0 || credential.counter > 0;
    Ok(Asserted {
        counter: data.counter,
        user_verified: data.user_verified,
        backup_eligible: data.backup_eligible,
        backup_state: data.backup_state,
        counter_regressed: counter_in_use && data.counter <= credential.counter,
    })
}

/// The curves' groups, made once rather than at every verification.
fn curve_group(curve: Nid) -> Option<&'static EcGroup> {
    static P256: LazyLock<Option<EcGroup>> =
        LazyLock::new(|| EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).ok());
    static P384: LazyLock<Option<EcGroup>> =
        LazyLock::new(|| EcGroup::from_curve_name(Nid::SECP384R1).ok());
    match curve {
        Nid::X9_62_PRIME256V1 => P256.as_ref(),
        Nid::SECP384R1 => P384.as_ref(),
        _ => None,
    }
}

/// The COSE key's algorithm over `signed`: ECDSA on P-256 (SHA-256) or P-384 (SHA-384),
/// or RSASSA-PKCS1-v1_5 with SHA-256 — the keys webauthn-rs registers.
fn signature_verifies(
    key: &COSEKey,
    signature: &[u8],
    signed: &[u8],
) -> Result<bool, AssertionRefused> {
    match &key.key {
        COSEKeyType::EC_EC2(ec) => {
            let (curve, digest) = match ec.curve {
                ECDSACurve::SECP256R1 => (Nid::X9_62_PRIME256V1, MessageDigest::sha256()),
                ECDSACurve::SECP384R1 => (Nid::SECP384R1, MessageDigest::sha384()),
                ECDSACurve::SECP521R1 => return Err(AssertionRefused::UnsupportedKey("P-521")),
            };
            let invalid = |_| AssertionRefused::UnsupportedKey("invalid EC point");
            let group = curve_group(curve).ok_or(AssertionRefused::UnsupportedKey("curve"))?;
            // SEC1 uncompressed; decoding checks the point is on the curve, which for these
            // prime-order curves (cofactor 1, SEC 1 §3.2.2.1) is the whole check, without
            // `from_public_key_affine_coordinates`'s multiplication by the order.
            let sec1 = [&[0x04][..], &ec.x, &ec.y].concat();
            let mut ctx = BigNumContext::new().map_err(invalid)?;
            let point = EcPoint::from_bytes(group, &sec1, &mut ctx).map_err(invalid)?;
            let public = EcKey::from_public_key(group, &point).map_err(invalid)?;
            let Ok(signature) = EcdsaSig::from_der(signature) else {
                return Ok(false);
            };
            let digest = hash(digest, signed).map_err(|_| AssertionRefused::BadSignature)?;
            Ok(signature.verify(&digest, &public).unwrap_or(false))
        }
        COSEKeyType::RSA(rsa) => {
            let invalid = |_| AssertionRefused::UnsupportedKey("invalid RSA key");
            let n = BigNum::from_slice(&rsa.n).map_err(invalid)?;
            let e = BigNum::from_slice(&rsa.e).map_err(invalid)?;
            let public = Rsa::from_public_components(n, e)
                .and_then(PKey::from_rsa)
                .map_err(invalid)?;
            let mut verifier = Verifier::new(MessageDigest::sha256(), &public).map_err(invalid)?;
            Ok(verifier
                .update(signed)
                .and_then(|()| verifier.verify(signature))
                .unwrap_or(false))
        }
        COSEKeyType::EC_OKP(_) => Err(AssertionRefused::UnsupportedKey("EdDSA")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use openssl::ec::PointConversionForm;
    use openssl::pkey::Private;
    use openssl::sign::Signer;
    use webauthn_rs_core::proto::{COSEAlgorithm, COSEEC2Key, COSERSAKey};

    use super::*;

    const SIGNED: &[u8] = b"authenticator data || hash of the client data";

    fn ec_key(curve: Nid, cose_curve: ECDSACurve) -> (EcKey<Private>, COSEKey) {
        let group = EcGroup::from_curve_name(curve).unwrap();
        let key = EcKey::generate(&group).unwrap();
        let point = key
            .public_key()
            .to_bytes(
                &group,
                PointConversionForm::UNCOMPRESSED,
                &mut BigNumContext::new().unwrap(),
            )
            .unwrap();
        let half = (point.len() - 1) / 2;
        let cose = COSEKey {
            type_: COSEAlgorithm::ES256,
            key: COSEKeyType::EC_EC2(COSEEC2Key {
                curve: cose_curve,
                x: point[1..=half].to_vec(),
                y: point[1 + half..].to_vec(),
            }),
        };
        (key, cose)
    }

    fn ecdsa(key: &EcKey<Private>, digest: MessageDigest) -> Vec<u8> {
        let digest = hash(digest, SIGNED).unwrap();
        EcdsaSig::sign(&digest, key).unwrap().to_der().unwrap()
    }

    #[test]
    fn p256_signatures_verify_and_others_do_not() {
        let (key, cose) = ec_key(Nid::X9_62_PRIME256V1, ECDSACurve::SECP256R1);
        let signature = ecdsa(&key, MessageDigest::sha256());
        assert_eq!(signature_verifies(&cose, &signature, SIGNED), Ok(true));
        assert_eq!(
            signature_verifies(&cose, &signature, b"other data"),
            Ok(false)
        );
        let (other, _) = ec_key(Nid::X9_62_PRIME256V1, ECDSACurve::SECP256R1);
        let forged = ecdsa(&other, MessageDigest::sha256());
        assert_eq!(signature_verifies(&cose, &forged, SIGNED), Ok(false));
        assert_eq!(signature_verifies(&cose, b"not DER", SIGNED), Ok(false));
    }

    #[test]
    fn p384_signatures_verify_with_sha384() {
        let (key, cose) = ec_key(Nid::SECP384R1, ECDSACurve::SECP384R1);
        let signature = ecdsa(&key, MessageDigest::sha384());
        assert_eq!(signature_verifies(&cose, &signature, SIGNED), Ok(true));
        let with_sha256 = ecdsa(&key, MessageDigest::sha256());
        assert_eq!(signature_verifies(&cose, &with_sha256, SIGNED), Ok(false));
    }

    #[test]
    fn a_point_off_the_curve_is_refused() {
        let (_, mut cose) = ec_key(Nid::X9_62_PRIME256V1, ECDSACurve::SECP256R1);
        if let COSEKeyType::EC_EC2(ec) = &mut cose.key {
            ec.y = vec![7u8; 32];
        }
        assert_eq!(
            signature_verifies(&cose, b"", SIGNED),
            Err(AssertionRefused::UnsupportedKey("invalid EC point"))
        );
    }

    #[test]
    fn rs256_signatures_verify() {
        let rsa = Rsa::generate(2048).unwrap();
        let cose = COSEKey {
            type_: COSEAlgorithm::RS256,
            key: COSEKeyType::RSA(COSERSAKey {
                n: rsa.n().to_vec(),
                e: rsa.e().to_vec().try_into().unwrap(),
            }),
        };
        let private = PKey::from_rsa(rsa).unwrap();
        let mut signer = Signer::new(MessageDigest::sha256(), &private).unwrap();
        let signature = signer.sign_oneshot_to_vec(SIGNED).unwrap();
        assert_eq!(signature_verifies(&cose, &signature, SIGNED), Ok(true));
        assert_eq!(
            signature_verifies(&cose, &signature, b"other data"),
            Ok(false)
        );
    }
}
