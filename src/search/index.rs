//! The FTS5 index of a collection: one virtual table `_fts_<collectionId>`
//! whose columns `c0, c1, …` hold the collection's searchable fields in field
//! order, and whose rowid is the record table's rowid.
//!
//! The index keeps its own copy of the text (a regular FTS5 table, not
//! `content=`): a delete then needs only the rowid, so the index can never be
//! corrupted by a delete that passes stale values, at the cost of storing the
//! searchable text twice. Three triggers on the record table (after insert,
//! after a searchable value changes, after delete) maintain it, so every
//! write path — record CRUD, batch, cascades, truncate, hooks, account flows,
//! the SQL console — updates the index in the same transaction as the row,
//! and a crash can never leave them apart. A table rebuild (`schema::ddl`)
//! renumbers rowids, so the index is dropped and rebuilt with it.

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

/// Drops the index and its triggers (nothing when there is none).
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
        "CREATE TRIGGER {} AFTER INSERT ON {table} BEGIN {insert} END;\
         CREATE TRIGGER {} AFTER UPDATE OF {} ON {table} WHEN {} BEGIN \
           DELETE FROM {fts} WHERE rowid = old.rowid; {insert} END;\
         CREATE TRIGGER {} AFTER DELETE ON {table} BEGIN \
           DELETE FROM {fts} WHERE rowid = old.rowid; END;",
        ident(&trigger(id, "ai")),
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
