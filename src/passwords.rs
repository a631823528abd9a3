//! Passwords, the fallback: argon2id with the OWASP parameters (m=19456 KiB, t=2, p=1),
//! computed on the blocking pool with bounded concurrency, so an overload is refused quickly
//! instead of queueing 19 MiB hashes until memory runs out.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

/// NIST SP 800-63B §5.1.1.2: at least 8 characters; long passphrases allowed, but bounded so
/// a megabyte of "password" cannot be used to burn CPU.
pub const MIN_LENGTH: usize = 8;
pub const MAX_LENGTH: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("passwords must be at least {MIN_LENGTH} characters")]
    TooShort,
    #[error("passwords must be at most {MAX_LENGTH} characters")]
    TooLong,
    #[error("password hashing failed: {0}")]
    Hashing(String),
    #[error("too many sign-ins are being checked right now")]
    Overloaded,
}

fn argon2() -> Argon2<'static> {
    // The constants are valid argon2 parameters, so construction cannot fail.
    let params = Params::new(19_456, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn validate(password: &str) -> Result<(), PasswordError> {
    let len = password.chars().count();
    if len < MIN_LENGTH {
        Err(PasswordError::TooShort)
    } else if len > MAX_LENGTH {
        Err(PasswordError::TooLong)
    } else {
        Ok(())
    }
}

/// Hashes a new password into a PHC string. Blocking, and slow by design (argon2id).
pub fn hash_password_blocking(password: &str) -> Result<String, PasswordError> {
    validate(password)?;
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hashing(e.to_string()))
}

/// The outcome of checking a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub is_valid: bool,
    /// A valid password stored with other parameters: store this new hash.
    pub rehashed: Option<String>,
}

/// Verifies against a stored PHC string (constant time inside argon2). Blocking.
pub fn verify_blocking(password: &str, phc: &str) -> Verification {
    if password.chars().count() > MAX_LENGTH {
        dummy_verify_blocking(password);
        return Verification {
            is_valid: false,
            rehashed: None,
        };
    }
    let Ok(parsed) = PasswordHash::new(phc) else {
        tracing::error!("stored password hash is not a PHC string");
        return Verification {
            is_valid: false,
            rehashed: None,
        };
    };
    let is_valid = argon2()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    let current = argon2();
    let wanted = current.params();
    let outdated = parsed.algorithm != Algorithm::Argon2id.ident()
        || Params::try_from(&parsed)
            .map(|p| {
                (p.m_cost(), p.t_cost(), p.p_cost())
                    != (wanted.m_cost(), wanted.t_cost(), wanted.p_cost())
            })
            .unwrap_or(true);
    let rehashed = (is_valid && outdated)
        .then(|| hash_password_blocking(password).ok())
        .flatten();
    Verification { is_valid, rehashed }
}

static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    hash_password_blocking("passgate dummy password for unknown accounts").unwrap_or_default()
});

/// Spends the same work as a real verification, for accounts that do not exist or have no
/// password, so timing does not tell them apart (P3).
pub fn dummy_verify_blocking(password: &str) {
    let truncated: String = password.chars().take(MAX_LENGTH).collect();
    if let Ok(parsed) = PasswordHash::new(&DUMMY_HASH) {
        let _ = argon2().verify_password(truncated.as_bytes(), &parsed);
    }
}

/// Runs hashing work with at most `limit` at once; a caller that cannot get a slot within
/// `queue_timeout` is told the service is overloaded.
#[derive(Clone)]
pub struct HashingPool {
    slots: Arc<Semaphore>,
    queue_timeout: Duration,
    /// Jobs run to completion: a known account's verification and an unknown one's dummy
    /// verification each count one (P3: the same work).
    jobs_run: Arc<AtomicU64>,
}

impl HashingPool {
    pub fn new(limit: usize, queue_timeout: Duration) -> HashingPool {
        HashingPool {
            slots: Arc::new(Semaphore::new(limit.max(1))),
            queue_timeout,
            jobs_run: Arc::new(AtomicU64::new(0)),
        }
    }

    /// How many hashing jobs this node has run.
    pub fn jobs_run(&self) -> u64 {
        self.jobs_run.load(Ordering::Relaxed)
    }

    pub async fn run<T, F>(&self, work: F) -> Result<T, PasswordError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit = tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| PasswordError::Overloaded)?
            .map_err(|_| PasswordError::Overloaded)?;
        let (span, jobs_run) = (tracing::Span::current(), self.jobs_run.clone());
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let done = span.in_scope(work);
            jobs_run.fetch_add(1, Ordering::Relaxed);
            done
        })
        .await
        .map_err(|e| PasswordError::Hashing(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let phc = hash_password_blocking("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_blocking("correct horse battery", &phc).is_valid);
        assert!(!verify_blocking("wrong horse battery", &phc).is_valid);
        assert_eq!(
            verify_blocking("correct horse battery", &phc).rehashed,
            None
        );
    }

    #[test]
    fn a_hash_with_old_parameters_is_rehashed_on_success() {
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8, 1, 1, None).unwrap(),
        );
        let salt = SaltString::generate(&mut OsRng);
        let old = weak
            .hash_password(b"correct horse battery", &salt)
            .unwrap()
            .to_string();
        let v = verify_blocking("correct horse battery", &old);
        assert!(v.is_valid);
        let new = v.rehashed.expect("rehashed");
        assert!(new.contains("m=19456,t=2,p=1"));
        assert!(verify_blocking("wrong", &old).rehashed.is_none());
    }

    /// Issue 3: with every hashing slot busy, an attempt is refused once its queue time is
    /// up (503 at the HTTP layer) instead of waiting for ever; a freed slot serves again.
    #[tokio::test]
    async fn a_full_hashing_pool_refuses_instead_of_queueing() {
        let pool = HashingPool::new(1, Duration::from_millis(20));
        let (release, released) = std::sync::mpsc::channel::<()>();
        let busy = {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.run(move || {
                    let _ = released.recv();
                    1
                })
                .await
            })
        };
        while pool.slots.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(
            pool.run(|| 2).await,
            Err(PasswordError::Overloaded)
        ));
        release.send(()).unwrap();
        assert_eq!(busy.await.unwrap().unwrap(), 1);
        assert_eq!(pool.run(|| 3).await.unwrap(), 3);
    }

    #[test]
    fn short_and_huge_passwords_are_refused() {
        assert!(matches!(
            hash_password_blocking("short"),
            Err(PasswordError::TooShort)
        ));
        assert!(matches!(
            hash_password_blocking(&"x".repeat(MAX_LENGTH + 1)),
            Err(PasswordError::TooLong)
        ));
    }
}
