//! A write session: one writer transaction held open across the writes a
//! JavaScript model hook (`onRecordCreate` …) makes, so that `e.next()`, the
//! hook's own `$app.save` calls and the write that triggered the hook commit
//! or roll back together, as PocketBase's transactional hooks do.
//!
//! The hook runs on a hook thread while the database serves the session:
//! the first write opens one held write job ([`Db::write_held`]: on SQLite
//! a grouped job on the writer thread, on PostgreSQL one transaction on a
//! connection thread) whose closure executes the session's operations one
//! by one (each in its own savepoint, so a failed write leaves nothing)
//! until the owner ends the session with commit or rollback, or until its
//! time limit passes (then it rolls back). A nested hooked write joins the
//! session as a child: its own savepoint, released or rolled back when it
//! ends. Operations take the engine-neutral [`Conn`]; [`Session::run`]
//! keeps the SQLite-only ones (rusqlite) and refuses them on PostgreSQL.
//!
//! On PostgreSQL a deadlock or serialization failure inside a session
//! fails the whole session: it rolls back at once (releasing its locks),
//! and its later operations and its commit answer that failure. Unlike a
//! plain write it cannot be run again, since the hook's JavaScript already
//! ran around it.
//!
//! Which session a write belongs to is a per-thread stack ([`enter`]), set
//! by the hook engine around an invocation; [`current`] is `None` on every
//! other thread, so writes outside hooks are unchanged. Realtime changes,
//! stale-file cleanups and newly placed files are held by the session and
//! handled once the outermost session ends.

use super::RecordError;
use super::files::Cleanup;
use crate::db::postgres::PgFailure;
use crate::db::{Conn, Db, DbError};
use crate::files::{self, BlobKey, Store};
use crate::realtime::{Changes, Hub};
use rusqlite::Connection;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// An operation, given the session's transaction.
type Op = Box<dyn FnOnce(&mut dyn Conn) + Send>;

enum Msg {
    Run(Op),
    /// Commit (with the changes for PostgreSQL's outbox) or roll back.
    End {
        commit: bool,
        outbox: Changes,
    },
}

/// The writer side of a session: opened on the first operation.
struct Root {
    db: Db,
    limit: Duration,
    link: Mutex<Option<Link>>,
    /// The deadlock or serialization failure that ended the transaction.
    failure: Arc<Mutex<Option<PgFailure>>>,
}

struct Link {
    ops: crossbeam_channel::Sender<Msg>,
    /// The outcome, with the outbox position of the changes (PostgreSQL).
    done: oneshot::Receiver<Result<Option<i64>, RecordError>>,
}

/// What a session holds until it ends.
#[derive(Default)]
struct Held {
    changes: Changes,
    cleanup: Cleanup,
    placed: Vec<BlobKey>,
}

/// One (possibly nested) write session.
pub struct Session {
    root: Arc<Root>,
    /// The session this one was begun inside.
    parent: Option<Arc<Session>>,
    /// 0 for the outermost session; a child's savepoint is `hook_<depth>`.
    depth: usize,
    started: AtomicBool,
    held: Mutex<Held>,
}

thread_local! {
    static CURRENT: RefCell<Vec<Arc<Session>>> = const { RefCell::new(Vec::new()) };
}

/// Makes `session` the current one on this thread until the guard drops.
pub fn enter(session: Option<Arc<Session>>) -> Entered {
    let pushed = session.is_some();
    if let Some(s) = session {
        CURRENT.with(|c| c.borrow_mut().push(s));
    }
    Entered { pushed }
}

/// Guard of [`enter`].
pub struct Entered {
    pushed: bool,
}

impl Drop for Entered {
    fn drop(&mut self) {
        if self.pushed {
            CURRENT.with(|c| c.borrow_mut().pop());
        }
    }
}

/// Makes `session` current until [`truncate`] drops it (a transaction a
/// script opens and closes in two host calls).
pub fn push(session: Arc<Session>) {
    CURRENT.with(|c| c.borrow_mut().push(session));
}

/// How many sessions are current on this thread.
pub fn depth() -> usize {
    CURRENT.with(|c| c.borrow().len())
}

/// Drops the sessions above `depth` (the innermost first); returns them.
pub fn truncate(depth: usize) -> Vec<Arc<Session>> {
    CURRENT.with(|c| {
        let mut stack = c.borrow_mut();
        let keep = depth.min(stack.len());
        let mut dropped = stack.split_off(keep);
        dropped.reverse();
        dropped
    })
}

