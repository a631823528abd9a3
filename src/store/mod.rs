//! The store layer: the only place that knows diesel. Repository modules take `&mut DbConn`,
//! so one domain operation runs in one transaction (STYLE lesson 5).

mod checkpointer;
mod migrations;
mod pool;
pub(crate) mod prepared;
pub mod schema;
mod writer;

pub mod audit;
pub mod auth_events;
pub mod ceremonies;
pub mod clients;
pub mod codes;
pub mod consents;
pub mod groups;
pub mod installation;
pub mod keys;
pub mod links;
pub mod mail;
pub mod passkeys;
pub mod policies;
pub mod rate_limits;
pub mod recovery_codes;
pub mod sessions;
pub mod signins;
pub mod tenants;
pub mod tokens;
pub mod users;

use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use diesel::Connection;
use diesel::connection::{AnsiTransactionManager, TransactionManager};

pub use migrations::{MigrationStatus, SchemaError};
pub use pool::{DatabaseUrl, DatabaseUrlError};

/// One connection to either backend. The variant is chosen from the URL scheme by
/// [`DatabaseUrl`], never by trial (`MultiConnection::establish` would take any string as a
/// SQLite path).
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Postgres(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("database connection: {0}")]
    Connection(String),
    #[error("database pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("a blocking database task failed: {0}")]
    Task(String),
    #[error("the write was not committed: {0}")]
    Commit(String),
}

impl StoreError {
    /// A UNIQUE constraint refused the write: the caller decides what that means in its domain.
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            StoreError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Runs `f` in one transaction. On SQLite it is `BEGIN IMMEDIATE`: the write lock is taken
/// before anything is read, so another process's writer makes this one wait (`busy_timeout`)
/// instead of failing with SQLITE_BUSY when a deferred transaction later upgrades from
/// reading to writing. Begun on the inner connection, whose transaction manager the
/// multi-connection delegates to, so commit, rollback and nested savepoints work as usual.
fn in_transaction<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, TxError<E>>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
{
    type Manager = <DbConn as Connection>::TransactionManager;
    let begin_immediate = match conn {
        DbConn::Sqlite(c) => !in_transaction_already(c)?,
        DbConn::Postgres(_) => false,
    };
    match conn {
        DbConn::Sqlite(c) if begin_immediate => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?
        }
        // PostgreSQL, or a savepoint inside the SQLite writer's batch.
        _ => Manager::begin_transaction(conn)?,
    }
    match f(conn) {
        Ok(value) => {
            Manager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(domain) => match Manager::rollback_transaction(conn) {
            Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => {
                Err(TxError::Domain(domain))
            }
            Err(rollback) => Err(TxError::Store(rollback)),
        },
    }
}

fn in_transaction_already(conn: &mut diesel::SqliteConnection) -> diesel::QueryResult<bool> {
    Ok(AnsiTransactionManager::transaction_manager_status_mut(conn)
        .transaction_depth()?
        .is_some())
}

/// The database handle shared by every request: a pool plus, on SQLite, the single writer.
/// SQLite allows one writer; a deferred transaction that reads and then writes can fail
/// with SQLITE_BUSY when another writer committed in between, and `busy_timeout` cannot help
/// there. Requests' writes therefore go through one writer thread that commits them in
/// batches (`writer.rs`), and the process's other writers (CLI, background work) take turns
/// with it through `write_lock`; taking the write lock at the start of each transaction (see
/// [`in_transaction`]) removes that failure between processes too (the CLI beside a running
/// server).
///
/// Reads (and PostgreSQL's writes) wait for a connection slot asynchronously, before a
/// blocking thread is taken: the blocking pool then holds about as many threads as there are
/// connections, instead of one parked thread per waiting request (which under load costs
/// more in thread switches and memory than the queries themselves).
#[derive(Clone)]
pub struct Store {
    pool: r2d2::Pool<pool::ConnectionManager>,
    backend: Backend,
    write_lock: Option<Arc<Mutex<()>>>,
    slots: Arc<Semaphore>,
    writer: Option<Arc<writer::Writer>>,
}

impl Store {
    /// Connects, checks and migrates the schema, then builds the pool. Blocking: call it at
    /// start-up or from a blocking task.
    pub fn open(url: &DatabaseUrl, pool_size: u32) -> StoreResult<(Store, MigrationStatus)> {
        let manager = pool::ConnectionManager::new(url.clone());
        let mut first = manager.establish()?;
        let status = migrations::migrate(&mut first)?;
        drop(first);
        let backend = url.backend();
        let pool = r2d2::Pool::builder()
            .max_size(pool_size.max(1))
            // No connection kept warm in the background: a background connect still running
            // when a short CLI command exits can abort it inside libpq/krb5 at exit.
            .min_idle(Some(0))
            // A PostgreSQL connection can die with its server and is checked before use; an
            // SQLite file handle cannot, so it skips the `SELECT 1` on every checkout.
            .test_on_check_out(backend == Backend::Postgres)
            .connection_timeout(std::time::Duration::from_secs(10))
            .build_unchecked(manager);
        let write_lock = (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(())));
        let writer = match &write_lock {
            Some(lock) => Some(Arc::new(
                writer::Writer::start(pool::ConnectionManager::new(url.clone()), lock.clone())
                    .map_err(|e| StoreError::Task(format!("starting the database writer: {e}")))?,
            )),
            None => None,
        };
        Ok((
            Store {
                pool,
                backend,
                write_lock,
                slots: Arc::new(Semaphore::new(pool_size.max(1) as usize)),
                writer,
            },
            status,
        ))
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs `f` on the blocking pool with a pooled connection, outside any transaction.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let slot = admit(&self.slots).await?;
        let store = self.clone();
        run_blocking(move || {
            let _slot = slot;
            store.read_blocking(f)
        })
        .await
    }

