//! Property tests and a bounded fuzz run for the whole rules pipeline
//! (`parse_filter` → `compile`, and `parse_sort` → `compile_sort`), checked
//! against a real SQLite database.
//!
//! cargo-fuzz needs a nightly toolchain, which we do not have, so the fuzzing
//! here is done with stable `proptest` inside the ordinary `cargo test` run:
//! random filter text generated from the grammar over a random schema, random
//! character and byte soup, and random mutations of valid filters. Every run
//! uses a fresh random seed; a failure is shrunk and printed, and nothing is
//! written to disk (`failure_persistence: None`). The case counts below
//! (about 9,500 cases in all) keep the whole file at about 2 s in a debug
//! build; raise `FILTER_CASES` / `FUZZ_CASES` locally when hunting.
//!
//! SQL runs on an in-memory database whose connection registers the same
//! SQL functions as `db/pool.rs` (`fb_geo_distance`); `@collection.r` and
//! the `rel.v` / `one.v` relation paths carry bound values of their own, so
//! placeholder order across scope and compiler is exercised too.
//!
//! What is checked for generated filters:
//! (a) nothing panics (the runner turns a panic into a failing case);
//! (b) compiled SQL prepares and runs as `SELECT count(*) FROM t WHERE (…)`
//!     with the bound parameters, over rows with awkward values;
//! (c) no text literal (≥ 2 characters) or `@request.*` value reaches the
//!     SQL text; stronger still, the SQL text does not change at all when
//!     every non-empty literal is replaced by a neutral one;
//! (d) the number of `?` placeholders equals the number of parameters.

use std::cell::Cell;
use std::time::{Duration, UNIX_EPOCH};

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::{Value as DbValue, ValueRef};

use super::*;

/// Generated filters (property checks (a)–(d)).
const FILTER_CASES: u32 = 1_500;
/// Character soup, byte soup and mutated filters (fuzz) each.
const FUZZ_CASES: u32 = 2_000;
/// 2024-02-29 13:45:30.123 UTC, so compiled macros are reproducible.
const FIXED_NOW_MS: u64 = 1_709_214_330_123;

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 2_000,
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------
// The schema and its scope
// ---------------------------------------------------------------------------

/// Storage kinds of the test table's columns.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Text,
    Number,
    Bool,
    /// JSON array text (multi select / relation / file).
    Multi,
    /// JSON object, reachable through `name.key` paths.
    Json,
}

/// Column names a random schema picks from; `true`/`null` shadow the
/// keyword literals and `ünï` checks non-ASCII identifiers.
const NAME_POOL: [&str; 10] = [
    "title", "views", "flag", "cats", "meta", "score", "name", "true", "null", "ünï",
];

#[derive(Debug, Clone)]
struct Schema {
    cols: Vec<(String, Kind)>,
}

impl Schema {
    fn kind(&self, name: &str) -> Option<Kind> {
        self.cols.iter().find(|(n, _)| n == name).map(|(_, k)| *k)
    }

    fn names_of(&self, want: &[Kind]) -> Vec<String> {
        self.cols
            .iter()
            .filter(|(_, k)| want.contains(k))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// One of every kind, for the fuzz runs.
    fn fixed() -> Self {
        let cols = [
            ("title", Kind::Text),
            ("views", Kind::Number),
            ("flag", Kind::Bool),
            ("cats", Kind::Multi),
            ("meta", Kind::Json),
            ("true", Kind::Text),
        ];
        Self {
            cols: cols.iter().map(|(n, k)| (n.to_string(), *k)).collect(),
        }
    }
}

fn schema_strategy() -> impl Strategy<Value = Schema> {
    let kind = select(vec![
        Kind::Text,
        Kind::Number,
        Kind::Bool,
        Kind::Multi,
        Kind::Json,
    ]);
    proptest::sample::subsequence(NAME_POOL.to_vec(), 3..=7)
        .prop_flat_map(move |names| {
            let n = names.len();
            (Just(names), proptest::collection::vec(kind.clone(), n))
        })
        .prop_map(|(names, kinds)| Schema {
            cols: names.into_iter().map(str::to_owned).zip(kinds).collect(),
        })
}

/// Hostile values that the scope hands out for `@request.*` keys; they must
/// never appear in SQL text either.
const REQUEST_VALUES: [(&str, &str); 5] = [
    ("auth.id", "'; DROP TABLE t; --"),
    ("body.title", "x\" OR \"1\"=\"1"),
    ("body.tags", "[\"a\",\"it's\"]"),
    ("body.bad", "not json ]["),
    ("query.q", "%_\\ 100%"),
];

/// Value a relation subquery binds; proves scope params keep their place.
const SCOPE_PARAM: &str = "scope-bound";

/// A [`Scope`] over table `t` of a [`Schema`], plus two relation-like paths
/// into table `r`: `rel.v` (multi-valued, compared per element) and `one.v`
/// (a single related value); both carry a bound parameter of their own.
struct PropScope<'a> {
    schema: &'a Schema,
}