/// The session writes on this thread belong to, if any.
pub fn current() -> Option<Arc<Session>> {
    CURRENT.with(|c| c.borrow().last().cloned())
}

impl Session {
    /// A new session: a child of the current one, or an outermost session
    /// that may hold the writer at most `limit`.
    pub fn begin(db: &Db, limit: Duration) -> Arc<Session> {
        Self::begin_in(current(), db, limit)
    }

    /// A new session inside `parent` (its child), or an outermost one when
    /// `parent` is `None`: for a caller that holds its session explicitly
    /// (a batch on an HTTP worker, where the per-thread stack is not used).
    pub fn begin_in(parent: Option<Arc<Session>>, db: &Db, limit: Duration) -> Arc<Session> {
        match parent {
            Some(parent) => Arc::new(Session {
                root: parent.root.clone(),
                depth: parent.depth + 1,
                parent: Some(parent),
                started: AtomicBool::new(false),
                held: Mutex::default(),
            }),
            None => Arc::new(Session {
                root: Arc::new(Root {
                    db: db.clone(),
                    limit,
                    link: Mutex::new(None),
                    failure: Arc::default(),
                }),
                depth: 0,
                parent: None,
                started: AtomicBool::new(false),
                held: Mutex::default(),
            }),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs SQLite-only `f` (rusqlite) as [`Session::run_conn`] does; on
    /// PostgreSQL it answers [`DbError::NotOnPostgres`].
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection, &mut Changes) -> Result<T, RecordError> + Send + 'static,
    ) -> Result<T, RecordError> {
        self.run_conn(move |conn, changes| match conn.sqlite() {
            Some(tx) => f(tx, changes),
            None => Err(DbError::NotOnPostgres("this step of a hook's write session").into()),
        })
        .await
    }

    /// Runs `f` inside the session's transaction, in a savepoint of its own
    /// (rolled back alone when `f` fails). Its changes are held.
    pub async fn run_conn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Conn, &mut Changes) -> Result<T, RecordError> + Send + 'static,
    ) -> Result<T, RecordError> {
        if self.depth > 0 && !self.started.swap(true, Ordering::SeqCst) {
            let name = format!("hook_{}", self.depth);
            self.raw(move |tx| control(tx, &format!("SAVEPOINT {name}")))
                .await?;
        }
        let (out, changes) = self
            .raw(move |tx| {
                control(tx, "SAVEPOINT hook_op")?;
                let mut changes = Changes::default();
                match f(tx, &mut changes) {
                    Ok(out) => {
                        control(tx, "RELEASE hook_op")?;
                        Ok((out, changes))
                    }
                    Err(e) => {
                        control(tx, "ROLLBACK TO hook_op; RELEASE hook_op")?;
                        Err(e)
                    }
                }
            })
            .await?;
        self.held().changes.extend(changes);
        Ok(out)
    }

    /// Sends one operation to the database (opening the transaction first).
    async fn raw<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, RecordError> + Send + 'static,
    ) -> Result<T, RecordError> {
        let ops = {
            let mut link = self.root.link.lock().unwrap_or_else(|p| p.into_inner());
            match &*link {
                Some(l) => l.ops.clone(),
                None => {
                    let (ops, queue) = crossbeam_channel::unbounded::<Msg>();
                    let (done_tx, done) = oneshot::channel();
                    let (db, limit) = (self.root.db.clone(), self.root.limit);
                    let failure = self.root.failure.clone();
                    tokio::spawn(async move {
                        let result = db
                            .write_held(move |tx| serve(tx, &queue, limit, &failure))
                            .await;
                        let _ = done_tx.send(result);
                    });
                    *link = Some(Link {
                        ops: ops.clone(),
                        done,
                    });
                    ops
                }
            }
        };
        let (reply, answer) = oneshot::channel();
        let op: Op = Box::new(move |tx| {
            let _ = reply.send(f(tx));
        });
        ops.send(Msg::Run(op)).map_err(|_| self.lost())?;
        answer.await.map_err(|_| self.lost())?
    }

    /// Why an operation found the transaction gone: the failure that ended
    /// it, else the stopped writer.
    fn lost(&self) -> RecordError {
        let failure = self.root.failure.lock().unwrap_or_else(|p| p.into_inner());
        failure.as_ref().map_or_else(gone, failed)
    }

    /// Keeps blobs this session placed (removed if it rolls back) and the
    /// cleanup of a write (run once it committed).
    pub(super) fn hold_files(&self, placed: Vec<BlobKey>, cleanup: Cleanup) {
        let mut held = self.held();
        held.placed.extend(placed);
        held.cleanup.absorb(cleanup);
    }

    /// Ends the session. A child releases (or rolls back) its savepoint and
    /// hands what it holds to its parent; the outermost session commits (or
    /// rolls back) and then publishes, cleans up or removes placed files.
    pub async fn end(&self, commit: bool, store: &Store, hub: &Hub) -> Result<(), RecordError> {
        let held = std::mem::take(&mut *self.held());
        if let Some(parent) = &self.parent {
            let mut result = Ok(());
            if self.started.load(Ordering::SeqCst) {
                let name = format!("hook_{}", self.depth);
                let sql = if commit {
                    format!("RELEASE {name}")
                } else {
                    format!("ROLLBACK TO {name}; RELEASE {name}")
                };
                result = self.raw(move |tx| control(tx, &sql)).await;
            }
            if commit && result.is_ok() {
                let mut up = parent.held();
                up.changes.extend(held.changes);
                up.cleanup.absorb(held.cleanup);
                up.placed.extend(held.placed);
            } else {
                files::remove(store, held.placed, Vec::new()).await;
            }
            return result;
        }
        let link = self
            .root
            .link
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        // On PostgreSQL the changes go to the outbox once, just before the
        // commit (its lock is held until then: per write it would hold every
        // other writer back for the whole session), and every node's
        // listener publishes them; SQLite's are published here.
        let mut changes = held.changes;
        let outbox = match self.root.db.dialect() {
            crate::rules::Dialect::Postgres => std::mem::take(&mut changes),
            crate::rules::Dialect::Sqlite => Changes::default(),
        };
        let result = match link {
            None => Ok(None),
            Some(Link { ops, done }) => {
                let _ = ops.send(Msg::End { commit, outbox });
                drop(ops);
                let outcome = done.await.map_err(|_| gone()).and_then(|r| r);
                if commit { outcome } else { Ok(None) }
            }
        };
        if commit && let Ok(seq) = &result {
            match seq {
                Some(seq) => hub.wait_for_outbox(*seq).await,
                None => hub.publish(changes),
            }
            held.cleanup.run(store).await;
        } else {
            files::remove(store, held.placed, Vec::new()).await;
        }
        result.map(|_| ())
    }
}

