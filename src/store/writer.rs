//! SQLite's writer: one thread commits the write transactions of concurrent requests
//! together (group commit). SQLite has one writer at a time anyway; what a commit costs —
//! the WAL frames of every page touched, their checksums and writes — is
//! then paid once per batch instead of once per request, and a page several requests change
//! (a table's last leaf, an index's hot page) is written once. Each request's work runs in
//! its own savepoint, so a failure rolls back only that request's writes, and its result is
//! handed over only after the batch commits: nobody acts on a write that is not durable.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, mpsc};

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use tokio::sync::oneshot;

use super::checkpointer::Checkpoints;
use super::pool::ConnectionManager;
use super::{DbConn, StoreError, TxError, in_transaction};

/// At most this many requests share a commit: enough to amortise it under load, few enough
/// that the first of them does not wait long for the last.
const MAX_BATCH: usize = 64;

/// How a job runs in its batch: alone, it is the transaction; among others, a savepoint.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Alone,
    Savepoint,
}

/// A job that ran: whether it failed (an `Alone` job's failure rolls the transaction back),
/// and how to hand its result over once the batch's commit is known.
struct Ran {
    failed: bool,
    deliver: Delivery,
}

/// Hands a job's result over, given the batch commit's failure if there was one.
type Delivery = Box<dyn FnOnce(Option<&StoreError>) + Send>;

trait Job: Send {
    fn run(self: Box<Self>, conn: &mut DbConn, mode: Mode) -> Ran;
    /// The job could not run (no connection, no transaction): it fails with `error`.
    fn abandon(self: Box<Self>, error: &StoreError);
}

struct Write<T, E, F> {
    work: F,
    reply: oneshot::Sender<Result<T, E>>,
    span: tracing::Span,
}

impl<T, E, F> Job for Write<T, E, F>
where
    F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &mut DbConn, mode: Mode) -> Ran {
        let Write { work, reply, span } = *self;
        let outcome = span.in_scope(|| match mode {
            Mode::Alone => work(conn).map_err(TxError::Domain),
            Mode::Savepoint => in_transaction(conn, work),
        });
        Ran {
            failed: outcome.is_err(),
            deliver: Box::new(move |commit_failure| {
                let result = match (outcome, commit_failure) {
                    (Ok(value), None) => Ok(value),
                    (Ok(_), Some(e)) => Err(E::from(StoreError::Commit(e.to_string()))),
                    (Err(TxError::Domain(e)), _) => Err(e),
                    (Err(TxError::Store(e)), _) => Err(E::from(StoreError::from(e))),
                };
                // The request may have gone (client disconnected); its write stands.
                let _ = reply.send(result);
            }),
        }
    }

    fn abandon(self: Box<Self>, error: &StoreError) {
        let _ = self
            .reply
            .send(Err(E::from(StoreError::Commit(error.to_string()))));
    }
}

/// The handle requests send their writes through; the thread stops when the last handle
/// is dropped.
pub(super) struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
}

impl Writer {
    /// Starts the writer thread. It connects on its first write, so a CLI command that only
    /// reads never opens a second connection; `write_lock` is held for each batch, so the
    /// process's other writers (the CLI, background work) take turns with it.
    pub(super) fn start(
        manager: ConnectionManager,
        write_lock: Arc<Mutex<()>>,
    ) -> std::io::Result<Writer> {
        let (jobs, queue) = mpsc::channel();
        let checkpoints = Checkpoints::start(manager.clone())?;
        std::thread::Builder::new()
            .name("passgate-writer".into())
            .spawn(move || run(&queue, &manager, &write_lock, &checkpoints))?;
        Ok(Writer { jobs })
    }

    pub(super) async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Write {
            work,
            reply,
            span: tracing::Span::current(),
        });
        if self.jobs.send(job).is_err() {
            return Err(E::from(StoreError::Task(
                "the database writer stopped".into(),
            )));
        }
        answer.await.unwrap_or_else(|_| {
            Err(E::from(StoreError::Task(
                "a write transaction panicked".into(),
            )))
        })
    }
}

