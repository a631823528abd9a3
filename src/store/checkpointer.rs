//! SQLite's WAL checkpoints, mostly off the writer's thread. A checkpoint copies the pages
//! the WAL holds back into the database file; run by the writer after its commit every
//! 1,000 pages (SQLite's default), it copied a hot page (a table's last leaf, an index's)
//! again at each checkpoint and held every write meanwhile. This thread checkpoints a few
//! times a second while writes come in, in `PASSIVE` mode (it never waits for the writer,
//! and the writer never waits for it). A pass cannot copy the frames the writer appended
//! while it ran, and the WAL only starts over once every frame is copied — under continuous
//! writes it would grow without end — so after each pass the writer, between two batches,
//! copies those few frames itself: the next commit then writes from the WAL's start again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use diesel::connection::SimpleConnection;

use super::DbConn;
use super::pool::ConnectionManager;

/// The pause between the first commit seen and the checkpoint: under sign-in load a few
/// thousand WAL frames.
const INTERVAL: Duration = Duration::from_millis(250);

const CHECKPOINT: &str = "PRAGMA wal_checkpoint(PASSIVE)";

/// The writer's side: tells the checkpointer a commit happened, and finishes its passes.
/// The thread stops when this is dropped.
pub(super) struct Checkpoints {
    commits: mpsc::SyncSender<()>,
    /// A pass finished since the writer last finished one.
    passed: Arc<AtomicBool>,
}

impl Checkpoints {
    pub(super) fn start(manager: ConnectionManager) -> std::io::Result<Checkpoints> {
        let (commits, committed) = mpsc::sync_channel(1);
        let passed = Arc::new(AtomicBool::new(false));
        let done = passed.clone();
        thread::Builder::new()
            .name("passgate-checkpoint".into())
            .spawn(move || run(&committed, &manager, &done))?;
        Ok(Checkpoints { commits, passed })
    }

    /// After a commit; never blocks (one pending signal stands for any number of commits).
    pub(super) fn committed(&self) {
        let _ = self.commits.try_send(());
    }

    /// Between batches, on the writer's connection: after a pass, copies what the writer
    /// appended during it, so the WAL can start over.
    pub(super) fn finish_pass(&self, writer: &mut DbConn) {
        if self.passed.swap(false, Ordering::AcqRel)
            && let Err(e) = writer.batch_execute(CHECKPOINT)
        {
            tracing::warn!(error = %e, "finishing a WAL checkpoint failed");
        }
    }
}

fn run(committed: &mpsc::Receiver<()>, manager: &ConnectionManager, passed: &AtomicBool) {
    let mut conn: Option<DbConn> = None;
    while committed.recv().is_ok() {
        thread::sleep(INTERVAL);
        // Commits signalled while this slept are in the WAL this checkpoint copies. A
        // store that is gone leaves the rest to its last connection's close.
        if let Err(mpsc::TryRecvError::Disconnected) = committed.try_recv() {
            break;
        }
        if checkpoint(&mut conn, manager) {
            passed.store(true, Ordering::Release);
        }
    }
}

fn checkpoint(conn: &mut Option<DbConn>, manager: &ConnectionManager) -> bool {
    let c = match conn {
        Some(c) => c,
        None => match manager.establish() {
            Ok(c) => conn.insert(c),
            Err(e) => {
                tracing::warn!(error = %e, "the WAL checkpointer cannot connect");
                return false;
            }
        },
    };
    match c.batch_execute(CHECKPOINT) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "a WAL checkpoint failed");
            *conn = None;
            false
        }
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

    /// The WAL's length in frames, from a checkpoint's report.
    fn wal_frames(conn: &mut DbConn) -> i64 {
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Report {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            log: i64,
        }
        diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)")
            .get_result::<Report>(conn)
            .unwrap()
            .log
    }

    #[test]
    fn under_continuous_writes_the_wal_starts_over_instead_of_growing() {
        let dir = tempfile::tempdir().unwrap();
        let manager = ConnectionManager::new(DatabaseUrl::Sqlite(dir.path().join("db.sqlite")));
        let mut writer = manager.establish().unwrap();
        writer
            .batch_execute("PRAGMA wal_autocheckpoint = 0; CREATE TABLE rows (v BLOB NOT NULL);")
            .unwrap();
        let checkpoints = Checkpoints::start(manager).unwrap();
        let insert = |conn: &mut DbConn| {
            conn.batch_execute("INSERT INTO rows VALUES (randomblob(4000))")
                .unwrap();
        };
        let (mut written, started) = (0, Instant::now());
        // Writes, as the writer does, until a pass of the checkpointer finished.
        while !checkpoints.passed.load(Ordering::Acquire) {
            assert!(started.elapsed() < Duration::from_secs(30), "no pass");
            insert(&mut writer);
            written += 1;
            checkpoints.committed();
        }
        checkpoints.finish_pass(&mut writer);
        insert(&mut writer);
        let frames = wal_frames(&mut writer);
        assert!(
            frames < 10,
            "the WAL should have started over: {frames} frames after {written} rows"
        );
    }
}
