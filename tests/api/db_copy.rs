//! `ferrobase db copy --to postgres://…` with the real binary against the
//! throwaway PostgreSQL of the test command (`PG_TEST_URL`), each test in a
//! schema of its own: every value arrives exactly (compared column by
//! column with the SQLite file), indexes and views come along, and whatever
//! PostgreSQL could not hold exactly stops the copy with the row named and
//! the target untouched.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use rusqlite::types::Value as Sql;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_in};

/// The test server's URL; `None` outside CI when there is none.
fn pg_url() -> Option<String> {
    match std::env::var("PG_TEST_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "PG_TEST_URL is not set: tests/run.sh starts a throwaway PostgreSQL"
            );
            eprintln!("skipped: PG_TEST_URL is not set (tests/postgres/throwaway.sh starts one)");
            None
        }
    }
}

/// A private schema on the test server (dropped with the value), and the
/// URL that puts it first on the search path.
struct Target {
    base: String,
    schema: String,
}

impl Target {
    fn new(base: String) -> Self {
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        let schema = format!(
            "fb_copy_{}_{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::Relaxed)
        );
        let target = Self { base, schema };
        target
            .client()
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {0} CASCADE; CREATE SCHEMA {0}",
                target.schema
            ))
            .expect("schema");
        target
    }

    fn url(&self) -> String {
        self.url_via(&self.base)
    }

    /// The URL of this schema through another server URL (another role, TLS).
    fn url_via(&self, base: &str) -> String {
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}options=-csearch_path%3D{}", self.schema)
    }

    fn client(&self) -> postgres::Client {
        let mut client = postgres::Client::connect(&self.base, postgres::NoTls).expect("connect");
        client
            .batch_execute(&format!(
                "SET search_path TO {}",
                self.schema.replace('"', "")
            ))
            .ok();
        client
    }

    fn has_ferrobase_tables(&self) -> bool {
        self.client()
            .query_one("SELECT to_regclass('_collections') IS NOT NULL", &[])
            .expect("query")
            .get(0)
    }
}

impl Drop for Target {
    /// On a thread of its own: the blocking client refuses to run inside
    /// the test's runtime, which may be where this is dropped.
    fn drop(&mut self) {
        let (base, schema) = (self.base.clone(), self.schema.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(mut c) = postgres::Client::connect(&base, postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
            }
        })
        .join();
    }
}

/// Runs `ferrobase db copy` (blocking; call from a blocking thread).
fn db_copy(dir: &Path, url: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrobase"))
        .args(["db", "copy", "--from"])
        .arg(dir)
        .args(["--to", url])
        .output()
        .expect("db copy runs")
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// How a column is compared across the engines.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Text,
    Number,
    Bool,
    Json,
}

/// One value in a form both engines' answers reduce to.
#[derive(Debug, PartialEq)]
enum Canon {
    Null,
    Text(String),
    Number(f64),
    Json(Value),
}

fn from_sqlite(kind: Kind, v: Sql) -> Canon {
    match (kind, v) {
        (_, Sql::Null) => Canon::Null,
        (Kind::Number, Sql::Integer(i)) => Canon::Number(i as f64),
        (Kind::Number, Sql::Real(f)) => Canon::Number(f),
        (Kind::Bool, Sql::Integer(i)) => Canon::Text((i == 1).to_string()),
        (Kind::Json, Sql::Text(t)) => Canon::Json(serde_json::from_str(&t).expect("json")),
        (Kind::Json, Sql::Integer(i)) => Canon::Json(json!(i)),
        (Kind::Text, Sql::Text(t)) => Canon::Text(t),
        (k, v) => panic!("unexpected SQLite value {v:?} for {k:?}"),
    }
}

fn from_postgres(kind: Kind, v: Option<String>) -> Canon {
    match (kind, v) {
        (_, None) => Canon::Null,
        (Kind::Number, Some(t)) => Canon::Number(t.parse().expect("float8 text")),
        (Kind::Json, Some(t)) => Canon::Json(serde_json::from_str(&t).expect("jsonb text")),
        (Kind::Text | Kind::Bool, Some(t)) => Canon::Text(t),
    }
}

