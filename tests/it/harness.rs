//! `TestApp`: a real passgate on a loopback port with a fresh database (SQLite or
//! PostgreSQL), a fixed clock and a cookie-keeping client that does not follow redirects.

use passgate::store::DatabaseUrl;
use passgate::{AppState, Application, Clock, Settings};

#[derive(diesel::QueryableByName)]
struct Snapshot {
    #[diesel(sql_type = diesel::sql_types::Text)]
    line: String,
}

/// A client that keeps cookies in `jar` and does not follow redirects.
pub fn client_with(jar: std::sync::Arc<reqwest::cookie::Jar>) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_provider(jar)
        .build()
        .unwrap()
}
use time::macros::datetime;

use passgate::store::tenants::Tenant;
use passgate::store::users::User;
use passgate::tenants::{self, Slug};
use passgate::users::{self, Email, NewAccount, Role, UserStatus};

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
    pub jar: std::sync::Arc<reqwest::cookie::Jar>,
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

    /// One pass of the node's mail delivery; how many were sent.
    pub async fn deliver_mail(&self) -> usize {
        let state = &self.state;
        state
            .mailer
            .deliver_due(&state.store, state.clock.now())
            .await
            .expect("mail delivery")
    }

    /// One pass of the signing-key job; how many tenants' keys rotated.
    pub async fn rotate_due_keys(&self) -> usize {
        let state = &self.state;
        let job = passgate::oidc::schedule::KeyRotation {
            master_key: state.master_key.clone(),
            settings: state.settings.oidc.clone(),
            cache: state.oidc.clone(),
        };
        job.run_once(&state.store, state.clock.now())
            .await
            .expect("key rotation")
    }

    /// One housekeeping pass; how many rows went.
    pub async fn sweep(&self) -> usize {
        let state = &self.state;
        let job = passgate::maintenance::Housekeeping {
            limiter: state.limiter.clone(),
        };
        job.sweep(&state.store, state.clock.now())
            .await
            .expect("housekeeping")
    }

    /// A second browser: its own cookie jar.
    pub fn new_browser(&self) -> reqwest::Client {
        client_with(std::sync::Arc::new(reqwest::cookie::Jar::default()))
    }

    pub async fn create_tenant(&self, slug: &str) -> Tenant {
        let slug = Slug::parse(slug).unwrap();
        let now = self.clock.now();
        self.state
            .store
            .write(move |conn| tenants::create_tenant(conn, &slug, None, now))
            .await
            .unwrap()
    }

    /// A user made directly in the database, with an argon2id password when given.
    pub async fn create_user(
        &self,
        tenant: &Tenant,
        email: &str,
        role: Role,
        password: Option<&str>,
    ) -> User {
        let hash = password.map(|p| passgate::passwords::hash_password_blocking(p).unwrap());
        let tenant_id = tenant.id.clone();
        let email = Email::parse(email).unwrap();
        let now = self.clock.now();
        self.state
            .store
            .write(move |conn| {
                users::create_user(
                    conn,
                    &tenant_id,
                    NewAccount {
                        email: &email,
                        role,
                        display_name: None,
                        status: UserStatus::Active,
                        password_hash: hash.as_deref(),
                    },
                    now,
                )
            })
            .await
            .unwrap()
    }

    /// Signs `user` in without a login ceremony (for tests of what a signed-in user can do)
    /// and puts the session cookie into the default client's jar.
    pub async fn establish_session(&self, tenant: &Tenant, user: &User, amr: &[&str]) -> String {
        let now = self.clock.now();
        let login = passgate::signin::LoginResult {
            user: user.clone(),
            method: if amr.contains(&"pwd") {
                passgate::auth_events::AuthMethod::Password
            } else {
                passgate::auth_events::AuthMethod::Passkey
            },
            amr: amr.iter().map(|s| s.to_string()).collect(),
            acr: amr.contains(&"user").then(|| "phr".to_string()),
            auth_time: now,
            authenticator: None,
        };
        let settings = self.state.settings.session.clone();
        let started = self
            .state
            .store
            .write(move |conn| {
                passgate::signin::establish_session(
                    conn,
                    login,
                    &passgate::signin::LoginContext::default(),
                    &settings,
                    now,
                )
            })
            .await
            .unwrap()
            .started;
        let name = passgate::web::cookies::session_cookie_name(&self.state.settings, &tenant.slug);
        self.jar.add_cookie_str(
            &format!("{name}={}; Path=/", started.token),
            &self.address.parse().unwrap(),
        );
        started.session.id
    }

    /// Invites `email` and returns the token of the enrollment link.
    pub async fn invite(&self, tenant: &Tenant, email: &str, role: Role) -> String {
        let tenant = tenant.clone();
        let email = Email::parse(email).unwrap();
        let settings = (*self.state.settings).clone();
        let now = self.clock.now();
        let link = self
            .state
            .store
            .write(move |conn| {
                passgate::enrollment::invite_user(
                    conn,
                    &tenant,
                    &email,
                    role,
                    &settings,
                    passgate::audit::Actor::Cli,
                    now,
                )
            })
            .await
            .unwrap();
        link.url.split("token=").nth(1).unwrap().to_string()
    }

    /// What a refused request must not change: users, passkeys (counters, last use),
    /// sessions, ceremonies, links and audit events. Auth events are left out: every attempt,
    /// failed or not, is recorded for the metrics (X3).
    pub fn state_snapshot(&self) -> String {
        use diesel::prelude::*;
        self.db(|conn| {
            let rows: Vec<Snapshot> = diesel::sql_query(
                "SELECT 'user ' || id || ' ' || status || ' ' || role AS line FROM users
                 UNION ALL SELECT 'passkey ' || id || ' ' || user_id || ' ' || CAST(sign_count AS TEXT) || ' '
                   || COALESCE(CAST(last_used_at AS TEXT), '-') || ' ' || COALESCE(CAST(counter_flagged_at AS TEXT), '-') FROM passkeys
                 UNION ALL SELECT 'session ' || id || ' ' || COALESCE(CAST(ended_at AS TEXT), '-') FROM browser_sessions
                 UNION ALL SELECT 'ceremony ' || id FROM webauthn_ceremonies
                 UNION ALL SELECT 'link ' || id || ' ' || COALESCE(CAST(used_at AS TEXT), '-') FROM link_tokens
                 UNION ALL SELECT 'audit ' || id FROM audit_events
                 ORDER BY 1",
            )
            .load(conn)?;
            Ok(rows.into_iter().map(|r| r.line).collect::<Vec<_>>().join("\n"))
        })
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

    /// Reaches the PostgreSQL test database over the local cluster's Unix socket; `None` when
    /// its socket is not known here.
    pub fn over_unix_socket(mut self) -> Option<Self> {
        let url = self.database.as_ref()?.socket_url()?;
        self.settings.database_url = Some(url);
        Some(self)
    }

    pub async fn spawn(mut self) -> TestApp {
        // Bind first so the public URL (WebAuthn origin, issuer) names the real port; the
        // host is `localhost` because WebAuthn refuses IP addresses as relying party ids.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        if self.settings.public_url.as_str() == "http://localhost:8080/" {
            self.settings.public_url = format!("http://localhost:{port}").parse().unwrap();
        }
        let (state, _) = AppState::open_async(self.settings, self.clock.clone())
            .await
            .expect("application starts");
        let app = Application::serve_on(state, listener).expect("application serves");
        let state = app.state().clone();
        tokio::spawn(app.run_until_stopped());
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        TestApp {
            address: format!("http://localhost:{port}"),
            client: client_with(jar.clone()),
            jar,
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
