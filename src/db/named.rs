//! dbx's placeholders in SQL a person wrote (a hook's `newQuery`, a
//! `$dbx.exp`), turned into the engine's own: `{:name}` becomes a numbered
//! parameter (`?N` on SQLite, `$N` on PostgreSQL; one number per name) and
//! `{{table}}` / `[[column]]` a quoted identifier. Only outside string
//! literals, quoted identifiers and comments, in the dialect's own lexical
//! rules (PostgreSQL's `E'…'` strings, `$tag$…$tag$` quoting and nested
//! comments; SQLite's `[…]` and `` `…` `` identifiers). Values never enter
//! the text: the caller binds them in [`Named::names`] order.

use crate::rules::{Dialect, SqlValue};

/// The SQL with numbered parameters and which name each number binds.
#[derive(Debug, PartialEq, Eq)]
pub struct Named {
    pub sql: String,
    /// `names[0]` binds `?1` / `$1`, and so on.
    pub names: Vec<String>,
}

/// Why the SQL's placeholders cannot be read.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum NamedError {
    #[error("An unclosed {{: placeholder.")]
    Unclosed,
    #[error("Invalid placeholder {{:{0}}}.")]
    BadName(String),
    /// The engine's own parameter (PostgreSQL's `$1`, SQLite's `?`): its
    /// number would clash with the bound names.
    #[error("Write {{:name}} placeholders, not {0}.")]
    Positional(String),
}

/// Converts `sql`'s placeholders for `dialect` (see the module doc).
pub fn to_positional(sql: &str, dialect: Dialect) -> Result<Named, NamedError> {
    let pg = dialect == Dialect::Postgres;
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 8);
    let mut names: Vec<String> = Vec::new();
    let (mut i, mut copied) = (0, 0);
    while i < b.len() {
        // Only at ASCII bytes, so `sql[i..]` is on a character boundary.
        if matches!(b[i], b'{' | b'[')
            && let Some((text, len)) = placeholder(&sql[i..], pg, &mut names)?
        {
            out.push_str(&sql[copied..i]);
            out.push_str(&text);
            i += len;
            copied = i;
            continue;
        }
        i = match b[i] {
            b'\'' => quoted_end(b, i, b'\'', pg && is_e_string(b, i)),
            b'"' => quoted_end(b, i, b'"', false),
            b'`' if !pg => quoted_end(b, i, b'`', false),
            b'[' if !pg => find(b, i + 1, b"]").map_or(b.len(), |e| e + 1),
            b'-' if b.get(i + 1) == Some(&b'-') => find(b, i, b"\n").map_or(b.len(), |e| e + 1),
            b'/' if b.get(i + 1) == Some(&b'*') => comment_end(b, i, pg),
            b'$' if pg => dollar(sql, i)?,
            // SQLite's `?` and `?N` (PostgreSQL's `?` is a jsonb operator).
            b'?' if !pg => return Err(NamedError::Positional("?".into())),
            _ => i + 1,
        };
    }
    out.push_str(&sql[copied..]);
    Ok(Named { sql: out, names })
}

/// A JSON value bound to a placeholder: booleans as 0/1 (SQLite's), arrays
/// and objects as their JSON text.
pub fn bound(value: &serde_json::Value) -> SqlValue {
    use serde_json::Value;
    match value {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => n
            .as_i64()
            .map(SqlValue::Integer)
            .unwrap_or_else(|| SqlValue::Real(n.as_f64().unwrap_or_default())),
        Value::String(s) => SqlValue::Text(s.clone()),
        other => SqlValue::Text(other.to_string()),
    }
}

/// A placeholder at the start of `text`: its replacement and length.
fn placeholder(
    text: &str,
    pg: bool,
    names: &mut Vec<String>,
) -> Result<Option<(String, usize)>, NamedError> {
    let word = |s: &str, dots: bool| {
        s.bytes()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_' || (dots && *c == b'.'))
            .count()
    };
    if let Some(body) = text.strip_prefix("{:") {
        let close = body.find('}').ok_or(NamedError::Unclosed)?;
        let name = &body[..close];
        if name.is_empty() || word(name, false) != name.len() {
            return Err(NamedError::BadName(name.to_owned()));
        }
        let n = match names.iter().position(|k| k == name) {
            Some(n) => n + 1,
            None => {
                names.push(name.to_owned());
                names.len()
            }
        };
        let mark = if pg { format!("${n}") } else { format!("?{n}") };
        return Ok(Some((mark, close + 3)));
    }
    for (open, close) in [("{{", "}}"), ("[[", "]]")] {
        if let Some(body) = text.strip_prefix(open) {
            let n = word(body, true);
            let name = &body[..n];
            if n > 0 && body[n..].starts_with(close) && name.split('.').all(|p| !p.is_empty()) {
                let quoted: Vec<String> = name.split('.').map(|p| format!("\"{p}\"")).collect();
                return Ok(Some((quoted.join("."), open.len() + n + close.len())));
            }
        }
    }
    Ok(None)
}

/// Where the literal opened by `q` at `start` ends (past its closing quote;
/// a doubled quote stays inside, and so does a backslash-escaped one in
/// PostgreSQL's `E'…'`). An unterminated literal runs to the end.
fn quoted_end(b: &[u8], start: usize, q: u8, backslash: bool) -> usize {
    let mut j = start + 1;
    while j < b.len() {
        if backslash && b[j] == b'\\' {
            j += 2;
        } else if b[j] == q {
            if b.get(j + 1) != Some(&q) {
                return j + 1;
            }
            j += 2;
        } else {
            j += 1;
        }
    }
    b.len()
}

