//! The FTS5 index of a collection: one virtual table `_fts_<collectionId>`
//! whose columns `c0, c1, …` hold the collection's searchable fields in field
//! order, and whose rowid is the record table's rowid.
//!
//! The index keeps its own copy of the text (a regular FTS5 table, not
//! `content=`): a delete then needs only the rowid, so the index can never be
//! corrupted by a delete that passes stale values, at the cost of storing the
//! searchable text twice. Two triggers on the record table (after a
//! searchable value changes, after delete) keep it in step, so every update
//! and delete path — record CRUD, batch, cascades, truncate, hooks, account
//! flows, the SQL console — changes the index in the same transaction as the
//! row, and a crash can never leave them apart.
//!
//! Inserts are indexed without a trigger, by the one place that inserts
//! records (`records::write` calls [`insert_row`]) and, for raw SQL (the
//! console, hooks' `execute()`), by [`catch_up`] before the commit. The reason
//! is cost: an INSERT trigger makes every INSERT a multi-row write with a
//! statement journal, and FTS5 flushes its pending terms into a new segment at
//! every statement savepoint — a batch of 500 creates then wrote 500 tiny
//! segments and spent most of its time merging them. Without the trigger the
//! terms of a whole transaction are flushed once, at the commit. A table
//! rebuild (`schema::ddl`) renumbers rowids, so the index is dropped and
//! rebuilt with it.

use crate::db::ident;
use crate::schema::{Collection, CollectionType, FieldKind};
use rusqlite::{Connection, TransactionBehavior};

/// What the index of a collection looks like: its searchable fields in order
/// (column `c{i}` holds `fields[i]`), their BM25 weights, and the tokenizer.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchSpec {
    pub fields: Vec<String>,
    pub weights: Vec<f64>,
    /// Whether each field may be searched by non-superusers (not hidden, not
    /// an auth collection's `email`, which has its own visibility rule).
    pub public: Vec<bool>,
    pub trigram: bool,
}

impl SearchSpec {
    /// The spec of a collection, `None` when it has no searchable field (or is a view).
    pub fn of(collection: &Collection) -> Option<SearchSpec> {
        if collection.kind == CollectionType::View {
            return None;
        }
        let mut spec = SearchSpec {
            fields: Vec::new(),
            weights: Vec::new(),
            public: Vec::new(),
            trigram: false,
        };
        for field in &collection.fields {
            let Some(opts) = &field.search else { continue };
            let auth_email = collection.kind == CollectionType::Auth
                && field.name.as_str() == "email"
                && matches!(field.kind, FieldKind::Email { .. });
            spec.fields.push(field.name.as_str().to_owned());
            spec.weights.push(opts.weight);
            spec.public.push(!field.hidden && !auth_email);
            spec.trigram |= opts.trigram;
        }
        (!spec.fields.is_empty()).then_some(spec)
    }

    /// The DDL-relevant part: two specs with the same columns and tokenizer
    /// share an index (weights and visibility are read at query time).
    fn same_index(&self, other: &SearchSpec) -> bool {
        self.fields == other.fields && self.trigram == other.trigram
    }

    fn columns(&self) -> Vec<String> {
        (0..self.fields.len()).map(|i| format!("c{i}")).collect()
    }
}

/// The FTS5 table name of a collection (ids are `[A-Za-z0-9_]`, checked by the schema).
pub fn fts_table(collection_id: &str) -> String {
    format!("_fts_{collection_id}")
}

fn trigger(collection_id: &str, verb: &str) -> String {
    format!("_fts_{collection_id}_{verb}")
}

/// Whether moving from `old` to `new` (table not rebuilt) keeps the index valid.
pub fn unchanged(old: &Collection, new: &Collection) -> bool {
    match (SearchSpec::of(old), SearchSpec::of(new)) {
        (None, None) => true,
        (Some(a), Some(b)) => a.same_index(&b) && old.id == new.id,
        _ => false,
    }
}

/// Drops the index and its triggers (nothing when there is none). `ai` is
/// the insert trigger of databases indexed before inserts were indexed
/// directly.
pub fn drop(conn: &Connection, collection: &Collection) -> rusqlite::Result<()> {
    let id = &collection.id;
    for verb in ["ai", "au", "ad"] {
        conn.execute_batch(&format!(
            "DROP TRIGGER IF EXISTS {}",
            ident(&trigger(id, verb))
        ))?;
    }
    conn.execute_batch(&format!("DROP TABLE IF EXISTS {}", ident(&fts_table(id))))
}

