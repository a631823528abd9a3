use std::fmt;
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, SqliteConnection};

use super::{Backend, DbConn, StoreError};

/// A database URL whose backend is known from its scheme: `sqlite://<path>` or
/// `postgres://…` / `postgresql://…`. Anything else is refused, so a mistyped PostgreSQL URL
/// can never turn into a SQLite file.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DatabaseUrlError {
    #[error("database URL has no scheme; use sqlite://<path> or postgres://<user>@<host>/<db>")]
    MissingScheme,
    #[error(
        "unsupported database URL scheme '{0}'; use sqlite://<path> or postgres://<user>@<host>/<db>"
    )]
    UnsupportedScheme(String),
    #[error("sqlite:// URL has an empty path")]
    EmptySqlitePath,
    #[error("invalid postgres URL: {0}")]
    InvalidPostgres(String),
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<DatabaseUrl, DatabaseUrlError> {
        let (scheme, rest) = raw
            .split_once("://")
            .ok_or(DatabaseUrlError::MissingScheme)?;
        match scheme {
            "sqlite" => {
                if rest.is_empty() {
                    return Err(DatabaseUrlError::EmptySqlitePath);
                }
                Ok(DatabaseUrl::Sqlite(PathBuf::from(rest)))
            }
            "postgres" | "postgresql" => {
                let parsed = url::Url::parse(raw)
                    .map_err(|e| DatabaseUrlError::InvalidPostgres(e.to_string()))?;
                let mut parsed = parsed;
                // libpq waits for ever on an unreachable host unless told otherwise.
                if !parsed.query_pairs().any(|(k, _)| k == "connect_timeout") {
                    parsed.query_pairs_mut().append_pair("connect_timeout", "5");
                }
                // libpq's default `gssencmode=prefer` initialises Kerberos on every connect;
                // a pool thread still connecting while a short CLI command exits then trips
                // krb5's thread-key assertion and aborts the process. GSSAPI stays available
                // to anyone who names `gssencmode` in the URL.
                if !parsed.query_pairs().any(|(k, _)| k == "gssencmode") {
                    parsed
                        .query_pairs_mut()
                        .append_pair("gssencmode", "disable");
                }
                Ok(DatabaseUrl::Postgres(parsed.to_string()))
            }
            other => Err(DatabaseUrlError::UnsupportedScheme(other.to_string())),
        }
    }

    pub fn sqlite(path: impl Into<PathBuf>) -> DatabaseUrl {
        DatabaseUrl::Sqlite(path.into())
    }

    /// Makes a SQLite database's home private to the passgate user: its directory 0700 and
    /// the file 0600, created so if missing (SQLite gives its `-wal` and `-shm` files the
    /// database file's mode). Nothing to do for PostgreSQL.
    pub fn create_private_home(&self) -> std::io::Result<()> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        let DatabaseUrl::Sqlite(path) = self else {
            return Ok(());
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
    }

    pub fn backend(&self) -> Backend {
        match self {
            DatabaseUrl::Sqlite(_) => Backend::Sqlite,
            DatabaseUrl::Postgres(_) => Backend::Postgres,
        }
    }
}

/// Shown in logs and start-up output: the password of a PostgreSQL URL is masked.
impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            DatabaseUrl::Postgres(raw) => match url::Url::parse(raw) {
                Ok(mut u) => {
                    if u.password().is_some() {
                        let _ = u.set_password(Some("****"));
                    }
                    u.set_query(None);
                    write!(f, "{u}")
                }
                Err(_) => f.write_str("postgres://(invalid)"),
            },
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// r2d2 manager that establishes the variant named by the URL and applies the SQLite pragmas.
#[derive(Clone)]
pub(super) struct ConnectionManager {
    url: DatabaseUrl,
}