fn gone() -> RecordError {
    RecordError::Db(DbError::WriterGone)
}

/// Runs savepoint statements (`;`-separated, no values): as one batch on
/// SQLite, one by one on PostgreSQL.
fn control(tx: &mut dyn Conn, sql: &str) -> Result<(), RecordError> {
    if let Some(c) = tx.sqlite() {
        return Ok(c.execute_batch(sql)?);
    }
    for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        tx.execute(statement, &[])?;
    }
    Ok(())
}

fn failed(failure: &PgFailure) -> RecordError {
    RecordError::Db(DbError::Postgres(failure.clone()))
}

/// The database side: runs operations until the owner ends the session, or
/// rolls back once `limit` has passed without an end. A deadlock or
/// serialization failure (PostgreSQL) rolls back at once, releasing the
/// session's locks; it is kept in `failure` for the later operations.
fn serve(
    tx: &mut dyn Conn,
    queue: &crossbeam_channel::Receiver<Msg>,
    limit: Duration,
    failure: &Mutex<Option<PgFailure>>,
) -> Result<Option<i64>, RecordError> {
    let deadline = Instant::now() + limit;
    loop {
        let wait = deadline.saturating_duration_since(Instant::now());
        match queue.recv_timeout(wait) {
            Ok(Msg::Run(op)) => {
                op(&mut *tx);
                if let Some(f) = tx.retryable() {
                    let error = failed(&f);
                    *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(f);
                    return Err(error);
                }
            }
            Ok(Msg::End {
                commit: true,
                outbox,
            }) => return Ok(crate::realtime::outbox::append(tx, &outbox)?),
            Ok(Msg::End { commit: false, .. }) => return Err(RecordError::Aborted),
            Err(_) => {
                tracing::error!(target: "ferrobase::hooks", "a hook held its write transaction past {limit:?}; rolled back");
                return Err(RecordError::Aborted);
            }
        }
    }
}
