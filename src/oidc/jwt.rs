//! Compact JWS for our own tokens. The protected header of each key is serialised once (it
//! only depends on the key and the token type), so signing a token costs one JSON
//! serialisation of the claims and one signature.
//!
//! ES256 signs with OpenSSL's ECDSA directly on a SHA-256 digest: josekit's signer goes through
//! `EVP_DigestSign`, whose per-call algorithm fetches in OpenSSL 3 add a noticeable share to
//! every signature, and every token endpoint pays it.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jws::{JwsSigner, JwsVerifier};
use openssl::ec::EcKey;
use openssl::ecdsa::EcdsaSig;
use openssl::pkey::Private;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::{Error, Result};

/// The algorithms we sign with: ES256 by default, RS256 because every OIDC client must be
/// able to verify it (OIDC Core §15.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    Es256,
    Rs256,
}

impl Alg {
    pub const ALL: [Alg; 2] = [Alg::Es256, Alg::Rs256];

    pub fn name(self) -> &'static str {
        match self {
            Alg::Es256 => "ES256",
            Alg::Rs256 => "RS256",
        }
    }

    pub fn parse(raw: &str) -> Option<Alg> {
        match raw {
            "ES256" => Some(Alg::Es256),
            "RS256" => Some(Alg::Rs256),
            _ => None,
        }
    }
}

/// The `typ` header: ID tokens are plain JWTs; access tokens are `at+jwt` (RFC 9068 §2.1), so
/// one can never be passed off as the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    IdToken,
    AccessToken,
}

impl TokenType {
    fn header_typ(self) -> &'static str {
        match self {
            TokenType::IdToken => "JWT",
            TokenType::AccessToken => "at+jwt",
        }
    }
}

/// The private half of a signing key.
pub enum PrivateKey {
    /// A P-256 key, signed with directly.
    Es256(EcKey<Private>),
    /// An RSA key, through josekit (the RSA private operation is nearly all of its cost).
    Rs256(Box<dyn JwsSigner>),
}

impl PrivateKey {
    fn sign(&self, input: &[u8]) -> Result<Vec<u8>> {
        let failed = |e: &dyn std::fmt::Display| Error::Keys(e.to_string());
        match self {
            PrivateKey::Es256(key) => {
                let signature =
                    EcdsaSig::sign(&Sha256::digest(input), key).map_err(|e| failed(&e))?;
                // RFC 7518 §3.4: R and S as 32-byte big-endian integers, concatenated.
                let mut raw = signature.r().to_vec_padded(32).map_err(|e| failed(&e))?;
                raw.extend(signature.s().to_vec_padded(32).map_err(|e| failed(&e))?);
                Ok(raw)
            }
            PrivateKey::Rs256(signer) => signer.sign(input).map_err(|e| failed(&e)),
        }
    }
}

/// A private key ready to sign, with its pre-encoded headers.
pub struct Signer {
    pub kid: String,
    pub alg: Alg,
    key: PrivateKey,
    id_token_header: String,
    access_token_header: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({} {})", self.alg.name(), self.kid)
    }
}

fn encode_header(alg: Alg, kid: &str, typ: TokenType) -> String {
    let header = serde_json::json!({ "alg": alg.name(), "kid": kid, "typ": typ.header_typ() });
    URL_SAFE_NO_PAD.encode(header.to_string())
}

impl Signer {
    pub fn new(kid: String, alg: Alg, key: PrivateKey) -> Signer {
        Signer {
            id_token_header: encode_header(alg, &kid, TokenType::IdToken),
            access_token_header: encode_header(alg, &kid, TokenType::AccessToken),
            kid,
            alg,
            key,
        }
    }

    pub fn sign<T: Serialize>(&self, typ: TokenType, claims: &T) -> Result<String> {
        let header = match typ {
            TokenType::IdToken => &self.id_token_header,
            TokenType::AccessToken => &self.access_token_header,
        };
        let payload = serde_json::to_vec(claims).map_err(|e| Error::Keys(e.to_string()))?;
        let mut token = String::with_capacity(header.len() + payload.len() * 4 / 3 + 400);
        token.push_str(header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut token);
        let signature = self.key.sign(token.as_bytes())?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        Ok(token)
    }
}

/// Public keys by `kid`, for tokens we issued (access tokens, ID token hints).
#[derive(Default)]
pub struct Verifiers(pub HashMap<String, (Alg, Box<dyn JwsVerifier>)>);

#[derive(serde::Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
}

/// Verifies a compact JWS of `typ` against our published keys and decodes its claims. The
/// claims' own checks (issuer, expiry, audience) are the caller's.
pub fn verify<T: DeserializeOwned>(
    token: &str,
    typ: TokenType,
    verifiers: &Verifiers,
) -> Result<T> {
    let invalid = |why: &str| Error::InvalidToken(why.to_string());
    if token.len() > 16 * 1024 {
        return Err(invalid("the token is too long"));
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("the token is not a JWT"));
    };
    let header: Header = URL_SAFE_NO_PAD
        .decode(header_b64)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or_else(|| invalid("the token header is malformed"))?;
    if header
        .typ
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
        != Some(typ.header_typ().to_ascii_lowercase().as_str())
    {
        return Err(invalid("the token is of another type"));
    }
    let (alg, verifier) = header
        .kid
        .as_deref()
        .and_then(|kid| verifiers.0.get(kid))
        .ok_or_else(|| invalid("the token was not signed by this issuer"))?;
    if alg.name() != header.alg {
        return Err(invalid("the token's algorithm does not match its key"));
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| invalid("the token signature is malformed"))?;
    let signed_len = header_b64.len() + 1 + payload_b64.len();
    verifier
        .verify(&token.as_bytes()[..signed_len], &signature)
        .map_err(|_| invalid("the token signature is invalid"))?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .map_err(|_| invalid("the token payload is malformed"))?;
    serde_json::from_slice(&payload).map_err(|_| invalid("the token claims are malformed"))
}

/// `at_hash` (OIDC Core §3.1.3.6): the left half of the SHA-256 of the access token, for both
/// ES256 and RS256.
pub fn at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

#[cfg(test)]
mod tests {
    use josekit::jwk::KeyPair;
    use josekit::jws::ES256;

    use super::*;

    /// Our ES256 signatures are what any JOSE library expects: josekit's own verifier accepts
    /// them. Hundreds of them, so some have an R or S with leading zero bytes (1 in 128 each),
    /// which must still be padded to 32 bytes.
    #[test]
    fn es256_signatures_verify_with_josekit() {
        let pair = ES256.generate_key_pair().unwrap();
        let der = pair.to_der_private_key();
        let key = openssl::pkey::PKey::private_key_from_der(&der)
            .unwrap()
            .ec_key()
            .unwrap();
        let signer = Signer::new("k1".into(), Alg::Es256, PrivateKey::Es256(key));
        let verifier = ES256.verifier_from_jwk(&pair.to_jwk_public_key()).unwrap();
        let mut verifiers = Verifiers::default();
        verifiers
            .0
            .insert("k1".into(), (Alg::Es256, Box::new(verifier.clone())));
        for i in 0..400 {
            let claims = serde_json::json!({ "sub": "user", "n": i });
            let token = signer.sign(TokenType::AccessToken, &claims).unwrap();
            let (input, signature) = token.rsplit_once('.').unwrap();
            let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
            assert_eq!(signature.len(), 64);
            verifier.verify(input.as_bytes(), &signature).unwrap();
            let decoded: serde_json::Value =
                verify(&token, TokenType::AccessToken, &verifiers).unwrap();
            assert_eq!(decoded, claims);
        }
    }
}