fn run(
    queue: &mpsc::Receiver<Box<dyn Job>>,
    manager: &ConnectionManager,
    lock: &Mutex<()>,
    checkpoints: &Checkpoints,
) {
    let mut conn: Option<DbConn> = None;
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let _turn = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        while !batch.is_empty() {
            let c = match conn.as_mut() {
                Some(c) => c,
                None => match writer_connection(manager) {
                    Ok(c) => conn.insert(c),
                    Err(e) => {
                        tracing::error!(error = %e, "the database writer cannot connect");
                        batch.drain(..).for_each(|job| job.abandon(&e));
                        break;
                    }
                },
            };
            let outcome = commit_batch(c, std::mem::take(&mut batch));
            checkpoints.committed();
            match outcome {
                Batch::Done => checkpoints.finish_pass(c),
                // The connection's state is unknown: the rest runs on a new one.
                Batch::Broken { not_run } => {
                    conn = None;
                    batch = not_run;
                }
            }
        }
    }
}

/// The writer's connection leaves checkpoints to the checkpointer's thread.
fn writer_connection(manager: &ConnectionManager) -> Result<DbConn, StoreError> {
    let mut conn = manager.establish()?;
    conn.batch_execute("PRAGMA wal_autocheckpoint = 0")
        .map_err(StoreError::from)?;
    Ok(conn)
}

enum Batch {
    Done,
    /// A job panicked or left the transaction broken (the batch was rolled back, and the
    /// jobs after it are still to run), or the connection is unusable.
    Broken {
        not_run: Vec<Box<dyn Job>>,
    },
}

fn commit_batch(conn: &mut DbConn, batch: Vec<Box<dyn Job>>) -> Batch {
    if let Err(e) =
        AnsiTransactionManager::begin_transaction_sql(sqlite_of(conn), "BEGIN IMMEDIATE")
    {
        let e = StoreError::from(e);
        batch.into_iter().for_each(|job| job.abandon(&e));
        return settled(conn);
    }
    let mode = if batch.len() == 1 {
        Mode::Alone
    } else {
        Mode::Savepoint
    };
    let mut ran = Vec::with_capacity(batch.len());
    let mut jobs = batch.into_iter();
    while let Some(job) = jobs.next() {
        let outcome = catch_unwind(AssertUnwindSafe(|| job.run(conn, mode)));
        let intact = matches!(depth(conn), Ok(Some(d)) if d.get() == 1);
        match outcome {
            Ok(done) if intact => ran.push(done),
            outcome => {
                abort(conn);
                let e = StoreError::Commit("another write in its batch failed".into());
                ran.into_iter()
                    .chain(outcome.ok())
                    .for_each(|r| (r.deliver)(Some(&e)));
                return Batch::Broken {
                    not_run: jobs.collect(),
                };
            }
        }
    }
    let commit_failure = if mode == Mode::Alone && ran.iter().any(|r| r.failed) {
        // The job's own error is its answer; the rollback's outcome changes nothing for it.
        let _ = AnsiTransactionManager::rollback_transaction(sqlite_of(conn));
        None
    } else {
        match AnsiTransactionManager::commit_transaction(sqlite_of(conn)) {
            Ok(()) => None,
            Err(e) => {
                abort(conn);
                Some(StoreError::from(e))
            }
        }
    };
    ran.into_iter()
        .for_each(|r| (r.deliver)(commit_failure.as_ref()));
    settled(conn)
}

/// A connection left inside a transaction (a failed rollback) or with a broken transaction
/// manager would refuse every later batch: it is replaced.
fn settled(conn: &mut DbConn) -> Batch {
    match depth(conn) {
        Ok(None) => Batch::Done,
        _ => Batch::Broken {
            not_run: Vec::new(),
        },
    }
}

fn sqlite_of(conn: &mut DbConn) -> &mut diesel::SqliteConnection {
    match conn {
        DbConn::Sqlite(c) => c,
        DbConn::Postgres(_) => unreachable!("the writer serves SQLite only"),
    }
}

fn depth(conn: &mut DbConn) -> diesel::QueryResult<Option<std::num::NonZeroU32>> {
    AnsiTransactionManager::transaction_manager_status_mut(sqlite_of(conn)).transaction_depth()
}