/// Every row of `table` on both sides, in insertion order, as canonical values.
fn both_sides(
    dir: &Path,
    target: &Target,
    table: &str,
    columns: &[(&str, Kind)],
) -> (Vec<Vec<Canon>>, Vec<Vec<Canon>>) {
    let quoted: Vec<String> = columns.iter().map(|(c, _)| format!("\"{c}\"")).collect();
    let sqlite = rusqlite::Connection::open(dir.join("data.db")).expect("sqlite");
    let mut stmt = sqlite
        .prepare(&format!(
            "SELECT {} FROM \"{table}\" ORDER BY rowid",
            quoted.join(", ")
        ))
        .expect("prepare");
    let left: Vec<Vec<Canon>> = stmt
        .query_map([], |r| {
            Ok(columns
                .iter()
                .enumerate()
                .map(|(i, (_, k))| from_sqlite(*k, r.get::<_, Sql>(i).expect("value")))
                .collect())
        })
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows");
    let as_text: Vec<String> = quoted.iter().map(|c| format!("{c}::text")).collect();
    // System tables have no identity column: both sides in id (byte) order.
    let system = table.starts_with('_');
    let order = if system { "\"id\"" } else { "_fb_rowid" };
    let right: Vec<Vec<Canon>> = target
        .client()
        .query(
            &format!(
                "SELECT {} FROM \"{table}\" ORDER BY {order}",
                as_text.join(", ")
            ),
            &[],
        )
        .expect("pg rows")
        .iter()
        .map(|row| {
            columns
                .iter()
                .enumerate()
                .map(|(i, (_, k))| from_postgres(*k, row.get(i)))
                .collect()
        })
        .collect();
    let mut left = left;
    if system {
        left.sort_by(|a, b| match (&a[0], &b[0]) {
            (Canon::Text(x), Canon::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
            _ => panic!("ids are text"),
        });
    }
    (left, right)
}

const THINGS: &[(&str, Kind)] = &[
    ("id", Kind::Text),
    ("title", Kind::Text),
    ("views", Kind::Number),
    ("done", Kind::Bool),
    ("mail", Kind::Text),
    ("site", Kind::Text),
    ("body", Kind::Text),
    ("due", Kind::Text),
    ("kind", Kind::Text),
    ("tags", Kind::Json),
    ("meta", Kind::Json),
    ("owner", Kind::Text),
    ("spot", Kind::Json),
    ("viewCount", Kind::Number),
    ("created", Kind::Text),
    ("updated", Kind::Text),
];

/// A data dir with users, a `things` collection of every column kind with
/// awkward values, an index and a view; the server is stopped afterwards.
async fn seeded_dir() -> crate::helpers::DataDir {
    let data = crate::helpers::DataDir::new();
    let app: TestApp = spawn_app_in(data.path()).await;
    let users: Value = app
        .su(reqwest::Method::GET, "/api/collections/users", None)
        .await
        .json()
        .await
        .expect("users");
    let users_id = users["id"].as_str().expect("id").to_owned();
    let mut user_ids = Vec::new();
    for email in ["Ann@example.com", "bob@example.com"] {
        let u = app
            .create_record_ok(
                "users",
                json!({"email": email, "password": "password123", "passwordConfirm": "password123", "name": "Ünï"}),
            )
            .await;
        user_ids.push(u["id"].as_str().expect("id").to_owned());
    }
    app.create_collection_ok(json!({
        "name": "things", "type": "base",
        "listRule": "owner = @request.auth.id",
        "fields": [
            {"name": "title", "type": "text"},
            {"name": "views", "type": "number"},
            {"name": "done", "type": "bool"},
            {"name": "mail", "type": "email"},
            {"name": "site", "type": "url"},
            {"name": "body", "type": "editor"},
            {"name": "due", "type": "date"},
            {"name": "kind", "type": "select", "values": ["a", "b", "c"], "maxSelect": 1},
            {"name": "tags", "type": "select", "values": ["x", "y", "z"], "maxSelect": 3},
            {"name": "meta", "type": "json"},
            {"name": "owner", "type": "relation", "collectionId": users_id, "maxSelect": 1},
            {"name": "spot", "type": "geoPoint"},
            {"name": "viewCount", "type": "number"},
            {"name": "created", "type": "autodate", "onCreate": true},
            {"name": "updated", "type": "autodate", "onCreate": true, "onUpdate": true}
        ],
        "indexes": [
            "CREATE INDEX idx_things_title ON things (title COLLATE NOCASE)",
            "CREATE INDEX idx_things_viewCount ON things (viewCount, title)"
        ]
    }))
    .await;
    let rows = [
        json!({"title": "plain", "views": 1, "done": true, "mail": "a@b.co", "site": "https://x.example/?q=1&r='2'",
               "body": "<p>hi</p>", "due": "2026-12-07 10:00:00.123Z", "kind": "a", "tags": ["x", "z"],
               "meta": {"b": [1, 2.5, "x"], "a": null, "nested": {"deep": [[], {}]}}, "owner": user_ids[0],
               "spot": {"lon": 12.5, "lat": -3.25}, "viewCount": 42}),
        json!({"title": "ünïcödé 'quoted' \"double\" \\ back ✓ 🚀", "views": 0.1, "meta": null, "tags": [],
               "owner": user_ids[1]}),
        json!({"title": "", "views": -9_007_199_254_740_992_i64, "meta": "just a string", "kind": ""}),
        json!({"title": "big", "views": 9_007_199_254_740_992_i64, "meta": [1e300, -0.0, 12345678901234567890_u64]}),
        json!({"title": "tiny", "views": 5e-324, "meta": 0}),
    ];
    for row in rows {
        app.create_record_ok("things", row).await;
    }
    app.create_collection_ok(json!({
        "name": "busy_things", "type": "view",
        "viewQuery": "SELECT id, title, views FROM things WHERE views > 0"
    }))
    .await;
    stop(app, data.path()).await;
    data
}

/// Stops `app` and waits until it has let go of the data dir's lock (the
/// in-process app drops its state shortly after its server stops).
async fn stop(app: TestApp, dir: &Path) {
    app.stop().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while ferrobase::db::DataDirLock::try_acquire(dir).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the stopped app keeps its lock"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn db_copy_carries_every_value_index_and_view_exactly() {
    let Some(base) = pg_url() else { return };
    let data = seeded_dir().await;
    let dir = data.path().to_path_buf();
    // Settings sealed with an encryption key are stored as base64 text.
    raw_sqlite(
        &dir,
        "INSERT OR REPLACE INTO _params (id, value, created, updated) \
         VALUES ('settings', 'c2VhbGVkIHNldHRpbmdz+/==', '2026-12-07 10:00:00.000Z', '')",
    );
    tokio::task::spawn_blocking(move || {
        let target = Target::new(base);
        let out = db_copy(&dir, &target.url());
        assert!(
            out.status.success(),
            "db copy failed: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let stdout = text(&out.stdout);
        assert!(stdout.contains("Copied things: 5 row(s), count verified"), "{stdout}");
        assert!(stdout.contains("Created view busy_things"), "{stdout}");
        let logged: i64 = rusqlite::Connection::open(dir.join("auxiliary.db"))
            .and_then(|c| c.query_row("SELECT count(*) FROM _logs", [], |r| r.get(0)))
            .expect("the request logs");
        assert!(logged > 0, "the seeding requests were logged");
        assert!(
            stdout.contains(&format!("Copied _logs: {logged} row(s), count verified")),
            "{stdout}"
        );

        let (left, right) = both_sides(&dir, &target, "things", THINGS);
        assert_eq!(left.len(), 5);
        assert_eq!(left, right, "every value of things arrives as it was");
        let users = [
            ("id", Kind::Text),
            ("password", Kind::Text),
            ("tokenKey", Kind::Text),
            ("email", Kind::Text),
            ("emailVisibility", Kind::Bool),
            ("verified", Kind::Bool),
            ("name", Kind::Text),
        ];
        let (left, right) = both_sides(&dir, &target, "users", &users);
        assert_eq!(left.len(), 2);
        assert_eq!(left, right, "users (password hashes and token keys included)");
        let collections = [
            ("id", Kind::Text),
            ("name", Kind::Text),
            ("type", Kind::Text),
            ("system", Kind::Bool),
            ("fields", Kind::Json),
            ("indexes", Kind::Json),
            ("listRule", Kind::Text),
            ("viewRule", Kind::Text),
            ("options", Kind::Json),
        ];
        let (left, right) = both_sides(&dir, &target, "_collections", &collections);
        assert_eq!(left.len(), 8, "6 system collections, things, busy_things");
        assert_eq!(left, right, "collection definitions, secrets included");

        let params = [
            ("id", Kind::Text),
            ("value", Kind::Text),
            ("created", Kind::Text),
            ("updated", Kind::Text),
        ];
        let (left, right) = both_sides(&dir, &target, "_params", &params);
        assert_eq!(left.len(), 1);
        assert_eq!(left, right, "sealed settings arrive as the same text");

        let mut pg = target.client();
        let busy: Vec<String> = pg
            .query("SELECT title FROM busy_things ORDER BY title", &[])
            .expect("view")
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(busy, ["big", "plain", "tiny", "ünïcödé 'quoted' \"double\" \\ back ✓ 🚀"]);
        let index: String = pg
            .query_one(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() \
                 AND indexname = 'idx_things_title'",
                &[],
            )
            .expect("index")
            .get(0);
        assert!(index.contains("lower(title)"), "{index}");
        // The unique email index came along: a second Ann (any case, as
        // SQLite's index is on the text as is) is refused.
        let dup = pg.execute(
            "INSERT INTO users (id, email, \"tokenKey\") VALUES ('dupdupdupdupdup', 'Ann@example.com', 'k')",
            &[],
        );
        assert!(dup.is_err(), "the unique email index refuses a duplicate");
        // The rules' helper functions are installed for the backend.
        let cmp: i32 = pg
            .query_one("SELECT fb_cmp('1'::jsonb, '\"a\"'::jsonb)", &[])
            .expect("fb_cmp")
            .get(0);
        assert_eq!(cmp, -1, "numbers order before text, as in SQLite");

        // A second copy into the same database is refused and changes nothing.
        let again = db_copy(&dir, &target.url());
        assert!(!again.status.success());
        assert!(text(&again.stderr).contains("already has Ferrobase's tables"));
        let count: i64 = pg
            .query_one("SELECT count(*) FROM things", &[])
            .expect("count")
            .get(0);
        assert_eq!(count, 5);
    })
    .await
    .expect("blocking part");
}

/// Runs `sql` on the stopped data dir's data.db (what raw SQL could leave).
fn raw_sqlite(dir: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(dir.join("data.db")).expect("sqlite");
    conn.execute_batch(sql).expect("raw sql");
}

#[tokio::test]
async fn what_postgres_cannot_hold_exactly_stops_the_copy_and_leaves_the_target_empty() {
    let Some(base) = pg_url() else { return };
    let data = seeded_dir().await;
    let dir = data.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let target = Target::new(base);
        let cases = [
            (
                "UPDATE things SET views = 9007199254740993 WHERE title = 'big'",
                "UPDATE things SET views = 1 WHERE title = 'big'",
                &["things", "views", "2^53"][..],
            ),
            (
                "UPDATE things SET title = 'a' || char(0) || 'b' WHERE title = 'plain'",
                "UPDATE things SET title = 'plain' WHERE hex(title) = '610062'",
                &["things", "title", "NUL"][..],
            ),
            (
                "UPDATE things SET meta = '{\"a\":\"x\\u0000y\"}' WHERE title = 'tiny'",
                "UPDATE things SET meta = '0' WHERE title = 'tiny'",
                &["things", "meta", "jsonb"][..],
            ),
            (
                "UPDATE things SET meta = '{broken' WHERE title = 'tiny'",
                "UPDATE things SET meta = '0' WHERE title = 'tiny'",
                &["meta", "not valid JSON"][..],
            ),
            (
                "UPDATE things SET done = 7 WHERE title = 'plain'",
                "UPDATE things SET done = 1 WHERE title = 'plain'",
                &["done", "0 or 1"][..],
            ),
        ];
        for (break_it, mend_it, said) in cases {
            raw_sqlite(&dir, break_it);
            let out = db_copy(&dir, &target.url());
            let stderr = text(&out.stderr);
            assert!(!out.status.success(), "{break_it}: the copy must stop");
            for word in said {
                assert!(stderr.contains(word), "{break_it}: {stderr} should say {word}");
            }
            assert!(stderr.contains("nothing was copied"), "{stderr}");
            assert!(!target.has_ferrobase_tables(), "{break_it}: the target stays empty");
            raw_sqlite(&dir, mend_it);
        }

        // 1,234 rows: several full INSERT batches and a partial one.
        raw_sqlite(
            &dir,
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1229) \
             INSERT INTO things (id, title, views) SELECT printf('bulk%011d', i), 'row ' || i, i FROM n",
        );
        let out = db_copy(&dir, &target.url());
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(text(&out.stdout).contains("Copied things: 1234 row(s), count verified"));
        let (left, right) = both_sides(&dir, &target, "things", THINGS);
        assert_eq!(left, right);
    })
    .await
    .expect("blocking part");
}