#[derive(Debug, thiserror::Error)]
pub(super) enum ManagerError {
    #[error("{0}")]
    Connect(#[from] diesel::ConnectionError),
    #[error("{0}")]
    Query(#[from] diesel::result::Error),
}

impl ConnectionManager {
    pub(super) fn new(url: DatabaseUrl) -> Self {
        ConnectionManager { url }
    }

    pub(super) fn establish(&self) -> Result<DbConn, StoreError> {
        self.connect_inner()
            .map_err(|e| StoreError::Connection(first_line(&e.to_string())))
    }

    fn connect_inner(&self) -> Result<DbConn, ManagerError> {
        match &self.url {
            DatabaseUrl::Postgres(url) => Ok(DbConn::Postgres(PgConnection::establish(url)?)),
            DatabaseUrl::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(&path.to_string_lossy())?;
                // WAL: readers never block the writer; synchronous=NORMAL is durable across a
                // process crash (the WAL is in the OS), not across power loss. No mmap: a
                // connection drops its page cache, and with it its whole mapping (munmap, a
                // TLB shootdown on every core), at each read after another connection's
                // commit — under sign-in load that cost more than reading pages with pread.
                // secure_delete: freed pages are zeroed, so a spent link token or a sent
                // mail's body does not linger in the file after its row is gone.
                conn.batch_execute(
                    "PRAGMA busy_timeout = 5000;
                     PRAGMA secure_delete = ON;
                     PRAGMA journal_mode = WAL;
                     PRAGMA synchronous = NORMAL;
                     PRAGMA foreign_keys = ON;
                     PRAGMA mmap_size = 0;
                     PRAGMA cache_size = -8192;
                     PRAGMA temp_store = MEMORY;",
                )?;
                Ok(DbConn::Sqlite(conn))
            }
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().trim().to_string()
}

/// A connection that did its last work without an error this recently is handed out without
/// a `SELECT 1` first (HikariCP's "alive bypass" window): pinged at every checkout, it would
/// be a round trip before every query.
const ALIVE_BYPASS: Duration = Duration::from_millis(500);

/// A pooled connection, with when it last finished its work without an error. After an
/// error (which may be a server that went away) it is pinged before its next use, and
/// dropped from the pool if the ping fails.
pub struct PooledConn {
    conn: DbConn,
    last_ok: Option<Instant>,
}

impl PooledConn {
    /// Runs `f` on the connection and remembers whether it succeeded.
    pub(super) fn run<T, E>(
        &mut self,
        f: impl FnOnce(&mut DbConn) -> Result<T, E>,
    ) -> Result<T, E> {
        let result = f(&mut self.conn);
        self.last_ok = result.is_ok().then(Instant::now);
        result
    }
}

impl Deref for PooledConn {
    type Target = DbConn;
    fn deref(&self) -> &DbConn {
        &self.conn
    }
}

impl DerefMut for PooledConn {
    fn deref_mut(&mut self) -> &mut DbConn {
        &mut self.conn
    }
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = PooledConn;
    type Error = ManagerError;

    fn connect(&self) -> Result<PooledConn, ManagerError> {
        Ok(PooledConn {
            conn: self.connect_inner()?,
            last_ok: None,
        })
    }

    fn is_valid(&self, conn: &mut PooledConn) -> Result<(), ManagerError> {
        if conn.last_ok.is_some_and(|t| t.elapsed() < ALIVE_BYPASS) {
            return Ok(());
        }
        conn.conn.batch_execute("SELECT 1")?;
        conn.last_ok = Some(Instant::now());
        Ok(())
    }

    fn has_broken(&self, _conn: &mut PooledConn) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_is_chosen_from_the_scheme() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://data/p.db").unwrap(),
            DatabaseUrl::Sqlite("data/p.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///var/lib/p.db").unwrap(),
            DatabaseUrl::Sqlite("/var/lib/p.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("postgres://u@h/db").unwrap().backend(),
            Backend::Postgres
        );
        assert_eq!(
            DatabaseUrl::parse("postgresql://u@h/db").unwrap().backend(),
            Backend::Postgres
        );
    }

    #[test]
    fn a_mistyped_postgres_url_is_refused_not_taken_for_a_file() {
        assert_eq!(
            DatabaseUrl::parse("postgress://u@h/db"),
            Err(DatabaseUrlError::UnsupportedScheme("postgress".into()))
        );
        assert_eq!(
            DatabaseUrl::parse("u@h/db"),
            Err(DatabaseUrlError::MissingScheme)
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite://"),
            Err(DatabaseUrlError::EmptySqlitePath)
        );
    }

    #[test]
    fn display_masks_the_postgres_password() {
        let url = DatabaseUrl::parse("postgres://app:s3cret@db:5432/passgate").unwrap();
        let shown = url.to_string();
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("db:5432/passgate"), "{shown}");
    }
}
