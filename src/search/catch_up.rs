//! Brings the full-text indexes up to date after raw SQL (the SQL console,
//! hooks' `execute()`, migrations' `newQuery().execute()`), which writes
//! record tables without going through `records` and so without
//! `search::index`. Run inside the same write transaction, before its commit.
//!
//! Bounded by what the SQL text can reach: only collections whose table name
//! appears in it (case-insensitively), and only the work its verbs call for
//! (`INSERT`: index rows the index lacks; `DELETE`: drop index rows whose
//! record is gone; `UPDATE`: compare the index's copy of the text with the
//! table; `REPLACE` is all three). When the database has triggers or foreign
//! keys of its own, a statement can reach tables it does not name, so every
//! searchable collection gets every check.

use super::index::{SearchSpec, fts_table, remove};
use crate::db::ident;
use crate::schema::{Collection, SchemaError};
use rusqlite::Connection;
use std::collections::HashSet;

/// What a piece of raw SQL may have done, from its text.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Verbs {
    insert: bool,
    update: bool,
    delete: bool,
}

impl Verbs {
    /// An over-approximation: a keyword anywhere (a string or a comment
    /// too) counts.
    fn of(upper: &str) -> Verbs {
        let replace = upper.contains("REPLACE");
        Verbs {
            insert: replace || upper.contains("INSERT"),
            update: replace || upper.contains("UPDATE"),
            delete: replace || upper.contains("DELETE"),
        }
    }

    fn all() -> Verbs {
        Verbs {
            insert: true,
            update: true,
            delete: true,
        }
    }

    fn any(self) -> bool {
        self.insert || self.update || self.delete
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
    let verbs = if unbounded {
        Verbs::all()
    } else {
        Verbs::of(&upper)
    };
    if !verbs.any() {
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
            catch_up_one(conn, &collection, &spec, verbs)?;
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
    verbs: Verbs,
) -> rusqlite::Result<()> {
    let fts = fts_table(&collection.id);
    let table = ident(collection.name.as_str());
    let fields: Vec<String> = spec.fields.iter().map(|f| ident(f)).collect();
    let cols: Vec<String> = (0..fields.len()).map(|i| format!("c{i}")).collect();
    // Stale index rows: the record is gone, or (after an UPDATE) a
    // searchable value differs from the index's copy. Removed one by one
    // (single-row statements), then indexed again below like new rows.
    let mut stale = Vec::new();
    if verbs.delete {
        stale.extend(rowids(
            conn,
            &format!(
                "SELECT id FROM {} WHERE id NOT IN (SELECT rowid FROM {table})",
                ident(&format!("{fts}_docsize"))
            ),
        )?);
    }
    if verbs.update {
        let differs: Vec<String> = fields
            .iter()
            .zip(&cols)
            .map(|(f, c)| format!("i.{c} IS NOT t.{f}"))
            .collect();
        stale.extend(rowids(
            conn,
            &format!(
                "SELECT i.id FROM {} i JOIN {table} t ON t.rowid = i.id WHERE {}",
                ident(&format!("{fts}_content")),
                differs.join(" OR ")
            ),
        )?);
    }
    for rowid in stale {
        remove(conn, &collection.id, rowid)?;
    }
    if verbs.insert || verbs.update {
        conn.execute(
            &format!(
                "INSERT INTO {} (rowid, {}) SELECT rowid, {} FROM {table} \
                 WHERE rowid NOT IN (SELECT id FROM {})",
                ident(&fts),
                cols.join(", "),
                fields.join(", "),
                ident(&format!("{fts}_docsize")),
            ),
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
    fn raw_sql_verbs_are_told_apart() {
        let v = |i, u, d| Verbs {
            insert: i,
            update: u,
            delete: d,
        };
        for (sql, want, why) in [
            (
                "insert into posts values (1)",
                v(true, false, false),
                "lower case",
            ),
            (
                "REPLACE INTO posts VALUES (1)",
                v(true, true, true),
                "replace",
            ),
            (
                "WITH x AS (SELECT 1) INSERT INTO p SELECT * FROM x",
                v(true, false, false),
                "after a CTE",
            ),
            (
                "INSERT INTO p VALUES (1) ON CONFLICT DO UPDATE SET a = 2",
                v(true, true, false),
                "upsert",
            ),
            ("UPDATE posts SET a = 1", v(false, true, false), "update"),
            ("DELETE FROM posts", v(false, false, true), "delete"),
            ("CREATE INDEX i ON posts (a)", v(false, false, false), "ddl"),
        ] {
            assert_eq!(Verbs::of(&sql.to_ascii_uppercase()), want, "{sql:?}: {why}");
        }
    }
}