impl Scope for PropScope<'_> {
    fn column(&self, path: &Path) -> Result<ColumnRef, RuleError> {
        let segments: Vec<&str> = path.segments.iter().map(String::as_str).collect();
        let param = || vec![SqlValue::Text(SCOPE_PARAM.into())];
        match segments.as_slice() {
            ["rel", "v"] => Ok(ColumnRef::each(
                "(SELECT json_group_array(\"r\".\"v\") FROM \"r\" \
                 WHERE \"r\".\"owner\" = \"t\".rowid AND \"r\".\"v\" IS NOT ?)",
            )
            .with_params(param())),
            ["one", "v"] => Ok(ColumnRef::single(
                "(SELECT \"r\".\"v\" FROM \"r\" \
                 WHERE \"r\".\"owner\" = \"t\".rowid AND \"r\".\"v\" IS NOT ? LIMIT 1)",
            )
            .with_params(param())),
            [name] => match self.schema.kind(name) {
                Some(Kind::Multi) => Ok(ColumnRef::multi(format!("\"t\".\"{name}\""))),
                Some(_) => Ok(ColumnRef::single(format!("\"t\".\"{name}\""))),
                None => Err(RuleError::unresolved(path, "unknown field")),
            },
            [name, rest @ ..] if self.schema.kind(name) == Some(Kind::Json) => {
                let mut json_path = String::from("$");
                for seg in rest {
                    if !seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                        return Err(RuleError::unresolved(path, "bad JSON path segment"));
                    }
                    if seg.chars().all(|c| c.is_ascii_digit()) {
                        json_path.push_str(&format!("[{seg}]"));
                    } else {
                        json_path.push('.');
                        json_path.push_str(seg);
                    }
                }
                // Guarded like PocketBase's JSONExtract: SQLite propagates
                // `meta = 'x'` into `json_extract(meta, …)` within one AND,
                // and a bare json_extract of non-JSON text is an error.
                Ok(ColumnRef::single(format!(
                    "(CASE WHEN json_valid(\"t\".\"{name}\") \
                     THEN json_extract(\"t\".\"{name}\", '{json_path}') END)"
                )))
            }
            _ => Err(RuleError::unresolved(path, "unknown field")),
        }
    }

    /// `@collection.r` is table `r`, restricted by a condition with its own
    /// bound value (like a joined collection's list rule).
    fn collection_source(&self, name: &str, alias: &str) -> Result<CollectionSource, RuleError> {
        if name != "r" {
            return Err(RuleError::invalid(format!("unknown collection {name}")));
        }
        Ok(CollectionSource {
            from: format!("\"r\" AS {alias}"),
            condition: Some(SqlFragment {
                sql: format!("{alias}.\"v\" IS NOT ?"),
                params: vec![SqlValue::Text(SCOPE_PARAM.into())],
            }),
        })
    }

    fn collection_column(
        &self,
        name: &str,
        alias: &str,
        path: &Path,
    ) -> Result<ColumnRef, RuleError> {
        match (name, path.segments.as_slice()) {
            ("r", [field]) if field == "v" || field == "owner" => {
                Ok(ColumnRef::single(format!("{alias}.\"{field}\"")))
            }
            _ => Err(RuleError::unresolved(path, "unknown field")),
        }
    }

    fn request_value(&self, path: &Path) -> Result<Option<SqlValue>, RuleError> {
        let key = path.request_key().unwrap_or_default().join(".");
        if key == "body.n" {
            return Ok(Some(SqlValue::Integer(7)));
        }
        let found = REQUEST_VALUES.iter().find(|(k, _)| *k == key);
        Ok(found.map(|(_, v)| SqlValue::Text((*v).into())))
    }
}

// ---------------------------------------------------------------------------
// The database the SQL runs against
// ---------------------------------------------------------------------------

/// Column definitions like the server's DDL (see `schema/ddl.rs`), but
/// nullable so NULLs reach every comparison.
fn column_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Text => "TEXT DEFAULT ''",
        Kind::Number => "NUMERIC DEFAULT 0",
        Kind::Bool => "BOOLEAN DEFAULT FALSE",
        Kind::Multi => "JSON DEFAULT '[]'",
        Kind::Json => "JSON DEFAULT NULL",
    }
}