/// Rolls back whatever is open, savepoints and transaction.
fn abort(conn: &mut DbConn) {
    while let Ok(Some(_)) = depth(conn) {
        if AnsiTransactionManager::rollback_transaction(sqlite_of(conn)).is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, RunQueryDsl, SqliteConnection};

    use super::*;

    type Reply = oneshot::Receiver<Result<(), StoreError>>;

    fn database() -> DbConn {
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        conn.batch_execute("CREATE TABLE rows (v INTEGER NOT NULL)")
            .unwrap();
        DbConn::Sqlite(conn)
    }

    fn job(
        work: impl FnOnce(&mut DbConn) -> Result<(), StoreError> + Send + 'static,
    ) -> (Box<dyn Job>, Reply) {
        let (reply, answer) = oneshot::channel();
        let span = tracing::Span::none();
        (Box::new(Write { work, reply, span }), answer)
    }

    fn insert(v: i32) -> (Box<dyn Job>, Reply) {
        job(move |conn| insert_row(conn, v))
    }

    fn insert_row(conn: &mut DbConn, v: i32) -> Result<(), StoreError> {
        diesel::sql_query(format!("INSERT INTO rows (v) VALUES ({v})")).execute(conn)?;
        Ok(())
    }

    fn refused(v: i32) -> (Box<dyn Job>, Reply) {
        job(move |conn| {
            insert_row(conn, v)?;
            Err(StoreError::Task("refused".into()))
        })
    }

    fn rows(conn: &mut DbConn) -> Vec<i32> {
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Integer)]
            v: i32,
        }
        diesel::sql_query("SELECT v FROM rows ORDER BY v")
            .load::<Row>(conn)
            .unwrap()
            .into_iter()
            .map(|r| r.v)
            .collect()
    }

    fn batch(jobs: Vec<(Box<dyn Job>, Reply)>) -> (Vec<Box<dyn Job>>, Vec<Reply>) {
        jobs.into_iter().unzip()
    }

    #[test]
    fn a_failing_write_in_a_batch_rolls_back_only_its_own_rows() {
        let mut conn = database();
        let (jobs, mut replies) = batch(vec![insert(1), refused(2), insert(3)]);
        assert!(matches!(commit_batch(&mut conn, jobs), Batch::Done));
        assert_eq!(rows(&mut conn), [1, 3]);
        assert!(replies[0].try_recv().unwrap().is_ok());
        assert!(matches!(
            replies[1].try_recv().unwrap(),
            Err(StoreError::Task(m)) if m == "refused"
        ));
        assert!(replies[2].try_recv().unwrap().is_ok());
    }

    #[test]
    fn a_failing_write_alone_is_rolled_back() {
        let mut conn = database();
        let (jobs, mut replies) = batch(vec![refused(1)]);
        assert!(matches!(commit_batch(&mut conn, jobs), Batch::Done));
        assert!(rows(&mut conn).is_empty());
        assert!(replies[0].try_recv().unwrap().is_err());
        assert!(
            matches!(depth(&mut conn), Ok(None)),
            "no transaction left open"
        );
    }

    #[test]
    fn a_panicking_write_fails_the_writes_before_it_and_leaves_the_rest_to_run() {
        let mut conn = database();
        let panics = job(|conn| {
            insert_row(conn, 2)?;
            panic!("a bug in a write");
        });
        let (jobs, mut replies) = batch(vec![insert(1), panics, insert(3)]);
        let Batch::Broken { not_run } = commit_batch(&mut conn, jobs) else {
            panic!("the batch should be broken");
        };
        assert!(rows(&mut conn).is_empty(), "the batch was rolled back");
        assert!(matches!(
            replies[0].try_recv(),
            Ok(Err(StoreError::Commit(_)))
        ));
        assert!(
            replies[1].try_recv().is_err(),
            "the panicking write has no answer"
        );
        assert_eq!(not_run.len(), 1);
        assert!(matches!(commit_batch(&mut conn, not_run), Batch::Done));
        assert_eq!(rows(&mut conn), [3]);
        assert!(replies[2].try_recv().unwrap().is_ok());
    }

    #[test]
    fn a_connection_left_in_a_transaction_is_replaced() {
        let mut conn = database();
        assert!(matches!(settled(&mut conn), Batch::Done));
        AnsiTransactionManager::begin_transaction_sql(sqlite_of(&mut conn), "BEGIN").unwrap();
        assert!(matches!(
            settled(&mut conn),
            Batch::Broken { not_run } if not_run.is_empty()
        ));
    }

    #[test]
    fn answers_arrive_only_after_the_commit() {
        let mut conn = database();
        let (first, mut first_reply) = insert(1);
        let (check, mut check_reply) = job(move |_| {
            // The first write has run, but its answer waits for the batch's commit.
            assert!(first_reply.try_recv().is_err());
            Ok(())
        });
        assert!(matches!(
            commit_batch(&mut conn, vec![first, check]),
            Batch::Done
        ));
        assert!(check_reply.try_recv().unwrap().is_ok());
    }
}
