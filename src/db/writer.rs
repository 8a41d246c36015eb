//! The single writer: a thread that owns the read-write connection and runs
//! queued jobs. Two kinds of job:
//!
//! - *exclusive* jobs get the connection to themselves and manage their own
//!   transaction (schema changes, batches, account updates);
//! - *grouped* jobs run inside a transaction the writer opens: consecutive
//!   grouped jobs waiting in the queue share ONE transaction and ONE commit
//!   (one fsync), each isolated by a savepoint so a failing job rolls back
//!   only its own changes. Replies are sent only after the commit returns, so
//!   nothing is acknowledged that is not durable; if the commit fails, every
//!   job of the group gets the error.
//!
//! Grouped jobs (record writes, whose rule checks run user-supplied values)
//! run under the query time limit; exclusive jobs do not (see `Db::write`).
//! An interrupted *write* statement makes SQLite roll back the whole group
//! transaction, not just the job's savepoint; the jobs before it in the group
//! are then told their changes are gone, and the rest of the group continues
//! in a new transaction.

use super::DbError;
use super::limit;
use super::stats::DbStats;
use crate::config::WalCheckpoints;
use rusqlite::Connection;
use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Most grouped jobs committed together.
pub const MAX_GROUP_JOBS: usize = 64;

/// Sends a grouped job's answer once the commit outcome is known.
type Reply = Box<dyn FnOnce(Option<DbError>) + Send>;
/// A grouped job: runs inside a savepoint (or, given `None`, does not run at
/// all and fails), says whether it succeeded, and returns its deferred reply.
type GroupedJob = Box<dyn FnOnce(Option<&Connection>) -> (bool, Reply) + Send>;
type ExclusiveJob = Box<dyn FnOnce(&mut Connection) + Send>;

enum Job {
    Exclusive(ExclusiveJob),
    Grouped(GroupedJob),
}

pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
    stats: Arc<DbStats>,
    /// How long a grouped job's SQL may run.
    timeout: Duration,
}

impl Writer {
    pub(super) fn start(
        mut conn: Connection,
        stats: Arc<DbStats>,
        timeout: Duration,
        checkpoints: WalCheckpoints,
    ) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let counters = stats.clone();
        let spawned = std::thread::Builder::new()
            .name("ferrobase-writer".to_owned())
            .spawn(move || {
                let mut next = queue.recv().ok();
                while let Some(job) = next.take() {
                    match job {
                        Job::Exclusive(f) => {
                            counters.dequeued(1);
                            counters.exclusive_job();
                            f(&mut conn)
                        }
                        Job::Grouped(first) => {
                            let mut group = vec![first];
                            while group.len() < MAX_GROUP_JOBS {
                                match queue.try_recv() {
                                    Ok(Job::Grouped(f)) => group.push(f),
                                    Ok(exclusive) => {
                                        next = Some(exclusive);
                                        break;
                                    }
                                    Err(_) => break,
                                }
                            }
                            counters.dequeued(group.len() as u64);
                            run_group(&mut conn, group, &counters);
                        }
                    }
                    if next.is_none() {
                        next = match queue.recv_timeout(IDLE_SHRINK_AFTER) {
                            Ok(job) => Some(job),
                            Err(mpsc::RecvTimeoutError::Timeout) => {
                                release_cache(&conn);
                                queue.recv().ok()
                            }
                            Err(mpsc::RecvTimeoutError::Disconnected) => None,
                        };
                    }
                }
                // Every handle is gone: leave a clean WAL behind, unless
                // another program (Litestream) owns the checkpoints.
                if checkpoints == WalCheckpoints::Auto
                    && let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
                {
                    tracing::warn!(error = %e, "final WAL checkpoint failed");
                }
            });
        if let Err(e) = spawned {
            // Without a writer thread every write fails with WriterGone, which is reported.
            tracing::error!(error = %e, "cannot start the writer thread");
        }
        Self {
            jobs,
            stats,
            timeout,
        }
    }

    /// Runs `f` with the connection to itself; `f` manages its own transaction.
    pub(super) async fn run<T, E>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Job::Exclusive(Box::new(move |conn| {
            // The receiver may have gone (client disconnected); the write still stands.
            let _ = reply.send(f(conn));
        }));
        self.stats.enqueued();
        self.jobs.send(job).map_err(|_| DbError::WriterGone)?;
        answer.await.map_err(|_| DbError::WriterGone)?
    }

    /// Runs `f` inside the writer's group transaction (under its own
    /// savepoint, within the query time limit) and answers after the
    /// group's commit.
    pub(super) async fn run_grouped<T, E>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let timeout = self.timeout;
        let job = Job::Grouped(Box::new(move |conn: Option<&Connection>| {
            let result = match conn {
                // No abandon flag: a write whose requester left still stands.
                Some(conn) => limit::guarded(limit::deadline_in(timeout), None, || f(conn)),
                None => Err(E::from(DbError::CommitFailed(
                    "the group transaction could not start".into(),
                ))),
            };
            let ok = result.is_ok();
            let send: Reply = Box::new(move |commit_error| {
                let out = match (commit_error, result) {
                    (Some(e), Ok(_)) => Err(E::from(e)),
                    (_, result) => result,
                };
                let _ = reply.send(out);
            });
            (ok, send)
        }));
        self.stats.enqueued();
        self.jobs.send(job).map_err(|_| DbError::WriterGone)?;
        answer.await.map_err(|_| DbError::WriterGone)?
    }
}

