//! The aggregate action answers the same on SQLite and on PostgreSQL (the
//! throwaway server of the test command): on the collections and rows of
//! `backends`, every actor × groupBy form × aggregate set × sort × filter
//! must give the same JSON, refusals included. What PostgreSQL cannot
//! answer as SQLite does (JSON fields and values inside JSON) is a 400
//! there that says so.

use super::backends::{Engine, actors, outcome, runtime};
use super::{AggregateQuery, Caller, aggregate};
use crate::config::DatabaseConfig;
use crate::db::Db;
use crate::pg_testing::{PgSchema, assert_same_json, server};
use serde_json::{Value, json};

/// groupBy forms: none, fields of every kind, multi values, relation
/// paths, date buckets (some dates empty), hidden fields, bad names.
const GROUPS: [&str; 21] = [
    "",
    "published",
    "owner",
    "tags",
    "editors",
    "owner.name",
    "owner.verified",
    "owner.email",
    "created:year",
    "created:month",
    "created:day",
    "created:hour",
    "when:month",
    "when",
    "title",
    "views",
    "score",
    "published,owner",
    "secret",
    "nope",
    "title:lower",
];

/// Aggregate sets over every kind of field (with nulls, empty lists and
/// reals), and bad ones.
const AGGREGATES: [&str; 7] = [
    "",
    "count(title),count(tags),count(meta),count(published),count(views),count(owner),\
     count(editors),count(geo),count(when)",
    "count_distinct(owner),count_distinct(tags),count_distinct(score),\
     count_distinct(published),count_distinct(title)",
    "sum(views),sum(score),avg(views),avg(score)",
    "min(views),max(views),min(score),max(score),min(title),max(title),min(published),\
     max(published),min(tags),max(tags),min(created),max(when),min(owner),max(editors)",
    "sum(title)",
    "count(secret),min(secret)",
];

/// (filter, sort, limit); `agg` in a sort is the first aggregate's key.
const SHAPES: [(&str, &str, &str); 4] = [
    ("", "", ""),
    ("views > 2", "-agg", "2"),
    ("tags ?= 'red'", "agg", ""),
    ("title = 'a' ||", "", ""),
];

/// Other collections: a rule through relation paths, an open rule, a view
/// collection, an auth collection with a hidden email.
const OTHERS: [(&str, &str, &str); 8] = [
    ("comments", "post", "count()"),
    ("comments", "post.owner", "count(),count_distinct(text)"),
    ("notes", "post.published", "count(),min(text)"),
    ("post_stats", "", "count(),sum(views),max(title)"),
    ("post_stats", "views", "count()"),
    ("users", "verified", "count(),min(name)"),
    ("users", "email", "count()"),
    ("users", "", "count(email),count_distinct(emailVisibility)"),
];

async fn ask(engine: &Engine, name: &str, caller: &Caller, query: AggregateQuery) -> Value {
    let collection = engine.snapshot.get(name).expect("collection");
    let items = aggregate(
        &engine.db,
        engine.snapshot.clone(),
        collection,
        caller.clone(),
        query,
    )
    .await;
    outcome(items.map(Value::from), "aggregate")
}

fn query(
    group_by: &str,
    aggregate: &str,
    (filter, sort, limit): (&str, &str, &str),
) -> AggregateQuery {
    AggregateQuery {
        group_by: group_by.into(),
        aggregate: aggregate.into(),
        filter: filter.into(),
        search: String::new(),
        sort: sort.into(),
        limit: limit.parse().unwrap_or(super::MAX_AGGREGATE_GROUPS),
    }
}

/// The output key of the first aggregate of `agg` (`count(title)` is
/// `count_title`).
fn first_key(agg: &str) -> String {
    let first = agg.split(',').next().unwrap_or_default();
    match first.split_once('(') {
        Some((name, rest)) if rest.len() > 1 => format!("{name}_{}", rest.trim_end_matches(')')),
        _ => "count".into(),
    }
}

/// Every answer of the matrix, labelled.
async fn answers(engine: &Engine) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (who, caller) in actors() {
        for group_by in GROUPS {
            for agg in AGGREGATES {
                for shape in SHAPES {
                    let label =
                        format!("{who} posts groupBy={group_by:?} aggregate={agg:?} {shape:?}");
                    let sort = shape.1.replace("agg", &first_key(agg));
                    let shape = (shape.0, sort.as_str(), shape.2);
                    let answer = ask(engine, "posts", &caller, query(group_by, agg, shape)).await;
                    out.push((label, answer));
                }
            }
        }
        for (name, group_by, agg) in OTHERS {
            let label = format!("{who} {name} groupBy={group_by:?} aggregate={agg:?}");
            let answer = ask(engine, name, &caller, query(group_by, agg, ("", "", ""))).await;
            out.push((label, answer));
        }
    }
    out
}

