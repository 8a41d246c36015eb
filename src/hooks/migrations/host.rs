//! The host operations of migrations, run inside the migration's
//! transaction on either engine (SQLite's writer, or one PostgreSQL
//! connection). Collections change through the import steps
//! (`schema::import_in`, `schema::delete_in_tx`), the same path as
//! `PUT /api/collections/import`; records are created through the record
//! API's own prepare-and-apply steps (as the superuser). Every answer is
//! the value or an error message for the script to throw. Raw SQL (`sql`)
//! runs on SQLite only: on PostgreSQL it is refused ([`RAW_SQL_ON_POSTGRES`]).

use crate::db::Conn;
use crate::records::{self, Caller};
use crate::schema::{self, Snapshot};
use rusqlite::types::Value as SqlValue;
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SaveCollection {
    data: Map<String, Value>,
    is_new: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Import {
    collections: Vec<Map<String, Value>>,
    delete_missing: bool,
}

#[derive(Deserialize)]
struct RecordRef {
    c: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    data: Map<String, Value>,
}

#[derive(Deserialize)]
struct RawSql {
    sql: String,
    #[serde(default)]
    params: Map<String, Value>,
}

fn parse<T: for<'de> Deserialize<'de>>(args: Value) -> Result<T, String> {
    serde_json::from_value(args).map_err(|e| format!("invalid arguments: {e}"))
}

/// Why `app.db().newQuery(...)` fails in a migration on PostgreSQL.
pub(super) const RAW_SQL_ON_POSTGRES: &str = "raw SQL in migrations (app.db().newQuery) does not \
     run on PostgreSQL yet: its statements are written for SQLite; change collections with \
     app.save / app.importCollections and records with app.save(new Record(...)) instead";

pub(super) fn run(
    tx: &mut dyn Conn,
    handle: &tokio::runtime::Handle,
    op: &str,
    args: Value,
) -> Result<Value, String> {
    match op {
        "findCollection" => {
            let name = args.as_str().unwrap_or_default();
            find_collection(&snapshot(tx)?, name).map(|c| c.to_json())
        }
        "saveCollection" => save_collection(tx, parse(args)?),
        "deleteCollection" => {
            let name = args.as_str().unwrap_or_default();
            schema::delete_in_tx(tx, name).map_err(|e| match e {
                schema::SchemaError::NotFound => not_found(name),
                other => other.to_string(),
            })?;
            Ok(Value::Null)
        }
        "importCollections" => {
            let Import {
                collections,
                delete_missing,
            } = parse(args)?;
            if collections.is_empty() {
                return Err("no collections to import".to_owned());
            }
            schema::import_in(tx, collections, delete_missing, delete_missing)
                .map_err(|e| e.to_string())?;
            Ok(Value::Null)
        }
        "createRecord" => {
            let RecordRef { c, data, .. } = parse(args)?;
            let snapshot = snapshot(tx)?;
            let collection = find_collection(&snapshot, &c)?;
            let prepared = handle
                .block_on(records::prepare_create(
                    &snapshot,
                    collection,
                    Caller::superuser(),
                    data,
                    &[],
                ))
                .map_err(record_error)?;
            let mut changes = crate::realtime::Changes::default();
            // Not published to realtime subscribers, on either engine.
            let applied = prepared
                .apply(tx, &snapshot, &mut changes)
                .map_err(record_error)?;
            Ok(applied.record)
        }
        "findRecord" => {
            let RecordRef { c, id, .. } = parse(args)?;
            let snapshot = snapshot(tx)?;
            let collection = find_collection(&snapshot, &c)?;
            records::view_conn(tx, &collection, &id)
                .map_err(record_error)?
                .ok_or_else(|| "sql: no rows in result set".to_owned())
        }
        "deleteRecord" => Err(
            "deleting records is not supported in migrations yet; use app.db().newQuery()"
                .to_owned(),
        ),
        "sql" => match tx.sqlite() {
            Some(tx) => raw_sql(tx, parse(args)?),
            None => Err(RAW_SQL_ON_POSTGRES.to_owned()),
        },
        _ => Err(format!("unknown host operation {op:?}")),
    }
}

fn snapshot(tx: &mut dyn Conn) -> Result<Snapshot, String> {
    schema::read_snapshot(tx).map_err(|e| e.to_string())
}

fn not_found(name: &str) -> String {
    format!("collection {name:?} not found")
}

fn find_collection(
    snapshot: &Snapshot,
    name: &str,
) -> Result<std::sync::Arc<schema::CompiledCollection>, String> {
    snapshot.get(name).ok_or_else(|| not_found(name))
}

fn record_error(e: records::RecordError) -> String {
    match &e {
        records::RecordError::Invalid { errors, .. } => format!("{e}: {}", errors.to_json()),
        _ => e.to_string(),
    }
}

/// `app.save(collection)`: a new collection must not take an existing id
/// or name; a loaded one is updated with exactly the fields it lists.
fn save_collection(tx: &mut dyn Conn, args: SaveCollection) -> Result<Value, String> {
    let SaveCollection { mut data, is_new } = args;
    data.remove("created");
    data.remove("updated");
    let id = data
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let name = data
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let before = snapshot(tx)?;
    if is_new {
        if !id.is_empty() && before.get(&id).is_some_and(|c| c.id == id) {
            return Err(format!("collection id {id:?} is already taken"));
        }
        if before.get(&name).is_some() {
            return Err(format!("collection name {name:?} is already taken"));
        }
    } else if id.is_empty() {
        return Err("the collection to update has no id".to_owned());
    }
    let after = schema::import_in(tx, vec![data], false, true).map_err(|e| e.to_string())?;
    let key = if id.is_empty() { &name } else { &id };
    find_collection(&after, key).map(|c| c.to_json())
}

/// `app.db().newQuery(sql).bind({...}).execute()`: one statement, with
/// dbx's placeholders (`{:name}`, `{{table}}`, `[[column]]`) turned into
/// SQLite's; values are only ever bound, never spliced into the text.
fn raw_sql(tx: &rusqlite::Connection, args: RawSql) -> Result<Value, String> {
    let sql = translate(&args.sql);
    let mut stmt = tx.prepare(&sql).map_err(|e| e.to_string())?;
    for i in 1..=stmt.parameter_count() {
        let Some(param) = stmt.parameter_name(i).map(str::to_owned) else {
            return Err("positional ? parameters are not supported; use {:name}".to_owned());
        };
        let key = param.trim_start_matches([':', '@', '$']);
        let value = args
            .params
            .get(key)
            .ok_or_else(|| format!("missing bound parameter {key:?}"))?;
        stmt.raw_bind_parameter(i, to_sql(value))
            .map_err(|e| e.to_string())?;
    }
    let changed = stmt.raw_execute().map_err(|e| e.to_string())?;
    if changed > 0 {
        // Raw writes bypass `records`, which keeps the search indexes.
        crate::search::catch_up::catch_up(tx, &sql).map_err(|e| e.to_string())?;
    }
    Ok(Value::from(changed))
}

fn to_sql(value: &Value) -> SqlValue {
    match value {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => SqlValue::Text(s.clone()),
        other => SqlValue::Text(other.to_string()),
    }
}

/// dbx's placeholders to SQLite's, outside quoted literals:
/// `{:name}` → `:name`, `{{name}}` and `[[name]]` → `"name"`.
fn translate(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(c) = rest.chars().next() {
        if c == '\'' || c == '"' {
            // Copy the quoted literal as is (a doubled quote stays inside).
            let mut end = 1;
            let bytes = rest.as_bytes();
            while end < bytes.len() {
                if bytes[end] == c as u8 {
                    if bytes.get(end + 1) == Some(&(c as u8)) {
                        end += 2;
                        continue;
                    }
                    end += 1;
                    break;
                }
                end += 1;
            }
            let end = end.min(rest.len());
            out.push_str(&rest[..end]);
            rest = &rest[end..];
            continue;
        }
        if let Some((name, len)) = placeholder(rest) {
            out.push_str(&name);
            rest = &rest[len..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn placeholder(text: &str) -> Option<(String, usize)> {
    let word = |s: &str| {
        s.bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.')
            .count()
    };
    for (open, close, quoted) in [("{:", "}", false), ("{{", "}}", true), ("[[", "]]", true)] {
        if let Some(body) = text.strip_prefix(open) {
            let n = word(body);
            if n > 0 && body[n..].starts_with(close) {
                let name = &body[..n];
                let replaced = if quoted {
                    name.split('.')
                        .map(|p| format!("\"{p}\""))
                        .collect::<Vec<_>>()
                        .join(".")
                } else if name.contains('.') {
                    return None;
                } else {
                    format!(":{name}")
                };
                return Some((replaced, open.len() + n + close.len()));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dbx_placeholders_become_sqlites_outside_literals() {
        let cases = [
            ("SELECT {:a}", "SELECT :a", "a named value"),
            (
                "UPDATE {{posts}} SET [[title]] = {:t}",
                "UPDATE \"posts\" SET \"title\" = :t",
                "table and column quoting",
            ),
            ("SELECT '{:a}'", "SELECT '{:a}'", "inside a string literal"),
            (
                "SELECT 'it''s {:a}'",
                "SELECT 'it''s {:a}'",
                "doubled quote",
            ),
            (
                "SELECT {:a.b}",
                "SELECT {:a.b}",
                "a dotted name is not a value",
            ),
            ("SELECT {:}", "SELECT {:}", "an empty name"),
        ];
        for (input, expected, why) in cases {
            assert_eq!(translate(input), expected, "{why}");
        }
    }
}
