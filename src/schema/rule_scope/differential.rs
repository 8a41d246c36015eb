//! The differential test of the field scope's two dialects: collections
//! with every kind of path a rule can take (relations single and multi,
//! back-relations, JSON paths, auth emails, `@collection`) are created by
//! the real DDL on SQLite and on PostgreSQL, filled with the same rows, and
//! generated filters, for every actor (guest, two users) and both trusts
//! (a rule, a client's filter with its join guards), must match the same
//! records on both. PostgreSQL comes from `PG_TEST_URL`
//! (`crate::pg_testing`).

use std::cell::{Cell, RefCell};
use std::env;

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::json;

use super::*;
use crate::pg_testing::{PgSchema, and_or, server};
use crate::schema::ddl::{self, postgres_create_sql};

/// Generated filters in an ordinary run (`FB_DIFF_CASES` raises it).
const CASES: u32 = 1_000;

const USERS: &str = "pbc_users_diff";
const POSTS: &str = "pbc_posts_diff";

fn snapshot() -> Snapshot {
    let make = |id: &str, def: serde_json::Value| {
        let mut c = Collection::from_create(&def).expect("collection");
        c.id = id.into();
        c
    };
    let users = make(
        USERS,
        json!({"name": "users", "type": "auth", "listRule": "",
               "fields": [{"name": "nick", "type": "text"}]}),
    );
    let posts = make(
        POSTS,
        json!({"name": "posts", "listRule": "", "fields": [
            {"name": "title", "type": "text"},
            {"name": "views", "type": "number"},
            {"name": "flag", "type": "bool"},
            {"name": "tags", "type": "select", "maxSelect": 5, "values": ["a", "b", "c", "A", "5"]},
            {"name": "meta", "type": "json"},
            {"name": "author", "type": "relation", "collectionId": USERS, "maxSelect": 1},
            {"name": "editors", "type": "relation", "collectionId": USERS, "maxSelect": 9}
        ]}),
    );
    let comments = make(
        "pbc_comments_diff",
        json!({"name": "comments", "listRule": "author = @request.auth.id", "fields": [
            {"name": "post", "type": "relation", "collectionId": POSTS, "maxSelect": 1},
            {"name": "author", "type": "relation", "collectionId": USERS, "maxSelect": 1},
            {"name": "body", "type": "text"},
            {"name": "score", "type": "number"},
            {"name": "labels", "type": "select", "maxSelect": 3, "values": ["x", "y", "z"]}
        ]}),
    );
    Snapshot::build(vec![users, posts, comments]).expect("snapshot")
}