/// A database of `backends`' collections and rows on PostgreSQL; `None`
/// without a test server.
fn on_postgres(rt: &tokio::runtime::Runtime) -> Option<(Engine, PgSchema)> {
    let base = server()?;
    let schema = PgSchema::open(&base);
    let url = schema.url(&base);
    crate::dbcopy::initialise(&url).expect("system tables");
    let db = Db::open_postgres(&url, &DatabaseConfig::default()).expect("open");
    Some((rt.block_on(Engine::setup(db)), schema))
}

#[test]
fn aggregates_answer_the_same_on_both_engines() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tmp");
    let db = Db::open(dir.path(), &DatabaseConfig::default()).expect("open");
    let on_sqlite = rt.block_on(async { answers(&Engine::setup(db).await).await });
    let answer = |label: &str| {
        on_sqlite
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no answer for {label}"))
    };
    let all = r#"aggregate="" ("", "", "")"#;
    assert_eq!(
        answer(&format!("guest posts groupBy=\"\" {all}")),
        json!([{"count": 3}]),
        "a guest counts the published posts only"
    );
    assert_eq!(
        answer(&format!("superuser posts groupBy=\"\" {all}")),
        json!([{"count": 6}])
    );
    assert_eq!(
        answer(&format!("bob posts groupBy=\"secret\" {all}"))["status"],
        400,
        "a hidden field is superuser-only"
    );
    assert_eq!(
        answer(&format!("superuser posts groupBy=\"created:month\" {all}")),
        json!([{"created:month": "2024-03", "count": 6}])
    );
    let refused = on_sqlite
        .iter()
        .filter(|(_, v)| v.get("status").is_some())
        .count();
    assert!(
        refused > 0 && refused < on_sqlite.len() * 2 / 3,
        "the matrix holds answers and refusals ({refused} of {})",
        on_sqlite.len()
    );
    let Some((engine, _schema)) = on_postgres(&rt) else {
        return;
    };
    let on_pg = rt.block_on(answers(&engine));
    assert_same_json(&on_sqlite, &on_pg);
}

#[test]
fn json_values_are_refused_on_postgres_with_a_clear_400() {
    let rt = runtime();
    let Some((engine, _schema)) = on_postgres(&rt) else {
        return;
    };
    for (group_by, agg, why) in [
        (
            "meta",
            "",
            "a JSON field's text orders object keys differently",
        ),
        ("geo", "", "a geo point is a JSON object"),
        ("meta.color", "", "a value inside JSON has no one type"),
        ("owner", "min(meta)", "an extreme of a JSON field"),
        (
            "",
            "count_distinct(geo)",
            "a distinct count of a JSON object",
        ),
    ] {
        let answer = rt.block_on(ask(
            &engine,
            "posts",
            &Caller::superuser(),
            query(group_by, agg, ("", "", "")),
        ));
        assert_eq!(answer["status"], 400, "{why}: {answer}");
        assert!(
            answer.to_string().contains("SQLite-only"),
            "the message says why ({why}): {answer}"
        );
    }
    let counted = rt.block_on(ask(
        &engine,
        "posts",
        &Caller::superuser(),
        query("", "count(meta),count(geo)", ("", "", "")),
    ));
    assert_eq!(
        counted,
        json!([{"count_meta": 5, "count_geo": 6}]),
        "counting JSON fields is the same on both engines"
    );
}

/// Adds `n` posts (views and scores varying, a third published).
fn many_posts(c: &mut dyn crate::db::Conn, n: i64) -> Result<(), crate::db::DbError> {
    use crate::rules::SqlValue;
    let published = if c.dialect() == crate::rules::Dialect::Postgres {
        "(?4 = 0)"
    } else {
        "?4 = 0"
    };
    let sql = format!(
        "INSERT INTO posts (id, title, views, score, published, tags, editors, created, updated) \
         VALUES (?1, ?2, ?3, ?5, {published}, '[]', '[]', ?6, ?6)"
    );
    for i in 0..n {
        c.execute(
            &sql,
            &[
                SqlValue::Text(format!("m{i:014}")),
                SqlValue::Text(format!("title {}", i % 50)),
                SqlValue::Integer(i % 1000),
                SqlValue::Integer(i % 3),
                SqlValue::Real(i as f64 / 7.0),
                SqlValue::Text(format!("2024-{:02}-01 10:00:00.000Z", i % 12 + 1)),
            ],
        )?;
    }
    Ok(())
}

