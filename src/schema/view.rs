//! View collections: a stored `SELECT` whose rows are served read-only
//! through the records API. This module checks a `viewQuery`, infers the
//! view's fields from it and writes the `CREATE VIEW`; `store` calls it
//! inside the same transaction as the `_collections` row.
//!
//! The query is written by a superuser, but it is still checked with SQLite
//! itself before anything runs: it must prepare as exactly one statement
//! (rusqlite refuses a trailing second one), be read-only
//! (`sqlite3_stmt_readonly`), and still prepare when wrapped as a subquery,
//! which only a `SELECT` (with or without `WITH`, or `VALUES`) does; that
//! shuts out `PRAGMA`, `ATTACH`, writes and `WITH … INSERT`. Checking happens
//! on a read-only reader connection and is never stepped there; the writer
//! only runs `CREATE VIEW`, which compiles the query but does not run it.
//!
//! Fields are inferred the way PocketBase does, but from SQLite's own column
//! origin metadata rather than from a text parse: a column that comes straight
//! from a collection field keeps that field (type, options, `hidden`) under
//! its new name, so a `password` or `tokenKey` column stays hidden even when
//! aliased; a collection's `id` under another name becomes a single relation
//! to that collection; `id` itself is the text primary key; `count(…)` is an
//! integer, `total(…)` a number, `CAST(… AS type)` that type; anything else
//! (expressions, system tables) is `json`. `*` columns are refused so a new
//! field never leaks into a view unseen.

use super::collection::Collection;
use super::field::{Field, FieldInputError};
use super::names::FieldName;
use crate::db::ident;
use rusqlite::Connection;
use serde_json::{Value, json};

/// The key of the query in a view collection's options (PocketBase's name).
pub const QUERY_KEY: &str = "viewQuery";
/// Longest accepted view query, in bytes.
pub const MAX_VIEW_QUERY_BYTES: usize = 64 * 1024;
/// Longest query the dry run accepts (PocketBase's limit), in bytes.
pub const MAX_DRY_RUN_QUERY_BYTES: usize = 5000;
/// Rows returned by a dry run.
pub const DRY_RUN_SAMPLE_ROWS: i64 = 10;
/// SQLite aggregates (`total`) created on a PostgreSQL database with its
/// system tables, so a view query SQLite accepts runs there too.
pub const POSTGRES_FUNCTIONS: &str = include_str!("view_postgres.sql");

/// A checked query with the fields its rows will have.
#[derive(Debug, Clone)]
pub struct CheckedView {
    /// The query as given, trimmed of whitespace and trailing `;`.
    pub query: String,
    pub fields: Vec<Field>,
}

/// Trims the query as PocketBase does (surrounding whitespace and `;`).
pub fn normalize(raw: &str) -> &str {
    raw.trim().trim_matches(';').trim()
}

/// Checks `raw` and infers its fields. `collection_by_table` maps a table
/// name to the collection stored in it; `previous` (the view's current
/// fields) keeps field ids stable across re-inference.
pub fn check(
    conn: &Connection,
    raw: &str,
    collection_by_table: &dyn Fn(&str) -> Option<Collection>,
    previous: &[Field],
) -> Result<CheckedView, String> {
    let query = normalize(raw);
    if query.is_empty() {
        return Err("the query is empty".into());
    }
    if query.len() > MAX_VIEW_QUERY_BYTES {
        return Err(format!(
            "the query is longer than {MAX_VIEW_QUERY_BYTES} bytes"
        ));
    }
    let stmt = conn.prepare(query).map_err(sql_message)?;
    if !stmt.readonly() {
        return Err("only a single SELECT statement is allowed".into());
    }
    // Only a SELECT still parses as a subquery (PRAGMA, EXPLAIN, ATTACH … do not).
    let wrapped = format!("SELECT * FROM (\n{query}\n)");
    conn.prepare(&wrapped)
        .map_err(|_| "only a single SELECT statement is allowed".to_owned())?;
    refuse_denied_functions(conn, &wrapped)?;
    let items = select_items(query);
    if items.iter().any(|item| item == "*" || item.ends_with(".*")) {
        return Err("wildcard columns (*) are not supported - manually type the collection field names you want the view query to have".into());
    }
    let columns: Vec<(String, Option<String>, Option<String>)> = stmt
        .columns_with_metadata()
        .map(|c| {
            (
                c.name().to_owned(),
                c.table_name().map(str::to_owned),
                c.origin_name().map(str::to_owned),
            )
        })
        .collect();
    // Without wildcards each select item is one column; if the text scan
    // and SQLite disagree, the expression heuristics are skipped.
    let items = (items.len() == columns.len()).then_some(items);
    let mut fields: Vec<Field> = Vec::with_capacity(columns.len());
    for (i, (name, table, origin)) in columns.iter().enumerate() {
        if FieldName::parse(name).is_err() {
            return Err(format!("invalid column name {name:?} (use an alias)"));
        }
        if fields
            .iter()
            .any(|f| f.name.as_str().eq_ignore_ascii_case(name))
        {
            return Err(format!("duplicated column name {name:?}"));
        }
        let expr = items
            .as_ref()
            .and_then(|items| items.get(i))
            .map(String::as_str);
        let source = match (table, origin) {
            (Some(t), Some(o)) => collection_by_table(t).map(|c| (c, o.as_str())),
            _ => None,
        };
        let mut field = infer_field(name, source, expr)?;
        if let Some(old) = previous.iter().find(|f| f.name.as_str() == name)
            && old.kind.type_name() == field.kind.type_name()
            && name != "id"
        {
            field.id = old.id.clone();
        }
        fields.push(field);
    }
    if !fields.iter().any(|f| f.name.as_str() == "id") {
        return Err("missing required id column (you can use `(ROW_NUMBER() OVER()) as id` if you don't have one)".into());
    }
    Ok(CheckedView {
        query: query.to_owned(),
        fields,
    })
}