#[tokio::test]
async fn a_view_postgres_cannot_run_stops_the_copy_naming_it() {
    let Some(base) = pg_url() else { return };
    let data = seeded_dir().await;
    let app = spawn_app_in(data.path()).await;
    app.create_collection_ok(json!({
        "name": "meta_view", "type": "view",
        "viewQuery": "SELECT id, json_extract(meta, '$.a') AS a FROM things"
    }))
    .await;
    stop(app, data.path()).await;
    let dir = data.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let target = Target::new(base);
        let out = db_copy(&dir, &target.url());
        let stderr = text(&out.stderr);
        assert!(!out.status.success());
        assert!(
            stderr.contains("view collection meta_view") && stderr.contains("json_extract"),
            "{stderr}"
        );
        assert!(!target.has_ferrobase_tables());
    })
    .await
    .expect("blocking part");
}

#[tokio::test]
async fn db_copy_refuses_a_running_server_a_missing_dir_and_bad_targets_without_leaking_secrets() {
    let data = crate::helpers::DataDir::new();
    let app = spawn_app_in(data.path()).await;
    let dir = data.path().to_path_buf();
    let running = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || db_copy(&dir, "postgres://u:pw@127.0.0.1:1/db"))
            .await
            .expect("run")
    };
    assert!(!running.status.success());
    assert!(
        text(&running.stderr).contains("already running"),
        "{}",
        text(&running.stderr)
    );
    stop(app, data.path()).await;

    let outcomes = tokio::task::spawn_blocking(move || {
        let missing = tempfile::tempdir().expect("tmp");
        [
            (
                db_copy(missing.path(), "postgres://u@127.0.0.1:1/db"),
                "no Ferrobase database",
            ),
            (
                db_copy(&dir, "postgres://app:topsecret@127.0.0.1:1/db"),
                "cannot connect to PostgreSQL",
            ),
            (db_copy(&dir, "mysql://app:topsecret@h/db"), "postgres://"),
            (
                db_copy(&dir, "postgres://app:topsecret@h/db?sslmode=sometimes"),
                "not valid",
            ),
            (
                db_copy(
                    &dir,
                    "postgres://app:topsecret@h/db?sslrootcert=/nonexistent/ca.pem",
                ),
                "sslrootcert",
            ),
        ]
    })
    .await
    .expect("run");
    for (out, said) in outcomes {
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{said}");
        assert!(stderr.contains(said), "{stderr} should say {said}");
        assert!(
            !stderr.contains("topsecret"),
            "the password leaked: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[tokio::test]
async fn db_copy_speaks_tls_and_verifies_the_server_certificate() {
    let Some(base) = pg_url() else { return };
    let (tls_url, ca) = match (
        std::env::var("PG_TEST_TLS_URL"),
        std::env::var("PG_TEST_CA"),
    ) {
        (Ok(url), Ok(ca)) => (url, ca),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "PG_TEST_TLS_URL/PG_TEST_CA are not set"
            );
            return;
        }
    };
    let data = seeded_dir().await;
    let dir = data.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let target = Target::new(base);
        // The role is admitted over TLS only (pg_hba), so a success proves TLS.
        let refused = [
            (format!("{tls_url}?sslmode=disable"), "no encryption"),
            // The server's certificate is from a CA nobody trusts here.
            (format!("{tls_url}?sslmode=require"), "UnknownIssuer"),
            (tls_url.clone(), "pass sslrootcert="),
        ];
        for (url, said) in refused {
            let out = db_copy(&dir, &target.url_via(&url));
            let stderr = text(&out.stderr);
            assert!(!out.status.success(), "{url}");
            assert!(
                stderr.contains("cannot connect") && stderr.contains(said),
                "{url}: {stderr}"
            );
            assert!(!target.has_ferrobase_tables());
        }
        let url = format!("{tls_url}?sslmode=verify-full&sslrootcert={ca}");
        let out = db_copy(&dir, &target.url_via(&url));
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(text(&out.stdout).contains("Copied things: 5 row(s), count verified"));
        assert!(target.has_ferrobase_tables());
    })
    .await
    .expect("blocking part");
}

#[tokio::test]
async fn copied_collections_read_back_the_same_through_the_postgres_backend() {
    let Some(base) = pg_url() else { return };
    let data = seeded_dir().await;
    let dir = data.path().to_path_buf();
    let target = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            let target = Target::new(base);
            let out = db_copy(&dir, &target.url());
            assert!(out.status.success(), "{}", text(&out.stderr));
            target
        })
        .await
        .expect("copy")
    };
    let options = ferrobase::config::DatabaseConfig::default();
    let on_postgres = ferrobase::db::Db::open_postgres(&target.url(), &options)
        .expect("open on PostgreSQL")
        .read_conn(|c| ferrobase::schema::read_all(c))
        .await
        .expect("collections from PostgreSQL");
    let on_sqlite = ferrobase::db::Db::open(&dir, &options)
        .expect("open the data dir")
        .read_conn(|c| ferrobase::schema::read_all(c))
        .await
        .expect("collections from SQLite");
    assert_eq!(on_postgres.len(), 8);
    assert_eq!(
        format!("{on_postgres:?}"),
        format!("{on_sqlite:?}"),
        "the same definitions, in the same order, secrets included"
    );
    drop(target);
}
