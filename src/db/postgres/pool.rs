//! The PostgreSQL connections: a fixed set of threads, each owning one
//! connection, taking jobs from one queue (the blocking client never runs
//! on the async executor). Every job is one transaction. A write that fails
//! with a deadlock or a serialization failure is rolled back and run again
//! (bounded), so a caller sees it only if it keeps failing; acknowledged
//! still means committed. A connection the server dropped is replaced
//! before the next job; one idle for [`IDLE_CHECK_AFTER`] is checked first.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel as channel;
use postgres::{Client, IsolationLevel};
use tokio::sync::oneshot;

use super::PgFailure;
use super::connect::{PgConnectError, connect};
use super::statements::{Generation, Statements};
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

/// A job: runs on a connection thread with its client and the client's
/// prepared statements.
type Job = Box<dyn FnOnce(&mut Client, &mut Statements, &PgStats) + Send>;

/// Shared handle to the PostgreSQL connection threads; cheap to clone.
#[derive(Clone)]
pub struct PgDb {
    jobs: channel::Sender<(Instant, Job)>,
    stats: Arc<PgStats>,
    /// Counted up when a connection to the server is known to have broken
    /// (the realtime listener lost its session): each connection thread
    /// checks its own connection before its next job.
    suspect: Arc<AtomicU64>,
    /// How long a read's statements may run (`database.query_timeout_ms`;
    /// zero: no limit), as SQLite's reads.
    read_timeout: Duration,
    /// Held transactions ([`PgDb::write_once`]) take at most half the
    /// connections, so the reads and writes a held one waits for (a hook's
    /// `findRecordById` before its session ends) always find one.
    held: Arc<tokio::sync::Semaphore>,
    /// Where the connections go, for the SQL console's connection of its
    /// own (it carries the password: never shown).
    url: Arc<str>,
    /// Counted up by every committed schema change: the connections'
    /// prepared statements are then stale.
    generation: Generation,
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
        let suspect = Arc::new(AtomicU64::new(0));
        let generation = Generation::default();
        let (ready, started) = std::sync::mpsc::channel();
        let mut threads: usize = 0;
        for n in 0..connections.max(1) {
            let (url, queue, stats, ready) =
                (url.to_owned(), queue.clone(), stats.clone(), ready.clone());
            let suspect = suspect.clone();
            let statements = Statements::new(generation.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("ferrobase-pg-{n}"))
                .spawn(move || match connect(&url) {
                    Ok(client) => {
                        let _ = ready.send(Ok(()));
                        connection_loop(client, statements, &url, &queue, &stats, &suspect);
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
            suspect,
            read_timeout,
            held: Arc::new(tokio::sync::Semaphore::new(threads.div_ceil(2).max(1))),
            url: Arc::from(url),
            generation,
        })
    }

    /// Makes every connection prepare its statements again: the schema
    /// changed (on another node; this node's own changes do it at commit).
    pub fn forget_prepared(&self) {
        self.generation.bump();
    }

    /// Has every connection checked (one empty query) before its next job:
    /// after a network cut each would otherwise fail one job to find out.
    pub fn suspect_connections(&self) {
        self.suspect.fetch_add(1, Ordering::Relaxed);
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
        self.run(move |client, statements, _| {
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
            let answer = f(&mut PgConn::cached(&mut tx, statements))?;
            tx.commit()
                .map_err(|e| E::from(DbError::Postgres(e.into())))?;
            Ok(answer)
        })
        .await
    }

    /// Runs `f` for the SQL console: on a connection of its own, closed
    /// afterwards (so no session state the typed SQL leaves, a setting or
    /// a session lock, reaches the pooled connections), in one `READ ONLY`
    /// transaction whose statements stop past the read timeout, rolled
    /// back at the end. The job holds a pool thread while it runs.
    pub async fn console<T, E>(
        &self,
        f: impl FnOnce(&mut postgres::Transaction<'_>) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let timeout_ms = self.read_timeout.as_millis();
        let url = self.url.clone();
        self.run(move |_, _, _| {
            let failed = |e: postgres::Error| E::from(DbError::Postgres(e.into()));
            let mut client = connect(&url).map_err(|e| {
                E::from(DbError::Postgres(PgFailure {
                    state: None,
                    message: e.to_string(),
                }))
            })?;
            let mut tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .map_err(failed)?;
            if timeout_ms > 0 {
                // A number we format: no user input reaches this statement.
                tx.batch_execute(&format!("SET LOCAL statement_timeout = {timeout_ms}"))
                    .map_err(failed)?;
            }
            let answer = f(&mut tx);
            drop(tx.rollback());
            answer
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
        self.run(move |client, statements, stats| {
            let failed = |failure: PgFailure| E::from(DbError::Postgres(failure));
            let mut attempt = 1;
            loop {
                let mut tx = client.transaction().map_err(|e| failed(e.into()))?;
                let mut conn = PgConn::cached(&mut tx, statements);
                let outcome = f(&mut conn);
                let retryable = conn.retryable();
                let changed_schema = conn.changed_schema();
                let (error, failure) = match (outcome, retryable) {
                    (Ok(answer), _) => match tx.commit() {
                        Ok(()) => {
                            if changed_schema {
                                statements.forget_everywhere();
                            }
                            return Ok(answer);
                        }
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
        self.run(move |client, statements, stats| {
            let failed = |failure: PgFailure| E::from(DbError::Postgres(failure));
            let mut tx = client.transaction().map_err(|e| failed(e.into()))?;
            let mut conn = PgConn::cached(&mut tx, statements);
            let outcome = f(&mut conn);
            if let Some(failure) = conn.retryable() {
                stats.count_failure(&failure);
            }
            let changed_schema = conn.changed_schema();
            let answer = outcome?;
            tx.commit().map_err(|e| failed(e.into()))?;
            if changed_schema {
                statements.forget_everywhere();
            }
            Ok(answer)
        })
        .await
    }

    /// Runs one constant statement outside any transaction with the simple
    /// query protocol (one round trip) and returns its rows as text: for
    /// checks made before every request. `sql` takes no parameters, so it
    /// must be a constant of ours.
    pub async fn simple_rows(
        &self,
        sql: &'static str,
    ) -> Result<Vec<Vec<Option<String>>>, DbError> {
        self.run(move |client, _, _| {
            let messages = client
                .simple_query(sql)
                .map_err(|e| DbError::Postgres(e.into()))?;
            Ok(messages
                .into_iter()
                .filter_map(|m| match m {
                    postgres::SimpleQueryMessage::Row(row) => Some(
                        (0..row.len())
                            .map(|i| row.get(i).map(str::to_owned))
                            .collect(),
                    ),
                    _ => None,
                })
                .collect())
        })
        .await
    }

    /// Queues `job` and waits for its answer.
    async fn run<T, E>(
        &self,
        job: impl FnOnce(&mut Client, &mut Statements, &PgStats) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let boxed: Job = Box::new(move |client, statements, stats| {
            let _ = tx.send(job(client, statements, stats));
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
        } else if failure.is_serialization_failure() {
            self.serialization_failures.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A connection idle this long is checked (one empty query) before its
/// next job: a server restart or network cut meanwhile is noticed there,
/// not by the job failing.
pub const IDLE_CHECK_AFTER: Duration = Duration::from_secs(1);
/// How long that check may take before the connection is replaced.
const IDLE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

fn connection_loop(
    mut client: Client,
    mut statements: Statements,
    url: &str,
    queue: &channel::Receiver<(Instant, Job)>,
    stats: &PgStats,
    suspect: &AtomicU64,
) {
    let mut last_used = Instant::now();
    let mut checked = suspect.load(Ordering::Relaxed);
    while let Ok((queued, job)) = queue.recv() {
        let waited = u64::try_from(queued.elapsed().as_micros()).unwrap_or(u64::MAX);
        stats.jobs.fetch_add(1, Ordering::Relaxed);
        stats.wait_micros.fetch_add(waited, Ordering::Relaxed);
        let suspected = suspect.load(Ordering::Relaxed);
        let check = last_used.elapsed() >= IDLE_CHECK_AFTER || suspected != checked;
        checked = suspected;
        if client.is_closed() || (check && client.is_valid(IDLE_CHECK_TIMEOUT).is_err()) {
            match connect(url) {
                Ok(fresh) => {
                    client = fresh;
                    statements = statements.for_new_connection();
                    stats.reconnects.fetch_add(1, Ordering::Relaxed);
                }
                // The job then fails on the closed client and says why.
                Err(e) => tracing::error!(error = %e, "cannot reconnect to PostgreSQL"),
            }
        }
        statements.refresh();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            job(&mut client, &mut statements, stats)
        }));
        last_used = Instant::now();
        if outcome.is_err() {
            // The job's requester sees its channel close; the connection
            // may be mid-transaction, so start over with a fresh one.
            tracing::error!("a PostgreSQL job panicked; reconnecting");
            if let Ok(fresh) = connect(url) {
                client = fresh;
                statements = statements.for_new_connection();
                stats.reconnects.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
