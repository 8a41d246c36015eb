//! Brings the full-text indexes up to date after raw SQL (the SQL console,
//! hooks' `execute()`, migrations' `newQuery().execute()`), which writes
//! record tables without going through `records` and so without
//! `search::index`. Run inside the same write transaction, before its commit.
//!
//! Bounded by what the SQL text can reach: only collections whose table name
//! appears in it (case-insensitively), and only the work its keywords call
//! for ([`Work::for_collection`]). New rows get rowids past the table's last
//! one, so SQL that only inserts is caught up by a range scan over the new
//! rows; SQL that only deletes by comparing row counts and, when they differ,
//! rowids (narrow indexes, no text read); an `UPDATE` that names no
//! searchable field of the collection (a counter, a status) needs nothing.
//! Anything else — an `UPDATE` naming a searchable field, `REPLACE`, a delete
//! and an insert together (a new row may take a deleted one's rowid), named
//! rowids — compares every index row's copy of the text with the table. When
//! the database has triggers or foreign keys of its own, a statement can
//! reach tables it does not name, so every searchable collection gets that
//! full check.

use super::index::{SearchSpec, fts_table, remove_now};
use crate::db::ident;
use crate::schema::{Collection, SchemaError};
use rusqlite::Connection;
use std::collections::HashSet;

/// The write keywords in a piece of raw SQL: an over-approximation, a
/// keyword anywhere (a string or a comment too) counts.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Keywords {
    insert: bool,
    update: bool,
    delete: bool,
    replace: bool,
    /// `rowid`, `oid` or `_rowid_`: rows may be given or moved to rowids.
    rowids: bool,
}

impl Keywords {
    fn of(upper: &str) -> Keywords {
        Keywords {
            insert: upper.contains("INSERT"),
            update: upper.contains("UPDATE"),
            delete: upper.contains("DELETE"),
            replace: upper.contains("REPLACE"),
            rowids: upper.contains("ROWID") || upper.contains("OID"),
        }
    }
}

/// What one collection's index needs after the SQL.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Work {
    Nothing,
    /// Index the rows past the index's last rowid; `counts`: then compare
    /// row counts, and rowids if they differ (rows in gaps).
    NewRows {
        counts: bool,
    },
    /// Compare row counts, and rowids if they differ.
    GoneRows,
    /// Compare every index row's text with the table, then index what is missing.
    Full,
}

impl Work {
    /// `names_searchable`: a searchable field's name appears in the SQL.
    fn for_collection(k: Keywords, names_searchable: bool) -> Work {
        let moves_rows = k.rowids && (k.update || k.delete);
        let rewrites_text = k.update && names_searchable;
        if k.replace || moves_rows || rewrites_text || (k.delete && k.insert) {
            Work::Full
        } else if k.delete {
            Work::GoneRows
        } else if k.insert {
            Work::NewRows { counts: k.rowids }
        } else {
            Work::Nothing
        }
    }
}

