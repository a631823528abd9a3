use std::collections::HashSet;

use diesel::backend::Backend as DieselBackend;
use diesel::connection::SimpleConnection;
use diesel::migration::{MigrationConnection, MigrationSource};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::{DbConn, StoreError};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Any constant works; it only has to be the same on every node ("passgate" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x7061_7373_6761_7465;

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error(
        "the database schema is at version {found}, newer than this binary knows (latest {latest}); upgrade passgate"
    )]
    TooNew { found: String, latest: String },
    #[error("migration failed: {0}")]
    Migration(String),
}

/// What the schema looks like relative to this binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Migrations applied by this call (empty for a status check).
    pub applied_now: Vec<String>,
    /// Migrations embedded in the binary but not applied.
    pub pending: Vec<String>,
    pub latest: String,
}

impl MigrationStatus {
    pub fn is_current(&self) -> bool {
        self.pending.is_empty()
    }
}

/// Applies pending migrations. Each migration runs in its own transaction (DDL is
/// transactional on both backends), so a failure leaves the schema at the previous version.
/// On PostgreSQL several nodes may start at once: they take turns under an advisory lock.
pub(super) fn migrate(conn: &mut DbConn) -> Result<MigrationStatus, StoreError> {
    match conn {
        DbConn::Postgres(c) => {
            c.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))?;
            let result = apply(c, POSTGRES_MIGRATIONS);
            let unlocked =
                c.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"));
            let status = result?;
            unlocked?;
            Ok(status)
        }
        DbConn::Sqlite(c) => apply(c, SQLITE_MIGRATIONS),
    }
}

pub(super) fn status(conn: &mut DbConn) -> Result<MigrationStatus, StoreError> {
    match conn {
        DbConn::Postgres(c) => inspect(c, &POSTGRES_MIGRATIONS),
        DbConn::Sqlite(c) => inspect(c, &SQLITE_MIGRATIONS),
    }
}

fn apply<C, DB>(conn: &mut C, source: EmbeddedMigrations) -> Result<MigrationStatus, StoreError>
where
    DB: DieselBackend,
    C: MigrationHarness<DB> + MigrationConnection,
    EmbeddedMigrations: MigrationSource<DB>,
{
    let before = inspect(conn, &source)?;
    let applied = conn
        .run_pending_migrations(source)
        .map_err(|e| SchemaError::Migration(e.to_string()))?;
    Ok(MigrationStatus {
        applied_now: applied.iter().map(|v| v.to_string()).collect(),
        pending: Vec::new(),
        latest: before.latest,
    })
}

/// Compares the applied versions with the embedded ones; a version this binary does not know
/// means the database belongs to a newer passgate.
fn inspect<C, DB>(conn: &mut C, source: &EmbeddedMigrations) -> Result<MigrationStatus, StoreError>
where
    DB: DieselBackend,
    C: MigrationHarness<DB> + MigrationConnection,
    EmbeddedMigrations: MigrationSource<DB>,
{
    conn.setup()?;
    let known: Vec<String> = MigrationSource::<DB>::migrations(source)
        .map_err(|e| SchemaError::Migration(e.to_string()))?
        .iter()
        .map(|m| m.name().version().to_string())
        .collect();
    let latest = known.iter().max().cloned().unwrap_or_default();
    let applied: Vec<String> = conn
        .applied_migrations()
        .map_err(|e| SchemaError::Migration(e.to_string()))?
        .iter()
        .map(|v| v.to_string())
        .collect();
    let known_set: HashSet<&String> = known.iter().collect();
    if let Some(found) = applied.iter().filter(|v| !known_set.contains(v)).max() {
        return Err(SchemaError::TooNew {
            found: found.clone(),
            latest,
        }
        .into());
    }
    let applied_set: HashSet<&String> = applied.iter().collect();
    let mut pending: Vec<String> = known
        .iter()
        .filter(|v| !applied_set.contains(v))
        .cloned()
        .collect();
    pending.sort();
    Ok(MigrationStatus {
        applied_now: Vec::new(),
        pending,
        latest,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    fn names(backend: &str) -> BTreeSet<String> {
        let dir = format!("{}/migrations/{backend}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_dir(dir)
            .expect("migrations folder")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    }

    /// A schema version means the same on both backends: every migration has a folder of the
    /// same name on each (an empty one where a backend needs nothing).
    #[test]
    fn both_backends_have_migrations_of_the_same_names() {
        assert_eq!(names("sqlite"), names("postgres"));
        assert!(names("sqlite").len() >= 3);
    }
}