/// Creates the index and its triggers for `collection` (when it has
/// searchable fields) and fills it from the table's current rows.
pub fn create(conn: &Connection, collection: &Collection) -> rusqlite::Result<()> {
    let Some(spec) = SearchSpec::of(collection) else {
        return Ok(());
    };
    let id = &collection.id;
    let fts = ident(&fts_table(id));
    let table = ident(collection.name.as_str());
    let cols = spec.columns();
    let tokenizer = if spec.trigram {
        "trigram remove_diacritics 1"
    } else {
        "unicode61 remove_diacritics 2"
    };
    conn.execute_batch(&format!(
        "CREATE VIRTUAL TABLE {fts} USING fts5({}, tokenize = '{tokenizer}')",
        cols.join(", ")
    ))?;
    let fields: Vec<String> = spec.fields.iter().map(|f| ident(f)).collect();
    let new_values: Vec<String> = fields.iter().map(|f| format!("new.{f}")).collect();
    let insert = format!(
        "INSERT INTO {fts} (rowid, {}) VALUES (new.rowid, {});",
        cols.join(", "),
        new_values.join(", ")
    );
    // Record updates set every column: re-index only when a searchable
    // value really changed.
    let changed: Vec<String> = fields
        .iter()
        .map(|f| format!("old.{f} IS NOT new.{f}"))
        .collect();
    conn.execute_batch(&format!(
        "CREATE TRIGGER {} AFTER UPDATE OF {} ON {table} WHEN {} BEGIN \
           DELETE FROM {fts} WHERE rowid = old.rowid; {insert} END;\
         CREATE TRIGGER {} AFTER DELETE ON {table} BEGIN \
           DELETE FROM {fts} WHERE rowid = old.rowid; END;",
        ident(&trigger(id, "au")),
        fields.join(", "),
        changed.join(" OR "),
        ident(&trigger(id, "ad")),
    ))?;
    conn.execute_batch(&format!(
        "INSERT INTO {fts} (rowid, {}) SELECT rowid, {} FROM {table}",
        cols.join(", "),
        fields.join(", ")
    ))
}

/// Indexes the row just inserted into `collection`'s table at `rowid`;
/// `value_of` gives a field's bound value (what the row now holds). A
/// `VALUES` insert on purpose: an `INSERT … SELECT` would open a statement
/// savepoint, and FTS5 flushes a segment at each one (see the module doc).
pub fn insert_row(
    conn: &Connection,
    collection: &Collection,
    rowid: i64,
    value_of: impl Fn(&str) -> rusqlite::types::Value,
) -> rusqlite::Result<()> {
    let Some(spec) = SearchSpec::of(collection) else {
        return Ok(());
    };
    let cols = spec.columns();
    let marks: Vec<String> = (2..=cols.len() + 1).map(|i| format!("?{i}")).collect();
    let sql = format!(
        "INSERT INTO {} (rowid, {}) VALUES (?1, {})",
        ident(&fts_table(&collection.id)),
        cols.join(", "),
        marks.join(", ")
    );
    let mut params = vec![rusqlite::types::Value::Integer(rowid)];
    params.extend(spec.fields.iter().map(|f| value_of(f)));
    conn.prepare_cached(&sql)?
        .execute(rusqlite::params_from_iter(params))?;
    Ok(())
}

/// Indexes every row of every searchable collection that the index lacks:
/// rows inserted by raw SQL, which does not go through [`insert_row`]. Run
/// inside the write transaction, before its commit; a full scan of each
/// searchable table (against the index's small per-row `_docsize` table).
pub fn catch_up(conn: &Connection) -> Result<(), crate::schema::SchemaError> {
    let collections = crate::schema::load_all(conn)?;
    for collection in &collections {
        let Some(spec) = SearchSpec::of(collection) else {
            continue;
        };
        let fts = fts_table(&collection.id);
        let fields: Vec<String> = spec.fields.iter().map(|f| ident(f)).collect();
        conn.execute(
            &format!(
                "INSERT INTO {} (rowid, {}) SELECT rowid, {} FROM {} \
                 WHERE rowid NOT IN (SELECT id FROM {})",
                ident(&fts),
                spec.columns().join(", "),
                fields.join(", "),
                ident(collection.name.as_str()),
                ident(&format!("{fts}_docsize")),
            ),
            [],
        )?;
    }
    Ok(())
}

/// Whether raw SQL may insert rows (and so needs [`catch_up`]): it names
/// `INSERT` or `REPLACE` anywhere, in any case. A cheap over-approximation.
pub fn may_insert(sql: &str) -> bool {
    let upper = sql.to_ascii_uppercase();
    upper.contains("INSERT") || upper.contains("REPLACE")
}