/// Row values per kind: empty, ordinary and awkward. JSON columns hold valid
/// JSON (the server validates it on write); multi columns also hold garbage,
/// which the compiler must survive.
fn row_value(kind: Kind, row: usize) -> DbValue {
    let text = |s: &str| DbValue::Text(s.into());
    match (kind, row) {
        (_, 0) => DbValue::Null,
        (Kind::Text, 1) => text(""),
        (Kind::Text, 2) => text("Hello"),
        (Kind::Text, _) => text("it's 100% \\ _x 日本"),
        (Kind::Number, 1) => DbValue::Integer(0),
        (Kind::Number, 2) => DbValue::Integer(5),
        (Kind::Number, _) => DbValue::Real(-2.5),
        (Kind::Bool, 1 | 3) => DbValue::Integer(1),
        (Kind::Bool, _) => DbValue::Integer(0),
        (Kind::Multi, 1) => text("[]"),
        (Kind::Multi, 2) => text("[\"a\",\"b\"]"),
        (Kind::Multi, 3) => text("[1,null,\"it's\"]"),
        (Kind::Multi, _) => text("not json"),
        (Kind::Json, 1) => text("{\"x\":1,\"y\":[1,\"two\"]}"),
        (Kind::Json, 2) => text("\"str\""),
        (Kind::Json, _) => text("[1,2,3]"),
    }
}

const ROWS: usize = 5;

/// A connection with the SQL functions the compiler emits, registered the
/// way the database layer does (`db/pool.rs`).
fn connection() -> Connection {
    let conn = Connection::open_in_memory().expect("in-memory database");
    let number = |v: ValueRef<'_>| match v {
        ValueRef::Integer(i) => Some(i as f64),
        ValueRef::Real(f) => Some(f),
        ValueRef::Text(t) => std::str::from_utf8(t)
            .ok()
            .and_then(|s| s.trim().parse().ok()),
        _ => None,
    };
    conn.create_scalar_function(
        GEO_DISTANCE_SQL_FUNCTION,
        4,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        move |ctx| {
            let args: Option<Vec<f64>> = (0..4).map(|i| number(ctx.get_raw(i))).collect();
            Ok(args.map(|a| haversine_km(a[0], a[1], a[2], a[3])))
        },
    )
    .expect("register the geo distance function");
    conn
}

fn database(schema: &Schema) -> Connection {
    let conn = connection();
    let cols: Vec<String> = schema
        .cols
        .iter()
        .map(|(n, k)| format!("\"{n}\" {}", column_type(*k)))
        .collect();
    conn.execute_batch(&format!(
        "CREATE TABLE t ({});\
         CREATE TABLE r (owner INTEGER, v TEXT);\
         INSERT INTO r VALUES (1, 'a'), (1, 'news'), (2, NULL), (3, '');",
        cols.join(", ")
    ))
    .expect("test schema");
    let names: Vec<String> = schema
        .cols
        .iter()
        .map(|(n, _)| format!("\"{n}\""))
        .collect();
    let marks = vec!["?"; names.len()].join(", ");
    let insert = format!("INSERT INTO t ({}) VALUES ({marks})", names.join(", "));
    for row in 0..ROWS {
        let values: Vec<DbValue> = schema
            .cols
            .iter()
            .map(|(_, k)| row_value(*k, row))
            .collect();
        conn.execute(&insert, rusqlite::params_from_iter(values))
            .expect("test row");
    }
    conn
}

fn db_value(v: &SqlValue) -> DbValue {
    match v {
        SqlValue::Null => DbValue::Null,
        SqlValue::Integer(i) => DbValue::Integer(*i),
        SqlValue::Real(r) => DbValue::Real(*r),
        SqlValue::Text(s) => DbValue::Text(s.clone()),
    }
}

/// (b) and (d): the fragment prepares and runs as a WHERE clause.
fn check_runs(conn: &Connection, src: &str, got: &SqlFragment) -> Result<(), TestCaseError> {
    let placeholders = got.sql.matches('?').count();
    prop_assert_eq!(
        placeholders,
        got.params.len(),
        "placeholders vs params for {:?}\nSQL: {}",
        src,
        got.sql
    );
    let sql = format!("SELECT count(*) FROM t WHERE ({})", got.sql);
    let run = conn.prepare(&sql).and_then(|mut stmt| {
        let params = rusqlite::params_from_iter(got.params.iter().map(db_value));
        stmt.query_row(params, |row| row.get::<_, i64>(0))
    });
    match run {
        Ok(count) => {
            prop_assert!((0..=ROWS as i64).contains(&count), "count {count}");
            Ok(())
        }
        Err(e) => Err(TestCaseError::fail(format!(
            "{src:?} compiled to SQL that SQLite refused: {e}\nSQL: {sql}\nparams: {:?}",
            got.params
        ))),
    }
}

