//! The differential test of the two SQL dialects: generated filters over
//! generated schemas run on SQLite and on PostgreSQL, over the same rows,
//! and must match exactly the same ids.
//!
//! PostgreSQL comes from `PG_TEST_URL` (see `crate::pg_testing`): without
//! it the test says so and passes, except under `CI`, where it fails. `FB_DIFF_CASES` raises the case
//! count for a long run.
//!
//! Both databases get one wide table `t` with a column per (name, kind)
//! pair of the generator's name pool, so each generated schema is only a
//! different mapping of names to columns, and the relation table `r` the
//! `rel.v` / `one.v` / `@collection.r` paths read. Columns are typed as the
//! server types them: SQLite's declared types (so the same affinities), and
//! on PostgreSQL `text COLLATE "C"`, `double precision`, `boolean` and
//! `jsonb`, plus a hidden identity column for the row order.

use std::env;

use ::postgres::types::ToSql;
use proptest::test_runner::TestRunner;
use rusqlite::types::Value as DbValue;

use super::*;
use crate::pg_testing::{PgSchema, and_or, server};
use crate::rules::postgres::numbered;
use crate::rules::{Dialect, ValueType};

/// Generated filters in an ordinary run.
const CASES: u32 = 1_500;

const KINDS: [Kind; 5] = [
    Kind::Text,
    Kind::Number,
    Kind::Bool,
    Kind::Multi,
    Kind::Json,
];

/// The column of the wide table holding `name` as `kind`.
fn column_name(name: &str, kind: Kind) -> String {
    format!("{name}/{kind:?}")
}

/// Row values per kind, valid on both databases (the server validates JSON
/// before it is stored), chosen to meet SQLite's conversions: numeric text,
/// spaces, case, numbers inside JSON as text and as numbers.
fn value(kind: Kind, row: usize) -> DbValue {
    let text = |s: &str| DbValue::Text(s.into());
    let pick = |values: &[&str]| text(values[row % values.len()]);
    if row == 0 {
        return DbValue::Null;
    }
    match kind {
        Kind::Text => pick(&[
            "",
            "",
            "Hello",
            "it's 100% \\ _x 日本",
            "5",
            "hello",
            " 5 ",
            "abc_%",
            "2.5",
            "Ä",
            "a",
            "2024-02-29 13:45:30.123Z",
            "2023-02-31",
            "12:30",
            "2024-01-01 10:00+02:00",
        ]),
        Kind::Number => {
            let numbers: [f64; 19] = [
                2_460_370.5,
                1_709_214_330.0,
                0.0,
                0.0,
                5.0,
                -2.5,
                1_000_000.0,
                0.1,
                2.5,
                -1.0,
                7.0,
                1.5,
                1.0,
                // Reals SQLite writes as text with 17 digits, cut short,
                // or with an exponent.
                1.0 / 3.0,
                0.1 + 0.2,
                1e-7,
                1e21,
                2.0 / 3.0 * 1e-5,
                9_007_199_254_740_993.0,
            ];
            let n = numbers[row % numbers.len()];
            // SQLite's NUMERIC affinity keeps whole numbers as integers.
            if n.fract() == 0.0 && n.abs() < 9.2e18 {
                DbValue::Integer(n as i64)
            } else {
                DbValue::Real(n)
            }
        }
        Kind::Bool => DbValue::Integer(i64::from(row % 2 == 1)),
        Kind::Multi => pick(&[
            "[]",
            "[]",
            "[\"a\",\"b\"]",
            "[1,null,\"it's\"]",
            "[\"5\"]",
            "[true]",
            "[\"A\",\"a\"]",
            "[2.5]",
            "[\"Hello\",\"x\"]",
            "[\"\"]",
            "[\"b\"]",
        ]),
        Kind::Json => pick(&[
            "null",
            "{\"x\":1,\"y\":[1,\"two\"]}",
            "\"str\"",
            "[1,2,3]",
            "5",
            "true",
            "{\"a_b\":null,\"x\":\"5\"}",
            "{\"x\":{\"deep\":\"Hello\"},\"y\":[]}",
            "2.5",
            "{\"0\":\"zero\",\"x\":\" 5 \"}",
            "\"Hello\"",
            // As the server writes them: serde_json, keys in byte order.
            "{\"a\":[0.30000000000000004,\"日本\"],\"b\":0.3333333333333333,\"c\":{\"y\":1.0,\"z\":-1}}",
            "0.3333333333333333",
            "[-0.5,1.5,100.25]",
            "{\"A\":\"é\\n\\\"q\\\"\",\"a\":100.5}",
        ]),
    }
}

