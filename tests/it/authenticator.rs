//! Software authenticators for real WebAuthn ceremonies in the tests.
//!
//! `Soft` is webauthn-authenticator-rs's `SoftPasskey` (it cannot make discoverable
//! credentials, so the `residentKey` requirement is relaxed client-side before it sees the
//! options — the server never verifies that flag). `Crafted` builds the same CBOR and
//! signatures by hand (P-256, ES256), so a test can choose what a real client cannot: a
//! credential id, the counter, the flags, the rp id hash.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::bn::BigNumContext;
use openssl::ec::{EcGroup, EcKey, PointConversionForm};
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use openssl::pkey::Private;
use openssl::sha::sha256;
use serde_json::{Value, json};
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs_core::proto::{CreationChallengeResponse, RequestChallengeResponse};

/// webauthn-authenticator-rs's software passkey, driven with the server's JSON options.
pub struct Soft {
    inner: SoftPasskey,
    origin: Url,
}

impl Soft {
    pub fn new(origin: &str) -> Soft {
        Soft {
            inner: SoftPasskey::new(true),
            origin: origin.parse().unwrap(),
        }
    }

    pub fn register(&mut self, public_key: &Value) -> Value {
        let mut pk = public_key.clone();
        pk["authenticatorSelection"]["requireResidentKey"] = json!(false);
        pk["authenticatorSelection"]["residentKey"] = json!("discouraged");
        let ccr: CreationChallengeResponse =
            serde_json::from_value(json!({ "publicKey": pk })).unwrap();
        serde_json::to_value(
            self.inner
                .do_registration(self.origin.clone(), ccr)
                .unwrap(),
        )
        .unwrap()
    }

    pub fn sign(&mut self, public_key: &Value) -> Value {
        self.sign_at(public_key, &self.origin.clone())
    }

    /// Signs as if the page were at `origin` (a phishing site, say).
    pub fn sign_at(&mut self, public_key: &Value, origin: &Url) -> Value {
        let rcr: RequestChallengeResponse =
            serde_json::from_value(json!({ "publicKey": public_key })).unwrap();
        serde_json::to_value(self.inner.do_authentication(origin.clone(), rcr).unwrap()).unwrap()
    }
}

/// A hand-built authenticator holding one discoverable credential.
pub struct Crafted {
    key: EcKey<Private>,
    pub credential_id: Vec<u8>,
    pub user_handle: Option<Vec<u8>>,
    pub counter: u32,
    /// Each assertion adds this to the counter (0: a synced passkey that never counts).
    pub counter_step: u32,
    pub origin: String,
    /// The client data says the page calling WebAuthn was framed by another origin.
    pub cross_origin: bool,
    pub rp_id: String,
    pub user_verified: bool,
    pub backup_eligible: bool,
    pub aaguid: [u8; 16],
    pub transports: Vec<String>,
    /// Packed attestation with this certificate (DER) and its key; `none` without.
    pub attestation: Option<(Vec<u8>, openssl::pkey::PKey<Private>)>,
    /// Bytes appended to the authenticator data, signed with it, that no flag declares.
    pub trailing: Vec<u8>,
}

impl Crafted {
    pub fn new(origin: &str) -> Crafted {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let mut id = vec![0u8; 32];
        openssl::rand::rand_bytes(&mut id).unwrap();
        let url: Url = origin.parse().unwrap();
        Crafted {
            key: EcKey::generate(&group).unwrap(),
            credential_id: id,
            user_handle: None,
            counter: 0,
            counter_step: 1,
            origin: origin.trim_end_matches('/').to_string(),
            cross_origin: false,
            rp_id: url.host_str().unwrap().to_string(),
            user_verified: true,
            backup_eligible: false,
            aaguid: [0; 16],
            transports: vec!["usb".into()],
            attestation: None,
            trailing: Vec::new(),
        }
    }

    /// Another handle on the same credential (a synced passkey on a second device), for the
    /// load generator of benches/signin.rs.
    #[allow(dead_code)]
    pub fn clone_for_load(&self) -> Crafted {
        Crafted {
            key: self.key.clone(),
            credential_id: self.credential_id.clone(),
            user_handle: self.user_handle.clone(),
            counter: self.counter,
            counter_step: 0,
            origin: self.origin.clone(),
            cross_origin: false,
            rp_id: self.rp_id.clone(),
            user_verified: self.user_verified,
            backup_eligible: self.backup_eligible,
            aaguid: self.aaguid,
            transports: self.transports.clone(),
            attestation: None,
            trailing: Vec::new(),
        }
    }

    fn flags(&self, attested: bool) -> u8 {
        let mut flags = 0x01; // user present
        if self.user_verified {
            flags |= 0x04;
        }
        if self.backup_eligible {
            flags |= 0x08 | 0x10;
        }
        if attested {
            flags |= 0x40;
        }
        flags
    }