/// An ORDER BY body from `compile_sort` must run too.
fn check_sort_runs(conn: &Connection, src: &str, order: &str) -> Result<(), TestCaseError> {
    if order.is_empty() {
        return Ok(());
    }
    prop_assert!(!order.contains('?'), "sorts bind nothing: {order}");
    let sql = format!("SELECT rowid FROM t ORDER BY {order}");
    let run = conn.prepare(&sql).and_then(|mut stmt| {
        let rows = stmt.query_map([], |row| row.get::<_, i64>(0))?;
        rows.collect::<Result<Vec<_>, _>>()
    });
    match run {
        Ok(rows) => {
            prop_assert_eq!(rows.len(), ROWS);
            Ok(())
        }
        Err(e) => Err(TestCaseError::fail(format!(
            "sort {src:?} compiled to SQL that SQLite refused: {e}\nSQL: {sql}"
        ))),
    }
}

fn options() -> CompileOptions {
    CompileOptions::at(UNIX_EPOCH + Duration::from_millis(FIXED_NOW_MS))
}

// ---------------------------------------------------------------------------
// Literals in the AST: collecting them and neutralising them
// ---------------------------------------------------------------------------

fn for_each_operand(expr: &Expr, f: &mut dyn FnMut(&Operand)) {
    fn operand(op: &Operand, f: &mut dyn FnMut(&Operand)) {
        f(op);
        if let Operand::Function { args, .. } = op {
            for arg in args {
                operand(arg, f);
            }
        }
    }
    match expr {
        Expr::And(parts) | Expr::Or(parts) => {
            for part in parts {
                for_each_operand(part, f);
            }
        }
        Expr::Compare { left, right, .. } => {
            operand(left, f);
            operand(right, f);
        }
    }
}

fn text_literals(expr: &Expr) -> Vec<String> {
    let mut out = Vec::new();
    for_each_operand(expr, &mut |op| {
        if let Operand::Text(s) = op {
            out.push(s.clone());
        }
    });
    out
}

/// A private-use character: appears in no SQL the compiler or scope writes.
const NEUTRAL: &str = "\u{E000}";

/// The same expression with every non-empty text literal replaced by
/// [`NEUTRAL`]; emptiness is kept because `= ''` legitimately changes shape.
fn neutralised(expr: &Expr) -> Expr {
    fn operand(op: &Operand) -> Operand {
        match op {
            Operand::Text(s) if !s.is_empty() => Operand::Text(NEUTRAL.into()),
            Operand::Function { name, args } => Operand::Function {
                name: name.clone(),
                args: args.iter().map(operand).collect(),
            },
            other => other.clone(),
        }
    }
    match expr {
        Expr::And(parts) => Expr::And(parts.iter().map(neutralised).collect()),
        Expr::Or(parts) => Expr::Or(parts.iter().map(neutralised).collect()),
        Expr::Compare { left, op, right } => Expr::Compare {
            left: operand(left),
            op: *op,
            right: operand(right),
        },
    }
}

/// Outcome counters, so a generator that stops producing compilable
/// filters fails loudly instead of testing nothing.
#[derive(Default)]
struct Tally {
    cases: Cell<usize>,
    compiled: Cell<usize>,
}

impl Tally {
    fn bump(cell: &Cell<usize>) {
        cell.set(cell.get() + 1);
    }
}

/// Runs every property on one filter text; returns whether it compiled.
fn check_filter(
    conn: &Connection,
    scope: &PropScope<'_>,
    src: &str,
) -> Result<bool, TestCaseError> {
    let Ok(expr) = parse_filter(src) else {
        return Ok(false);
    };
    let compiled = compile_with(&expr, scope, &options());
    let skeleton = compile_with(&neutralised(&expr), scope, &options());
    let (got, skeleton) = match (compiled, skeleton) {
        (Ok(got), Ok(skeleton)) => {
            prop_assert_eq!(
                &got.sql,
                &skeleton.sql,
                "SQL text depends on literal contents for {:?}",
                src
            );
            (got, skeleton.sql)
        }
        (Err(_), Err(_)) => return Ok(false),
        (a, b) => {
            return Err(TestCaseError::fail(format!(
                "{src:?}: compiling with neutral literals changed the outcome: {a:?} vs {b:?}"
            )));
        }
    };
    let request_values = REQUEST_VALUES.iter().map(|(_, v)| v.to_string());
    for lit in text_literals(&expr).into_iter().chain(request_values) {
        // A literal such as `[]` or `AS` may coincide with SQL the compiler
        // writes itself; that is fine exactly when the SQL compiled without
        // any user text (neutral literals) contains it too.
        if lit.chars().count() >= 2 && !skeleton.contains(&lit) {
            prop_assert!(
                !got.sql.contains(&lit),
                "literal {:?} of {:?} reached the SQL text: {}",
                lit,
                src,
                got.sql
            );
        }
    }
    check_runs(conn, src, &got)?;
    Ok(true)
}

