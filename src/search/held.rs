//! Index writes held back until a writer group commits.
//!
//! The writer runs each grouped job in its own savepoint, and FTS5 flushes
//! its pending terms into a new segment at every savepoint: written as they
//! happen, a group of N record writes made N one-row segments and spent
//! most of its index time merging them (`cargo run --release --example
//! fts_groups` measures it). So while a group runs ([`crate::db::in_group`]),
//! [`super::index`] holds its row inserts and removals in a temporary
//! table, in order, and the writer runs [`apply`] after the group's last
//! job, outside any savepoint, just before the commit
//! ([`crate::db::before_commit`]): one segment per group. A job whose
//! savepoint rolls back takes its held writes with it, as it takes its rows.
//!
//! Whatever reads or rebuilds an index on the writer while a group runs
//! (schema changes, the raw-SQL catch-up, a hook's raw query) calls
//! [`apply`] first. On every other thread, and outside groups, nothing is
//! held and [`apply`] costs one thread-local read.

use rusqlite::Connection;
use rusqlite::types::Value;
use std::cell::Cell;

thread_local! {
    /// Whether rows may be held (a rolled-back job may have taken them).
    static MAYBE_HELD: Cell<bool> = const { Cell::new(false) };
    /// The number of the next held write (their order).
    static NEXT: Cell<i64> = const { Cell::new(0) };
}

/// One held write per `op`: an insert's values one row per column (`col`
/// 0, 1, …), a removal one row with `col` -1. Made in the transaction that
/// first holds a write (a rollback may unmake it; it is made again).
const CREATE: &str = "CREATE TEMP TABLE IF NOT EXISTS fb_fts_held (
    op INTEGER NOT NULL,
    col INTEGER NOT NULL,
    collection TEXT NOT NULL,
    target INTEGER NOT NULL,
    value,
    PRIMARY KEY (op, col)
) WITHOUT ROWID";
const HOLD: &str =
    "INSERT INTO temp.fb_fts_held (op, col, collection, target, value) VALUES (?1, ?2, ?3, ?4, ?5)";

/// Whether index writes on this thread are held now: inside a writer group.
pub(super) fn holding() -> bool {
    crate::db::in_group()
}

/// Holds the insert of `values` (column `c{i}` gets `values[i]`) at `rowid`
/// into `collection_id`'s index.
pub(super) fn insert(
    conn: &Connection,
    collection_id: &str,
    rowid: i64,
    values: Vec<Value>,
) -> rusqlite::Result<()> {
    let op = next(conn)?;
    let mut stmt = conn.prepare_cached(HOLD)?;
    for (col, value) in values.into_iter().enumerate() {
        let col = i64::try_from(col).unwrap_or(i64::MAX);
        stmt.execute((op, col, collection_id, rowid, value))?;
    }
    Ok(())
}

/// Holds the removal of `rowid` from `collection_id`'s index.
pub(super) fn remove(conn: &Connection, collection_id: &str, rowid: i64) -> rusqlite::Result<()> {
    let op = next(conn)?;
    conn.prepare_cached(HOLD)?
        .execute((op, -1_i64, collection_id, rowid, Value::Null))?;
    Ok(())
}

/// The number of a new held write; makes the table if a rollback unmade
/// it, and asks the writer to [`apply`] before the group's commit (once per
/// group however often it is asked).
fn next(conn: &Connection) -> rusqlite::Result<i64> {
    crate::db::before_commit(apply);
    conn.prepare_cached(CREATE)?.execute([])?;
    MAYBE_HELD.with(|m| m.set(true));
    Ok(NEXT.with(|n| {
        let op = n.get();
        n.set(op.wrapping_add(1));
        op
    }))
}

/// Applies every held write to its index, in order, and forgets them.
pub fn apply(conn: &Connection) -> rusqlite::Result<()> {
    if !MAYBE_HELD.with(Cell::get) {
        return Ok(());
    }
    // A rollback may have unmade the table along with every held write.
    conn.prepare_cached(CREATE)?.execute([])?;
    let rows: Vec<(i64, i64, String, i64, Value)> = conn
        .prepare_cached(
            "SELECT op, col, collection, target, value FROM temp.fb_fts_held ORDER BY op, col",
        )?
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    conn.prepare_cached("DELETE FROM temp.fb_fts_held")?
        .execute([])?;
    MAYBE_HELD.with(|m| m.set(false));
    let mut rows = rows.into_iter().peekable();
    while let Some((op, col, collection, target, value)) = rows.next() {
        if col < 0 {
            super::index::remove_now(conn, &collection, target)?;
            continue;
        }
        let mut values = vec![value];
        while let Some((_, _, _, _, value)) = rows.next_if(|r| r.0 == op) {
            values.push(value);
        }
        super::index::insert_now(conn, &collection, target, values)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(conn: &Connection) -> Vec<(i64, String)> {
        conn.prepare("SELECT rowid, c0 FROM _fts_c ORDER BY rowid")
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()
            })
            .expect("index rows")
    }

    #[test]
    fn held_writes_apply_in_order_and_a_rolled_back_job_takes_its_own() {
        let conn = Connection::open_in_memory().expect("open");
        conn.execute_batch("CREATE VIRTUAL TABLE _fts_c USING fts5(c0)")
            .expect("fts");
        conn.execute_batch("BEGIN").expect("begin");
        insert(&conn, "c", 1, vec![Value::Text("one".into())]).expect("hold 1");
        // A job that fails: its savepoint rolls back, and its held write with it.
        conn.execute_batch("SAVEPOINT fb_job").expect("savepoint");
        insert(&conn, "c", 2, vec![Value::Text("lost".into())]).expect("hold 2");
        conn.execute_batch("ROLLBACK TO fb_job; RELEASE fb_job")
            .expect("rollback");
        // Insert, remove and insert again of one rowid: the last one stands.
        insert(&conn, "c", 3, vec![Value::Text("first".into())]).expect("hold 3");
        remove(&conn, "c", 3).expect("hold removal");
        insert(&conn, "c", 3, vec![Value::Text("second".into())]).expect("hold 3 again");
        assert!(index(&conn).is_empty(), "nothing is written while held");
        apply(&conn).expect("apply");
        conn.execute_batch("COMMIT").expect("commit");
        assert_eq!(
            index(&conn),
            vec![(1, "one".to_owned()), (3, "second".to_owned())]
        );
        let left: i64 = conn
            .query_row("SELECT count(*) FROM temp.fb_fts_held", [], |r| r.get(0))
            .expect("count");
        assert_eq!(left, 0, "applied writes are forgotten");
    }
}
