//! The PostgreSQL connections: a fixed set of threads, each owning one
//! connection, taking jobs from one queue (the blocking client never runs
//! on the async executor). Every job is one transaction. A write that fails
//! with a deadlock or a serialization failure is rolled back and run again
//! (bounded), so a caller sees it only if it keeps failing; acknowledged
//! still means committed. A connection the server dropped is replaced
//! before the next job.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel as channel;
use postgres::{Client, IsolationLevel};
use tokio::sync::oneshot;

use super::PgFailure;
use super::connect::{PgConnectError, connect};
use crate::db::DbError;
use crate::db::conn::{Conn, PgConn};

/// How many times a transaction runs before its deadlock or serialization
/// failure reaches the caller.
pub const MAX_ATTEMPTS: u32 = 8;

/// Counters for metrics: how long jobs waited for a connection, how often
/// transactions were run again and why.
#[derive(Debug, Default)]
pub struct PgStats {
    jobs: AtomicU64,
    wait_micros: AtomicU64,
    retries: AtomicU64,
    deadlocks: AtomicU64,
    serialization_failures: AtomicU64,
    reconnects: AtomicU64,
}

/// A copy of [`PgStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PgStatsSnapshot {
    pub jobs: u64,
    pub wait_micros: u64,
    pub retries: u64,
    pub deadlocks: u64,
    pub serialization_failures: u64,
    pub reconnects: u64,
}

impl PgStats {
    pub fn snapshot(&self) -> PgStatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        PgStatsSnapshot {
            jobs: get(&self.jobs),
            wait_micros: get(&self.wait_micros),
            retries: get(&self.retries),
            deadlocks: get(&self.deadlocks),
            serialization_failures: get(&self.serialization_failures),
            reconnects: get(&self.reconnects),
        }
    }
}

/// A job: runs on a connection thread with its client.
type Job = Box<dyn FnOnce(&mut Client, &PgStats) + Send>;

/// Shared handle to the PostgreSQL connection threads; cheap to clone.
#[derive(Clone)]
pub struct PgDb {
    jobs: channel::Sender<(Instant, Job)>,
    stats: Arc<PgStats>,
    /// How long a read's statements may run (`database.query_timeout_ms`;
    /// zero: no limit), as SQLite's reads.
    read_timeout: Duration,
    /// Held transactions ([`PgDb::write_once`]) take at most half the
    /// connections, so the reads and writes a held one waits for (a hook's
    /// `findRecordById` before its session ends) always find one.
    held: Arc<tokio::sync::Semaphore>,
}