/// One row: (column, value); JSON columns hold JSON text.
type Row = Vec<(&'static str, SqlValue)>;

fn t(s: &str) -> SqlValue {
    SqlValue::Text(s.into())
}

fn n(x: f64) -> SqlValue {
    if x.fract() == 0.0 {
        SqlValue::Integer(x as i64)
    } else {
        SqlValue::Real(x)
    }
}

fn rows() -> Vec<(&'static str, Vec<Row>)> {
    let user = |id: &str, email: &str, visible: bool, nick: &str| -> Row {
        vec![
            ("id", t(id)),
            ("email", t(email)),
            ("emailVisibility", SqlValue::Integer(i64::from(visible))),
            ("nick", t(nick)),
            ("tokenKey", t(&format!("key-{id}"))),
        ]
    };
    #[allow(clippy::too_many_arguments)]
    let post = |id: &str,
                title: &str,
                views: f64,
                flag: bool,
                tags: &str,
                meta: Option<&str>,
                author: &str,
                editors: &str|
     -> Row {
        vec![
            ("id", t(id)),
            ("title", t(title)),
            ("views", n(views)),
            ("flag", SqlValue::Integer(i64::from(flag))),
            ("tags", t(tags)),
            ("meta", meta.map_or(SqlValue::Null, t)),
            ("author", t(author)),
            ("editors", t(editors)),
        ]
    };
    let comment = |id: &str, post: &str, author: &str, body: &str, score: f64| -> Row {
        let labels = match id.bytes().last().unwrap_or(b'0') % 4 {
            0 => "[]",
            1 => r#"["x"]"#,
            2 => r#"["y","z"]"#,
            _ => r#"["x","y","z"]"#,
        };
        vec![
            ("id", t(id)),
            ("post", t(post)),
            ("author", t(author)),
            ("body", t(body)),
            ("score", n(score)),
            ("labels", t(labels)),
        ]
    };
    vec![
        (
            "users",
            vec![
                user("u1", "one@x.io", true, "Ann"),
                user("u2", "two@x.io", false, "ann"),
                user("u3", "three@x.io", true, ""),
                user("u4", "four@x.io", false, "5"),
            ],
        ),
        (
            "posts",
            vec![
                post(
                    "p1",
                    "Hello",
                    5.0,
                    true,
                    r#"["a","b"]"#,
                    Some(r#"{"a":1,"b":[1,"x"]}"#),
                    "u1",
                    r#"["u1","u2"]"#,
                ),
                post("p2", "hello", 0.0, false, "[]", None, "u2", "[]"),
                post(
                    "p3",
                    "",
                    2.5,
                    true,
                    r#"["A"]"#,
                    Some(r#"{"a":"5"}"#),
                    "",
                    r#"["u3"]"#,
                ),
                post(
                    "p4",
                    "5",
                    -1.0,
                    false,
                    r#"["5","c"]"#,
                    Some(r#""str""#),
                    "u4",
                    r#"["u4","u1","u9"]"#,
                ),
                post(
                    "p5",
                    "it's 100%",
                    1_000_000.0,
                    true,
                    r#"["a"]"#,
                    Some("[1,2]"),
                    "u9",
                    r#"["u2"]"#,
                ),
                post(
                    "p6",
                    " 5 ",
                    7.0,
                    false,
                    r#"["b","c","a"]"#,
                    Some(r#"{"a":null,"b":[]}"#),
                    "u3",
                    r#"["u1"]"#,
                ),
                post("p7", "Ä", 1.5, true, "[]", Some("5"), "u1", "[]"),
                post(
                    "p8",
                    "x",
                    0.1,
                    false,
                    r#"["c"]"#,
                    Some("true"),
                    "",
                    r#"["u2","u3"]"#,
                ),
            ],
        ),
        (
            "comments",
            vec![
                comment("c1", "p1", "u1", "first", 1.0),
                comment("c2", "p1", "u2", "Hello", 5.0),
                comment("c3", "p2", "u1", "", 0.0),
                comment("c4", "p3", "u3", "x", 2.5),
                comment("c5", "p4", "u4", "Hello", -1.0),
                comment("c6", "p5", "u2", "a", 7.0),
                comment("c7", "p9", "u1", "orphan", 3.0),
                comment("c8", "p6", "", "none", 0.0),
            ],
        ),
    ]
}

fn sqlite_database(snap: &Snapshot) -> rusqlite::Connection {
    let mut conn = rusqlite::Connection::open_in_memory().expect("SQLite");
    let tx = conn.transaction().expect("transaction");
    for (name, table_rows) in rows() {
        let collection = snap.get_ref(name).expect("collection");
        ddl::create(&tx, collection).expect("SQLite DDL");
        for row in table_rows {
            let cols: Vec<String> = row.iter().map(|(c, _)| ident(c)).collect();
            let marks = vec!["?"; row.len()].join(", ");
            let values = row.iter().map(|(_, v)| v);
            tx.execute(
                &format!(
                    "INSERT INTO {} ({}) VALUES ({marks})",
                    ident(name),
                    cols.join(", ")
                ),
                rusqlite::params_from_iter(values),
            )
            .expect("SQLite row");
        }
    }
    tx.commit().expect("commit");
    conn
}

fn pg_database(url: &str, snap: &Snapshot) -> PgSchema {
    let mut pg = PgSchema::open(url);
    for (name, table_rows) in rows() {
        let collection = snap.get_ref(name).expect("collection");
        for statement in postgres_create_sql(collection) {
            pg.client
                .batch_execute(&statement)
                .unwrap_or_else(|e| panic!("PostgreSQL DDL {statement}: {e}"));
        }
        for row in table_rows {
            let cols: Vec<String> = row.iter().map(|(c, _)| ident(c)).collect();
            let mut values = Vec::new();
            let marks: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(i, (col, v))| {
                    let field = collection.field(col).expect("field");
                    let ty = value_type(field);
                    let (mark, value): (String, Box<dyn postgres::types::ToSql + Sync>) =
                        match (ty, v) {
                            (ValueType::Document, SqlValue::Null) => (
                                format!("${}::text::jsonb", i + 1),
                                Box::new(Option::<String>::None),
                            ),
                            (ValueType::Document, SqlValue::Text(s)) => {
                                (format!("${}::text::jsonb", i + 1), Box::new(s.clone()))
                            }
                            (ValueType::Bool, SqlValue::Integer(b)) => {
                                (format!("${}", i + 1), Box::new(*b != 0))
                            }
                            (ValueType::Number, SqlValue::Integer(x)) => {
                                (format!("${}", i + 1), Box::new(*x as f64))
                            }
                            (ValueType::Number, SqlValue::Real(x)) => {
                                (format!("${}", i + 1), Box::new(*x))
                            }
                            (_, SqlValue::Text(s)) => (format!("${}", i + 1), Box::new(s.clone())),
                            (ty, v) => panic!("no PostgreSQL value for {ty:?} {v:?}"),
                        };
                    values.push(value);
                    mark
                })
                .collect();
            let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                values.iter().map(|b| b.as_ref()).collect();
            pg.client
                .execute(
                    &format!(
                        "INSERT INTO {} ({}) VALUES ({})",
                        ident(name),
                        cols.join(", "),
                        marks.join(", ")
                    ),
                    &refs,
                )
                .expect("PostgreSQL row");
        }
    }
    pg
}

/// A guest or a user, with `@request.auth.id`.
struct Caller(Option<&'static str>);

impl RequestValues for Caller {
    fn value(&self, path: &Path) -> Result<Option<SqlValue>, RuleError> {
        let id = self.0.unwrap_or_default();
        Ok((path.segments.join(".") == "@request.auth.id").then(|| SqlValue::Text(id.into())))
    }

    fn auth_record(&self) -> Option<(&str, &str)> {
        self.0.map(|id| (USERS, id))
    }
}

const PATHS: [&str; 37] = [
    "id",
    "title",
    "title:lower",
    "views",
    "flag",
    "tags",
    "tags:each",
    "tags:length",
    "tags:lower",
    "meta",
    "meta.a",
    "meta.b.0",
    "meta.b",
    "author",
    "author.nick",
    "author.email",
    "author.emailVisibility",
    "author.id",
    "editors",
    "editors:each",
    "editors:length",
    "editors.nick",
    "editors.email",
    "editors.id",
    "comments_via_post.body",
    "comments_via_post.author",
    "comments_via_post.score",
    "comments_via_post.author.nick",
    "comments_via_post.labels",
    "comments_via_post.labels:length",
    "comments_via_post.labels:each",
    "comments_via_post.author.email",
    "@collection.comments.body",
    "@collection.comments.post",
    "@collection.users.nick",
    "@collection.users.email",
    "@request.auth.id",
];

const VALUES: [&str; 24] = [
    "'Hello'",
    "'hello'",
    "'5'",
    "5",
    "2.5",
    "''",
    "null",
    "true",
    "false",
    "'u1'",
    "'u2'",
    "'p1'",
    "'a'",
    "'A'",
    "'%ell%'",
    "'x'",
    "'Ann'",
    "'one@x.io'",
    "'two@x.io'",
    "0",
    "1",
    "-1",
    "'Ä'",
    "1000000",
];

const OPERATORS: [&str; 16] = [
    "=", "!=", ">", ">=", "<", "<=", "~", "!~", "?=", "?!=", "?>", "?>=", "?<", "?<=", "?~", "?!~",
];

fn filter() -> BoxedStrategy<String> {
    let operand = prop_oneof![select(PATHS.to_vec()), select(VALUES.to_vec())];
    let comparison = (operand.clone(), select(OPERATORS.to_vec()), operand)
        .prop_map(|(l, op, r)| format!("{l} {op} {r}"));
    and_or(comparison.boxed())
}

/// The ids of posts `src` admits in one dialect, for one caller and trust.
fn matching(
    snap: &Snapshot,
    dialect: Dialect,
    trust: Trust,
    caller: &Caller,
    src: &str,
) -> Result<rules::SqlFragment, RuleError> {
    let posts = snap.get_ref("posts").expect("posts");
    let aliases = Cell::new(0);
    let scope = FieldScope::new(snap, posts, trust, caller, &aliases).in_dialect(dialect);
    let mut sql = rules::compile(&rules::parse_filter(src)?, &scope)?;
    for guard in scope.take_join_guards() {
        sql.sql = format!("({}) AND ({})", sql.sql, guard.sql);
        sql.params.extend(guard.params);
    }
    Ok(sql)
}

fn sqlite_ids(conn: &rusqlite::Connection, cond: &rules::SqlFragment) -> Vec<String> {
    let sql = format!("SELECT id FROM \"posts\" WHERE {} ORDER BY id", cond.sql);
    sqlite_column(conn, &sql, &cond.params)
}

/// The first column of every row of `sql` on SQLite.
fn sqlite_column(conn: &rusqlite::Connection, sql: &str, params: &[SqlValue]) -> Vec<String> {
    let params = params.iter();
    let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    stmt.query_map(rusqlite::params_from_iter(params), |r| r.get(0))
        .expect("query")
        .collect::<Result<Vec<String>, _>>()
        .expect("rows")
}

/// Filters that once differed between the dialects (SQLite's affinity of
/// `json_each` values and of CASE), checked on every run.
const REGRESSIONS: [&str; 4] = [
    "((title > comments_via_post.score && id < author.id) && id < 'u1')",
    "title ?> comments_via_post.score",
    "author.email < 5",
    "editors.email > 5 || editors:each < 5",
];

/// The databases and counters of one differential run.
struct Run {
    snap: Snapshot,
    sqlite: rusqlite::Connection,
    pg: RefCell<PgSchema>,
    compared: Cell<usize>,
    selective: Cell<usize>,
}

impl Run {
    fn open(url: &str) -> Self {
        let snap = snapshot();
        let sqlite = sqlite_database(&snap);
        let pg = RefCell::new(pg_database(url, &snap));
        Self {
            snap,
            sqlite,
            pg,
            compared: Cell::new(0),
            selective: Cell::new(0),
        }
    }

    /// `src` as a rule (`full`) or a client filter of `who` matches the
    /// same posts on both databases (or fails to compile on both).
    fn check(&self, src: &str, who: Option<&'static str>, full: bool) -> Result<(), TestCaseError> {
        let trust = if full { Trust::Full } else { Trust::Client };
        let caller = Caller(who);
        let lite = matching(&self.snap, Dialect::Sqlite, trust, &caller, src);
        let postgres = matching(&self.snap, Dialect::Postgres, trust, &caller, src);
        let (lite, postgres) = match (lite, postgres) {
            (Ok(l), Ok(p)) => (l, p),
            (Err(_), Err(_)) => return Ok(()),
            (l, p) => {
                return Err(TestCaseError::fail(format!(
                    "{src:?} ({trust:?}, {who:?}) compiles differently: {:?} vs {:?}",
                    l.err(),
                    p.err()
                )));
            }
        };
        let want = sqlite_ids(&self.sqlite, &lite);
        let sql = format!(
            "SELECT id FROM \"posts\" WHERE {} ORDER BY id COLLATE \"C\"",
            postgres.sql
        );
        let got = self
            .pg
            .borrow_mut()
            .column(&sql, &postgres.params)
            .map_err(|e| TestCaseError::fail(format!("{src:?} failed on PostgreSQL: {e}")))?;
        prop_assert_eq!(
            &got,
            &want,
            "{:?} ({:?}, {:?}) matched different posts\nSQLite: {}",
            src,
            trust,
            who,
            lite.sql
        );
        self.compared.set(self.compared.get() + 1);
        if !want.is_empty() && want.len() < 8 {
            self.selective.set(self.selective.get() + 1);
        }
        Ok(())
    }
}

const ACTORS: [Option<&str>; 3] = [None, Some("u1"), Some("u2")];

#[test]
fn filters_over_relations_match_the_same_records_on_sqlite_and_postgres() {
    let Some(url) = server() else {
        return;
    };
    let cases = env::var("FB_DIFF_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(CASES);
    let run = Run::open(&url);
    for src in REGRESSIONS {
        for who in ACTORS {
            for full in [true, false] {
                if let Err(e) = run.check(src, who, full) {
                    panic!("{e}");
                }
            }
        }
    }
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 300,
        ..Config::default()
    });
    let result = runner.run(
        &(filter(), select(ACTORS.to_vec()), any::<bool>()),
        |(src, who, full)| run.check(&src, who, full),
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    let (compared, selective) = (run.compared.get(), run.selective.get());
    eprintln!(
        "scope differential: {compared} of {cases} filters matched the same posts on both \
         ({selective} selective)"
    );
    assert!(
        compared * 2 >= cases as usize && selective * 6 >= compared,
        "only {compared} of {cases} compared ({selective} selective): the generator has drifted"
    );
}

const SORTABLE: [&str; 20] = [
    "id",
    "title",
    "title:lower",
    "views",
    "flag",
    "tags",
    "tags:length",
    "meta",
    "meta.a",
    "meta.b.0",
    "meta.b",
    "author",
    "author.nick",
    "author.email",
    "author.emailVisibility",
    "editors",
    "editors:length",
    "editors.nick",
    "comments_via_post.labels:length",
    "@rowid",
];

/// The `ORDER BY` (plus join guards) of `sort` in one dialect.
fn ordering(
    snap: &Snapshot,
    dialect: Dialect,
    trust: Trust,
    caller: &Caller,
    sort: &str,
) -> Result<(rules::SqlFragment, rules::SqlFragment), RuleError> {
    let posts = snap.get_ref("posts").expect("posts");
    let aliases = Cell::new(0);
    let scope = FieldScope::new(snap, posts, trust, caller, &aliases).in_dialect(dialect);
    let order = rules::compile_order(&rules::parse_sort(sort)?, &scope)?;
    let mut guards = rules::SqlFragment {
        sql: "1 = 1".into(),
        params: Vec::new(),
    };
    for guard in scope.take_join_guards() {
        guards.sql = format!("({}) AND ({})", guards.sql, guard.sql);
        guards.params.extend(guard.params);
    }
    Ok((guards, order))
}

#[test]
fn sorts_over_relations_order_the_same_records_on_sqlite_and_postgres() {
    let Some(url) = server() else {
        return;
    };
    let snap = snapshot();
    let sqlite = sqlite_database(&snap);
    let pg = RefCell::new(pg_database(&url, &snap));
    let compared = Cell::new(0usize);
    let mut runner = TestRunner::new(Config {
        cases: 300,
        failure_persistence: None,
        ..Config::default()
    });
    let item = (any::<bool>(), select(SORTABLE.to_vec()))
        .prop_map(|(desc, path)| format!("{}{path}", if desc { "-" } else { "" }));
    let sort = proptest::collection::vec(item, 1..4).prop_map(|items| items.join(","));
    let actors = [None, Some("u1"), Some("u2")];
    let result = runner.run(
        &(sort, select(actors.to_vec()), any::<bool>()),
        |(sort, who, full)| {
            let trust = if full { Trust::Full } else { Trust::Client };
            let caller = Caller(who);
            let lite = ordering(&snap, Dialect::Sqlite, trust, &caller, &sort);
            let postgres = ordering(&snap, Dialect::Postgres, trust, &caller, &sort);
            let ((lite_where, lite_order), (pg_where, pg_order)) = match (lite, postgres) {
                (Ok(l), Ok(p)) => (l, p),
                (Err(_), Err(_)) => return Ok(()),
                (l, p) => {
                    return Err(TestCaseError::fail(format!(
                        "{sort:?} compiles differently: {:?} vs {:?}",
                        l.err(),
                        p.err()
                    )));
                }
            };
            let lite_sql = format!(
                "SELECT id FROM \"posts\" WHERE {} ORDER BY {}, id",
                lite_where.sql, lite_order.sql
            );
            let mut lite_params = lite_where.params.clone();
            lite_params.extend(lite_order.params);
            let want = sqlite_column(&sqlite, &lite_sql, &lite_params);
            let mut params = pg_where.params.clone();
            params.extend(pg_order.params.clone());
            let sql = format!(
                "SELECT id FROM \"posts\" WHERE {} ORDER BY {}, id COLLATE \"C\"",
                pg_where.sql, pg_order.sql
            );
            let got = pg
                .borrow_mut()
                .column(&sql, &params)
                .map_err(|e| TestCaseError::fail(format!("{sort:?} failed on PostgreSQL: {e}")))?;
            prop_assert_eq!(
                &got,
                &want,
                "{:?} ({:?}, {:?}) ordered differently\nSQLite: {}",
                sort,
                trust,
                who,
                lite_sql
            );
            compared.set(compared.get() + 1);
            Ok(())
        },
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    assert!(
        compared.get() >= 150,
        "only {} sorts compared",
        compared.get()
    );
}

/// The collections' unique indexes, made by each dialect's DDL, refuse the
/// same rows: a second user with a taken email or token key, not two users
/// without an email (PocketBase's partial `email != ''` index).
#[test]
fn unique_indexes_refuse_the_same_rows_on_sqlite_and_postgres() {
    let Some(url) = server() else {
        return;
    };
    let snap = snapshot();
    let sqlite = sqlite_database(&snap);
    let mut pg = pg_database(&url, &snap);
    let attempts = [
        ("u5", "one@x.io", "key-u5", false),
        ("u6", "six@x.io", "key-u1", false),
        ("u7", "", "key-u7", true),
        ("u8", "", "key-u8", true),
        ("u9", "ONE@x.io", "key-u9", true),
    ];
    for (id, email, key, admitted) in attempts {
        let insert = "INSERT INTO \"users\" (id, email, \"tokenKey\") VALUES (?, ?, ?)";
        let lite = sqlite
            .execute(insert, rusqlite::params![id, email, key])
            .is_ok();
        let values = [t(id), t(email), t(key)];
        let on_pg = pg
            .column(&format!("{insert} RETURNING id"), &values)
            .is_ok();
        assert_eq!(lite, admitted, "SQLite: user {id} ({email:?}, {key})");
        assert_eq!(on_pg, admitted, "PostgreSQL: user {id} ({email:?}, {key})");
    }
}