// ---------------------------------------------------------------------------
// Filter text from the grammar
// ---------------------------------------------------------------------------

/// Pieces of text literals chosen to break naive escaping or quoting.
const HOSTILE: [&str; 26] = [
    "'",
    "\"",
    "%",
    "_",
    "\\",
    "\\\\",
    "--",
    ";",
    "'; DROP TABLE t; --",
    "\"; DROP TABLE t; --",
    ") OR (1=1",
    "%_\\%",
    "?",
    "?1",
    ":name",
    "$x",
    "/*",
    "*/",
    "//",
    "\n",
    "\u{0}",
    "ü",
    "日本",
    "🦀",
    "@now",
    "[]",
];

/// `content` as filter text: backslashes and the enclosing quote escaped,
/// which the lexer decodes back exactly (PocketBase's `\\`, `\'`, `\"`).
fn quote(content: &str, double: bool) -> String {
    let q = if double { '"' } else { '\'' };
    let body = content.replace('\\', "\\\\").replace(q, &format!("\\{q}"));
    format!("{q}{body}{q}")
}

fn text_literal() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => select(HOSTILE.to_vec()).prop_map(String::from),
        2 => "[ -~]{0,4}",
        1 => any::<char>().prop_map(String::from),
        1 => Just(String::new()),
    ];
    (any::<bool>(), proptest::collection::vec(piece, 0..4))
        .prop_map(|(double, pieces)| quote(&pieces.concat(), double))
}

fn number_literal() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "0",
            "1",
            "-1",
            "2.5",
            "-0.5",
            "007",
            "-0",
            "1.0",
            "99999999999999999999",
            "-99999999999999999999.5",
        ])
        .prop_map(String::from),
        (-1000i64..1000).prop_map(|n| n.to_string()),
    ]
}

const MACROS: [&str; 17] = [
    "@now",
    "@yesterday",
    "@tomorrow",
    "@todayStart",
    "@todayEnd",
    "@monthStart",
    "@monthEnd",
    "@yearStart",
    "@yearEnd",
    "@second",
    "@minute",
    "@hour",
    "@weekday",
    "@day",
    "@month",
    "@year",
    "@later",
];

const REQUEST_PATHS: [&str; 14] = [
    "@request.auth.id",
    "@request.auth.id:lower",
    "@request.body.title",
    "@request.body.title:isset",
    "@request.body.title:changed",
    "@request.body.tags:each",
    "@request.body.tags:length",
    "@request.body.bad:each",
    "@request.body.n",
    "@request.body.missing:each",
    "@request.query.q",
    "@request.method",
    "@request.headers.x_foo:isset",
    "@request",
];

const OTHER_NAMES: [&str; 18] = [
    "nope",
    "true",
    "FALSE",
    "null",
    "Null",
    "_x",
    "#h",
    "rel.v",
    "rel.v:each",
    "one.v",
    "@collection.r.v",
    "@collection.r.owner",
    "@collection.r:x.v",
    "@collection.r:x.v:lower",
    "@collection.r:y.owner",
    "@collection.r",
    "@collection.nope.v",
    "@collection.r.nope",
];

const MODIFIERS: [&str; 8] = [
    "", "", "", ":lower", ":each", ":length", ":isset", ":changed",
];

fn identifier(schema: &Schema) -> BoxedStrategy<String> {
    let names = schema.names_of(&[
        Kind::Text,
        Kind::Number,
        Kind::Bool,
        Kind::Multi,
        Kind::Json,
    ]);
    let jsons = match schema.names_of(&[Kind::Json]) {
        v if v.is_empty() => names.clone(),
        v => v,
    };
    let json_paths = vec!["x", "y.1", "y.0", "x.deep", "0", "a_b"];
    prop_oneof![
        5 => (select(names), select(MODIFIERS.to_vec())).prop_map(|(n, m)| format!("{n}{m}")),
        2 => (select(jsons), select(json_paths), select(vec!["", ":lower"]))
            .prop_map(|(j, p, m)| format!("{j}.{p}{m}")),
        1 => select(vec!["rel.v", "rel.v:each", "rel.v:length", "rel.v:lower", "one.v", "one.v:lower"])
            .prop_map(String::from),
        2 => select(MACROS.to_vec()).prop_map(String::from),
        2 => select(REQUEST_PATHS.to_vec()).prop_map(String::from),
        2 => select(OTHER_NAMES.to_vec()).prop_map(String::from),
    ]
    .boxed()
}