/// Catches the indexes up with what `sql` (already run on `conn`) may have
/// written; see the module doc for how far it looks.
pub fn catch_up(conn: &Connection, sql: &str) -> Result<(), SchemaError> {
    super::held::apply(conn)?;
    let tables = table_names(conn)?;
    if !tables.iter().any(|t| t.starts_with("_fts_")) {
        return Ok(()); // no collection is searchable
    }
    let upper = sql.to_ascii_uppercase();
    let keywords = Keywords::of(&upper);
    if keywords == Keywords::default() {
        return Ok(()); // DDL, a read
    }
    let unbounded = reaches_unnamed_tables(conn)?;
    for collection in crate::schema::load_all(conn)? {
        let Some(spec) = SearchSpec::of(&collection) else {
            continue;
        };
        // The SQL may have dropped or renamed the table (or the index):
        // nothing is left to keep in step.
        let present = tables.contains(collection.name.as_str())
            && tables.contains(&fts_table(&collection.id));
        let named = |name: &str| upper.contains(&name.to_ascii_uppercase());
        if !present || !(unbounded || named(collection.name.as_str())) {
            continue;
        }
        let work = if unbounded {
            Work::Full
        } else {
            Work::for_collection(keywords, spec.fields.iter().any(|f| named(f)))
        };
        catch_up_one(conn, &collection, &spec, work)?;
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
    work: Work,
) -> rusqlite::Result<()> {
    let fts = fts_table(&collection.id);
    let table = ident(collection.name.as_str());
    let docsize = ident(&format!("{fts}_docsize"));
    let fields: Vec<String> = spec.fields.iter().map(|f| ident(f)).collect();
    let cols: Vec<String> = (0..fields.len()).map(|i| format!("c{i}")).collect();
    let count = |sql: String| conn.query_row(&sql, [], |r| r.get::<_, i64>(0));
    // Whether the table and the index hold as many rows (`count(*)` reads
    // the narrowest index, no text).
    let counts_agree = || -> rusqlite::Result<bool> {
        Ok(count(format!("SELECT count(*) FROM {table}"))?
            == count(format!("SELECT count(*) FROM {docsize}"))?)
    };
    let stale = match work {
        Work::Nothing => return Ok(()),
        Work::NewRows { .. } => Vec::new(),
        Work::GoneRows if counts_agree()? => return Ok(()),
        Work::GoneRows => rowids(
            conn,
            &format!("SELECT id FROM {docsize} EXCEPT SELECT rowid FROM {table}"),
        )?,
        // Gone, changed, or the rowid now holds another record's text.
        Work::Full => {
            let differs: Vec<String> = fields
                .iter()
                .zip(&cols)
                .map(|(f, c)| format!("i.{c} IS NOT t.{f}"))
                .collect();
            rowids(
                conn,
                &format!(
                    "SELECT i.id FROM {} i LEFT JOIN {table} t ON t.rowid = i.id \
                     WHERE t.rowid IS NULL OR {}",
                    ident(&format!("{fts}_content")),
                    differs.join(" OR ")
                ),
            )?
        }
    };
    // Removed one by one (single-row statements), then indexed again below
    // like new rows; at once, never held: the inserts below are not.
    for rowid in stale {
        remove_now(conn, &collection.id, rowid)?;
    }
    if work == Work::GoneRows {
        return Ok(());
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
    if work != (Work::NewRows { counts: false }) && !counts_agree()? {
        conn.execute(
            &format!("{insert} rowid NOT IN (SELECT id FROM {docsize})"),
            [],
        )?;
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
    fn raw_sql_gets_the_least_work_that_is_safe() {
        let new_rows = Work::NewRows { counts: false };
        for (sql, names_searchable, want, why) in [
            ("insert into posts values (1)", true, new_rows, "lower case"),
            (
                "WITH x AS (SELECT 1) INSERT INTO p SELECT * FROM x",
                true,
                new_rows,
                "after a CTE",
            ),
            (
                "INSERT INTO p (rowid, a) VALUES (3, 1)",
                true,
                Work::NewRows { counts: true },
                "a rowid given",
            ),
            ("REPLACE INTO posts VALUES (1)", true, Work::Full, "replace"),
            (
                "INSERT OR REPLACE INTO p VALUES (1)",
                false,
                Work::Full,
                "or replace",
            ),
            (
                "INSERT INTO p VALUES (1) ON CONFLICT DO UPDATE SET title = 2",
                true,
                Work::Full,
                "upsert of searchable text",
            ),
            (
                "UPDATE posts SET title = 1",
                true,
                Work::Full,
                "searchable text",
            ),
            (
                "UPDATE posts SET views = views + 1",
                false,
                Work::Nothing,
                "a counter",
            ),
            (
                "UPDATE posts SET rowid = rowid + 9",
                false,
                Work::Full,
                "rows moved",
            ),
            (
                "DELETE FROM posts WHERE id = 'x'",
                false,
                Work::GoneRows,
                "delete",
            ),
            (
                "DELETE FROM p; INSERT INTO p VALUES (1)",
                false,
                Work::Full,
                "rowid reuse",
            ),
            ("CREATE INDEX i ON posts (a)", true, Work::Nothing, "ddl"),
        ] {
            let k = Keywords::of(&sql.to_ascii_uppercase());
            assert_eq!(
                Work::for_collection(k, names_searchable),
                want,
                "{sql:?}: {why}"
            );
        }
    }
}
