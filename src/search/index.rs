//! The FTS5 index of a collection: one virtual table `_fts_<collectionId>`
//! whose columns `c0, c1, …` hold the collection's searchable fields in field
//! order, and whose rowid is the record table's rowid.
//!
//! The index keeps its own copy of the text (a regular FTS5 table, not
//! `content=`): removing a row needs only its rowid, never the old values, so
//! writes that bypass `records` (raw SQL) can be caught up by comparing the
//! index's copy with the table (`search::catch_up`).
//!
//! Every write maintains the index explicitly, in its own transaction, with
//! no trigger: `records` calls [`insert_row`] after an insert,
//! [`read_before`]/[`update_row`] around an update, [`delete_row`] before a
//! delete (cascades included) and [`reindex`] after a truncate; raw SQL (the
//! console, hooks' `execute()`, migrations) is caught up before its commit;
//! a table rebuild (`schema::ddl`) renumbers rowids, so the index is dropped
//! and rebuilt with it. The reason is cost: a trigger makes its statement
//! open a statement savepoint, and FTS5 flushes its pending terms into a new
//! segment at each one — a batch of 500 writes then wrote 500 tiny segments
//! and spent most of its time merging them. Single-row `VALUES`/rowid
//! statements let a whole transaction's terms be flushed once, at the commit.

use super::held;
use crate::db::ident;
use crate::schema::{Collection, CollectionType, FieldKind};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

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

/// Drops the index and the triggers older versions kept it with (nothing
/// when there is none).
pub fn drop(conn: &Connection, collection: &Collection) -> rusqlite::Result<()> {
    held::apply(conn)?;
    let id = &collection.id;
    for verb in ["ai", "au", "ad"] {
        conn.execute_batch(&format!(
            "DROP TRIGGER IF EXISTS {}",
            ident(&trigger(id, verb))
        ))?;
    }
    conn.execute_batch(&format!("DROP TABLE IF EXISTS {}", ident(&fts_table(id))))
}

/// Creates the index of `collection` (when it has searchable fields) and
/// fills it from the table's current rows.
pub fn create(conn: &Connection, collection: &Collection) -> rusqlite::Result<()> {
    held::apply(conn)?;
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
    let values: Vec<Value> = spec.fields.iter().map(|f| value_of(f)).collect();
    if held::holding() {
        return held::insert(conn, &collection.id, rowid, values);
    }
    insert_now(conn, &collection.id, rowid, values)
}

/// Writes one index row: column `c{i}` gets `values[i]`.
pub(super) fn insert_now(
    conn: &Connection,
    collection_id: &str,
    rowid: i64,
    values: Vec<Value>,
) -> rusqlite::Result<()> {
    let cols: Vec<String> = (0..values.len()).map(|i| format!("c{i}")).collect();
    let marks: Vec<String> = (2..=values.len() + 1).map(|i| format!("?{i}")).collect();
    let sql = format!(
        "INSERT INTO {} (rowid, {}) VALUES (?1, {})",
        ident(&fts_table(collection_id)),
        cols.join(", "),
        marks.join(", ")
    );
    let mut params = vec![Value::Integer(rowid)];
    params.extend(values);
    conn.prepare_cached(&sql)?
        .execute(rusqlite::params_from_iter(params))?;
    Ok(())
}

/// The rowid and stored searchable values of one record, read just before
/// it is updated so [`update_row`] can tell whether the index must change.
#[derive(Debug)]
pub struct Before {
    rowid: i64,
    values: Vec<Value>,
}

/// Reads what [`update_row`] needs of record `id`; `None` when the
/// collection has no index (or no such record).
pub fn read_before(
    conn: &Connection,
    collection: &Collection,
    id: &str,
) -> rusqlite::Result<Option<Before>> {
    let Some(spec) = SearchSpec::of(collection) else {
        return Ok(None);
    };
    let fields: Vec<String> = spec.fields.iter().map(|f| ident(f)).collect();
    let sql = format!(
        "SELECT rowid, {} FROM {} WHERE id = ?1",
        fields.join(", "),
        ident(collection.name.as_str())
    );
    conn.prepare_cached(&sql)?
        .query_row([id], |r| {
            let values = (1..=fields.len())
                .map(|i| r.get::<_, Value>(i))
                .collect::<rusqlite::Result<_>>()?;
            Ok(Before {
                rowid: r.get(0)?,
                values,
            })
        })
        .optional()
}

/// Re-indexes the record read by [`read_before`] after its update, when a
/// searchable value changed (most updates — verification, token keys,
/// counters — change none); `value_of` as for [`insert_row`].
pub fn update_row(
    conn: &Connection,
    collection: &Collection,
    before: Before,
    value_of: impl Fn(&str) -> Value,
) -> rusqlite::Result<()> {
    let Some(spec) = SearchSpec::of(collection) else {
        return Ok(());
    };
    let changed = spec
        .fields
        .iter()
        .zip(&before.values)
        .any(|(f, old)| !same_text(old, &value_of(f)));
    if !changed {
        return Ok(());
    }
    remove(conn, &collection.id, before.rowid)?;
    insert_row(conn, collection, before.rowid, value_of)
}