/// Operands that may appear as function arguments (no nesting of their own).
fn simple_operand(schema: &Schema) -> BoxedStrategy<String> {
    prop_oneof![
        3 => identifier(schema),
        2 => text_literal(),
        2 => number_literal(),
    ]
    .boxed()
}

fn function(schema: &Schema) -> BoxedStrategy<String> {
    let arg = simple_operand(schema);
    let formats = select(vec!["'%Y'", "'%Y-%m-%d'", "'%s'", "'%%'", "\"%J\"", "''"]);
    prop_oneof![
        3 => proptest::collection::vec(arg.clone(), 4)
            .prop_map(|a| format!("geoDistance({})", a.join(", "))),
        3 => (formats.clone(), proptest::collection::vec(arg.clone(), 0..3))
            .prop_map(|(f, rest)| {
                let mut args = vec![f.to_string()];
                args.extend(rest);
                format!("strftime({})", args.join(","))
            }),
        1 => (formats, arg.clone())
            .prop_map(|(f, a)| format!("strftime({f}, strftime('%s', {a}), 'unixepoch')")),
        1 => proptest::collection::vec(arg, 0..3)
            .prop_map(|a| format!("geoDistance({})", a.join(","))),
        1 => select(vec!["strftime()", "nope(1)", "geoDistance(1,2,3,4,5)"]).prop_map(String::from),
    ]
    .boxed()
}

fn operand(schema: &Schema) -> BoxedStrategy<String> {
    prop_oneof![
        6 => simple_operand(schema),
        1 => function(schema),
    ]
    .boxed()
}

const OPERATORS: [&str; 16] = [
    "=", "!=", ">", ">=", "<", "<=", "~", "!~", "?=", "?!=", "?>", "?>=", "?<", "?<=", "?~", "?!~",
];

/// Whitespace and comments allowed between tokens.
fn gap() -> impl Strategy<Value = &'static str> {
    select(vec![
        " ",
        " ",
        " ",
        "",
        "\n",
        "\t ",
        " // c'm \"x\n",
        "\r\n",
    ])
}

fn comparison(schema: &Schema) -> BoxedStrategy<String> {
    (
        operand(schema),
        gap(),
        select(OPERATORS.to_vec()),
        gap(),
        operand(schema),
    )
        .prop_map(|(l, g1, op, g2, r)| format!("{l}{g1}{op}{g2}{r}"))
        .boxed()
}

fn filter_text(schema: &Schema) -> BoxedStrategy<String> {
    comparison(schema)
        .prop_recursive(4, 48, 4, |inner| {
            let joined = (
                proptest::collection::vec(inner.clone(), 2..5),
                proptest::collection::vec((gap(), select(vec!["&&", "||"]), gap()), 4),
            )
                .prop_map(|(parts, joins)| {
                    let mut out = parts[0].clone();
                    for (part, (g1, join, g2)) in parts[1..].iter().zip(joins) {
                        out.push_str(&format!("{g1}{join}{g2}{part}"));
                    }
                    out
                });
            prop_oneof![
                3 => joined,
                1 => inner.clone().prop_map(|e| format!("({e})")),
                1 => inner.prop_map(|e| format!("(() && ({e}) || ())")),
            ]
        })
        .boxed()
}

fn schema_and_filter() -> impl Strategy<Value = (Schema, String)> {
    schema_strategy().prop_flat_map(|schema| {
        let filter = filter_text(&schema);
        (Just(schema), filter)
    })
}

#[test]
fn generated_filters_compile_to_runnable_sql_that_binds_every_literal() {
    let mut runner = TestRunner::new(config(FILTER_CASES));
    let tally = Tally::default();

    let result = runner.run(&schema_and_filter(), |(schema, src)| {
        let conn = database(&schema);
        let scope = PropScope { schema: &schema };
        Tally::bump(&tally.cases);
        if check_filter(&conn, &scope, &src)? {
            Tally::bump(&tally.compiled);
        }
        Ok(())
    });

    if let Err(e) = result {
        panic!("{e}");
    }
    let (cases, compiled) = (tally.cases.get(), tally.compiled.get());
    assert!(
        compiled * 5 >= cases,
        "only {compiled} of {cases} generated filters compiled; the generator has drifted"
    );
}

// ---------------------------------------------------------------------------
// Bounded fuzz: soup and mutations must never panic
// ---------------------------------------------------------------------------

