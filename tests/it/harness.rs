//! `TestApp`: a real passgate on a loopback port with a fresh database (SQLite or
//! PostgreSQL), a fixed clock and a cookie-keeping client that does not follow redirects.

use passgate::store::DatabaseUrl;
use passgate::{AppState, Application, Clock, Settings};
use time::macros::datetime;

use crate::pg::TestDatabase;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The instant every test starts at, unless it says otherwise.
pub const T0: passgate::clock::UtcTime = datetime!(2026-03-02 09:00:00);

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub clock: Clock,
    pub state: AppState,
    _dir: tempfile::TempDir,
    _database: Option<TestDatabase>,
}

pub struct TestAppBuilder {
    clock: Clock,
    settings: Settings,
    dir: tempfile::TempDir,
    database: Option<TestDatabase>,
}

/// Settings for a test: port 0, one worker, data in a fresh temp directory, and the
/// database of the backend.
pub fn test_settings(backend: Backend) -> (Settings, tempfile::TempDir, Option<TestDatabase>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings {
        bind: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_path_buf(),
        database_pool_size: 4,
        workers: Some(1),
        ..Settings::default()
    };
    let database = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => {
            let db = TestDatabase::create().expect("PostgreSQL available");
            settings.database_url = Some(db.url.clone());
            Some(db)
        }
    };
    (settings, dir, database)
}

impl TestApp {
    pub fn builder(backend: Backend) -> TestAppBuilder {
        let (settings, dir, database) = test_settings(backend);
        TestAppBuilder {
            clock: Clock::fixed(T0),
            settings,
            dir,
            database,
        }
    }

    pub async fn spawn(backend: Backend) -> TestApp {
        TestApp::builder(backend).spawn().await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// Runs `f` on a pooled connection, for assertions on what the database holds.
    pub fn db<T>(
        &self,
        f: impl FnOnce(&mut passgate::store::DbConn) -> Result<T, passgate::store::StoreError>,
    ) -> T {
        self.state.store.read_blocking(f).expect("database access")
    }

    pub fn database_url(&self) -> DatabaseUrl {
        self.state.settings.database().unwrap()
    }
}

impl TestAppBuilder {
    pub fn settings(mut self, f: impl FnOnce(&mut Settings)) -> Self {
        f(&mut self.settings);
        self
    }

    pub async fn spawn(self) -> TestApp {
        let app = Application::build(self.settings, self.clock.clone())
            .await
            .expect("application starts");
        let port = app.port();
        let state = app.state().clone();
        tokio::spawn(app.run_until_stopped());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .build()
            .unwrap();
        TestApp {
            address: format!("http://127.0.0.1:{port}"),
            client,
            clock: self.clock,
            state,
            _dir: self.dir,
            _database: self.database,
        }
    }
}

/// Declares a test that runs once on SQLite and once on PostgreSQL:
/// `backend_test! { async fn name(backend) { … } }` makes `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! backend_test {
    ($(#[$meta:meta])* async fn $name:ident($backend:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $(#[$meta])*
            async fn run($backend: $crate::harness::Backend) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run($crate::harness::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::pg::admin_url().is_some() {
                    run($crate::harness::Backend::Postgres).await
                }
            }
        }
    };
}