impl PgDb {
    /// Starts one thread per connection, each connecting its own client to
    /// `url`; fails if any cannot connect. The connections are made on
    /// those threads (the blocking client refuses to start inside an async
    /// runtime), so this may be called from anywhere.
    pub fn open(
        url: &str,
        connections: usize,
        read_timeout: Duration,
    ) -> Result<Self, PgConnectError> {
        let (jobs, queue) = channel::unbounded::<(Instant, Job)>();
        let stats = Arc::new(PgStats::default());
        let (ready, started) = std::sync::mpsc::channel();
        let mut threads: usize = 0;
        for n in 0..connections.max(1) {
            let (url, queue, stats, ready) =
                (url.to_owned(), queue.clone(), stats.clone(), ready.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("ferrobase-pg-{n}"))
                .spawn(move || match connect(&url) {
                    Ok(client) => {
                        let _ = ready.send(Ok(()));
                        connection_loop(client, &url, &queue, &stats);
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                    }
                });
            match spawned {
                Ok(_) => threads += 1,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start a PostgreSQL connection thread")
                }
            }
        }
        drop(ready);
        for _ in 0..threads {
            match started.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => break,
            }
        }
        Ok(Self {
            jobs,
            stats,
            read_timeout,
            held: Arc::new(tokio::sync::Semaphore::new(threads.div_ceil(2).max(1))),
        })
    }

    /// The live counters.
    pub fn stats(&self) -> PgStatsSnapshot {
        self.stats.snapshot()
    }

    /// Runs `f` in one read-only transaction that sees one snapshot
    /// (`REPEATABLE READ`, as a SQLite read transaction), its statements
    /// stopped past the read timeout ([`DbError::TimedOut`]).
    pub async fn read<T, E>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let timeout_ms = self.read_timeout.as_millis();
        self.run(move |client, _| {
            let mut tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .map_err(|e| E::from(DbError::Postgres(e.into())))?;
            if timeout_ms > 0 {
                // A number we format: no user input reaches this statement.
                tx.batch_execute(&format!("SET LOCAL statement_timeout = {timeout_ms}"))
                    .map_err(|e| E::from(DbError::Postgres(e.into())))?;
            }
            let answer = f(&mut PgConn::new(&mut tx))?;
            tx.commit()
                .map_err(|e| E::from(DbError::Postgres(e.into())))?;
            Ok(answer)
        })
        .await
    }

    /// Runs `f` in one read-write transaction (`READ COMMITTED`; invariants
    /// take their own row or advisory locks) and commits it. A deadlock or
    /// serialization failure, in `f` or at the commit, rolls back and runs
    /// `f` again, up to [`MAX_ATTEMPTS`] times: `f` must be safe to repeat.
    pub async fn write<T, E>(
        &self,
        mut f: impl FnMut(&mut dyn Conn) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        self.run(move |client, stats| {
            let failed = |failure: PgFailure| E::from(DbError::Postgres(failure));
            let mut attempt = 1;
            loop {
                let mut tx = client.transaction().map_err(|e| failed(e.into()))?;
                let mut conn = PgConn::new(&mut tx);
                let outcome = f(&mut conn);
                let retryable = conn.retryable();
                let (error, failure) = match (outcome, retryable) {
                    (Ok(answer), _) => match tx.commit() {
                        Ok(()) => return Ok(answer),
                        Err(e) => {
                            let failure = PgFailure::from(e);
                            if !failure.is_retryable() {
                                return Err(failed(failure));
                            }
                            (failed(failure.clone()), failure)
                        }
                    },
                    // `tx` rolls back as it drops.
                    (Err(e), Some(failure)) => (e, failure),
                    (Err(e), None) => return Err(e),
                };
                stats.count_retry(&failure);
                if attempt >= MAX_ATTEMPTS {
                    return Err(error);
                }
                attempt += 1;
                // A pause growing with each attempt, jittered so that transactions
                // which collided do not start again in the same order.
                let step = u64::from(attempt) * 2;
                let jitter = rand::Rng::random_range(&mut rand::rng(), 0..=step);
                std::thread::sleep(Duration::from_millis(step + jitter));
            }
        })
        .await
    }

    /// Runs `f` in one read-write transaction held on a connection thread
    /// for as long as `f` runs (a write session serving a hook's writes),
    /// and commits it if `f` succeeds. Never run again: a deadlock or
    /// serialization failure reaches the caller, who cannot replay what
    /// happened outside the transaction meanwhile. At most half the
    /// connections are held at once; more wait their turn here.
    pub async fn write_once<T, E>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        // The semaphore is never closed; were it, the job runs unthrottled.
        let _turn = self.held.acquire().await.ok();
        self.run(move |client, stats| {
            let failed = |failure: PgFailure| E::from(DbError::Postgres(failure));
            let mut tx = client.transaction().map_err(|e| failed(e.into()))?;
            let mut conn = PgConn::new(&mut tx);
            let outcome = f(&mut conn);
            if let Some(failure) = conn.retryable() {
                stats.count_failure(&failure);
            }
            let answer = outcome?;
            tx.commit().map_err(|e| failed(e.into()))?;
            Ok(answer)
        })
        .await
    }

    /// Queues `job` and waits for its answer.
    async fn run<T, E>(
        &self,
        job: impl FnOnce(&mut Client, &PgStats) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let boxed: Job = Box::new(move |client, stats| {
            let _ = tx.send(job(client, stats));
        });
        self.jobs
            .send((Instant::now(), boxed))
            .map_err(|_| E::from(DbError::WriterGone))?;
        rx.await.map_err(|_| E::from(DbError::ReaderGone))?
    }
}

impl PgStats {
    fn count_retry(&self, failure: &PgFailure) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        self.count_failure(failure);
    }

    /// Counts a deadlock or serialization failure (run again or not).
    fn count_failure(&self, failure: &PgFailure) {
        if failure.is_deadlock() {
            self.deadlocks.fetch_add(1, Ordering::Relaxed);
        } else {
            self.serialization_failures.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn connection_loop(
    mut client: Client,
    url: &str,
    queue: &channel::Receiver<(Instant, Job)>,
    stats: &PgStats,
) {
    while let Ok((queued, job)) = queue.recv() {
        let waited = u64::try_from(queued.elapsed().as_micros()).unwrap_or(u64::MAX);
        stats.jobs.fetch_add(1, Ordering::Relaxed);
        stats.wait_micros.fetch_add(waited, Ordering::Relaxed);
        if client.is_closed() {
            match connect(url) {
                Ok(fresh) => {
                    client = fresh;
                    stats.reconnects.fetch_add(1, Ordering::Relaxed);
                }
                // The job then fails on the closed client and says why.
                Err(e) => tracing::error!(error = %e, "cannot reconnect to PostgreSQL"),
            }
        }
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut client, stats)));
        if outcome.is_err() {
            // The job's requester sees its channel close; the connection
            // may be mid-transaction, so start over with a fresh one.
            tracing::error!("a PostgreSQL job panicked; reconnecting");
            if let Ok(fresh) = connect(url) {
                client = fresh;
                stats.reconnects.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
