//! SQLite's WAL checkpoints, off the writer's thread. A checkpoint copies the pages the WAL
//! holds back into the database file; run by the writer after its commit every 1,000 pages
//! (SQLite's default), it copied a hot page (a table's last leaf, an index's) again at
//! each checkpoint and held every write meanwhile. This thread checkpoints a few times a
//! second while writes come in, in `PASSIVE` mode (it never waits for the writer, and the
//! writer never waits for it): fewer copies of the same pages, and none on the writer.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use diesel::connection::SimpleConnection;

use super::DbConn;
use super::pool::ConnectionManager;

/// The pause between the first commit seen and the checkpoint: under sign-in load a few
/// thousand WAL frames.
const INTERVAL: Duration = Duration::from_millis(250);

/// The writer's side: tells the checkpointer a commit happened. The thread stops when this
/// is dropped.
pub(super) struct Checkpoints {
    commits: mpsc::SyncSender<()>,
}

impl Checkpoints {
    pub(super) fn start(manager: ConnectionManager) -> std::io::Result<Checkpoints> {
        let (commits, committed) = mpsc::sync_channel(1);
        thread::Builder::new()
            .name("passgate-checkpoint".into())
            .spawn(move || run(&committed, &manager))?;
        Ok(Checkpoints { commits })
    }

    /// After a commit; never blocks (one pending signal stands for any number of commits).
    pub(super) fn committed(&self) {
        let _ = self.commits.try_send(());
    }
}

fn run(committed: &mpsc::Receiver<()>, manager: &ConnectionManager) {
    let mut conn: Option<DbConn> = None;
    while committed.recv().is_ok() {
        thread::sleep(INTERVAL);
        // Commits signalled while this slept are in the WAL this checkpoint copies. A
        // store that is gone leaves the rest to its last connection's close.
        if let Err(mpsc::TryRecvError::Disconnected) = committed.try_recv() {
            break;
        }
        checkpoint(&mut conn, manager);
    }
}

fn checkpoint(conn: &mut Option<DbConn>, manager: &ConnectionManager) {
    let c = match conn {
        Some(c) => c,
        None => match manager.establish() {
            Ok(c) => conn.insert(c),
            Err(e) => {
                tracing::warn!(error = %e, "the WAL checkpointer cannot connect");
                return;
            }
        },
    };
    if let Err(e) = c.batch_execute("PRAGMA wal_checkpoint(PASSIVE)") {
        tracing::warn!(error = %e, "a WAL checkpoint failed");
        *conn = None;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Instant;

    use diesel::connection::SimpleConnection;

    use super::*;
    use crate::store::pool::DatabaseUrl;

    #[test]
    fn committed_pages_reach_the_database_file_without_the_writer_checkpointing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let manager = ConnectionManager::new(DatabaseUrl::Sqlite(path.clone()));
        let mut writer = manager.establish().unwrap();
        writer
            .batch_execute(
                "PRAGMA wal_autocheckpoint = 0;
                 CREATE TABLE rows (v BLOB NOT NULL);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
                 INSERT INTO rows SELECT randomblob(1000) FROM n;",
            )
            .unwrap();
        let size = || std::fs::metadata(&path).unwrap().len();
        assert!(size() < 100_000, "the rows are only in the WAL: {}", size());

        let checkpoints = Checkpoints::start(manager).unwrap();
        checkpoints.committed();
        let waited = Instant::now();
        while size() < 500_000 && waited.elapsed() < Duration::from_secs(10) {
            thread::sleep(Duration::from_millis(20));
        }
        assert!(size() >= 500_000, "checkpointed into the file: {}", size());
    }
}
