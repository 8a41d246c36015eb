//! Brings the full-text indexes up to date after raw SQL (the SQL console,
//! hooks' `execute()`, migrations' `newQuery().execute()`), which writes
//! record tables without going through `records` and so without
//! `search::index`. Run inside the same write transaction, before its commit.
//!
//! Bounded by what the SQL text can reach: only collections whose table name
//! appears in it (case-insensitively), and only the work its verbs call for.
//! SQL that only inserts (no `UPDATE`, `DELETE` or `REPLACE` anywhere in its
//! text) cannot change or remove an indexed row, and new rows get rowids
//! past the table's last one: indexing the rows past the index's last rowid
//! is a range scan over just the new rows. Only when the text names rowids
//! (`rowid`, `oid`, `_rowid_`: a new row may then fall in a gap) are the
//! table's and the index's row counts compared (narrow indexes, no text
//! read), and a difference sends it to a full comparison of rowids. Any
//! other write compares every index row's copy of the text with the table:
//! a row that is gone, changed or whose rowid now holds another record is
//! re-indexed. When the database has triggers or foreign keys of its own, a
//! statement can reach tables it does not name, so every searchable
//! collection gets the full check.

use super::index::{SearchSpec, fts_table, remove};
use crate::db::ident;
use crate::schema::{Collection, SchemaError};
use rusqlite::Connection;
use std::collections::HashSet;

/// What a piece of raw SQL may have done to the tables it reaches, from its
/// text: an over-approximation, a keyword anywhere (a string or a comment
/// too) counts.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Reach {
    /// No write keyword at all (DDL, a `SELECT`).
    Nothing,
    /// `INSERT` and no other write keyword; `rowids` when rowids are named.
    Inserts { rowids: bool },
    /// `UPDATE`, `DELETE` or `REPLACE` (an upsert too): anything.
    Anything,
}

impl Reach {
    fn of(upper: &str) -> Reach {
        if ["UPDATE", "DELETE", "REPLACE"]
            .iter()
            .any(|w| upper.contains(w))
        {
            Reach::Anything
        } else if upper.contains("INSERT") {
            // `ROWID` is in `_ROWID_` too.
            Reach::Inserts {
                rowids: upper.contains("ROWID") || upper.contains("OID"),
            }
        } else {
            Reach::Nothing
        }
    }
}

/// Catches the indexes up with what `sql` (already run on `conn`) may have
/// written; see the module doc for how far it looks.
pub fn catch_up(conn: &Connection, sql: &str) -> Result<(), SchemaError> {
    let tables = table_names(conn)?;
    if !tables.iter().any(|t| t.starts_with("_fts_")) {
        return Ok(()); // no collection is searchable
    }
    let upper = sql.to_ascii_uppercase();
    let unbounded = reaches_unnamed_tables(conn)?;
    let reach = if unbounded {
        Reach::Anything
    } else {
        Reach::of(&upper)
    };
    if reach == Reach::Nothing {
        return Ok(());
    }
    for collection in crate::schema::load_all(conn)? {
        let Some(spec) = SearchSpec::of(&collection) else {
            continue;
        };
        // The SQL may have dropped or renamed the table (or the index):
        // nothing is left to keep in step.
        let present = tables.contains(collection.name.as_str())
            && tables.contains(&fts_table(&collection.id));
        let named = upper.contains(&collection.name.as_str().to_ascii_uppercase());
        if present && (unbounded || named) {
            catch_up_one(conn, &collection, &spec, reach)?;
        }
    }
    Ok(())
}

/// Whether a statement may write a table it does not name: the database
/// has a trigger other than the index's old ones, or a foreign key.
fn reaches_unnamed_tables(conn: &Connection) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE \
           (type = 'trigger' AND name NOT LIKE '\\_fts\\_%' ESCAPE '\\') \
           OR (type = 'table' AND sql LIKE '%REFERENCES%'))",
    )?
    .query_row([], |r| r.get(0))
}