/// How long the writer waits without work before releasing its page cache.
const IDLE_SHRINK_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// Frees the writer's cached pages once writes pause: they are copies of
/// pages the memory map and the OS cache hold anyway, and after a burst of
/// writes they would otherwise stay resident for good.
fn release_cache(conn: &Connection) {
    if let Err(e) = conn.execute_batch("PRAGMA shrink_memory") {
        tracing::debug!(error = %e, "shrink_memory failed");
    }
}

/// Work a grouped job asks to run once, after the group's last job and
/// before its commit, outside any savepoint (see [`before_commit`]).
pub type BeforeCommit = fn(&Connection) -> rusqlite::Result<()>;

thread_local! {
    /// Whether this thread is the writer running a group's jobs.
    static IN_GROUP: Cell<bool> = const { Cell::new(false) };
    /// What the running group's jobs asked to run before its commit.
    static BEFORE_COMMIT: RefCell<Vec<BeforeCommit>> = const { RefCell::new(Vec::new()) };
}

/// Whether the calling thread runs a job of a writer group now (a record
/// write, a hook's write session): its changes commit with the group's.
pub fn in_group() -> bool {
    IN_GROUP.with(Cell::get)
}

/// Asks the writer to run `f` once before the running group commits, after
/// its last job (each job runs in a savepoint; `f` runs in none). A failure
/// of `f` fails the whole group, as a failed commit does. Outside a group,
/// nothing is asked.
pub fn before_commit(f: BeforeCommit) {
    if !in_group() {
        return;
    }
    BEFORE_COMMIT.with(|list| {
        let mut list = list.borrow_mut();
        if !list.iter().any(|g| std::ptr::fn_addr_eq(*g, f)) {
            list.push(f);
        }
    });
}

/// Marks the writer thread as running a group until dropped, and forgets
/// whatever the group asked to run before its commit.
struct Grouping;

impl Grouping {
    fn start() -> Self {
        IN_GROUP.with(|g| g.set(true));
        Grouping
    }

    /// What the group asked to run before its commit (asked for once).
    fn before_commit(&self) -> Vec<BeforeCommit> {
        BEFORE_COMMIT.with(|list| std::mem::take(&mut *list.borrow_mut()))
    }
}

impl Drop for Grouping {
    fn drop(&mut self) {
        IN_GROUP.with(|g| g.set(false));
        BEFORE_COMMIT.with(|list| list.borrow_mut().clear());
    }
}

/// One transaction for the whole group, one savepoint per job, one commit.
/// A successful commit is counted before the replies go out, so a caller
/// that got its answer also sees its group in the stats.
fn run_group(conn: &mut Connection, group: Vec<GroupedJob>, stats: &DbStats) {
    let grouping = Grouping::start();
    // Replies of the jobs inside the open transaction, sent after its commit.
    let mut replies: Vec<Reply> = Vec::with_capacity(group.len());
    let mut open = false;
    for job in group {
        if !open {
            if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
                tracing::error!(error = %e, "cannot begin a group transaction; a job is refused");
                let (_, reply) = job(None);
                reply(None);
                continue;
            }
            open = true;
        }
        if let Err(e) = conn.execute_batch("SAVEPOINT fb_job") {
            tracing::error!(error = %e, "opening a job savepoint failed; the job is refused");
            let (_, reply) = job(None);
            replies.push(reply);
            continue;
        }
        let (ok, reply) = job(Some(conn));
        if conn.is_autocommit() {
            // SQLite rolled the whole transaction back (an interrupted or
            // failed write statement): every change of the group so far is
            // gone. Say so to each job, and start a new transaction for the
            // jobs still to come instead of letting their savepoints commit
            // on their own.
            tracing::warn!(
                "a job's failure rolled back its group transaction; the group so far is refused"
            );
            open = false;
            for earlier in replies.drain(..) {
                earlier(Some(rolled_back()));
            }
            reply(if ok { Some(rolled_back()) } else { None });
            continue;
        }
        let closed = if ok {
            conn.execute_batch("RELEASE fb_job")
        } else {
            conn.execute_batch("ROLLBACK TO fb_job; RELEASE fb_job")
        };
        if let Err(e) = closed {
            tracing::error!(error = %e, "closing a job savepoint failed");
        }
        replies.push(reply);
    }
    if !open {
        return;
    }
    let prepared = grouping
        .before_commit()
        .into_iter()
        .try_for_each(|f| f(conn));
    if let Err(e) = prepared {
        tracing::error!(error = %e, "the group's work before its commit failed; every job of the group is refused");
        let _ = conn.execute_batch("ROLLBACK");
        for reply in replies {
            reply(Some(DbError::CommitFailed(e.to_string())));
        }
        return;
    }
    match conn.execute_batch("COMMIT") {
        Ok(()) => {
            stats.group_committed(replies.len() as u64);
            replies.into_iter().for_each(|reply| reply(None));
        }
        Err(e) => {
            tracing::error!(error = %e, "group commit failed; every job of the group is refused");
            let _ = conn.execute_batch("ROLLBACK");
            for reply in replies {
                reply(Some(DbError::CommitFailed(e.to_string())));
            }
        }
    }
}

fn rolled_back() -> DbError {
    DbError::CommitFailed("another write of the same group failed and rolled the group back".into())
}