/// Median milliseconds of `runs` aggregates of `query` over `posts`.
async fn timed(engine: &Engine, group_by: &str, aggregate: &str, runs: usize) -> f64 {
    let mut times = Vec::new();
    for _ in 0..runs {
        let started = std::time::Instant::now();
        let answer = ask(
            engine,
            "posts",
            &Caller::superuser(),
            query(group_by, aggregate, ("", "", "")),
        )
        .await;
        assert!(answer.is_array(), "{answer}");
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Aggregate latency on both engines over 20,000 posts (a measurement:
/// `cargo test --lib aggregate_backends::aggregate_latency -- --ignored --nocapture`).
#[test]
#[ignore = "a measurement, not a check"]
fn aggregate_latency() {
    const POSTS: i64 = 20_000;
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tmp");
    let db = Db::open(dir.path(), &DatabaseConfig::default()).expect("open");
    let sqlite = rt.block_on(Engine::setup(db));
    let pg = on_postgres(&rt);
    let mut engines = vec![("SQLite", &sqlite)];
    if let Some((engine, _)) = &pg {
        engines.push(("PostgreSQL", engine));
    }
    for (name, engine) in engines {
        rt.block_on(engine.db.write_conn(|c| many_posts(c, POSTS)))
            .expect("rows");
        for (group_by, aggregate) in [
            ("", "count()"),
            ("published", "count(),sum(views),avg(score)"),
            ("created:month", "count(),sum(score),min(title),max(views)"),
            ("title", "count_distinct(views)"),
        ] {
            let ms = rt.block_on(timed(engine, group_by, aggregate, 9));
            println!(
                "{name}: groupBy={group_by:?} aggregate={aggregate:?}: {ms:.1} ms (median of 9)"
            );
        }
    }
}

/// SQLite's `sum()` (falling back to `total()` past 64 bits, as the
/// endpoint does) and `avg()` of `values` in a NUMERIC column, in order.
fn sqlite_sum_avg(values: &[f64]) -> (crate::rules::SqlValue, crate::rules::SqlValue) {
    use crate::rules::SqlValue;
    let conn = rusqlite::Connection::open_in_memory().expect("memory");
    conn.execute_batch("CREATE TABLE t (x NUMERIC)")
        .expect("table");
    for v in values {
        conn.execute("INSERT INTO t (x) VALUES (?1)", [v])
            .expect("row");
    }
    let cell = |sql: &str| {
        conn.query_row(sql, [], |r| {
            Ok(match r.get_ref(0)? {
                rusqlite::types::ValueRef::Integer(i) => SqlValue::Integer(i),
                rusqlite::types::ValueRef::Real(f) => SqlValue::Real(f),
                _ => SqlValue::Null,
            })
        })
    };
    let sum = cell("SELECT sum(x) FROM t")
        .or_else(|_| cell("SELECT total(x) FROM t"))
        .expect("sum");
    (sum, cell("SELECT avg(x) FROM t").expect("avg"))
}

#[test]
fn sums_and_averages_round_as_sqlites_at_every_edge() {
    use crate::db::postgres::Cell;
    use crate::rules::SqlValue;
    let Some(base) = server() else { return };
    let mut schema = PgSchema::open(&base);
    let big = 4_503_599_627_370_496.0; // 2^52
    for values in [
        vec![1.0, 2.0, 3.0],
        vec![0.1, 0.2, 0.3],
        vec![2.5, 0.1 + 0.2, -1.25],
        vec![1e16, 1.0, -1e16, 0.5],
        vec![9.0e18, 9.0e18, -1.0],
        vec![big + 1.0, 0.5, big + 3.0, -7.0],
        vec![0.5, big * 4.0 + 16.0, 1.0],
        vec![1e21, 2.5, -3.0],
        vec![1e308, 1e308],
        vec![1e308, 1e308, -1e308],
        vec![-0.0, 0.0],
        vec![],
    ] {
        let want = sqlite_sum_avg(&values);
        let rows: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("({i}, {v:e}::float8)"))
            .collect();
        let from = if rows.is_empty() {
            "(SELECT 0 AS i, NULL::float8 AS x WHERE false) AS v".to_owned()
        } else {
            format!("(VALUES {}) AS v(i, x)", rows.join(", "))
        };
        let row = schema
            .client
            .query_one(
                &format!(
                    "SELECT coalesce(fb_sum(x ORDER BY i), 0), fb_avg(x ORDER BY i) FROM {from}"
                ),
                &[],
            )
            .expect("fb_sum");
        let (sum, avg): (Cell, Cell) = (row.get(0), row.get(1));
        let same = |a: &SqlValue, b: &SqlValue| match (a, b) {
            (SqlValue::Real(x), SqlValue::Real(y)) => {
                x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())
            }
            (a, b) => a == b,
        };
        let want_sum = match want.0 {
            SqlValue::Null => SqlValue::Integer(0),
            // A whole real sum reads back from numeric as an integer; the
            // endpoint writes both as the same JSON number.
            SqlValue::Real(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => {
                SqlValue::Integer(f as i64)
            }
            other => other,
        };
        assert!(
            same(&sum.0, &want_sum),
            "sum of {values:?}: {:?} vs SQLite's {want_sum:?}",
            sum.0
        );
        assert!(
            same(&avg.0, &want.1),
            "avg of {values:?}: {:?} vs SQLite's {:?}",
            avg.0,
            want.1
        );
    }
}
