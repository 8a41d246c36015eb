//! `app.db().newQuery(sql).bind({...}).execute()` in a migration: one
//! statement, written in the engine's own dialect (SQLite's, or
//! PostgreSQL's), with dbx's placeholders turned into the engine's:
//! `{:name}` values are only ever bound, never spliced into the text, and
//! `{{table}}` / `[[column]]` become quoted identifiers.

use crate::db::Conn;
use crate::rules::SqlValue;
use serde::Deserialize;
use serde_json::{Map, Value};

/// The statement and its named values, as the prelude sends them.
#[derive(Deserialize)]
pub(super) struct RawSql {
    sql: String,
    #[serde(default)]
    params: Map<String, Value>,
}

const POSITIONAL: &str = "positional ? parameters are not supported; use {:name}";

/// Runs the statement in the migration's transaction; the rows it changed.
pub(super) fn run(conn: &mut dyn Conn, args: RawSql) -> Result<Value, String> {
    match conn.sqlite() {
        Some(tx) => on_sqlite(tx, args),
        None => on_postgres(conn, args),
    }
}

/// SQLite: `{:name}` as `:name`, bound by name.
fn on_sqlite(tx: &rusqlite::Connection, args: RawSql) -> Result<Value, String> {
    let sql = translate(&args.sql, &mut Values::Named)?;
    let mut stmt = tx.prepare(&sql).map_err(|e| e.to_string())?;
    for i in 1..=stmt.parameter_count() {
        let Some(param) = stmt.parameter_name(i).map(str::to_owned) else {
            return Err(POSITIONAL.to_owned());
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

/// PostgreSQL: `{:name}` as a numbered parameter (one per name), bound in
/// that order through [`Conn`], so a value takes the column's type as any
/// bound value does. (PostgreSQL collections have no full-text index.)
fn on_postgres(conn: &mut dyn Conn, args: RawSql) -> Result<Value, String> {
    let mut names = Vec::new();
    let sql = translate(&args.sql, &mut Values::Numbered(&mut names))?;
    let values = names
        .iter()
        .map(|name| {
            args.params
                .get(name)
                .map(to_sql)
                .ok_or_else(|| format!("missing bound parameter {name:?}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let changed = conn.execute(&sql, &values).map_err(|e| e.to_string())?;
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

/// How `{:name}` is written.
enum Values<'a> {
    /// `:name` (SQLite binds by name).
    Named,
    /// `?N`, N the name's place in the list (added on first use); a `?` of
    /// the author's own is refused, as it would take a number of ours.
    Numbered(&'a mut Vec<String>),
}

/// dbx's placeholders to the engine's, outside quoted literals:
/// `{:name}` as `values` says, `{{name}}` and `[[name]]` → `"name"`.
fn translate(sql: &str, values: &mut Values<'_>) -> Result<String, String> {
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
        if c == '?' && matches!(values, Values::Numbered(_)) {
            return Err(POSITIONAL.to_owned());
        }
        if let Some((name, len)) = placeholder(rest, values) {
            out.push_str(&name);
            rest = &rest[len..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    Ok(out)
}

fn placeholder(text: &str, values: &mut Values<'_>) -> Option<(String, usize)> {
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
                    match values {
                        Values::Named => format!(":{name}"),
                        Values::Numbered(names) => {
                            let at = match names.iter().position(|known| known == name) {
                                Some(at) => at,
                                None => {
                                    names.push(name.to_owned());
                                    names.len() - 1
                                }
                            };
                            format!("?{}", at + 1)
                        }
                    }
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
            assert_eq!(
                translate(input, &mut Values::Named).as_deref(),
                Ok(expected),
                "{why}"
            );
        }
    }

    #[test]
    fn dbx_values_become_numbered_parameters_for_postgres_one_per_name() {
        let cases = [
            (
                "UPDATE {{posts}} SET [[title]] = {:t} WHERE [[n]] = {:n} OR [[m]] = {:n}",
                Ok("UPDATE \"posts\" SET \"title\" = ?1 WHERE \"n\" = ?2 OR \"m\" = ?2"),
                &["t", "n"][..],
                "numbered in order of first use, a name used twice binds once",
            ),
            (
                "SELECT '{:a} ?' WHERE x = {:b}",
                Ok("SELECT '{:a} ?' WHERE x = ?1"),
                &["b"][..],
                "nothing inside a string literal",
            ),
            (
                "SELECT x FROM t WHERE y = ? OR z = {:z}",
                Err(POSITIONAL),
                &[][..],
                "an author's own ? would take one of our numbers",
            ),
        ];
        for (input, expected, bound, why) in cases {
            let mut names = Vec::new();
            let out = translate(input, &mut Values::Numbered(&mut names));
            assert_eq!(
                out.as_deref(),
                expected.map_err(str::to_owned).as_deref(),
                "{why}"
            );
            if out.is_ok() {
                assert_eq!(names, bound, "{why}");
            }
        }
    }
}
