//! The readers: a fixed set of threads that run read jobs on pooled
//! read-only connections. One thread per pooled connection, so a job never
//! waits for a connection, and the process has as many reading threads as the
//! pool has connections (not one blocking-pool thread per waiting request,
//! each with its own stack and malloc arena). Jobs wait in one queue; an idle
//! reader takes the next.
//!
//! Every job runs under the query time limit (`limit`): its SQL is
//! interrupted past the deadline, or as soon as its requester stops waiting
//! (the request future was dropped); a job still queued when its requester
//! left is skipped. Either way the reader is free for the next job.

use super::DbError;
use super::limit::{self, AbandonOnDrop};
use super::pool::ReadOnlyManager;
use super::stats::DbStats;
use crossbeam_channel as channel;
use rusqlite::Connection;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Runs a read with its watch (deadline and abandoned flag) and sends the answer.
type RunRead = Box<dyn FnOnce(Result<&Connection, DbError>, Watch) + Send>;

/// A queued read.
struct ReadJob {
    /// When it was queued (for the wait statistics).
    queued: Instant,
    /// Set once the requester stops waiting.
    abandoned: Arc<AtomicBool>,
    /// How long its SQL may run; `None` for the few unlimited reads (backups).
    timeout: Option<Duration>,
    run: RunRead,
}

/// What the reader hands the job to watch it by.
struct Watch {
    deadline: Option<Instant>,
    abandoned: Arc<AtomicBool>,
}

pub(super) struct Readers {
    jobs: channel::Sender<ReadJob>,
    timeout: Duration,
}

impl Readers {
    /// Starts one thread per connection of `pool` (`pool.max_size()`); reads
    /// are limited to `timeout` each.
    pub(super) fn start(
        pool: r2d2::Pool<ReadOnlyManager>,
        stats: Arc<DbStats>,
        timeout: Duration,
    ) -> Self {
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
        Self { jobs, timeout }
    }

    /// Runs `f` on a reader thread under the query time limit and returns
    /// its answer, or [`DbError::TimedOut`] when the limit interrupted it.
    pub(super) async fn run<T, E>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        self.run_limited(Some(self.timeout), f).await
    }

    /// [`Readers::run`] with no time limit (a client going away still stops it).
    pub(super) async fn run_unlimited<T, E>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        self.run_limited(None, f).await
    }

    async fn run_limited<T, E>(
        &self,
        timeout: Option<Duration>,
        f: impl FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let abandoned = Arc::new(AtomicBool::new(false));
        // Dropped with this future: when the requester stops waiting, the
        // job is skipped (still queued) or interrupted (running).
        let _abandon = AbandonOnDrop(abandoned.clone());
        let job = ReadJob {
            queued: Instant::now(),
            abandoned,
            timeout,
            run: Box::new(move |conn, watch: Watch| {
                let out = match conn {
                    Ok(conn) => limit::guarded(watch.deadline, Some(watch.abandoned), || f(conn)),
                    Err(e) => Err(E::from(e)),
                };
                let _ = reply.send(out);
            }),
        };
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
    while let Ok(job) = queue.recv() {
        let ReadJob {
            queued,
            abandoned,
            timeout,
            run,
        } = job;
        if abandoned.load(Ordering::Relaxed) {
            // Its requester is gone: dropping the job drops its reply unsent.
            continue;
        }
        let ran = catch_unwind(AssertUnwindSafe(|| match pool.get() {
            Ok(conn) => {
                stats.read_waited(queued.elapsed());
                // The limit counts from the start of the job, like
                // PocketBase's per-query context: time spent queued is load,
                // not this query's cost.
                let watch = Watch {
                    deadline: timeout.and_then(limit::deadline_in),
                    abandoned,
                };
                run(Ok(&conn), watch);
                end_open_transaction(&conn);
            }
            Err(e) => run(
                Err(DbError::from(e)),
                Watch {
                    deadline: None,
                    abandoned,
                },
            ),
        }));
        if ran.is_err() {
            tracing::error!("a read job panicked; its request fails, the reader goes on");
        }
    }
}

/// A job interrupted (or failing) between its own `BEGIN` and `COMMIT`
/// would leave its read transaction open on the pooled connection, pinning
/// an old snapshot (and the WAL behind it) for every later job.
fn end_open_transaction(conn: &Connection) {
    if !conn.is_autocommit()
        && let Err(e) = conn.execute_batch("ROLLBACK")
    {
        tracing::warn!(error = %e, "cannot end a read transaction left open by a job");
    }
}