const ROWS: usize = 20;

/// The relation table's rows: (owner row, value).
const RELATED: [(i64, Option<&str>); 6] = [
    (1, Some("a")),
    (1, Some("news")),
    (2, None),
    (3, Some("")),
    (4, Some("5")),
    (4, Some("A")),
];

fn sqlite_database() -> Connection {
    let conn = connection();
    let mut cols = Vec::new();
    for name in NAME_POOL {
        for kind in KINDS {
            cols.push(format!(
                "\"{}\" {}",
                column_name(name, kind),
                column_type(kind)
            ));
        }
    }
    conn.execute_batch(&format!(
        "CREATE TABLE t ({}); CREATE TABLE r (owner INTEGER, v TEXT);",
        cols.join(", ")
    ))
    .expect("SQLite tables");
    for (owner, v) in RELATED {
        conn.execute("INSERT INTO r VALUES (?, ?)", rusqlite::params![owner, v])
            .expect("related row");
    }
    let names: Vec<String> = NAME_POOL
        .iter()
        .flat_map(|n| KINDS.map(|k| format!("\"{}\"", column_name(n, k))))
        .collect();
    let marks = vec!["?"; names.len()].join(", ");
    let insert = format!("INSERT INTO t ({}) VALUES ({marks})", names.join(", "));
    for row in 0..ROWS {
        let values: Vec<DbValue> = NAME_POOL
            .iter()
            .flat_map(|_| KINDS.map(|k| value(k, row)))
            .collect();
        conn.execute(&insert, rusqlite::params_from_iter(values))
            .expect("SQLite row");
    }
    conn
}

fn pg_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Text => "text COLLATE \"C\"",
        Kind::Number => "double precision",
        Kind::Bool => "boolean",
        Kind::Multi | Kind::Json => "jsonb",
    }
}

/// A PostgreSQL parameter for a row value of `kind`.
fn pg_value(kind: Kind, v: &DbValue) -> Box<dyn ToSql + Sync> {
    match (kind, v) {
        (Kind::Number, DbValue::Null) => Box::new(Option::<f64>::None),
        (Kind::Bool, DbValue::Null) => Box::new(Option::<bool>::None),
        (_, DbValue::Null) => Box::new(Option::<String>::None),
        (Kind::Number, DbValue::Integer(i)) => Box::new(*i as f64),
        (Kind::Number, DbValue::Real(r)) => Box::new(*r),
        (Kind::Bool, DbValue::Integer(i)) => Box::new(*i != 0),
        (_, DbValue::Text(t)) => Box::new(t.clone()),
        (_, other) => panic!("no PostgreSQL value for {other:?}"),
    }
}

/// The wide table and the relation table on a private PostgreSQL schema.
fn pg_database(url: &str) -> PgSchema {
    let mut pg = PgSchema::open(url);
    let client = &mut pg.client;
    let mut cols = vec!["_rowid bigint GENERATED ALWAYS AS IDENTITY".to_owned()];
    for name in NAME_POOL {
        for kind in KINDS {
            cols.push(format!("\"{}\" {}", column_name(name, kind), pg_type(kind)));
        }
    }
    client
        .batch_execute(&format!(
            "CREATE TABLE t ({}); \
             CREATE TABLE r (_rowid bigint GENERATED ALWAYS AS IDENTITY, owner bigint, v text COLLATE \"C\");",
            cols.join(", ")
        ))
        .expect("PostgreSQL tables");
    for (owner, v) in RELATED {
        client
            .execute("INSERT INTO r (owner, v) VALUES ($1, $2)", &[&owner, &v])
            .expect("related row");
    }
    let mut names = Vec::new();
    let mut marks = Vec::new();
    for name in NAME_POOL {
        for kind in KINDS {
            names.push(format!("\"{}\"", column_name(name, kind)));
            let cast = if matches!(kind, Kind::Multi | Kind::Json) {
                "::text::jsonb"
            } else {
                ""
            };
            marks.push(format!("${}{cast}", marks.len() + 1));
        }
    }
    let insert = format!(
        "INSERT INTO t ({}) VALUES ({})",
        names.join(", "),
        marks.join(", ")
    );
    for row in 0..ROWS {
        let values: Vec<Box<dyn ToSql + Sync>> = NAME_POOL
            .iter()
            .flat_map(|_| KINDS.map(|k| pg_value(k, &value(k, row))))
            .collect();
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|b| b.as_ref()).collect();
        client.execute(&insert, &refs).expect("PostgreSQL row");
    }
    pg
}

