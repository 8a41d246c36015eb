//! A record write's transaction on either engine ([`RecordTx`]): the few
//! statements whose SQL or upkeep differs by engine (load, rule match,
//! insert, update, delete), behind one trait, so create, update and delete
//! are written once (`write.rs`, `refs.rs`). Shared statements (relation
//! checks, references, auth ids) run on [`RecordTx::conn`].
//!
//! SQLite ([`SqliteTx`]) keeps its own statements: prepared and cached on
//! the single writer, with the full-text index kept in step. PostgreSQL
//! ([`PgTx`]) has no single writer, so rows are locked where SQLite's
//! writer excluded others for free ([`RowLock`]), values are checked
//! against what PostgreSQL can hold exactly, and a unique index's refusal
//! (SQLSTATE 23505) is reported on the columns of the collection's index
//! SQLite would have named.

use super::RecordError;
use super::access::Access;
use super::read;
use super::value::to_sql;
use super::write::{insert, insert_sql, invalid, unique_violation, update_sql, write_update};
use crate::db::{Conn, DbError, SqliteConn, ident};
use crate::rules::{self, Dialect, SqlFragment, SqlValue};
use crate::schema::{Collection, CompiledCollection, FieldKind, IndexDef};
use crate::validation::{FieldError, ValidationErrors};
use rusqlite::Connection;
use serde_json::{Map, Value};

/// The largest integer a `double precision` column holds exactly.
const PG_EXACT_INTEGER: i64 = 1 << 53;

/// Whether a load also locks the row until the transaction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RowLock {
    /// A plain read.
    None,
    /// `FOR UPDATE` on PostgreSQL (the record is about to change or go);
    /// nothing on SQLite, whose writer already excludes every other write.
    ForUpdate,
}

/// The statements of a record write that differ by engine.
pub(super) trait RecordTx {
    /// The transaction's connection, for the statements both engines share.
    fn conn(&mut self) -> &mut dyn Conn;

    /// Record `id`'s field values if it exists and passes `access`.
    fn load(
        &mut self,
        collection: &CompiledCollection,
        id: &str,
        access: &Access,
        lock: RowLock,
    ) -> Result<Option<Map<String, Value>>, RecordError>;

    /// Locks row `id` for the rest of the transaction (see [`RowLock`]).
    fn lock_row(&mut self, collection: &Collection, id: &str) -> Result<(), RecordError>;

    /// Whether row `id` matches a rule condition.
    fn matches(
        &mut self,
        collection: &Collection,
        id: &str,
        rule: &SqlFragment,
    ) -> Result<bool, RecordError>;

    /// Inserts a record; a unique index's refusal is `message` with
    /// `validation_not_unique` on its columns.
    fn insert(
        &mut self,
        collection: &Collection,
        values: &Map<String, Value>,
        message: &'static str,
    ) -> Result<(), RecordError>;

    /// Writes every field of record `id` (refusals as [`RecordTx::insert`]).
    fn update(
        &mut self,
        collection: &Collection,
        id: &str,
        values: &Map<String, Value>,
        message: &'static str,
    ) -> Result<(), RecordError>;

    /// Deletes row `id` (references are the caller's business).
    fn delete(&mut self, collection: &Collection, id: &str) -> Result<(), RecordError>;
}

/// A write inside SQLite's (group) transaction on the single writer.
pub(super) struct SqliteTx<'a> {
    tx: &'a Connection,
    conn: SqliteConn<'a>,
}

impl<'a> SqliteTx<'a> {
    pub(super) fn new(tx: &'a Connection) -> Self {
        Self {
            tx,
            conn: SqliteConn(tx),
        }
    }
}

