//! Every periodic job of a node (DESIGN "Periodic work"): housekeeping, signing-key rotation,
//! mail delivery, and what later issues add. A job is a function of the store and the time,
//! safe to run on several nodes at once: its exactly-once effects come from the database (a
//! uniqueness constraint, a claimed row, a re-check under a lock row), never from memory.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::clock::{Clock, UtcTime};
use crate::store::Store;

/// What one pass of a job did, or why it failed (logged; the job runs again next time).
pub type JobResult = Result<usize, String>;

pub type JobFuture<'a> = Pin<Box<dyn Future<Output = JobResult> + Send + 'a>>;

pub trait Job: Send + Sync {
    /// For the logs.
    fn name(&self) -> &'static str;
    /// How long to wait between two passes.
    fn every(&self) -> Duration;
    /// One pass. Returns how many things it did (rows deleted, keys rotated, mails sent).
    fn run<'a>(&'a self, store: &'a Store, now: UtcTime) -> JobFuture<'a>;
    /// Rung by a request that just made work for this job, which then runs before its
    /// interval is over (the outbox after a mail is queued).
    fn bell(&self) -> Option<Arc<Notify>> {
        None
    }
}

/// The node's jobs, started beside the HTTP server.
pub struct Scheduler {
    jobs: Vec<Arc<dyn Job>>,
}

impl Scheduler {
    pub fn new(jobs: Vec<Arc<dyn Job>>) -> Scheduler {
        Scheduler { jobs }
    }

    /// Starts one task per job; each runs a pass at once, then every interval (or when its
    /// bell rings). Abort the handles to stop them.
    pub fn spawn(self, store: &Store, clock: &Clock) -> Vec<JoinHandle<()>> {
        self.jobs
            .into_iter()
            .map(|job| tokio::spawn(run_forever(job, store.clone(), clock.clone())))
            .collect()
    }
}

async fn run_forever(job: Arc<dyn Job>, store: Store, clock: Clock) {
    let bell = job.bell();
    loop {
        if let Err(error) = job.run(&store, clock.now()).await {
            tracing::warn!(job = job.name(), %error, "scheduled job failed; it runs again at its next interval");
        }
        match &bell {
            Some(bell) => {
                let _ = tokio::time::timeout(job.every(), bell.notified()).await;
            }
            None => tokio::time::sleep(job.every()).await,
        }
    }
}