/// Fragments the character soup is mostly made of.
const SOUP: [&str; 52] = [
    "(",
    ")",
    "'",
    "\"",
    "\\",
    "&&",
    "||",
    "&",
    "|",
    "=",
    "!=",
    "?",
    "~",
    "!~",
    "<",
    ">=",
    ",",
    ".",
    ":",
    "//",
    "\n",
    " ",
    "-",
    "+",
    "1",
    "1.5",
    "1e3",
    "@",
    "@now",
    "@request.",
    "@rowid",
    "@collection.",
    "@random",
    "title",
    "cats",
    "meta.x",
    "rel.v",
    ":each",
    ":lower",
    ":length",
    ":isset",
    "geoDistance(",
    "strftime(",
    "true",
    "null",
    "_via_",
    "#",
    "%",
    "_",
    "ü",
    "🦀",
    "\u{0}",
];

/// Valid filters and sorts that mutations start from, including ones right
/// at the parser's limits.
fn seeds() -> Vec<String> {
    let mut seeds: Vec<String> = [
        "title = 'a' && views > 1 || (flag = true && cats:each ?= 'x')",
        "meta.y.1 ?~ \"tw%\" // comment\n && title:lower !~ 'it\\'s'",
        "geoDistance(views, 1.5, -2, views) < 10 && strftime('%Y', @now) = '2024'",
        "rel.v ?= 'news' && rel.v:length > 0 || one.v:lower = ''",
        "@request.body.tags:each ?= 'a' && @request.auth.id != '' && @request.body.title:changed = false",
        "cats:length >= 2 && true = null && \"title\" = 1",
        "@collection.r.v ?= title && @collection.r.owner ?> 0 || @collection.r:x.v:lower ?~ 'a'",
        "-views,title,+cats:length,@random,-@rowid,meta.x,true:lower",
        "((title = 'x') && (() || views ?<= -1.5))",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    seeds.push(format!("{}title = 'x'{}", "(".repeat(32), ")".repeat(32)));
    seeds.push(vec!["views=1"; MAX_COMPARISONS].join("&&"));
    seeds.push(format!("title = '{}'", "x".repeat(MAX_FILTER_BYTES - 10)));
    seeds.push("strftime(strftime(strftime('%s'))) = 1".into());
    seeds
}

#[derive(Debug, Clone)]
enum Mutation {
    Insert(usize, char),
    Delete(usize, usize),
    Duplicate(usize, usize),
    Swap(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let soup_char = prop_oneof![
        3 => select("()'\"\\&|=!?~<>,.:/@-_% \n1e".chars().collect::<Vec<_>>()),
        1 => any::<char>(),
    ];
    prop_oneof![
        3 => (any::<usize>(), soup_char).prop_map(|(i, c)| Mutation::Insert(i, c)),
        2 => (any::<usize>(), 1usize..8).prop_map(|(i, n)| Mutation::Delete(i, n)),
        1 => (any::<usize>(), 1usize..16).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(i, j)| Mutation::Swap(i, j)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(seed: &str, mutations: &[Mutation]) -> String {
    let mut chars: Vec<char> = seed.chars().collect();
    for m in mutations {
        let len = chars.len().max(1);
        match *m {
            Mutation::Insert(i, c) => chars.insert(i % (chars.len() + 1), c),
            Mutation::Delete(i, n) => {
                let start = (i % len).min(chars.len());
                let end = (start + n).min(chars.len());
                chars.drain(start..end);
            }
            Mutation::Duplicate(i, n) => {
                let start = (i % len).min(chars.len());
                let end = (start + n).min(chars.len());
                let copy: Vec<char> = chars[start..end].to_vec();
                chars.splice(end..end, copy);
            }
            Mutation::Swap(i, j) if !chars.is_empty() => chars.swap(i % len, j % len),
            Mutation::Swap(..) => {}
            Mutation::Truncate(i) => chars.truncate(i % len),
        }
    }
    chars.into_iter().collect()
}

/// Feeds one input to every entry point; whatever compiles must also run.
fn fuzz_one(conn: &Connection, scope: &PropScope<'_>, src: &str) -> Result<(), TestCaseError> {
    check_filter(conn, scope, src)?;
    if let Ok(items) = parse_sort(src)
        && let Ok(order) = compile_sort(&items, scope)
    {
        check_sort_runs(conn, src, &order)?;
    }
    let _ = Path::parse(src);
    let _ = forbidden_for_non_superusers(src);
    Ok(())
}

fn run_fuzz<S: Strategy<Value = String>>(strategy: S) {
    let schema = Schema::fixed();
    let conn = database(&schema);
    let scope = PropScope { schema: &schema };
    let mut runner = TestRunner::new(config(FUZZ_CASES));

    let result = runner.run(&strategy, |src| fuzz_one(&conn, &scope, &src));

    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn character_soup_never_panics_the_parser_compiler_or_sort() {
    let piece = prop_oneof![
        4 => select(SOUP.to_vec()).prop_map(String::from),
        1 => any::<char>().prop_map(String::from),
        1 => "[a-z]{1,6}",
    ];
    run_fuzz(proptest::collection::vec(piece, 0..60).prop_map(|p| p.concat()));
}

#[test]
fn byte_soup_never_panics_the_parser_compiler_or_sort() {
    run_fuzz(
        proptest::collection::vec(any::<u8>(), 0..300)
            .prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
    );
}

#[test]
fn mutated_valid_filters_never_panic_and_still_run_when_they_compile() {
    let strategy = (select(seeds()), proptest::collection::vec(mutation(), 1..6))
        .prop_map(|(seed, mutations)| mutate(&seed, &mutations));
    run_fuzz(strategy);
}

#[test]
fn every_seed_is_valid_before_mutation() {
    let schema = Schema::fixed();
    let scope = PropScope { schema: &schema };
    let conn = database(&schema);
    let mut failures = Vec::new();

    for seed in seeds() {
        let filter_ok = parse_filter(&seed)
            .and_then(|e| compile_with(&e, &scope, &options()))
            .map(|got| check_runs(&conn, &seed, &got));
        let sort_ok = parse_sort(&seed).and_then(|items| compile_sort(&items, &scope));
        match (filter_ok, sort_ok) {
            (Ok(Ok(())), _) | (_, Ok(_)) => {}
            (filter, sort) => failures.push(format!("{seed:.60?}: {filter:?} / {sort:?}")),
        }
    }

    assert!(
        failures.is_empty(),
        "seeds must start valid:\n{}",
        failures.join("\n")
    );
}

#[test]
fn geo_distance_compiles_to_a_call_that_measures_kilometres() {
    let schema = Schema {
        cols: vec![("lon".into(), Kind::Number), ("lat".into(), Kind::Number)],
    };
    let conn = connection();
    conn.execute_batch(
        "CREATE TABLE t (lon NUMERIC, lat NUMERIC);\
         INSERT INTO t VALUES (13.4, 52.5), (2.35, 48.85), (-74.0, 40.7);",
    )
    .expect("table");
    let count = |src: &str| {
        let expr = parse_filter(src).expect("parses");
        let got = compile(&expr, &PropScope { schema: &schema }).expect("compiles");
        let sql = format!("SELECT count(*) FROM t WHERE ({})", got.sql);
        conn.query_row(
            &sql,
            rusqlite::params_from_iter(got.params.iter().map(db_value)),
            |row| row.get::<_, i64>(0),
        )
        .map_err(|e| e.to_string())
    };

    assert_eq!(
        count("geoDistance(lon, lat, 13.4, 52.5) < 1"),
        Ok(1),
        "Berlin"
    );
    assert_eq!(
        count("geoDistance(lon, lat, 13.4, 52.5) < 1000"),
        Ok(2),
        "and Paris"
    );
    assert_eq!(
        count("geoDistance(13.4, 52.5, lon, lat) > 6000"),
        Ok(1),
        "New York"
    );
    assert_eq!(
        count("geoDistance(lon, lat, 'x', 52.5) >= 0"),
        Ok(0),
        "non-numbers give NULL"
    );
    assert_eq!(
        count("geoDistance(lon, lat, 'x', 52.5) = null"),
        Ok(3),
        "which equals null"
    );
}

#[test]
fn text_literals_round_trip_through_the_lexer() {
    let mut runner = TestRunner::new(config(FUZZ_CASES));
    let content = proptest::collection::vec(
        prop_oneof![
            select(HOSTILE.to_vec()).prop_map(String::from),
            any::<char>().prop_map(String::from),
        ],
        0..6,
    )
    .prop_map(|p| p.concat());

    let result = runner.run(&(content, any::<bool>()), |(content, double)| {
        let src = format!("title = {}", quote(&content, double));
        let expr = parse_filter(&src).map_err(|e| TestCaseError::fail(format!("{src:?}: {e}")))?;
        let Expr::Compare { right, .. } = expr else {
            return Err(TestCaseError::fail(format!("{src:?} is not a comparison")));
        };
        prop_assert_eq!(right, Operand::Text(content), "{:?}", src);
        Ok(())
    });

    if let Err(e) = result {
        panic!("{e}");
    }
}

mod differential;
mod real_text;