/// The field of one result column (see the module docs for the rules).
fn infer_field(
    name: &str,
    source: Option<(Collection, &str)>,
    expr: Option<&str>,
) -> Result<Field, String> {
    if name == "id" {
        return build(json!({
            "id": Field::primary_key().id, "name": "id", "type": "text", "system": true,
            "required": true, "primaryKey": true, "pattern": "^[a-z0-9]+$",
        }));
    }
    if let Some((collection, origin)) = source {
        if origin.eq_ignore_ascii_case("id") {
            return build(json!({
                "name": name, "type": "relation", "collectionId": collection.id, "maxSelect": 1,
            }));
        }
        if let Some(original) = collection
            .fields
            .iter()
            .find(|f| f.name.as_str().eq_ignore_ascii_case(origin))
        {
            let mut clone = original.clone();
            clone.name = FieldName::parse(name).map_err(|e| e.to_string())?;
            clone.id = clone_id(name);
            return Ok(clone);
        }
    }
    let lower = expr.map(str::to_ascii_lowercase).unwrap_or_default();
    let spec = if lower.starts_with("count(") {
        json!({"name": name, "type": "number", "onlyInt": true})
    } else if lower.starts_with("total(") {
        json!({"name": name, "type": "number"})
    } else {
        match cast_target(&lower).as_deref() {
            Some("real" | "decimal" | "numeric") => json!({"name": name, "type": "number"}),
            Some("int" | "integer") => json!({"name": name, "type": "number", "onlyInt": true}),
            Some("text") => json!({"name": name, "type": "text"}),
            Some("boolean" | "bool") => json!({"name": name, "type": "bool"}),
            _ => json!({"name": name, "type": "json", "maxSize": 1}),
        }
    };
    build(spec)
}

/// SQL functions a view may not call: `load_extension` would load native
/// code if it were ever enabled (today it fails at run time, which would
/// turn every read of the view into an error).
const DENIED_FUNCTIONS: [&str; 3] = ["load_extension", "readfile", "writefile"];

/// Reads the compiled program (`EXPLAIN`, which does not run the query) and
/// refuses calls to [`DENIED_FUNCTIONS`]: SQLite has resolved every call by
/// then, whatever quoting or nesting the text used.
fn refuse_denied_functions(conn: &Connection, wrapped: &str) -> Result<(), String> {
    let mut stmt = conn
        .prepare(&format!("EXPLAIN {wrapped}"))
        .map_err(sql_message)?;
    let mut rows = stmt.query([]).map_err(sql_message)?;
    while let Some(row) = rows.next().map_err(sql_message)? {
        let opcode: String = row.get("opcode").map_err(sql_message)?;
        if !(opcode.contains("Func") || opcode.starts_with("Agg")) {
            continue;
        }
        let p4: Option<String> = row.get("p4").unwrap_or(None);
        let Some(p4) = p4 else { continue };
        let name = p4
            .split('(')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if DENIED_FUNCTIONS.contains(&name.as_str()) {
            return Err(format!("the function {name}() is not allowed in a view"));
        }
    }
    Ok(())
}

/// SQLite's own words (`no such table: x`), or PocketBase's for a second statement.
fn sql_message(e: rusqlite::Error) -> String {
    match e {
        rusqlite::Error::MultipleStatement => "multiple statements are not supported".into(),
        rusqlite::Error::SqliteFailure(_, Some(m)) => m,
        other => other.to_string(),
    }
}