    fn cose_key(&self) -> Vec<u8> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let mut ctx = BigNumContext::new().unwrap();
        let point = self
            .key
            .public_key()
            .to_bytes(&group, PointConversionForm::UNCOMPRESSED, &mut ctx)
            .unwrap();
        let (x, y) = (point[1..33].to_vec(), point[33..65].to_vec());
        let map = ciborium::Value::Map(vec![
            (1.into(), 2.into()),
            (3.into(), (-7).into()),
            ((-1).into(), 1.into()),
            ((-2).into(), ciborium::Value::Bytes(x)),
            ((-3).into(), ciborium::Value::Bytes(y)),
        ]);
        let mut out = Vec::new();
        ciborium::into_writer(&map, &mut out).unwrap();
        out
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "type": kind,
            "challenge": challenge,
            "origin": self.origin,
            "crossOrigin": self.cross_origin,
        }))
        .unwrap()
    }

    fn sign_bytes(&self, data: &[u8]) -> Vec<u8> {
        EcdsaSig::sign(&sha256(data), &self.key)
            .unwrap()
            .to_der()
            .unwrap()
    }

    /// A registration response (attestation `none`) to the server's `publicKey` options.
    pub fn register(&mut self, public_key: &Value) -> Value {
        self.user_handle = Some(
            URL_SAFE_NO_PAD
                .decode(public_key["user"]["id"].as_str().unwrap())
                .unwrap(),
        );
        let challenge = public_key["challenge"].as_str().unwrap();
        let mut auth_data = sha256(self.rp_id.as_bytes()).to_vec();
        auth_data.push(self.flags(true));
        auth_data.extend_from_slice(&self.counter.to_be_bytes());
        auth_data.extend_from_slice(&self.aaguid);
        auth_data.extend_from_slice(&(self.credential_id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&self.credential_id);
        auth_data.extend_from_slice(&self.cose_key());
        auth_data.extend_from_slice(&self.trailing);
        let client_data = self.client_data("webauthn.create", challenge);
        let (fmt, statement) = match &self.attestation {
            None => ("none", ciborium::Value::Map(vec![])),
            // WebAuthn L3 §8.2 packed, full attestation: the attestation key signs
            // authData || hash(clientDataJSON).
            Some((cert, key)) => {
                let mut signed = auth_data.clone();
                signed.extend_from_slice(&sha256(&client_data));
                let mut signer =
                    openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), key)
                        .unwrap();
                signer.update(&signed).unwrap();
                let sig = signer.sign_to_vec().unwrap();
                (
                    "packed",
                    ciborium::Value::Map(vec![
                        ("alg".into(), (-7).into()),
                        ("sig".into(), ciborium::Value::Bytes(sig)),
                        (
                            "x5c".into(),
                            ciborium::Value::Array(vec![ciborium::Value::Bytes(cert.clone())]),
                        ),
                    ]),
                )
            }
        };
        let object = ciborium::Value::Map(vec![
            ("fmt".into(), fmt.into()),
            ("attStmt".into(), statement),
            ("authData".into(), ciborium::Value::Bytes(auth_data)),
        ]);
        let mut attestation = Vec::new();
        ciborium::into_writer(&object, &mut attestation).unwrap();
        let id = URL_SAFE_NO_PAD.encode(&self.credential_id);
        json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "extensions": {},
            "response": {
                "attestationObject": URL_SAFE_NO_PAD.encode(attestation),
                "clientDataJSON": URL_SAFE_NO_PAD.encode(&client_data),
                "transports": self.transports,
            },
        })
    }

    /// An assertion for the server's `publicKey` request options.
    pub fn sign(&mut self, public_key: &Value) -> Value {
        self.counter += self.counter_step;
        let challenge = public_key["challenge"].as_str().unwrap();
        let mut auth_data = sha256(self.rp_id.as_bytes()).to_vec();
        auth_data.push(self.flags(false));
        auth_data.extend_from_slice(&self.counter.to_be_bytes());
        auth_data.extend_from_slice(&self.trailing);
        let client_data = self.client_data("webauthn.get", challenge);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&sha256(&client_data));
        let id = URL_SAFE_NO_PAD.encode(&self.credential_id);
        json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "extensions": {},
            "response": {
                "authenticatorData": URL_SAFE_NO_PAD.encode(&auth_data),
                "clientDataJSON": URL_SAFE_NO_PAD.encode(&client_data),
                "signature": URL_SAFE_NO_PAD.encode(self.sign_bytes(&signed)),
                "userHandle": self.user_handle.as_ref().map(|h| URL_SAFE_NO_PAD.encode(h)),
            },
        })
    }
}