impl RecordTx for SqliteTx<'_> {
    fn conn(&mut self) -> &mut dyn Conn {
        &mut self.conn
    }

    fn load(
        &mut self,
        collection: &CompiledCollection,
        id: &str,
        access: &Access,
        _: RowLock,
    ) -> Result<Option<Map<String, Value>>, RecordError> {
        read::load(self.tx, collection, id, access)
    }

    fn lock_row(&mut self, _: &Collection, _: &str) -> Result<(), RecordError> {
        Ok(())
    }

    fn matches(
        &mut self,
        collection: &Collection,
        id: &str,
        rule: &SqlFragment,
    ) -> Result<bool, RecordError> {
        read::row_matches(self.tx, collection, id, rule)
    }

    fn insert(
        &mut self,
        collection: &Collection,
        values: &Map<String, Value>,
        message: &'static str,
    ) -> Result<(), RecordError> {
        insert(self.tx, collection, values).map_err(|e| unique_violation(e, message))
    }

    fn update(
        &mut self,
        collection: &Collection,
        id: &str,
        values: &Map<String, Value>,
        message: &'static str,
    ) -> Result<(), RecordError> {
        write_update(self.tx, collection, id, values).map_err(|e| unique_violation(e, message))
    }

    fn delete(&mut self, collection: &Collection, id: &str) -> Result<(), RecordError> {
        crate::search::index::delete_row(self.tx, collection, id)?;
        self.tx.execute(
            &format!(
                "DELETE FROM {} WHERE id = ?1",
                ident(collection.name.as_str())
            ),
            [id],
        )?;
        Ok(())
    }
}

/// A write in a PostgreSQL transaction of its own.
pub(super) struct PgTx<'a>(pub &'a mut dyn Conn);

impl RecordTx for PgTx<'_> {
    fn conn(&mut self) -> &mut dyn Conn {
        self.0
    }

    fn load(
        &mut self,
        collection: &CompiledCollection,
        id: &str,
        access: &Access,
        lock: RowLock,
    ) -> Result<Option<Map<String, Value>>, RecordError> {
        // PostgreSQL text cannot hold NUL, so no stored id has one.
        if id.contains('\0') {
            return Ok(None);
        }
        if lock == RowLock::ForUpdate && !self.locked(collection, id)? {
            return Ok(None);
        }
        // Read after the lock: READ COMMITTED reads the latest committed row.
        super::on_postgres::load_in(self.0, collection, id, access)
    }

    fn lock_row(&mut self, collection: &Collection, id: &str) -> Result<(), RecordError> {
        if !id.contains('\0') {
            self.locked(collection, id)?;
        }
        Ok(())
    }

    fn matches(
        &mut self,
        collection: &Collection,
        id: &str,
        rule: &SqlFragment,
    ) -> Result<bool, RecordError> {
        let table = ident(collection.name.as_str());
        let mut query = SqlFragment {
            sql: format!(
                "SELECT EXISTS(SELECT 1 FROM {table} WHERE {table}.\"id\" = ? AND ({}))",
                rule.sql
            ),
            params: vec![SqlValue::Text(id.to_owned())],
        };
        query.params.extend(rule.params.iter().cloned());
        let sql = rules::postgres::numbered(&query);
        Ok(self.0.integer(&sql, &query.params)? != 0)
    }

    fn insert(
        &mut self,
        collection: &Collection,
        values: &Map<String, Value>,
        message: &'static str,
    ) -> Result<(), RecordError> {
        let params = pg_params(collection, values, message)?;
        let sql = insert_sql(collection);
        self.write_row(collection, &sql, &params, None, message)
    }

    fn update(
        &mut self,
        collection: &Collection,
        id: &str,
        values: &Map<String, Value>,
        message: &'static str,
    ) -> Result<(), RecordError> {
        let mut params = pg_params(collection, values, message)?;
        let sql = update_sql(collection);
        params.push(SqlValue::Text(id.to_owned()));
        self.write_row(collection, &sql, &params, Some(id), message)
    }

    fn delete(&mut self, collection: &Collection, id: &str) -> Result<(), RecordError> {
        self.0.execute(
            &format!(
                "DELETE FROM {} WHERE id = ?1",
                ident(collection.name.as_str())
            ),
            &[SqlValue::Text(id.to_owned())],
        )?;
        Ok(())
    }
}

