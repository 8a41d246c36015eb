//! The query time limit (PocketBase's `--queryTimeout`). Every connection
//! this module opens gets one SQLite progress handler at open time; it
//! consults a per-thread *watch* that [`watched`] sets around one job. With
//! no watch set (migrations, exclusive writer jobs, backups) the handler
//! never interrupts. With one set, it interrupts the running statement once
//! the job's deadline has passed, or once its requester has gone away (the
//! request future was dropped: a client that disconnects frees its reader).
//!
//! The handler runs on the thread stepping the statement, which is the
//! thread that set the watch: a connection is only ever used by the thread
//! that holds it. It runs every [`CHECK_EVERY_OPS`] VM steps and costs a
//! thread-local read, an atomic load and a clock read; setting a watch
//! allocates nothing.
//!
//! What the limit cannot stop: one VM step that itself runs long (a single
//! `LIKE` over a huge value, a sort of a large intermediate result is many
//! steps and *is* stopped). Those are bounded by input limits elsewhere.

use super::DbError;
use rusqlite::Connection;
use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// VM steps between two checks: about a few microseconds of work, so a
/// stop lands promptly while the check stays far below 1 % of a query.
pub(super) const CHECK_EVERY_OPS: std::os::raw::c_int = 1000;

/// Why a watched job was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// The deadline passed.
    TimedOut,
    /// Nobody waits for the answer any more.
    Abandoned,
}

impl From<Stop> for DbError {
    fn from(stop: Stop) -> Self {
        match stop {
            Stop::TimedOut => DbError::TimedOut,
            // Nobody reads this answer; it only has to be an error.
            Stop::Abandoned => DbError::Cancelled,
        }
    }
}

struct Watch {
    deadline: Option<Instant>,
    abandoned: Option<Arc<AtomicBool>>,
    stopped: Option<Stop>,
}

impl Watch {
    fn should_stop(&mut self) -> bool {
        if self.stopped.is_none() {
            let gone = self
                .abandoned
                .as_ref()
                .is_some_and(|flag| flag.load(Ordering::Relaxed));
            self.stopped = if gone {
                Some(Stop::Abandoned)
            } else if self.deadline.is_some_and(|d| Instant::now() >= d) {
                Some(Stop::TimedOut)
            } else {
                None
            };
        }
        // Once stopped, every later statement of the job is stopped too.
        self.stopped.is_some()
    }
}

thread_local! {
    static WATCH: RefCell<Option<Watch>> = const { RefCell::new(None) };
}

/// Called by SQLite every [`CHECK_EVERY_OPS`] steps; `true` interrupts.
fn progress() -> bool {
    // `try_borrow_mut`: never panic inside SQLite's callback; a watch that
    // is being set or cleared is simply not consulted this time.
    WATCH.with(|w| {
        w.try_borrow_mut()
            .ok()
            .and_then(|mut w| w.as_mut().map(Watch::should_stop))
            .unwrap_or(false)
    })
}

/// Installs the progress handler on a freshly opened connection.
pub(super) fn install(conn: &mut Connection) -> Result<(), DbError> {
    conn.progress_handler(CHECK_EVERY_OPS, Some(progress))?;
    Ok(())
}

/// A deadline `timeout` from now (none if it would overflow the clock).
pub(super) fn deadline_in(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// Clears the watch when the job ends, also when it panics.
struct Clear;

impl Drop for Clear {
    fn drop(&mut self) {
        WATCH.with(|w| {
            if let Ok(mut w) = w.try_borrow_mut() {
                *w = None;
            }
        });
    }
}

/// Runs `job` with the statements it steps on this thread interrupted
/// after `deadline` or once `abandoned` is set. Returns the job's output and,
/// when the handler interrupted anything, why: the output is then not to be
/// trusted (the job may have mistaken the interruption for "no rows").
pub(super) fn watched<T>(
    deadline: Option<Instant>,
    abandoned: Option<Arc<AtomicBool>>,
    job: impl FnOnce() -> T,
) -> (T, Option<Stop>) {
    WATCH.with(|w| {
        *w.borrow_mut() = Some(Watch {
            deadline,
            abandoned,
            stopped: None,
        })
    });
    let clear = Clear;
    let out = job();
    let stopped = WATCH.with(|w| w.borrow().as_ref().and_then(|w| w.stopped));
    drop(clear);
    (out, stopped)
}

/// [`watched`] for a fallible job: an interrupted job answers the [`Stop`]
/// as its error, whatever it returned.
pub(super) fn guarded<T, E: From<DbError>>(
    deadline: Option<Instant>,
    abandoned: Option<Arc<AtomicBool>>,
    job: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    match watched(deadline, abandoned, job) {
        (_, Some(stop)) => Err(E::from(DbError::from(stop))),
        (out, None) => out,
    }
}

/// Held by the requester while its job is queued or running; dropping it
/// (the request future was dropped, or the answer arrived) marks the job
/// abandoned, so a queued job is skipped and a running one interrupted.
pub(super) struct AbandonOnDrop(pub(super) Arc<AtomicBool>);

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COUNT_FAR: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
                             WHERE x < 1000000000) SELECT count(*) FROM c";

    fn conn() -> Connection {
        let mut conn = Connection::open_in_memory().expect("open");
        install(&mut conn).expect("install");
        conn
    }

    fn count(conn: &Connection, sql: &str) -> rusqlite::Result<i64> {
        conn.query_row(sql, [], |r| r.get(0))
    }

    #[test]
    fn without_a_watch_the_handler_never_interrupts() {
        let conn = conn();
        let n = count(
            &conn,
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000) \
             SELECT count(*) FROM c",
        );
        assert_eq!(n.expect("unwatched statements run to the end"), 100_000);
    }

    #[test]
    fn each_reason_stops_the_job_and_is_reported() {
        let past = Some(Instant::now());
        let set = Some(Arc::new(AtomicBool::new(true)));
        let unset = Some(Arc::new(AtomicBool::new(false)));
        let soon = deadline_in(Duration::from_millis(50));
        for (deadline, abandoned, expected, why) in [
            (past, None, Stop::TimedOut, "deadline already passed"),
            (
                soon,
                unset.clone(),
                Stop::TimedOut,
                "deadline passes mid-query",
            ),
            (
                None,
                set.clone(),
                Stop::Abandoned,
                "requester gone, no deadline",
            ),
            (
                past,
                set,
                Stop::Abandoned,
                "requester gone wins over the deadline",
            ),
        ] {
            let conn = conn();
            let (out, stopped) = watched(deadline, abandoned, || count(&conn, COUNT_FAR));
            assert!(out.is_err(), "{why}: the statement is interrupted");
            assert_eq!(stopped, Some(expected), "{why}");
            // The watch is cleared: the same thread runs unwatched again.
            assert_eq!(count(&conn, "SELECT 7").expect(why), 7, "{why}");
        }
    }

    #[test]
    fn a_job_within_its_limit_is_not_reported() {
        let conn = conn();
        let (out, stopped) = watched(
            deadline_in(Duration::from_secs(60)),
            Some(Arc::new(AtomicBool::new(false))),
            || count(&conn, "SELECT 3"),
        );
        assert_eq!(out.expect("runs"), 3);
        assert_eq!(stopped, None);
    }
}
