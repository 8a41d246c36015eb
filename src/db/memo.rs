//! A memo of integer answers (list totals) per connection, exact by
//! construction: an answer is reused only on the connection that computed it
//! and only while SQLite's `PRAGMA data_version` for that connection is the
//! one it was computed under. `data_version` changes whenever any connection
//! (ours, or another process's) commits to the database, so a memoised total
//! is never older than what a fresh `count(*)` would read.
//!
//! The caller builds the key from everything the answer depends on (the SQL
//! text and the bound values); the rule and the caller are part of that SQL
//! and those values, so two callers share an answer only when they would run
//! the very same statement. Each connection is told apart by the serial that
//! `fb_connection_serial()` returns (set when the connection is opened; see
//! `pool.rs`), never by its address, which a later connection may reuse.

use rusqlite::Connection;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

/// The SQL function that returns the connection's serial.
pub(super) const SERIAL_FUNCTION: &str = "fb_connection_serial";

/// Entries kept per connection; past this the connection's memo starts over.
const MAX_ENTRIES: usize = 1024;
/// Connections remembered; past this (pool reconnects) the memo starts over.
const MAX_CONNECTIONS: usize = 64;

static NEXT_SERIAL: AtomicI64 = AtomicI64::new(1);

/// A serial no other connection of this process has had.
pub(super) fn next_serial() -> i64 {
    NEXT_SERIAL.fetch_add(1, Ordering::Relaxed)
}

/// What one connection has memoised at one `data_version`.
struct Slot {
    version: i64,
    answers: HashMap<String, i64>,
}

/// Memoised integer answers, per connection and data version.
#[derive(Default)]
pub struct CountMemo {
    slots: Mutex<HashMap<i64, Slot>>,
}

impl CountMemo {
    /// The answer memoised under `key` on `conn` at its current data
    /// version, or `compute()`'s (then memoised). Run it inside the read
    /// transaction that `compute` reads in, so the version and the answer
    /// belong to one snapshot.
    pub fn get_or_compute(
        &self,
        conn: &Connection,
        key: String,
        compute: impl FnOnce() -> rusqlite::Result<i64>,
    ) -> rusqlite::Result<i64> {
        // A connection's own commits leave its data_version alone: only
        // read-only connections (whose versions move with every commit) memoise.
        if !conn.is_readonly(rusqlite::MAIN_DB)? {
            return compute();
        }
        let (serial, version): (i64, i64) = conn
            .prepare_cached("SELECT fb_connection_serial(), data_version FROM pragma_data_version")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        if let Some(answer) = self.lookup(serial, version, &key) {
            return Ok(answer);
        }
        let answer = compute()?;
        self.store(serial, version, key, answer);
        Ok(answer)
    }

    fn lookup(&self, serial: i64, version: i64, key: &str) -> Option<i64> {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let slot = slots.get(&serial)?;
        if slot.version != version {
            return None;
        }
        slot.answers.get(key).copied()
    }

    fn store(&self, serial: i64, version: i64, key: String, answer: i64) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if !slots.contains_key(&serial) && slots.len() >= MAX_CONNECTIONS {
            slots.clear();
        }
        let slot = slots.entry(serial).or_insert_with(|| Slot {
            version,
            answers: HashMap::new(),
        });
        if slot.version != version {
            // Versions only grow: an older one's answers are dead.
            if version < slot.version {
                return;
            }
            slot.version = version;
            slot.answers.clear();
        }
        if slot.answers.len() >= MAX_ENTRIES {
            slot.answers.clear();
        }
        slot.answers.insert(key, answer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(dir: &std::path::Path, serial: i64) -> Connection {
        let file = dir.join("k.db");
        Connection::open(&file)
            .and_then(|c| c.execute_batch("CREATE TABLE IF NOT EXISTS t(x)"))
            .expect("create");
        let conn = Connection::open_with_flags(&file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open");
        conn.create_scalar_function(
            SERIAL_FUNCTION,
            0,
            rusqlite::functions::FunctionFlags::SQLITE_UTF8,
            move |_| Ok(serial),
        )
        .expect("function");
        conn
    }

    #[test]
    fn an_answer_is_reused_until_the_connection_sees_a_commit() {
        let path = tempfile::tempdir().expect("dir");
        let file = path.path().join("m.db");
        let writer = Connection::open(&file).expect("writer");
        writer
            .execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .expect("setup");
        let reader = Connection::open_with_flags(&file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("reader");
        reader
            .create_scalar_function(
                SERIAL_FUNCTION,
                0,
                rusqlite::functions::FunctionFlags::SQLITE_UTF8,
                |_| Ok(7_i64),
            )
            .expect("function");
        let memo = CountMemo::default();
        let count = || -> rusqlite::Result<i64> {
            memo.get_or_compute(&reader, "SELECT count(*) FROM t".into(), || {
                reader.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            })
        };
        assert_eq!(count().expect("count"), 1, "computed");
        let mut computed = false;
        let again = memo
            .get_or_compute(&reader, "SELECT count(*) FROM t".into(), || {
                computed = true;
                Ok(-1)
            })
            .expect("memo");
        assert_eq!(
            (again, computed),
            (1, false),
            "reused while nothing changed"
        );
        writer
            .execute("INSERT INTO t VALUES (2)", [])
            .expect("insert");
        assert_eq!(
            count().expect("count"),
            2,
            "another connection's commit is seen"
        );
    }

    #[test]
    fn a_writable_connection_is_never_memoised() {
        // Its own commits would not move its data_version.
        let conn = Connection::open_in_memory().expect("open");
        let memo = CountMemo::default();
        for n in [1, 2] {
            let got = memo
                .get_or_compute(&conn, "k".into(), || Ok(n))
                .expect("compute");
            assert_eq!(got, n, "computed every time on a writable connection");
        }
    }

    #[test]
    fn answers_are_kept_apart_by_connection_and_key() {
        let dir = tempfile::tempdir().expect("dir");
        let memo = CountMemo::default();
        let (a, b) = (connection(dir.path(), 1), connection(dir.path(), 2));
        let cases = [
            (&a, "k1", 10, 10, "first answer for a/k1"),
            (&a, "k1", 99, 10, "a/k1 is memoised"),
            (&a, "k2", 20, 20, "another key is computed"),
            (
                &b,
                "k1",
                30,
                30,
                "another connection does not see a's answers",
            ),
        ];
        for (conn, key, computed, expected, why) in cases {
            let got = memo
                .get_or_compute(conn, key.into(), || Ok(computed))
                .expect("memo");
            assert_eq!(got, expected, "{why}");
        }
    }
}