/// Whether two values index alike: equal, or the same number written as
/// text on one side (a JSON column's numeric affinity turns `"12"` into 12).
fn same_text(a: &Value, b: &Value) -> bool {
    let text = |v: &Value| match v {
        Value::Integer(i) => Some(i.to_string()),
        Value::Real(f) => Some(f.to_string()),
        Value::Text(t) => Some(t.clone()),
        Value::Null | Value::Blob(_) => None,
    };
    a == b || (text(a).is_some() && text(a) == text(b))
}

/// Removes record `id` of `collection` from the index; called just before
/// the record's row is deleted.
pub fn delete_row(conn: &Connection, collection: &Collection, id: &str) -> rusqlite::Result<()> {
    if SearchSpec::of(collection).is_none() {
        return Ok(());
    }
    let sql = format!(
        "SELECT rowid FROM {} WHERE id = ?1",
        ident(collection.name.as_str())
    );
    let rowid: Option<i64> = conn
        .prepare_cached(&sql)?
        .query_row([id], |r| r.get(0))
        .optional()?;
    match rowid {
        Some(rowid) => remove(conn, &collection.id, rowid),
        None => Ok(()),
    }
}

/// Deletes one index row by rowid (held while the writer's group runs).
pub(crate) fn remove(conn: &Connection, collection_id: &str, rowid: i64) -> rusqlite::Result<()> {
    if held::holding() {
        return held::remove(conn, collection_id, rowid);
    }
    remove_now(conn, collection_id, rowid)
}

/// Deletes one index row by rowid: a single-row statement, no savepoint.
pub(super) fn remove_now(
    conn: &Connection,
    collection_id: &str,
    rowid: i64,
) -> rusqlite::Result<()> {
    let sql = format!(
        "DELETE FROM {} WHERE rowid = ?1",
        ident(&fts_table(collection_id))
    );
    conn.prepare_cached(&sql)?.execute([rowid])?;
    Ok(())
}

/// [`drop_old_triggers`] on the writer: run by whatever opens a data dir
/// to write records (the server, `migrate`) before it writes any.
pub async fn upgrade(db: &crate::db::Db) -> Result<(), crate::schema::SchemaError> {
    db.write(|conn| drop_old_triggers(conn).map_err(crate::schema::SchemaError::from))
        .await
}

/// Drops the insert, update and delete triggers (`_fts_<id>_ai`, `_au`,
/// `_ad`) that databases indexed by older versions still have: the write
/// path now maintains the index itself, and a trigger would make every
/// write flush a segment.
pub fn drop_old_triggers(conn: &Connection) -> rusqlite::Result<()> {
    let names: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'trigger' \
             AND name LIKE '\\_fts\\_%' ESCAPE '\\' \
             AND substr(name, -3) IN ('_ai', '_au', '_ad')",
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
    fn old_index_triggers_are_dropped_and_others_kept() {
        let conn = Connection::open_in_memory().expect("memory db");
        conn.execute_batch(
            "CREATE TABLE t (x); CREATE TABLE log (x);
             CREATE TRIGGER _fts_abc_ai AFTER INSERT ON t BEGIN INSERT INTO log VALUES (1); END;
             CREATE TRIGGER _fts_abc_au AFTER UPDATE ON t BEGIN INSERT INTO log VALUES (2); END;
             CREATE TRIGGER _fts_abc_ad AFTER DELETE ON t BEGIN INSERT INTO log VALUES (3); END;
             CREATE TRIGGER mine_ai AFTER INSERT ON t BEGIN INSERT INTO log VALUES (4); END;
             CREATE TRIGGER _fts_abc_audit AFTER INSERT ON t BEGIN INSERT INTO log VALUES (5); END;",
        )
        .expect("schema");

        drop_old_triggers(&conn).expect("drops");

        let left: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'trigger' ORDER BY name")
            .expect("prepare")
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("names");
        assert_eq!(
            left,
            ["_fts_abc_audit", "mine_ai"],
            "only the index's old triggers go"
        );
    }

    #[test]
    fn a_number_and_its_text_index_alike() {
        for (a, b, want, why) in [
            (
                Value::Integer(12),
                Value::Text("12".into()),
                true,
                "JSON affinity",
            ),
            (
                Value::Text("a".into()),
                Value::Text("a".into()),
                true,
                "equal",
            ),
            (
                Value::Text("a".into()),
                Value::Text("b".into()),
                false,
                "edited",
            ),
            (
                Value::Null,
                Value::Text(String::new()),
                false,
                "null to empty",
            ),
        ] {
            assert_eq!(same_text(&a, &b), want, "{why}");
        }
    }
}