fn table_names(conn: &Connection) -> rusqlite::Result<HashSet<String>> {
    let mut stmt = conn.prepare_cached("SELECT name FROM sqlite_schema WHERE type = 'table'")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    rows.collect()
}

fn catch_up_one(
    conn: &Connection,
    collection: &Collection,
    spec: &SearchSpec,
    reach: Reach,
) -> rusqlite::Result<()> {
    let fts = fts_table(&collection.id);
    let table = ident(collection.name.as_str());
    let docsize = ident(&format!("{fts}_docsize"));
    let fields: Vec<String> = spec.fields.iter().map(|f| ident(f)).collect();
    let cols: Vec<String> = (0..fields.len()).map(|i| format!("c{i}")).collect();
    if reach == Reach::Anything {
        // Stale index rows: the record is gone, or its rowid holds text that
        // differs from the index's copy. Removed one by one (single-row
        // statements), then indexed again below like new rows.
        let differs: Vec<String> = fields
            .iter()
            .zip(&cols)
            .map(|(f, c)| format!("i.{c} IS NOT t.{f}"))
            .collect();
        let stale = rowids(
            conn,
            &format!(
                "SELECT i.id FROM {} i LEFT JOIN {table} t ON t.rowid = i.id \
                 WHERE t.rowid IS NULL OR {}",
                ident(&format!("{fts}_content")),
                differs.join(" OR ")
            ),
        )?;
        for rowid in stale {
            remove(conn, &collection.id, rowid)?;
        }
    }
    // Every index row now has its record: new rows are past the last one,
    // unless a rowid was given (equal counts then mean the same rows).
    let insert = format!(
        "INSERT INTO {} (rowid, {}) SELECT rowid, {} FROM {table} WHERE ",
        ident(&fts),
        cols.join(", "),
        fields.join(", "),
    );
    conn.execute(
        &format!(
            "{insert} rowid > (SELECT coalesce(max(id), -9223372036854775808) FROM {docsize})"
        ),
        [],
    )?;
    if reach != (Reach::Inserts { rowids: false }) {
        let count = |sql: String| conn.query_row(&sql, [], |r| r.get::<_, i64>(0));
        let rows = count(format!("SELECT count(*) FROM {table}"))?;
        let indexed = count(format!("SELECT count(*) FROM {docsize}"))?;
        if rows != indexed {
            conn.execute(
                &format!("{insert} rowid NOT IN (SELECT id FROM {docsize})"),
                [],
            )?;
        }
    }
    Ok(())
}

fn rowids(conn: &Connection, sql: &str) -> rusqlite::Result<Vec<i64>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_sql_is_sorted_by_what_it_may_have_done() {
        let plain = Reach::Inserts { rowids: false };
        for (sql, want, why) in [
            ("insert into posts values (1)", plain, "lower case"),
            (
                "WITH x AS (SELECT 1) INSERT INTO p SELECT * FROM x",
                plain,
                "after a CTE",
            ),
            (
                "INSERT INTO p (rowid, a) VALUES (3, 1)",
                Reach::Inserts { rowids: true },
                "a rowid given",
            ),
            ("REPLACE INTO posts VALUES (1)", Reach::Anything, "replace"),
            (
                "INSERT OR REPLACE INTO p VALUES (1)",
                Reach::Anything,
                "or replace",
            ),
            (
                "INSERT INTO p VALUES (1) ON CONFLICT DO UPDATE SET a = 2",
                Reach::Anything,
                "upsert",
            ),
            ("UPDATE posts SET a = 1", Reach::Anything, "update"),
            ("DELETE FROM posts", Reach::Anything, "delete"),
            ("CREATE INDEX i ON posts (a)", Reach::Nothing, "ddl"),
        ] {
            assert_eq!(Reach::of(&sql.to_ascii_uppercase()), want, "{sql:?}: {why}");
        }
    }
}