/// `_clone_` + 4 letters or digits, PocketBase's shape for a copied field's
/// id; derived from the column name so re-inference keeps it.
fn clone_id(name: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut n = crc32fast::hash(name.as_bytes()) as usize;
    let mut id = String::from("_clone_");
    for _ in 0..4 {
        id.push(char::from(ALPHABET[n % ALPHABET.len()]));
        n /= ALPHABET.len();
    }
    id
}

fn build(spec: Value) -> Result<Field, String> {
    Field::from_json(&spec).map_err(|e| match e {
        FieldInputError::Format(m) => m,
        FieldInputError::Invalid(e) => e.to_string(),
    })
}

/// `cast(<expr> as <type>)` (the whole item, alias aside) → the type name.
fn cast_target(item: &str) -> Option<String> {
    let rest = item.strip_prefix("cast")?.trim_start().strip_prefix('(')?;
    let close = matching_paren(rest)?;
    let inner = &rest[..close];
    let (_, target) = inner.rsplit_once(" as ")?;
    let target = target.trim();
    target
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
        .then(|| target.to_owned())
}

/// The index of the `)` closing an already opened `(` at the start of `s`.
fn matching_paren(s: &str) -> Option<usize> {
    let mut depth = 1usize;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// The items of the first top-level select list, as written (trimmed).
/// A light scan: it skips strings, quoted names, comments and anything in
/// parentheses, which is all the heuristics above need.
fn select_items(query: &str) -> Vec<String> {
    let bytes = query.as_bytes();
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'\'' | b'"' | b'`' | b'[' => {
                let close = if c == b'[' { b']' } else { c };
                i += 1;
                while i < bytes.len() && bytes[i] != close {
                    i += 1;
                }
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            b',' if depth == 0 => {
                if let Some(s) = start {
                    items.push(query[s..i].trim().to_owned());
                    start = Some(i + 1);
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let word_start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                let word = query[word_start..i].to_ascii_lowercase();
                if depth == 0 {
                    match (start, word.as_str()) {
                        (None, "select") => start = Some(i),
                        (Some(s), "distinct" | "all") if query[s..word_start].trim().is_empty() => {
                            start = Some(i);
                        }
                        (
                            Some(s),
                            "from" | "where" | "group" | "order" | "limit" | "union" | "except"
                            | "intersect" | "window",
                        ) => {
                            items.push(query[s..word_start].trim().to_owned());
                            return items;
                        }
                        _ => {}
                    }
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    if let Some(s) = start {
        items.push(query[s.min(query.len())..].trim().to_owned());
    }
    items
}

/// The `SELECT` a view collection's SQL view stands for: the checked query
/// wrapped so `id` is always text (PocketBase casts it the same way) and
/// the column list is exactly the inferred fields, named through `ident`.
pub fn select_sql(view: &Collection) -> String {
    let columns: Vec<String> = view
        .fields
        .iter()
        .map(|f| {
            let col = ident(f.name.as_str());
            if f.name.as_str() == "id" {
                format!("CAST({col} AS TEXT) AS {col}")
            } else {
                col
            }
        })
        .collect();
    format!(
        "SELECT {} FROM (\n{}\n)",
        columns.join(", "),
        normalize(view.view_query())
    )
}

/// `CREATE VIEW` for a view collection whose query [`check`] accepted and
/// whose fields it inferred.
pub fn create_sql(view: &Collection) -> String {
    format!(
        "CREATE VIEW {} AS {}",
        ident(view.name.as_str()),
        select_sql(view)
    )
}

/// `CREATE VIEW` on PostgreSQL: the same wrapping, with the alias
/// PostgreSQL requires of a subquery. The user's query is SQL written for
/// SQLite; PostgreSQL refuses what it does not understand.
pub fn postgres_create_sql(view: &Collection) -> String {
    format!(
        "CREATE VIEW {} AS {} AS fb_view",
        ident(view.name.as_str()),
        select_sql(view)
    )
}

/// `DROP VIEW IF EXISTS` for a view collection's name.
pub fn drop_sql(view_name: &str) -> String {
    format!("DROP VIEW IF EXISTS {}", ident(view_name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        let c = Connection::open_in_memory().expect("memory db");
        c.execute_batch(
            "CREATE TABLE posts (id TEXT PRIMARY KEY, title TEXT, views NUMERIC);
             CREATE TABLE secrets (id TEXT PRIMARY KEY, value TEXT);",
        )
        .expect("schema");
        c
    }

    #[test]
    fn only_a_single_read_only_select_is_accepted() {
        let c = conn();
        for (query, why) in [
            ("", "empty"),
            (";;", "only separators"),
            ("DELETE FROM posts", "a write"),
            ("INSERT INTO posts (id) VALUES ('x')", "an insert"),
            (
                "SELECT id FROM posts; DROP TABLE posts",
                "a second statement",
            ),
            (
                "SELECT id FROM posts; SELECT id FROM secrets",
                "a second select",
            ),
            ("PRAGMA table_info(posts)", "a read-only pragma"),
            ("PRAGMA writable_schema = 1", "a writing pragma"),
            ("ATTACH DATABASE ':memory:' AS other", "attach"),
            ("DETACH DATABASE other", "detach"),
            ("EXPLAIN SELECT id FROM posts", "explain"),
            (
                "WITH x AS (INSERT INTO posts (id) VALUES ('y') RETURNING id) SELECT id FROM x",
                "a writing CTE",
            ),
            (
                "WITH x AS (SELECT 1) DELETE FROM posts",
                "a CTE in front of a delete",
            ),
            ("SELECT load_extension('/tmp/evil') AS id", "load_extension"),
            (
                "SELECT id FROM posts WHERE LOAD_EXTENSION('x') IS NULL",
                "load_extension in WHERE",
            ),
            (
                "SELECT id, (SELECT load_extension('x')) AS v FROM posts",
                "load_extension in a subquery",
            ),
            (
                "SELECT id FROM posts) --",
                "a closing parenthesis escaping the wrapper",
            ),
            ("CREATE TABLE t (id TEXT)", "DDL"),
            ("VACUUM", "vacuum"),
            ("SELECT title FROM posts", "no id column"),
            ("SELECT * FROM posts", "a wildcard"),
            ("SELECT p.* FROM posts p", "a table wildcard"),
            ("SELECT id, title AS id FROM posts", "a duplicated column"),
            (
                "SELECT id, 1 + 1 FROM posts",
                "a column name that is no field name",
            ),
            ("SELECT id FROM nowhere", "a missing table"),
        ] {
            let r = check(&c, query, &|_| None, &[]);
            assert!(r.is_err(), "{query:?} ({why}) must be refused, got {r:?}");
        }
        assert_eq!(
            c.query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'posts'",
                [],
                |r| { r.get::<_, i64>(0) }
            )
            .expect("count"),
            1,
            "nothing ran"
        );
    }

    #[test]
    fn select_forms_are_accepted() {
        let c = conn();
        for query in [
            "SELECT id, title FROM posts",
            "  select id, title from posts ;; ",
            "WITH p AS (SELECT id, title FROM posts) SELECT id, title FROM p",
            "SELECT (ROW_NUMBER() OVER()) AS id, count(*) AS total FROM posts",
            "SELECT id FROM posts UNION SELECT id FROM secrets",
            "SELECT id, title FROM posts -- trailing comment",
            "SELECT id, 'load_extension(' AS note FROM posts",
        ] {
            let r = check(&c, query, &|_| None, &[]);
            assert!(r.is_ok(), "{query:?} should be accepted: {r:?}");
        }
    }

    #[test]
    fn expression_columns_get_pocketbase_types() {
        let c = conn();
        let checked = check(
            &c,
            "SELECT id, count(*) AS n, total(views) AS t, CAST(views AS INTEGER) AS i, \
             cast(views as real) r, CAST(title AS TEXT) AS s, CAST(1 AS BOOLEAN) AS b, \
             upper(title) AS u, 'a,b' AS lit FROM posts GROUP BY id",
            &|_| None,
            &[],
        )
        .expect("valid");
        let types: Vec<(&str, &str)> = checked
            .fields
            .iter()
            .map(|f| (f.name.as_str(), f.kind.type_name()))
            .collect();
        assert_eq!(
            types,
            [
                ("id", "text"),
                ("n", "number"),
                ("t", "number"),
                ("i", "number"),
                ("r", "number"),
                ("s", "text"),
                ("b", "bool"),
                ("u", "json"),
                ("lit", "json"),
            ]
        );
    }

    #[test]
    fn the_create_statement_names_every_column_and_casts_the_id() {
        let c = conn();
        let checked = check(
            &c,
            "SELECT (ROW_NUMBER() OVER()) AS id, title FROM posts",
            &|_| None,
            &[],
        )
        .expect("valid");
        let mut view = Collection::from_create(&json!({"name": "v", "type": "view"}))
            .unwrap_or_else(|_| panic!("valid view"));
        view.fields = checked.fields;
        view.options.insert(QUERY_KEY.into(), json!(checked.query));
        let sql = create_sql(&view);
        assert!(
            sql.starts_with(
                "CREATE VIEW \"v\" AS SELECT CAST(\"id\" AS TEXT) AS \"id\", \"title\" FROM ("
            ),
            "{sql}"
        );
        c.execute_batch(&sql).expect("view created");
    }
}