impl PgTx<'_> {
    /// Runs an insert or update of `collection`'s row (`params` in field
    /// order; `own` is the id of the row an update rewrites). A unique
    /// index's refusal names the index SQLite would: SQLite checks the
    /// newest index first and the primary key last, PostgreSQL the other
    /// way round, so on a refusal the statement is undone to a savepoint
    /// and the indexes are asked in SQLite's order which one the row breaks.
    fn write_row(
        &mut self,
        collection: &Collection,
        sql: &str,
        params: &[SqlValue],
        own: Option<&str>,
        message: &'static str,
    ) -> Result<(), RecordError> {
        let unique: Vec<&IndexDef> = collection
            .indexes
            .iter()
            .rev()
            .filter(|i| i.unique)
            .collect();
        if unique.is_empty() {
            // Only the primary key can refuse the row.
            return match self.0.execute(sql, params) {
                Ok(_) => Ok(()),
                Err(e) if is_unique_violation(&e) => Err(not_unique(&["id"], message)),
                Err(e) => Err(e.into()),
            };
        }
        self.0.execute("SAVEPOINT fb_unique", &[])?;
        match self.0.execute(sql, params) {
            Ok(_) => {
                self.0.execute("RELEASE SAVEPOINT fb_unique", &[])?;
                Ok(())
            }
            Err(e) if is_unique_violation(&e) => {
                self.0.execute("ROLLBACK TO SAVEPOINT fb_unique", &[])?;
                for index in unique {
                    if self.breaks(collection, index, params, own)? {
                        let columns: Vec<&str> =
                            index.columns.iter().map(|c| c.field.as_str()).collect();
                        return Err(not_unique(&columns, message));
                    }
                }
                Err(not_unique(&["id"], message))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Whether another row holds the values `params` give `index`'s columns.
    fn breaks(
        &mut self,
        collection: &Collection,
        index: &IndexDef,
        params: &[SqlValue],
        own: Option<&str>,
    ) -> Result<bool, RecordError> {
        let jsonb = |name: &str| collection.field(name).is_some_and(is_jsonb);
        let position = |name: &str| {
            collection
                .fields
                .iter()
                .position(|f| f.name.as_str() == name)
        };
        let mut conds = Vec::new();
        let mut values = Vec::new();
        for column in &index.columns {
            let name = column.field.as_str();
            let Some(value) = position(name).and_then(|at| params.get(at)) else {
                return Ok(false);
            };
            values.push(value.clone());
            let (col, n) = (ident(name), values.len());
            conds.push(if column.nocase && !jsonb(name) {
                format!("lower({col}) = lower(?{n})")
            } else {
                format!("{col} = ?{n}")
            });
        }
        if let Some(field) = &index.where_not_empty {
            let col = ident(field.as_str());
            conds.push(if jsonb(field.as_str()) {
                format!("{col}::text <> ''")
            } else {
                format!("{col} <> ''")
            });
        }
        if let Some(own) = own {
            values.push(SqlValue::Text(own.to_owned()));
            conds.push(format!("id <> ?{}", values.len()));
        }
        let sql = format!(
            "SELECT 1 FROM {} WHERE {} LIMIT 1",
            ident(collection.name.as_str()),
            conds.join(" AND ")
        );
        Ok(self.0.first_row(&sql, &values)?.is_some())
    }

    /// Locks row `id` `FOR UPDATE`; false when there is none.
    fn locked(&mut self, collection: &Collection, id: &str) -> Result<bool, RecordError> {
        let sql = format!(
            "SELECT 1 FROM {} WHERE id = ?1 FOR UPDATE",
            ident(collection.name.as_str())
        );
        Ok(self
            .0
            .first_row(&sql, &[SqlValue::Text(id.to_owned())])?
            .is_some())
    }
}

/// Each field's stored value as PostgreSQL takes it. What it cannot hold
/// exactly (text with NUL, JSON with `\u0000` or with a number `jsonb`
/// would write differently, an integer past 2^53 in a `double precision`
/// column) is a field error: a 400 saying so, never a different value.
fn pg_params(
    collection: &Collection,
    values: &Map<String, Value>,
    message: &'static str,
) -> Result<Vec<SqlValue>, RecordError> {
    let mut errors = ValidationErrors::new();
    let mut params = Vec::with_capacity(collection.fields.len());
    for field in &collection.fields {
        let jsonb = is_jsonb(field);
        let value = match to_sql(
            field,
            values.get(field.name.as_str()).unwrap_or(&Value::Null),
        ) {
            rusqlite::types::Value::Null => Some(SqlValue::Null),
            rusqlite::types::Value::Integer(i) => (-PG_EXACT_INTEGER..=PG_EXACT_INTEGER)
                .contains(&i)
                .then_some(SqlValue::Integer(i)),
            rusqlite::types::Value::Real(f) => Some(SqlValue::Real(f)),
            rusqlite::types::Value::Text(t) => {
                let unholdable = t.contains('\0')
                    || (jsonb && (t.contains("\\u0000") || has_number_jsonb_rewrites(&t)));
                (!unholdable).then_some(SqlValue::Text(t))
            }
            rusqlite::types::Value::Blob(_) => None,
        };
        match value {
            Some(v) => params.push(v),
            None => errors.add(
                field.name.as_str(),
                FieldError::new(
                    "validation_not_on_postgres",
                    "The value cannot be stored exactly on PostgreSQL.",
                ),
            ),
        }
    }
    errors.into_result().map_err(|e| invalid(message, e))?;
    Ok(params)
}

/// Whether JSON text (as serde_json writes it) holds a number `jsonb`
/// would write back differently: one with an exponent (`1e16` is kept as
/// 10000000000000000) or a negative zero (`-0.0` becomes `0.0`).
fn has_number_jsonb_rewrites(json: &str) -> bool {
    let mut in_string = false;
    let mut escaped = false;
    let mut number = String::new();
    for c in json.chars().chain([' ']) {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E') {
            number.push(c);
        } else {
            let rewritten = number.contains(['e', 'E'])
                || (number.starts_with('-')
                    && number[1..].bytes().all(|b| matches!(b, b'0' | b'.')));
            if rewritten && number.len() > 1 {
                return true;
            }
            number.clear();
            in_string = c == '"';
        }
    }
    false
}

fn is_unique_violation(e: &DbError) -> bool {
    matches!(e, DbError::Postgres(failure) if failure.is_unique_violation())
}

/// Whether `field` is a `jsonb` column on PostgreSQL (JSON, geo points, multi values).
pub(crate) fn is_jsonb(field: &crate::schema::Field) -> bool {
    field.is_multi() || matches!(field.kind, FieldKind::Json { .. } | FieldKind::GeoPoint)
}

/// `message` with `validation_not_unique` on each of `columns`.
fn not_unique(columns: &[&str], message: &'static str) -> RecordError {
    let mut errors = ValidationErrors::new();
    for column in columns {
        errors.add(
            *column,
            FieldError::new("validation_not_unique", "Value must be unique."),
        );
    }
    invalid(message, errors)
}

/// The SQL dialect of a write's transaction.
pub(super) fn dialect(tx: &mut dyn RecordTx) -> Dialect {
    tx.conn().dialect()
}

#[cfg(test)]
mod tests {
    use super::has_number_jsonb_rewrites;

    #[test]
    fn numbers_jsonb_would_rewrite_are_found_outside_strings_only() {
        for (json, want) in [
            (r#"{"a":1e16}"#, true),
            (r#"[1.5e-7]"#, true),
            (r#"1E5"#, true),
            (r#"{"a":"1e16"}"#, false),
            (r#"{"1e5":true,"b":false}"#, false),
            (r#"["x\"1e5",0.1,3.0]"#, false),
            (r#"["\\",2e3]"#, true),
            (r#"[-0.0]"#, true),
            (r#"{"a":-0}"#, true),
            (r#"[-0.5,0.0,-10]"#, false),
            (r#"{"-0.0":"-0.0"}"#, false),
            (r#"{"a":true,"b":null}"#, false),
        ] {
            assert_eq!(has_number_jsonb_rewrites(json), want, "{json}");
        }
    }
}
