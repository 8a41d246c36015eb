//! The readers: a fixed set of threads that run read jobs on pooled
//! read-only connections. One thread per pooled connection, so a job never
//! waits for a connection, and the process has as many reading threads as the
//! pool has connections (not one blocking-pool thread per waiting request,
//! each with its own stack and malloc arena). Jobs wait in one queue; an idle
//! reader takes the next.

use super::DbError;
use super::pool::ReadOnlyManager;
use super::stats::DbStats;
use crossbeam_channel as channel;
use rusqlite::Connection;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

/// A queued read: when it was queued, and what to run.
type ReadJob = (
    Instant,
    Box<dyn FnOnce(Result<&Connection, DbError>) + Send>,
);

pub(super) struct Readers {
    jobs: channel::Sender<ReadJob>,
}

impl Readers {
    /// Starts one thread per connection of `pool` (`pool.max_size()`).
    pub(super) fn start(pool: r2d2::Pool<ReadOnlyManager>, stats: Arc<DbStats>) -> Self {
        let (jobs, queue) = channel::unbounded::<ReadJob>();
        for n in 0..pool.max_size() {
            let (pool, queue, stats) = (pool.clone(), queue.clone(), stats.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("ferrobase-read-{n}"))
                .spawn(move || reader_loop(&pool, &queue, &stats));
            if let Err(e) = spawned {
                // Fewer readers only means less parallelism; none means every read fails.
                tracing::error!(error = %e, "cannot start a reader thread");
            }
        }
        Self { jobs }
    }

    /// Runs `f` on a reader thread and returns its answer.
    pub(super) async fn run<T, E>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: ReadJob = (
            Instant::now(),
            Box::new(move |conn| {
                let _ = reply.send(conn.map_err(E::from).and_then(f));
            }),
        );
        self.jobs.send(job).map_err(|_| DbError::ReaderGone)?;
        // A dropped reply means the job panicked (or the readers stopped).
        answer.await.map_err(|_| DbError::ReaderGone)?
    }
}

fn reader_loop(
    pool: &r2d2::Pool<ReadOnlyManager>,
    queue: &channel::Receiver<ReadJob>,
    stats: &DbStats,
) {
    // Ends when every sender (the `Db` handle) is gone.
    while let Ok((queued, job)) = queue.recv() {
        let ran = catch_unwind(AssertUnwindSafe(|| match pool.get() {
            Ok(conn) => {
                stats.read_waited(queued.elapsed());
                job(Ok(&conn));
            }
            Err(e) => job(Err(DbError::from(e))),
        }));
        if ran.is_err() {
            tracing::error!("a read job panicked; its request fails, the reader goes on");
        }
    }
}
