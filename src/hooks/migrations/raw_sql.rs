//! `app.db().newQuery(sql).bind({...}).execute()` in a migration: one
//! statement, written in the engine's own dialect (SQLite's, or
//! PostgreSQL's), with dbx's placeholders turned into the engine's by the
//! same converter as hooks' raw SQL (`crate::db::named`): `{:name}` values
//! are only ever bound, never spliced into the text, and `{{table}}` /
//! `[[column]]` become quoted identifiers.

use crate::db::Conn;
use crate::db::named::{self, Named};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The statement and its named values, as the prelude sends them.
#[derive(Deserialize)]
pub(super) struct RawSql {
    sql: String,
    #[serde(default)]
    params: Map<String, Value>,
}

/// Runs the statement in the migration's transaction; the rows it changed.
pub(super) fn run(conn: &mut dyn Conn, args: RawSql) -> Result<Value, String> {
    let Named { sql, names } =
        named::to_positional(&args.sql, conn.dialect()).map_err(|e| e.to_string())?;
    let values = names
        .iter()
        .map(|name| {
            args.params
                .get(name)
                .map(named::bound)
                .ok_or_else(|| format!("missing bound parameter {name:?}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let changed = conn
        .execute_as_written(&sql, &values)
        .map_err(|e| e.to_string())?;
    if changed > 0
        && let Some(tx) = conn.sqlite()
    {
        // Raw writes bypass `records`, which keeps the search indexes.
        // (PostgreSQL collections have no full-text index.)
        crate::search::catch_up::catch_up(tx, &sql).map_err(|e| e.to_string())?;
    }
    Ok(Value::from(changed))
}
