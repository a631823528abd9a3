//! What the application holds: the settings, the store, the keys, the caches and the
//! node's workers, opened once at start-up and shared (cheaply cloned) by every request, the
//! CLI and the tests. The server and its background tasks are `startup.rs`.

use std::path::PathBuf;
use std::sync::Arc;

use crate::clock::Clock;
use crate::config::{ConfigError, Settings};
use crate::crypto::{MasterKey, MasterKeyError, MasterKeySource};
use crate::store::{self, DatabaseUrl, MigrationStatus, Store, StoreError};

/// Everything a request or a command needs, cheap to clone (STYLE lesson 2).
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub clock: Clock,
    pub master_key: Arc<MasterKey>,
    pub tenants: crate::tenants::TenantCache,
    pub policies: crate::policy::PolicyCache,
    pub passkeys: crate::passkeys::Passkeys,
    pub hashing: crate::passwords::HashingPool,
    pub limiter: crate::ratelimit::RateLimiter,
    pub mailer: crate::mail::worker::Mailer,
    pub oidc: crate::oidc::OidcCache,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    MasterKey(#[from] MasterKeyError),
    #[error("database {url}: {source}")]
    Store { url: String, source: StoreError },
    #[error(
        "the master key does not match the one this database was set up with; give this node the same master_key or master_key_file as the others"
    )]
    MasterKeyMismatch,
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("start-up task failed: {0}")]
    Task(String),
}

/// What start-up found and did, for the banner and for `migrate`.
#[derive(Debug, Clone)]
pub struct StartupReport {
    pub database: DatabaseUrl,
    pub migrations: MigrationStatus,
    pub master_key: MasterKeySource,
}

impl AppState {
    /// Opens the database (applying migrations), loads or creates the master key and checks it
    /// against the database. Blocking.
    pub fn open(
        settings: Settings,
        clock: Clock,
    ) -> Result<(AppState, StartupReport), StartupError> {
        let database = settings.database()?;
        private_dir(&settings.data_dir).map_err(|source| StartupError::DataDir {
            path: settings.data_dir.clone(),
            source,
        })?;
        database
            .create_private_home()
            .map_err(|source| StartupError::DataDir {
                path: settings.data_dir.clone(),
                source,
            })?;
        let (master_key, master_key_source) = load_master_key(&settings)?;
        let store_err = |source| StartupError::Store {
            url: database.to_string(),
            source,
        };
        let (store, migrations) =
            Store::open(&database, settings.database_pool_size).map_err(store_err)?;
        let check = master_key.check_value();
        let recorded = store
            .write_blocking(|conn| {
                store::installation::record_master_key_check(conn, &check, clock.now())
            })
            .map_err(store_err)?;
        if !crate::crypto::constant_time_eq(recorded.as_bytes(), check.as_bytes()) {
            return Err(StartupError::MasterKeyMismatch);
        }
        let state = AppState {
            clock: clock.clone(),
            master_key: Arc::new(master_key),
            tenants: crate::tenants::TenantCache::default(),
            policies: crate::policy::PolicyCache::default(),
            passkeys: crate::passkeys::Passkeys::new(&settings).map_err(|e| {
                StartupError::Config(crate::config::ConfigError::Invalid {
                    key: "public_url",
                    message: e.to_string(),
                })
            })?,
            hashing: crate::passwords::HashingPool::new(
                settings
                    .password
                    .max_concurrent_hashes
                    .unwrap_or_else(|| settings.cores()),
                settings.password.queue_timeout,
            ),
            limiter: crate::ratelimit::RateLimiter::new(
                &settings.rate_limit,
                store.backend(),
                clock.clone(),
            ),
            mailer: crate::mail::worker::Mailer::new(&settings).map_err(|message| {
                StartupError::Config(crate::config::ConfigError::Invalid {
                    key: "smtp_url",
                    message,
                })
            })?,
            oidc: crate::oidc::OidcCache::default(),
            settings: Arc::new(settings),
            store,
        };
        let report = StartupReport {
            database,
            migrations,
            master_key: master_key_source,
        };
        Ok((state, report))
    }

    /// [`AppState::open`] from async code, on the blocking pool.
    pub async fn open_async(
        settings: Settings,
        clock: Clock,
    ) -> Result<(AppState, StartupReport), StartupError> {
        tokio::task::spawn_blocking(move || AppState::open(settings, clock))
            .await
            .map_err(|e| StartupError::Task(e.to_string()))?
    }
}

/// The data directory holds the master key and, without SMTP, mail with live links: it is
/// the passgate user's only (0700).
fn private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

fn load_master_key(settings: &Settings) -> Result<(MasterKey, MasterKeySource), StartupError> {
    if let Some(encoded) = &settings.master_key {
        return Ok((MasterKey::from_base64(encoded)?, MasterKeySource::Setting));
    }
    let path = settings.master_key_path();
    // An explicitly named file must exist; the default file in the data directory is created.
    let create = settings.master_key_file.is_none();
    let (key, created) = MasterKey::load_file(&path, create)?;
    let source = if created {
        MasterKeySource::Generated(path)
    } else {
        MasterKeySource::File(path)
    };
    Ok((key, source))
}

impl AppState {
    /// What signing in uses.
    pub fn sign_in(&self) -> crate::signin::SignInParts<'_> {
        crate::signin::SignInParts {
            store: &self.store,
            policies: &self.policies,
            passkeys: &self.passkeys,
            master_key: &self.master_key,
            hashing: &self.hashing,
            sessions: &self.settings.session,
        }
    }

    /// Every periodic job this node runs (see `scheduler.rs`).
    pub fn scheduler(&self) -> crate::scheduler::Scheduler {
        crate::scheduler::Scheduler::new(vec![
            Arc::new(crate::maintenance::Housekeeping {
                limiter: self.limiter.clone(),
            }),
            Arc::new(crate::oidc::schedule::KeyRotation {
                master_key: self.master_key.clone(),
                settings: self.settings.oidc.clone(),
                cache: self.oidc.clone(),
            }),
            Arc::new(self.mailer.clone()),
        ])
    }
}
