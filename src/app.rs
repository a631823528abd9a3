//! Start-up and the HTTP server. `Application::build` is shared by `main.rs` and the tests
//! (STYLE lesson 1): the tests bind port 0 and start as many real servers as they need.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use tracing_actix_web::TracingLogger;

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
        database
            .create_parent_dir()
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
            clock,
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
            limiter: crate::ratelimit::RateLimiter::new(&settings.rate_limit, store.backend()),
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

/// A running HTTP server bound to its listener.
pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
}

impl Application {
    /// Opens everything and binds `settings.bind` (port 0 picks a free port).
    pub async fn build(settings: Settings, clock: Clock) -> Result<Application, StartupError> {
        let (state, _report) = AppState::open_async(settings, clock).await?;
        Application::serve(state)
    }

    pub fn serve(state: AppState) -> Result<Application, StartupError> {
        let addr = state.settings.bind;
        let listener = TcpListener::bind(addr).map_err(|source| StartupError::Bind {
            addr: addr.to_string(),
            source,
        })?;
        Application::serve_on(state, listener)
    }

    /// Serves on a listener bound by the caller (tests bind first, to know the public URL).
    pub fn serve_on(state: AppState, listener: TcpListener) -> Result<Application, StartupError> {
        let addr = state.settings.bind;
        let bind_err = |source| StartupError::Bind {
            addr: addr.to_string(),
            source,
        };
        let port = listener.local_addr().map_err(bind_err)?.port();
        let data = web::Data::new(state.clone());
        let is_https = state.settings.is_https();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .wrap(from_fn(crate::web::csrf::csrf_guard))
                .wrap(crate::web::security_headers(is_https))
                .wrap(from_fn(crate::web::request_id_header))
                .wrap(TracingLogger::<crate::web::RequestSpan>::new())
                .configure(crate::web::routes)
        })
        .workers(state.settings.http_workers())
        .shutdown_timeout(10)
        .listen(listener)
        .map_err(bind_err)?
        .run();
        Ok(Application {
            port,
            server,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGINT/SIGTERM (actix-web handles both), finishing requests in flight;
    /// the node's background work (housekeeping, key rotation, mail delivery) runs beside it.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let background = [
            tokio::spawn(crate::maintenance::run(self.state.clone())),
            tokio::spawn(crate::oidc::schedule::run(self.state.clone())),
            tokio::spawn(crate::mail::worker::run(self.state.clone())),
        ];
        let result = self.server.await;
        for task in background {
            task.abort();
        }
        result
    }
}