fn is_ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// `E'…'`: the quote follows a lone `E` (not the end of a longer word).
fn is_e_string(b: &[u8], i: usize) -> bool {
    i > 0 && matches!(b[i - 1], b'E' | b'e') && (i < 2 || !is_ident_byte(b[i - 2]))
}

fn find(b: &[u8], from: usize, what: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(what.len())
        .position(|w| w == what)
        .map(|p| p + from)
}

/// Past the `/* … */` at `start`; PostgreSQL's nest, SQLite's do not.
fn comment_end(b: &[u8], start: usize, nested: bool) -> usize {
    let (mut depth, mut j) = (0usize, start);
    while j + 1 < b.len() {
        match (b[j], b[j + 1]) {
            (b'/', b'*') if depth == 0 || nested => {
                depth += 1;
                j += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                j += 2;
                if depth == 0 {
                    return j;
                }
            }
            _ => j += 1,
        }
    }
    b.len()
}

/// PostgreSQL at a `$`: past a `$tag$…$tag$` string; a `$1` of the
/// author's own is refused; otherwise (inside a name) one byte on.
fn dollar(sql: &str, i: usize) -> Result<usize, NamedError> {
    let b = sql.as_bytes();
    if i > 0 && is_ident_byte(b[i - 1]) {
        return Ok(i + 1);
    }
    let rest = &b[i + 1..];
    let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits > 0 {
        return Err(NamedError::Positional(sql[i..i + 1 + digits].to_owned()));
    }
    let tag = rest
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count();
    if rest.get(tag) != Some(&b'$') {
        return Ok(i + 1);
    }
    let delimiter = &b[i..i + tag + 2];
    Ok(find(b, i + tag + 2, delimiter).map_or(b.len(), |e| e + delimiter.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(sql: &str) -> (Result<Named, NamedError>, Result<Named, NamedError>) {
        (
            to_positional(sql, Dialect::Sqlite),
            to_positional(sql, Dialect::Postgres),
        )
    }

    #[test]
    fn names_become_numbered_parameters_once_each() {
        let (lite, pg) = both("x = {:a} AND y = {:b_1} OR z = {:a}");
        let (lite, pg) = (lite.expect("sqlite"), pg.expect("postgres"));
        assert_eq!(lite.sql, "x = ?1 AND y = ?2 OR z = ?1");
        assert_eq!(pg.sql, "x = $1 AND y = $2 OR z = $1");
        assert_eq!(pg.names, ["a", "b_1"]);
        let named = to_positional("UPDATE {{posts}} SET [[p.title]] = {:t}", Dialect::Postgres);
        assert_eq!(
            named.expect("ok").sql,
            "UPDATE \"posts\" SET \"p\".\"title\" = $1"
        );
    }

    #[test]
    fn placeholders_inside_literals_identifiers_and_comments_stay_text() {
        for (sql, dialect, why) in [
            ("SELECT '{:a}'", Dialect::Sqlite, "string literal"),
            ("SELECT 'it''s {:a}'", Dialect::Postgres, "doubled quote"),
            ("SELECT E'\\' {:a}'", Dialect::Postgres, "E-string escape"),
            ("SELECT \"{:a}\"", Dialect::Postgres, "quoted identifier"),
            ("SELECT [{:a}]", Dialect::Sqlite, "bracket identifier"),
            ("SELECT `{:a}`", Dialect::Sqlite, "backtick identifier"),
            ("SELECT 1 -- {:a}", Dialect::Postgres, "line comment"),
            ("SELECT /* {:a} */ 1", Dialect::Sqlite, "block comment"),
            ("SELECT /* /* */ {:a} */ 1", Dialect::Postgres, "nested"),
            ("SELECT $q${:a}$q$", Dialect::Postgres, "dollar quoting"),
            ("SELECT $${:a}$$", Dialect::Postgres, "empty dollar tag"),
        ] {
            let named = to_positional(sql, dialect).expect(why);
            assert_eq!(named.sql, sql, "{why}");
            assert!(named.names.is_empty(), "{why}");
        }
        let after = to_positional("SELECT /* /* */ {:a}", Dialect::Sqlite).expect("ok");
        assert_eq!(
            after.sql, "SELECT /* /* */ ?1",
            "SQLite's comments do not nest"
        );
        let jsonb = to_positional(
            "SELECT d ? 'k', a$b FROM t WHERE x = {:x}",
            Dialect::Postgres,
        );
        assert_eq!(
            jsonb.expect("ok").sql,
            "SELECT d ? 'k', a$b FROM t WHERE x = $1",
            "jsonb's ? and a $ inside a name are left alone"
        );
    }

    #[test]
    fn odd_placeholders_and_postgres_own_numbers_are_refused() {
        for (sql, expected) in [
            ("SELECT {:a", NamedError::Unclosed),
            ("SELECT {:a;drop}", NamedError::BadName("a;drop".into())),
            ("SELECT {:}", NamedError::BadName(String::new())),
        ] {
            let (lite, pg) = both(sql);
            assert_eq!(lite, Err(expected.clone()), "{sql}");
            assert_eq!(pg, Err(expected), "{sql}");
        }
        assert_eq!(
            to_positional("SELECT $1", Dialect::Postgres),
            Err(NamedError::Positional("$1".into()))
        );
        assert_eq!(
            to_positional("DELETE FROM t WHERE id = ?", Dialect::Sqlite),
            Err(NamedError::Positional("?".into()))
        );
        assert!(to_positional("SELECT '?' WHERE j ? 'k'", Dialect::Postgres).is_ok());
        assert!(to_positional("SELECT '?', \"?\" -- ?", Dialect::Sqlite).is_ok());
        assert!(to_positional("SELECT [[a..b]] {{x y}}", Dialect::Postgres).is_ok());
    }
}