/// [`drop_insert_triggers`] on the writer: run by whatever opens a data dir
/// to write records (the server, `migrate`) before it writes any.
pub async fn upgrade(db: &crate::db::Db) -> Result<(), crate::schema::SchemaError> {
    db.write(|conn| drop_insert_triggers(conn).map_err(crate::schema::SchemaError::from))
        .await
}

/// Drops the insert triggers that databases indexed before [`insert_row`]
/// still have (with them, a create would be indexed twice).
pub fn drop_insert_triggers(conn: &Connection) -> rusqlite::Result<()> {
    let names: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'trigger' \
             AND name LIKE '\\_fts\\_%\\_ai' ESCAPE '\\'",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for name in names {
        conn.execute_batch(&format!("DROP TRIGGER IF EXISTS {}", ident(&name)))?;
    }
    Ok(())
}

/// Drops and rebuilds the index of `collection` from its table (the
/// `search reindex` command); the caller holds the write transaction.
pub fn reindex(conn: &Connection, collection: &Collection) -> rusqlite::Result<()> {
    drop(conn, collection)?;
    create(conn, collection)
}

/// Why `search reindex` could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReindexError {
    #[error("no collection named {0:?}")]
    UnknownCollection(String),
    #[error("collection {0:?} has no searchable fields")]
    NotSearchable(String),
    #[error(transparent)]
    Schema(#[from] crate::schema::SchemaError),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

impl From<crate::db::DbError> for ReindexError {
    fn from(e: crate::db::DbError) -> Self {
        ReindexError::Schema(e.into())
    }
}

/// Rebuilds, in one write transaction, the index of every collection with
/// searchable fields, or only of `only` (a name or id); returns each
/// rebuilt collection's name and how many rows its index holds.
pub fn reindex_all(
    conn: &mut Connection,
    only: Option<&str>,
) -> Result<Vec<(String, i64)>, ReindexError> {
    let collections = crate::schema::load_all(conn)?;
    let chosen: Vec<&Collection> = collections
        .iter()
        .filter(|c| only.is_none_or(|o| c.name.as_str() == o || c.id == o))
        .collect();
    if let Some(o) = only {
        match chosen.first() {
            None => return Err(ReindexError::UnknownCollection(o.to_owned())),
            Some(c) if SearchSpec::of(c).is_none() => {
                return Err(ReindexError::NotSearchable(o.to_owned()));
            }
            Some(_) => {}
        }
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut done = Vec::new();
    for collection in chosen {
        if SearchSpec::of(collection).is_none() {
            continue;
        }
        reindex(&tx, collection)?;
        let count_sql = format!("SELECT count(*) FROM {}", ident(&fts_table(&collection.id)));
        let rows: i64 = tx.query_row(&count_sql, [], |r| r.get(0))?;
        done.push((collection.name.as_str().to_owned(), rows));
    }
    tx.commit()?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_insert_triggers_are_dropped_and_others_kept() {
        let conn = Connection::open_in_memory().expect("memory db");
        conn.execute_batch(
            "CREATE TABLE t (x); CREATE TABLE log (x);
             CREATE TRIGGER _fts_abc_ai AFTER INSERT ON t BEGIN INSERT INTO log VALUES (1); END;
             CREATE TRIGGER _fts_abc_ad AFTER DELETE ON t BEGIN INSERT INTO log VALUES (2); END;
             CREATE TRIGGER mine_ai AFTER INSERT ON t BEGIN INSERT INTO log VALUES (3); END;",
        )
        .expect("schema");

        drop_insert_triggers(&conn).expect("drops");

        let left: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'trigger' ORDER BY name")
            .expect("prepare")
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("names");
        assert_eq!(
            left,
            ["_fts_abc_ad", "mine_ai"],
            "only the index's insert trigger goes"
        );
    }

    #[test]
    fn raw_sql_that_may_insert_is_told_apart() {
        for (sql, want, why) in [
            ("insert into posts values (1)", true, "lower case"),
            ("REPLACE INTO posts VALUES (1)", true, "replace"),
            (
                "WITH x AS (SELECT 1) INSERT INTO p SELECT * FROM x",
                true,
                "after a CTE",
            ),
            ("UPDATE posts SET a = 1", false, "update"),
            ("DELETE FROM posts", false, "delete"),
        ] {
            assert_eq!(may_insert(sql), want, "{sql:?}: {why}");
        }
    }
}