    /// Runs `f` in one transaction (on SQLite, a savepoint of the writer's batch): everything
    /// it writes commits together or not at all, and the result comes back once committed.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        if let Some(writer) = &self.writer {
            return writer.write(f).await;
        }
        let slot = admit(&self.slots).await?;
        let store = self.clone();
        run_blocking(move || {
            let _slot = slot;
            store.write_blocking(f)
        })
        .await
    }

    /// On SQLite the writer (its transaction, its warm cache: a pooled reader drops its cache
    /// at the first read after any commit); on PostgreSQL a pooled connection without a
    /// transaction (no `BEGIN`/`COMMIT` round trips). Only for a repository function whose
    /// job makes at most one write, so it is atomic the same way on both backends: it is
    /// the repository, never the domain, that chooses this mode.
    pub(in crate::store) async fn on_writer_else_pooled<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        if self.writer.is_some() {
            return self.write(f).await;
        }
        self.read(f).await
    }

    /// The synchronous form of [`Store::write`], for the CLI and background workers that are
    /// already off the async executor.
    pub fn write_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E>,
        E: From<StoreError>,
    {
        let mut conn = self.pool.get().map_err(StoreError::from)?;
        let _guard = self
            .write_lock
            .as_ref()
            .map(|lock| lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        conn.run(|conn| in_transaction(conn, f))
            .map_err(|e| match e {
                TxError::Domain(e) => e,
                TxError::Store(e) => E::from(StoreError::from(e)),
            })
    }

    /// The synchronous form of [`Store::read`].
    pub fn read_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E>,
        E: From<StoreError>,
    {
        let mut conn = self.pool.get().map_err(StoreError::from)?;
        conn.run(f)
    }

    /// Readiness: the database answers and its schema is the one this binary expects.
    pub async fn check_ready(&self) -> StoreResult<MigrationStatus> {
        self.read(migrations::status).await
    }
}

/// Keeps a domain error apart from the database error that made diesel roll back.
enum TxError<E> {
    Domain(E),
    Store(diesel::result::Error),
}

impl<E> From<diesel::result::Error> for TxError<E> {
    fn from(e: diesel::result::Error) -> Self {
        TxError::Store(e)
    }
}

/// Waits for a permit without holding a thread.
async fn admit(semaphore: &Arc<Semaphore>) -> Result<OwnedSemaphorePermit, StoreError> {
    semaphore
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| StoreError::Task(e.to_string()))
}

async fn run_blocking<T, E, F>(f: F) -> Result<T, E>
where
    F: FnOnce() -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    let span = tracing::Span::current();
    match tokio::task::spawn_blocking(move || span.in_scope(f)).await {
        Ok(result) => result,
        Err(join) => Err(E::from(StoreError::Task(join.to_string()))),
    }
}

/// Runs a query on whichever backend the connection is: for statements (upserts,
/// `RETURNING`, `ON CONFLICT`) that diesel only offers per backend, and for the statements
/// on hot paths (sign-in, token issue): the multi-backend connection renders a statement's
/// SQL text and boxes its binds at every execution, even when the prepared statement is
/// cached, while the concrete
/// connection finds a cached statement by its type and binds in place.
macro_rules! per_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::store::DbConn::Postgres($c) => $body,
            $crate::store::DbConn::Sqlite($c) => $body,
        }
    };
}
pub(crate) use per_backend;
