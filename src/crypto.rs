//! Random tokens, digests and the master key. Every random secret we hand out (codes, links,
//! session ids, client secrets) is high-entropy, so a SHA-256 digest is the right thing to
//! store; comparisons of secrets run in constant time.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use josekit::jwe::{Dir, JweHeader};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Time-ordered random ids (UUIDv7): index-friendly on both backends.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// `bytes` random bytes from the OS-seeded CSPRNG, base64url without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

pub fn sha256_hex(input: &str) -> String {
    hex(&Sha256::digest(input.as_bytes()))
}

/// Lower-case hex, by table: token and secret digests are hashed to hex on every token
/// request and signed-in page, and `write!` per byte costs far more than a table lookup.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("master key: {0}")]
    Invalid(String),
    #[error("master key file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("master key: cannot decrypt a value (wrong key or damaged data)")]
    Decrypt,
}

/// The key that encrypts secrets at rest (signing keys, upstream client secrets): 32 bytes,
/// used with AES-256-GCM in a compact JWE (`dir`).
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(****)")
    }
}

/// Where the master key came from, for the start-up message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeySource {
    Setting,
    File(PathBuf),
    Generated(PathBuf),
}

impl MasterKey {
    pub fn from_base64(encoded: &str) -> Result<MasterKey, MasterKeyError> {
        let bytes = STANDARD
            .decode(encoded.trim())
            .or_else(|_| URL_SAFE_NO_PAD.decode(encoded.trim()))
            .map_err(|_| MasterKeyError::Invalid("not valid base64".into()))?;
        let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            MasterKeyError::Invalid(format!("must be 32 bytes, got {}", b.len()))
        })?;
        Ok(MasterKey(key))
    }

    pub fn generate() -> MasterKey {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        MasterKey(key)
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// Reads the key file, or creates it (mode 0600) when `create` and it does not exist.
    pub fn load_file(path: &Path, create: bool) -> Result<(MasterKey, bool), MasterKeyError> {
        let file_err = |source| MasterKeyError::File {
            path: path.to_path_buf(),
            source,
        };
        match fs::read_to_string(path) {
            Ok(content) => Ok((MasterKey::from_base64(&content)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                if let Some(dir) = path.parent() {
                    fs::create_dir_all(dir).map_err(file_err)?;
                }
                let key = MasterKey::generate();
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(file_err)?;
                writeln!(file, "{}", key.to_base64()).map_err(file_err)?;
                file.sync_all().map_err(file_err)?;
                Ok((key, true))
            }
            Err(e) => Err(file_err(e)),
        }
    }

    /// A value that identifies the key without revealing it.
    pub fn check_value(&self) -> String {
        hex(&self.mac(b"passgate master key check v1")[..16])
    }

    /// HMAC-SHA256 under a key derived for `purpose`; used where a keyed digest is needed
    /// (CSRF tokens, pseudonymous subjects).
    pub fn mac(&self, message: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable_hmac_key());
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    pub fn encrypt(&self, plaintext: &[u8]) -> Result<String, MasterKeyError> {
        let mut header = JweHeader::new();
        header.set_content_encryption("A256GCM");
        let encrypter = Dir
            .encrypter_from_bytes(self.0)
            .map_err(|e| MasterKeyError::Invalid(e.to_string()))?;
        josekit::jwe::serialize_compact(plaintext, &header, &encrypter)
            .map_err(|e| MasterKeyError::Invalid(e.to_string()))
    }

    pub fn decrypt(&self, jwe: &str) -> Result<Vec<u8>, MasterKeyError> {
        let decrypter = Dir
            .decrypter_from_bytes(self.0)
            .map_err(|_| MasterKeyError::Decrypt)?;
        let (payload, _header) = josekit::jwe::deserialize_compact(jwe, &decrypter)
            .map_err(|_| MasterKeyError::Decrypt)?;
        Ok(payload)
    }
}

/// HMAC accepts keys of any length, so construction cannot fail.
fn unreachable_hmac_key() -> Hmac<Sha256> {
    unreachable!("HMAC-SHA256 accepts any key length")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypted_values_round_trip_and_fail_under_another_key() {
        let key = MasterKey::generate();
        let sealed = key.encrypt(b"private jwk").unwrap();
        assert!(!sealed.contains("private"));
        assert_eq!(key.decrypt(&sealed).unwrap(), b"private jwk");
        assert!(MasterKey::generate().decrypt(&sealed).is_err());
    }

    #[test]
    fn the_key_file_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let (first, created) = MasterKey::load_file(&path, true).unwrap();
        assert!(created);
        let mode = fs::metadata(&path).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        let (again, created) = MasterKey::load_file(&path, true).unwrap();
        assert!(!created);
        assert_eq!(first.check_value(), again.check_value());
    }

    #[test]
    fn a_short_key_is_refused_with_its_length() {
        let err = MasterKey::from_base64(&STANDARD.encode([0u8; 16])).unwrap_err();
        assert!(err.to_string().contains("32 bytes, got 16"), "{err}");
    }

    #[test]
    fn tokens_are_distinct_and_digests_are_hex() {
        assert_ne!(random_token(32), random_token(32));
        assert_eq!(random_token(32).len(), 43);
        // Stored digests are compared as text: the encoding must never change.
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hex(&[0x00, 0x0f, 0xf0, 0xff, 0x5a]), "000ff0ff5a");
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
    }
}