/// The generator's scope over the wide table, in either dialect.
struct DiffScope<'a> {
    schema: &'a Schema,
    dialect: Dialect,
}

impl DiffScope<'_> {
    fn postgres(&self) -> bool {
        self.dialect == Dialect::Postgres
    }

    fn related(&self, select: &str, tail: &str) -> String {
        let (rowid, is_not) = if self.postgres() {
            ("\"t\"._rowid", "IS DISTINCT FROM")
        } else {
            ("\"t\".rowid", "IS NOT")
        };
        format!(
            "(SELECT {select} FROM \"r\" WHERE \"r\".\"owner\" = {rowid} \
             AND \"r\".\"v\" {is_not} ?{tail})"
        )
    }
}

impl Scope for DiffScope<'_> {
    fn dialect(&self) -> Dialect {
        self.dialect
    }

    fn column(&self, path: &Path) -> Result<ColumnRef, RuleError> {
        let segments: Vec<&str> = path.segments.iter().map(String::as_str).collect();
        let param = || vec![SqlValue::Text(SCOPE_PARAM.into())];
        let pg = self.postgres();
        match segments.as_slice() {
            ["rel", "v"] => {
                let list = if pg {
                    self.related(
                        "COALESCE(jsonb_agg(\"r\".\"v\" ORDER BY \"r\"._rowid), '[]'::jsonb)",
                        "",
                    )
                } else {
                    self.related("json_group_array(\"r\".\"v\")", "")
                };
                Ok(ColumnRef::each(list).with_params(param()))
            }
            ["one", "v"] => {
                let order = if pg { " ORDER BY \"r\"._rowid" } else { "" };
                let one = self.related("\"r\".\"v\"", &format!("{order} LIMIT 1"));
                Ok(ColumnRef::single(one).with_params(param()))
            }
            [name] => {
                let kind = self
                    .schema
                    .kind(name)
                    .ok_or_else(|| RuleError::unresolved(path, "unknown field"))?;
                let sql = format!("\"t\".\"{}\"", column_name(name, kind));
                Ok(match kind {
                    Kind::Text => ColumnRef::single(sql).with_type(ValueType::Text),
                    Kind::Number => ColumnRef::single(sql).with_type(ValueType::Number),
                    Kind::Bool => ColumnRef::single(sql).with_type(ValueType::Bool),
                    Kind::Json => ColumnRef::single(sql).with_type(ValueType::Document),
                    Kind::Multi => ColumnRef::multi(sql).with_type(ValueType::Document),
                })
            }
            [name, rest @ ..] if self.schema.kind(name) == Some(Kind::Json) => {
                if !rest
                    .iter()
                    .all(|s| s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                {
                    return Err(RuleError::unresolved(path, "bad JSON path segment"));
                }
                let column = format!("\"t\".\"{}\"", column_name(name, Kind::Json));
                if pg {
                    let mut sql = column;
                    for seg in rest {
                        if seg.chars().all(|c| c.is_ascii_digit()) {
                            sql = format!("fb_at({sql}, {seg})");
                        } else {
                            sql = format!("({sql} -> '{seg}')");
                        }
                    }
                    return Ok(
                        ColumnRef::single(format!("fb_sqlite({sql})")).with_type(ValueType::Json)
                    );
                }
                let mut json_path = String::from("$");
                for seg in rest {
                    if seg.chars().all(|c| c.is_ascii_digit()) {
                        json_path.push_str(&format!("[{seg}]"));
                    } else {
                        json_path.push('.');
                        json_path.push_str(seg);
                    }
                }
                Ok(ColumnRef::single(format!(
                    "(CASE WHEN json_valid({column}) THEN json_extract({column}, '{json_path}') END)"
                ))
                .with_type(ValueType::Json))
            }
            _ => Err(RuleError::unresolved(path, "unknown field")),
        }
    }

    fn collection_source(&self, name: &str, alias: &str) -> Result<CollectionSource, RuleError> {
        if name != "r" {
            return Err(RuleError::invalid(format!("unknown collection {name}")));
        }
        let is_not = if self.postgres() {
            "IS DISTINCT FROM"
        } else {
            "IS NOT"
        };
        Ok(CollectionSource {
            from: format!("\"r\" AS {alias}"),
            condition: Some(SqlFragment {
                sql: format!("{alias}.\"v\" {is_not} ?"),
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
            ("r", [field]) if field == "v" => {
                Ok(ColumnRef::single(format!("{alias}.\"v\"")).with_type(ValueType::Text))
            }
            ("r", [field]) if field == "owner" => {
                Ok(ColumnRef::single(format!("{alias}.\"owner\"")).with_type(ValueType::Number))
            }
            _ => Err(RuleError::unresolved(path, "unknown field")),
        }
    }

    fn request_value(&self, path: &Path) -> Result<Option<SqlValue>, RuleError> {
        PropScope {
            schema: self.schema,
        }
        .request_value(path)
    }
}

fn sqlite_ids(conn: &Connection, where_: &SqlFragment) -> Result<Vec<i64>, String> {
    let sql = format!("SELECT rowid FROM t WHERE ({}) ORDER BY rowid", where_.sql);
    let mut stmt = conn.prepare(&sql).map_err(|e| e.to_string())?;
    let params = rusqlite::params_from_iter(where_.params.iter().map(db_value));
    let rows = stmt
        .query_map(params, |row| row.get::<_, i64>(0))
        .map_err(|e| e.to_string())?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

fn pg_ids(pg: &mut PgSchema, where_: &SqlFragment) -> Result<Vec<i64>, String> {
    let sql = format!(
        "SELECT _rowid FROM t WHERE ({}) ORDER BY _rowid",
        where_.sql
    );
    let ids = pg.column(&sql, &where_.params)?;
    Ok(ids.iter().filter_map(|id| id.parse().ok()).collect())
}

/// Outcomes of one differential run.
#[derive(Default)]
struct Outcomes {
    compared: Cell<usize>,
    /// Filters PostgreSQL refuses with a clear error (e.g. `strftime`).
    refused: Cell<usize>,
    /// Filters that match at least one row and not every row.
    selective: Cell<usize>,
}

/// Runs `cases` generated (schema, filter) pairs on both databases and
/// returns how many compared, were refused and were selective.
fn run_both<S: Strategy<Value = (Schema, String)>>(
    url: &str,
    strategy: S,
    cases: u32,
) -> (usize, usize, usize) {
    let cases = env::var("FB_DIFF_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(cases);
    let sqlite = sqlite_database();
    let pg = std::cell::RefCell::new(pg_database(url));
    let outcomes = Outcomes::default();
    // Shrinking re-runs queries on both databases; a short one is enough
    // to read a failure.
    let mut runner = TestRunner::new(Config {
        max_shrink_iters: 300,
        ..config(cases)
    });

    let result = runner.run(&strategy, |(schema, src)| {
        let Ok(expr) = parse_filter(&src) else {
            return Ok(());
        };
        let lite = DiffScope {
            schema: &schema,
            dialect: Dialect::Sqlite,
        };
        let Ok(lite_sql) = compile_with(&expr, &lite, &options()) else {
            return Ok(());
        };
        let Ok(want) = sqlite_ids(&sqlite, &lite_sql) else {
            return Ok(());
        };
        let postgres = DiffScope {
            schema: &schema,
            dialect: Dialect::Postgres,
        };
        let pg_sql = match compile_with(&expr, &postgres, &options()) {
            // `strftime` of the current time: the two databases read their
            // clocks at different instants.
            Ok(sql) if sql.sql.contains("'\"now\"'::jsonb") => {
                Tally::bump(&outcomes.refused);
                return Ok(());
            }
            Ok(sql) => sql,
            Err(e) => {
                let message = e.to_string();
                prop_assert!(
                    message.contains("PostgreSQL"),
                    "{src:?} compiles on SQLite but not on PostgreSQL: {message}"
                );
                Tally::bump(&outcomes.refused);
                return Ok(());
            }
        };
        let got = pg_ids(&mut pg.borrow_mut(), &pg_sql)
            .map_err(|e| TestCaseError::fail(format!("{src:?} failed on PostgreSQL: {e}")))?;
        prop_assert_eq!(
            &got,
            &want,
            "{:?} matched different rows\nSQLite: {}\nPostgreSQL: {}\nparams: {:?}",
            src,
            lite_sql.sql,
            numbered(&pg_sql),
            pg_sql.params
        );
        Tally::bump(&outcomes.compared);
        if !want.is_empty() && want.len() < ROWS {
            Tally::bump(&outcomes.selective);
        }
        Ok(())
    });

    if let Err(e) = result {
        panic!("{e}");
    }
    let counts = (
        outcomes.compared.get(),
        outcomes.refused.get(),
        outcomes.selective.get(),
    );
    eprintln!(
        "differential: {} filters matched the same rows on both ({} selective), \
         {} refused on PostgreSQL, of {cases} generated",
        counts.0, counts.2, counts.1
    );
    counts
}

/// The fuzz generator's filters (hostile literals, unknown names, every
/// modifier): whatever compiles on SQLite must match alike on PostgreSQL.
#[test]
fn fuzz_filters_match_the_same_rows_on_sqlite_and_postgres() {
    let Some(url) = server() else {
        return;
    };
    let (compared, _, _) = run_both(&url, schema_and_filter(), CASES);
    assert!(compared * 10 >= CASES as usize, "the generator has drifted");
}

/// Literals that meet the rows: numeric text, case, spaces, patterns.
const VALUES: [&str; 36] = [
    "'5'",
    "5",
    "'Hello'",
    "'hello'",
    "2.5",
    "''",
    "null",
    "true",
    "false",
    "'a'",
    "'%ell%'",
    "' 5 '",
    "'it\\'s'",
    "0",
    "-1",
    "1000000",
    "'b'",
    "'A'",
    "'x'",
    "'Ä'",
    "'ä'",
    "'日本'",
    "'_'",
    "'\\\\'",
    "'2.5'",
    "'1e3'",
    "\"str\"",
    "'{\"deep\":\"Hello\"}'",
    "'zero'",
    "1.5",
    "'3'",
    "'0.3'",
    "'e-'",
    "'e+21'",
    "'\"a\":'",
    "'1.0'",
];

/// Paths that resolve in `schema`, with the modifiers each kind takes.
fn field(schema: &Schema) -> BoxedStrategy<String> {
    let mut paths = vec![
        "rel.v".to_owned(),
        "rel.v:each".to_owned(),
        "rel.v:length".to_owned(),
        "rel.v:lower".to_owned(),
        "one.v".to_owned(),
        "one.v:lower".to_owned(),
        "@request.body.tags:each".to_owned(),
        "@request.body.tags:length".to_owned(),
        "@request.body.n".to_owned(),
        "@request.body.title".to_owned(),
        "@request.auth.id".to_owned(),
        "@now".to_owned(),
        "@year".to_owned(),
    ];
    for (name, kind) in &schema.cols {
        let suffixes: &[&str] = match kind {
            Kind::Text => &["", ":lower"],
            Kind::Number | Kind::Bool => &[""],
            Kind::Multi => &["", ":each", ":length", ":lower", ":each:lower"],
            Kind::Json => &[
                "", ":lower", ".x", ".x:lower", ".y.1", ".y.0", ".x.deep", ".0", ".a_b", ".y",
            ],
        };
        paths.extend(suffixes.iter().map(|s| format!("{name}{s}")));
    }
    select(paths).boxed()
}

fn semantic_operand(schema: &Schema) -> BoxedStrategy<String> {
    let field = field(schema);
    prop_oneof![
        4 => field.clone(),
        4 => select(VALUES.to_vec()).prop_map(String::from),
        1 => (field.clone(), select(vec!["1", "'2'", "13.4", "' 5 '"]))
            .prop_map(|(f, n)| format!("geoDistance({f}, {n}, 1, 2)")),
        1 => (field, select(vec![
            "'%F %T'", "'%Y-%m'", "'%j %U %W %V %G %g %u %w'", "'%H:%M:%f %I %p %P %e %k %l %R'",
            "'%J'", "'%s'", "'%q'", "'%d%'", "''", "'100%%'",
        ]), any::<bool>())
            .prop_map(|(f, format, unix)| if unix {
                format!("strftime({format}, {f}, 'unixepoch')")
            } else {
                format!("strftime({format}, {f})")
            }),
    ]
    .boxed()
}

fn semantic_filter(schema: &Schema) -> BoxedStrategy<String> {
    let comparison = (
        semantic_operand(schema),
        select(OPERATORS.to_vec()),
        semantic_operand(schema),
    )
        .prop_map(|(l, op, r)| format!("{l} {op} {r}"));
    and_or(comparison.boxed())
}

/// Filters built to meet the data: fields that resolve, literals the rows
/// hold in other types and cases, every operator.
#[test]
fn meaningful_filters_match_the_same_rows_on_sqlite_and_postgres() {
    let Some(url) = server() else {
        return;
    };
    let strategy = schema_strategy().prop_flat_map(|schema| {
        let filter = semantic_filter(&schema);
        (Just(schema), filter)
    });
    let (compared, _, selective) = run_both(&url, strategy, CASES);
    assert!(
        compared * 2 >= CASES as usize && selective * 6 >= compared,
        "only {compared} of {CASES} compared ({selective} selective): the generator has drifted"
    );
}

/// `strftime` on PostgreSQL (`fb_strftime`) writes exactly what SQLite's
/// writes, for every specifier over awkward dates, times, zones, Julian
/// days and Unix seconds.
#[test]
fn strftime_writes_what_sqlite_writes() {
    let Some(url) = server() else {
        return;
    };
    let mut pg = PgSchema::open(&url);
    let sqlite = connection();
    let formats = [
        "%d|%e|%f|%F|%G|%g|%H|%k|%I|%l|%j|%J|%m|%M|%p|%P|%R|%s|%S|%T|%u|%w|%U|%V|%W|%Y|%%",
        "%Y-%m-%d %H:%M:%S",
        "",
        "no specifier",
        "%q",
        "50%",
    ];
    let texts = [
        "2024-02-29 13:45:30.123Z",
        "2024-02-29T13:45:30.1239",
        "2024-12-31 24:00",
        "2024-12-31 24:00:01",
        "2023-02-31",
        "2024-13-01",
        "2024-01-01 10:00 +02:00",
        "2024-01-01 10:00-14:30",
        "2024-01-01 10:00+15:00",
        "2024-01-01z",
        "2024-01-01 ",
        " 2024-01-01",
        "2024-1-01",
        "0001-01-01",
        "9999-12-31 23:59:59.999",
        "-0044-03-15",
        "12:30",
        "12:30:59.5",
        "25:00",
        "2460370.5",
        " 1709214330 ",
        "1e3",
        "-1",
        "",
        "abc",
        "2021-01-03",
        "2021-01-04 00:00:00",
        "2020-12-31",
        "2024-02-29 13:45:30.9999",
        "2024-02-29 13:45:60",
        "0000-01-01",
        "2024-02-29T",
        "2024-02-29 13:45",
        "NOW ",
        "1709214330.5",
    ];
    let numbers = [
        0.0,
        1.0,
        2_460_370.5,
        1_709_214_330.0,
        -5.0,
        5_373_484.5,
        5_373_485.0,
        0.5,
    ];
    let mut values: Vec<SqlValue> = texts.iter().map(|t| SqlValue::Text((*t).into())).collect();
    values.extend(numbers.iter().map(|n| SqlValue::Real(*n)));
    values.push(SqlValue::Integer(1_709_214_330));
    values.push(SqlValue::Null);
    let mut compared = 0;
    for format in formats {
        for value in &values {
            for unixepoch in [false, true] {
                let modifier = if unixepoch { ", 'unixepoch'" } else { "" };
                let want: Option<String> = sqlite
                    .query_row(
                        &format!("SELECT strftime(?, ?{modifier})"),
                        rusqlite::params![format, db_value(value)],
                        |r| r.get(0),
                    )
                    .expect("SQLite strftime");
                let fragment = SqlFragment {
                    sql: format!("SELECT fb_strftime(?, to_jsonb(?), {unixepoch})"),
                    params: vec![SqlValue::Text(format.into()), value.clone()],
                };
                let text = numbered(&fragment);
                let params = crate::pg_testing::bind(&fragment.params);
                let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|b| b.as_ref()).collect();
                let got: Option<String> = pg
                    .client
                    .query_one(&text, &refs)
                    .map(|row| row.get(0))
                    .unwrap_or_else(|e| panic!("{format:?} {value:?}: {e}"));
                assert_eq!(
                    got, want,
                    "strftime({format:?}, {value:?}{modifier}) on PostgreSQL"
                );
                compared += 1;
            }
        }
    }
    assert!(compared > 400);
}
