//! JavaScript migrations (`pb_migrations/*.js`): applied in order on start,
//! once; `migrate down|up|create|collections|history-sync` on the real
//! binary; a failing or endless file stops the start and leaves nothing;
//! automigrate writes files that rebuild the same schema elsewhere. The
//! fixtures in `fixtures/pb_migrations/` are shaped as PocketBase 0.40's
//! dashboard writes them. Under `FB_TEST_BACKEND=postgres` the same tests
//! run on PostgreSQL (the binary with `--db`, rows read back with a client
//! of our own); raw SQL (`app.db().newQuery`) runs there in PostgreSQL's
//! dialect, so the fixtures' statements (plain SQL) run on both.

use crate::helpers::{AppBuilder, TestApp, TestBackend, sqlite_only, status_json};
use ferrobase::{Application, Config};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/api/fixtures/pb_migrations")
}

/// A PocketBase-style layout: `root/pb_data` and `root/pb_migrations`,
/// and on PostgreSQL the database the apps and the binary on it share.
struct Layout {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    migrations: PathBuf,
    url: Option<String>,
}

fn layout() -> Layout {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("pb_data");
    let migrations = tmp.path().join("pb_migrations");
    std::fs::create_dir_all(&data).expect("data dir");
    std::fs::create_dir_all(&migrations).expect("migrations dir");
    let url = crate::helpers::database_url_for(&data);
    Layout {
        _tmp: tmp,
        data,
        migrations,
        url,
    }
}

fn copy_fixtures(to: &Path) {
    for entry in std::fs::read_dir(fixtures()).expect("fixtures") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

async fn spawn(l: &Layout, automigrate: bool) -> TestApp {
    let dir = l.migrations.clone();
    AppBuilder::default()
        .in_dir(&l.data)
        .configured(move |c| {
            c.migrations.dir = dir;
            c.migrations.automigrate = automigrate;
        })
        .spawn()
        .await
}

/// The real binary on `l` (its migrations dir is the default one, beside
/// the data dir). Off the test's runtime thread, so a just-stopped server's
/// task can finish and release the data dir lock meanwhile.
async fn ferrobase(l: &Layout, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferrobase"));
    command.args(args).arg("--dir").arg(&l.data);
    if let Some(url) = &l.url {
        command.arg("--db").arg(url);
    }
    tokio::task::spawn_blocking(move || command.output().expect("ferrobase runs"))
        .await
        .expect("join")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The first column of every row of `sql` (text), from `l`'s database.
fn column(l: &Layout, sql: &str) -> Vec<String> {
    let Some(url) = l.url.clone() else {
        let conn = rusqlite::Connection::open(l.data.join("data.db")).expect("open data.db");
        let mut stmt = conn.prepare(sql).expect(sql);
        return stmt
            .query_map([], |r| r.get(0))
            .expect(sql)
            .collect::<Result<_, _>>()
            .expect(sql);
    };
    let sql = sql.to_owned();
    // The PostgreSQL client blocks: off the test's runtime.
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
        let rows = client.query(&sql, &[]).expect(&sql);
        rows.iter().map(|r| r.get::<_, String>(0)).collect()
    })
    .join()
    .expect("join")
}

/// The number `sql` (one `count(*)`) answers.
fn count(l: &Layout, sql: &str) -> i64 {
    let answer = column(l, &format!("SELECT CAST(({sql}) AS TEXT)"));
    answer[0].parse().expect("a count")
}

async fn get(app: &TestApp, path: &str) -> Value {
    let (status, body) = status_json(app.su(Method::GET, path, None).await).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// Every collection as the API shows it, without timestamps, by name.
async fn schema(app: &TestApp) -> Vec<Value> {
    let body = get(app, "/api/collections?perPage=500").await;
    let mut items: Vec<Value> = body["items"].as_array().expect("items").clone();
    for c in &mut items {
        let map = c.as_object_mut().expect("object");
        map.remove("created");
        map.remove("updated");
    }
    items.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    items
}

fn field_names(collection: &Value) -> Vec<String> {
    collection["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| f["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn js_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".js"))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn migrations_apply_in_order_once_then_revert_and_reapply_with_the_cli() {
    let l = layout();
    copy_fixtures(&l.migrations);

    let app = spawn(&l, false).await;
    let books = get(&app, "/api/collections/books").await;
    let items = get(&app, "/api/collections/books/records?expand=author").await;
    app.stop().await;

    assert_eq!(
        field_names(&books),
        ["id", "title", "author", "published"],
        "field removed by id, field added at 3"
    );
    assert_eq!(books["listRule"], json!(""), "rule set through unmarshal");
    assert_eq!(
        books["indexes"],
        json!(["CREATE INDEX `idx_books_title` ON `books` (`title`)"])
    );
    assert_eq!(items["totalItems"], json!(1), "{items}");
    let book = &items["items"][0];
    assert_eq!(
        book["title"],
        json!("Notes'); DROP TABLE authors; --"),
        "raw SQL value bound, not spliced"
    );
    assert_eq!(
        book["expand"]["author"]["name"],
        json!("Ada"),
        "relation seeded"
    );
    assert_eq!(count(&l, "SELECT count(*) FROM authors"), 1);

    // A restart applies nothing again.
    let again = spawn(&l, false).await;
    let items = get(&again, "/api/collections/books/records").await;
    again.stop().await;
    assert_eq!(items["totalItems"], json!(1), "not seeded twice");

    let down = ferrobase(&l, &["migrate", "down", "2"]).await;
    assert!(down.status.success(), "{}", text(&down));
    let out = text(&down);
    let (raw, seed) = (
        out.find("Reverted 1700000004_raw_sql.js"),
        out.find("Reverted 1700000003_seed_books.js"),
    );
    assert!(
        raw.is_some() && seed.is_some() && raw < seed,
        "newest first: {out}"
    );
    assert_eq!(count(&l, "SELECT count(*) FROM books"), 0, "seed reverted");
    assert_eq!(
        count(
            &l,
            "SELECT count(*) FROM _migrations WHERE file LIKE '%.js'"
        ),
        2
    );
    let status = text(&ferrobase(&l, &["migrate", "status"]).await);
    assert!(
        status.contains("pending  1700000003_seed_books.js"),
        "{status}"
    );
    assert!(
        status.contains("applied  0001_init"),
        "system migrations listed: {status}"
    );

    let up = ferrobase(&l, &["migrate", "up"]).await;
    assert!(up.status.success(), "{}", text(&up));
    let titles = column(&l, "SELECT title FROM books");
    assert_eq!(titles, ["Notes'); DROP TABLE authors; --"]);

    let all_down = ferrobase(&l, &["migrate", "down", "4"]).await;
    assert!(all_down.status.success(), "{}", text(&all_down));
    assert_eq!(
        count(
            &l,
            "SELECT count(*) FROM _collections WHERE name IN ('authors', 'books')"
        ),
        0,
        "the create file's down deleted both"
    );
}

/// Two files using only host calls (no raw SQL), so they run the same on
/// both engines: a collection, then a rule change and a seeded record whose
/// first save fails (a duplicate id) and is caught.
const NOTES_CREATE: &str = r#"migrate((app) => {
  app.save(new Collection({ name: "notes", type: "base", fields: [{ name: "body", type: "text" }] }))
}, (app) => {
  app.delete(app.findCollectionByNameOrId("notes"))
})"#;
const NOTES_SEED: &str = r#"migrate((app) => {
  const notes = app.findCollectionByNameOrId("notes")
  notes.listRule = ""
  app.save(notes)
  const first = new Record(notes, { body: "first" })
  app.save(first)
  let refused = false
  try { app.save(new Record(notes, { id: first.id, body: "again" })) } catch (e) { refused = true }
  if (!refused) throw new Error("a duplicate id must be refused")
  app.save(new Record(notes, { body: "after the caught failure" }))
  if (app.findRecordById("notes", first.id).get("body") !== "first") throw new Error("lost")
}, (app) => {
  const notes = app.findCollectionByNameOrId("notes")
  notes.listRule = null
  app.save(notes)
})"#;

#[tokio::test]
async fn host_call_migrations_run_at_start_then_revert_and_reapply_with_the_cli() {
    let l = layout();
    std::fs::write(l.migrations.join("1_notes.js"), NOTES_CREATE).expect("write");
    std::fs::write(l.migrations.join("2_seed_notes.js"), NOTES_SEED).expect("write");

    // Pending files run at the start, before the schema is loaded.
    let app = spawn(&l, false).await;
    let notes = get(&app, "/api/collections/notes").await;
    let items = get(&app, "/api/collections/notes/records?sort=body").await;
    app.stop().await;
    assert_eq!(notes["listRule"], json!(""), "{notes}");
    let bodies: Vec<&Value> = items["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| &r["body"])
        .collect();
    assert_eq!(
        bodies,
        [&json!("after the caught failure"), &json!("first")],
        "the caught failure left nothing and the file went on: {items}"
    );

    let down = ferrobase(&l, &["migrate", "down"]).await;
    assert!(down.status.success(), "{}", text(&down));
    assert!(
        text(&down).contains("Reverted 2_seed_notes.js"),
        "{}",
        text(&down)
    );
    assert_eq!(
        column(&l, "SELECT file FROM _migrations WHERE file LIKE '%.js'"),
        ["1_notes.js"]
    );
    let status = text(&ferrobase(&l, &["migrate", "status"]).await);
    assert!(status.contains("pending  2_seed_notes.js"), "{status}");

    let up = ferrobase(&l, &["migrate", "up"]).await;
    assert!(up.status.success(), "{}", text(&up));
    assert!(
        text(&up).contains("Applied 2_seed_notes.js"),
        "{}",
        text(&up)
    );
    assert_eq!(count(&l, "SELECT count(*) FROM notes"), 4, "seeded again");
    let again = ferrobase(&l, &["migrate", "up"]).await;
    assert!(
        text(&again).contains("No new migrations to apply."),
        "{}",
        text(&again)
    );

    let all_down = ferrobase(&l, &["migrate", "down", "2"]).await;
    assert!(all_down.status.success(), "{}", text(&all_down));
    assert_eq!(
        count(&l, "SELECT count(*) FROM _collections WHERE name = 'notes'"),
        0,
        "the first file's down deleted the collection"
    );
    assert_eq!(
        count(
            &l,
            "SELECT count(*) FROM _migrations WHERE file LIKE '%.js'"
        ),
        0
    );
    // Both pending again: the next start applies them, then serves the result.
    let app = spawn(&l, false).await;
    let items = get(&app, "/api/collections/notes/records").await;
    app.stop().await;
    assert_eq!(items["totalItems"], json!(2), "{items}");
}

#[tokio::test]
async fn two_servers_starting_together_on_one_postgres_apply_each_file_once() {
    if crate::helpers::TestBackend::current() != crate::helpers::TestBackend::Postgres {
        eprintln!("skipped on SQLite: one data dir is one server");
        return;
    }
    let l = layout();
    std::fs::write(l.migrations.join("1_notes.js"), NOTES_CREATE).expect("write");
    std::fs::write(l.migrations.join("2_seed_notes.js"), NOTES_SEED).expect("write");
    // The second node: its own data dir, the same database and files.
    let other = tempfile::tempdir().expect("tmp");
    let mut second = Config::for_tests(other.path());
    let first = config_for(&l, 10_000);
    second.migrations = first.migrations.clone();
    second.database.url = first.database.url.clone();

    let (a, b) = tokio::join!(Application::build(first), Application::build(second));

    let (a, b) = (
        a.expect("the first node starts"),
        b.expect("the second node starts"),
    );
    drop((a, b));
    assert_eq!(count(&l, "SELECT count(*) FROM notes"), 2, "seeded once");
    assert_eq!(
        column(
            &l,
            "SELECT file FROM _migrations WHERE file LIKE '%.js' ORDER BY file"
        ),
        ["1_notes.js", "2_seed_notes.js"]
    );
}

#[tokio::test]
async fn raw_sql_binds_values_and_refuses_positional_parameters() {
    let l = layout();
    std::fs::write(l.migrations.join("1_notes.js"), NOTES_CREATE).expect("write");
    std::fs::write(
        l.migrations.join("2_raw.js"),
        r#"migrate((app) => {
  const n = app.db().newQuery("INSERT INTO {{notes}} ([[id]], [[body]]) VALUES ({:id}, {:body})")
    .bind({ id: "raw000000000001", body: "it's'); DROP TABLE notes; --" }).execute()
})"#,
    )
    .expect("write");
    std::fs::write(
        l.migrations.join("3_positional.js"),
        r#"migrate((app) => {
  app.db().newQuery("DELETE FROM {{notes}} WHERE [[id]] = ?").execute()
})"#,
    )
    .expect("write");

    let err = match Application::build(config_for(&l, 10_000)).await {
        Ok(_) => panic!("the positional parameter must fail the start"),
        Err(e) => e.to_string(),
    };

    // SQLite's own `?` would take one of the bound names' numbers: refused.
    // On PostgreSQL `?` is an operator, so the statement fails there as SQL.
    let why = match TestBackend::current() {
        TestBackend::Sqlite => "Write {:name} placeholders, not ?.",
        TestBackend::Postgres => "syntax error",
    };
    assert!(
        err.contains("3_positional.js") && err.contains(why),
        "{err}"
    );
    assert_eq!(
        column(&l, "SELECT body FROM notes"),
        ["it's'); DROP TABLE notes; --"],
        "the value was bound, never spliced"
    );
}

fn config_for(l: &Layout, timeout_ms: u64) -> Config {
    let mut config = Config::for_tests(&l.data);
    config.migrations.dir = l.migrations.clone();
    config.migrations.timeout_ms = timeout_ms;
    if let Some(url) = &l.url {
        config.database.url = ferrobase::config::DatabaseUrl::new(url.clone());
    }
    config
}

#[tokio::test]
async fn a_failing_migration_rolls_back_entirely_and_stops_the_start_naming_the_file() {
    let cases = [
        (
            "throws after creating a collection",
            "throw new Error(\"boom midway\")",
            "boom midway",
        ),
        (
            "a host error (unknown collection)",
            "app.findCollectionByNameOrId(\"nope\")",
            "\"nope\" not found",
        ),
        (
            "deleting a system collection",
            "app.delete(app.findCollectionByNameOrId(\"_superusers\"))",
            "system collections cannot be deleted",
        ),
        (
            "the host function is not reachable from the file",
            "if (typeof __host !== \"undefined\") { __host(\"sql\", \"{}\") } throw new Error(\"no host here\")",
            "no host here",
        ),
        (
            "a raw SQL error",
            "app.db().newQuery(\"INSERT INTO missing_table VALUES (1)\").execute()",
            "missing_table",
        ),
        (
            "a failed call caught by the script leaves nothing, the throw after it fails the file",
            "try { app.save(new Record(app.findCollectionByNameOrId(\"first\"), { id: r.id, t: \"dup\" })) } catch (e) {} throw new Error(\"after the catch\")",
            "after the catch",
        ),
    ];
    for (why, failing, expected) in cases {
        let l = layout();
        std::fs::write(
            l.migrations.join("1_first.js"),
            r#"migrate((app) => { app.save(new Collection({ name: "first", type: "base", fields: [{ name: "t", type: "text" }] })) })"#,
        )
        .expect("write");
        std::fs::write(
            l.migrations.join("2_broken.js"),
            format!(
                r#"migrate((app) => {{
  app.save(new Collection({{ name: "half", type: "base" }}))
  const r = new Record(app.findCollectionByNameOrId("first"), {{ t: "x" }})
  app.save(r)
  {failing}
}})"#
            ),
        )
        .expect("write");
        std::fs::write(
            l.migrations.join("3_later.js"),
            r#"migrate((app) => { app.save(new Collection({ name: "later", type: "base" })) })"#,
        )
        .expect("write");

        let err = match Application::build(config_for(&l, 10_000)).await {
            Ok(_) => panic!("{why}: the start must fail"),
            Err(e) => e.to_string(),
        };

        assert!(err.contains("2_broken.js"), "{why}: names the file: {err}");
        assert!(err.contains(expected), "{why}: says why: {err}");
        let names = column(
            &l,
            "SELECT name FROM _collections WHERE NOT system ORDER BY name",
        );
        assert!(
            names.iter().any(|n| n == "first"),
            "{why}: the earlier file stays applied"
        );
        assert!(!names.iter().any(|n| n == "half"), "{why}: rolled back");
        assert!(
            !names.iter().any(|n| n == "later"),
            "{why}: later files do not run"
        );
        assert_eq!(
            count(&l, "SELECT count(*) FROM first"),
            0,
            "{why}: the seeded record was rolled back too"
        );
        assert_eq!(
            count(
                &l,
                "SELECT count(*) FROM _migrations WHERE file LIKE '%.js'"
            ),
            1,
            "{why}: only the first file is recorded"
        );
    }
}

#[tokio::test]
async fn an_endless_migration_fails_the_start_at_its_time_limit_instead_of_hanging() {
    let cases = [
        ("a JavaScript loop", "while (true) {}"),
        (
            "an endless SQL query through a host call (a view that never ends)",
            "app.save(new Collection({ name: \"endless\", type: \"view\", viewQuery: \"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT CAST(x AS TEXT) AS id FROM c\" })); app.findRecordById(\"endless\", \"0\")",
        ),
        (
            "an endless raw SQL query",
            "app.db().newQuery(\"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c\").execute()",
        ),
    ];
    for (why, body) in cases {
        let l = layout();
        std::fs::write(
            l.migrations.join("1_loop.js"),
            format!(
                "migrate((app) => {{ app.save(new Collection({{ name: \"looped\", type: \"base\" }})); {body} }})"
            ),
        )
        .expect("write");
        let started = Instant::now();

        let result = tokio::time::timeout(
            Duration::from_secs(20),
            Application::build(config_for(&l, 1_000)),
        )
        .await
        .unwrap_or_else(|_| panic!("{why}: the start hung"));

        let err = match result {
            Ok(_) => panic!("{why}: the start must fail"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains("1_loop.js") && err.contains("time limit"),
            "{why}: {err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "{why}: stopped near the limit, took {:?}",
            started.elapsed()
        );
        assert_eq!(
            count(
                &l,
                "SELECT count(*) FROM _collections WHERE name = 'looped'"
            ),
            0,
            "{why}: rolled back"
        );
    }
}

#[tokio::test]
async fn migrate_create_refuses_path_names_and_writes_a_blank_file_that_runs() {
    let l = layout();
    for bad in ["../evil", "a/b", "..", "x\\y", ""] {
        let out = ferrobase(&l, &["migrate", "create", bad]).await;
        assert!(!out.status.success(), "{bad:?} refused: {}", text(&out));
    }
    let parent_files = std::fs::read_dir(l.data.parent().expect("root"))
        .expect("root")
        .count();
    assert_eq!(
        parent_files, 2,
        "nothing written beside pb_data and pb_migrations"
    );
    assert!(js_files(&l.migrations).is_empty(), "nothing written");

    let out = ferrobase(&l, &["migrate", "create", "AddPosts"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let files = js_files(&l.migrations);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].ends_with("_add_posts.js"), "{files:?}");
    let body = std::fs::read_to_string(l.migrations.join(&files[0])).expect("read");
    assert!(
        body.contains("migrate((app) => {\n}, (app) => {\n})"),
        "{body}"
    );

    let app = spawn(&l, false).await;
    app.stop().await;
    assert_eq!(
        count(
            &l,
            "SELECT count(*) FROM _migrations WHERE file LIKE '%_add_posts.js'"
        ),
        1,
        "the blank file is applied"
    );
}

/// Collections made through the API: a relation, rules, an index, an auth collection.
async fn build_schema(app: &TestApp) {
    let tags = app
        .create_collection_ok(json!({
            "name": "tags", "type": "base", "listRule": "",
            "fields": [{"name": "label", "type": "text", "required": true}],
        }))
        .await;
    app.create_collection_ok(json!({
        "name": "articles", "type": "base", "viewRule": "@request.auth.id != ''",
        "fields": [
            {"name": "title", "type": "text", "max": 120},
            {"name": "tags", "type": "relation", "collectionId": tags["id"], "maxSelect": 5},
            {"name": "score", "type": "number"},
        ],
        "indexes": ["CREATE INDEX idx_articles_title ON articles (title)"],
    }))
    .await;
    app.create_collection_ok(json!({
        "name": "members", "type": "auth",
        "fields": [{"name": "nick", "type": "text"}],
    }))
    .await;
}

async fn fresh_schema_from(files_dir: &Path) -> Vec<Value> {
    let l = layout();
    for name in js_files(files_dir) {
        std::fs::copy(files_dir.join(&name), l.migrations.join(&name)).expect("copy");
    }
    let app = spawn(&l, false).await;
    let s = schema(&app).await;
    app.stop().await;
    s
}

#[tokio::test]
async fn a_collections_snapshot_rebuilds_the_schema_on_a_fresh_data_dir() {
    let l = layout();
    let app = spawn(&l, false).await;
    build_schema(&app).await;
    let expected = schema(&app).await;
    app.stop().await;

    let out = ferrobase(&l, &["migrate", "collections"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let files = js_files(&l.migrations);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].ends_with("_collections_snapshot.js"));
    let body = std::fs::read_to_string(l.migrations.join(&files[0])).expect("read");
    assert!(
        body.contains("app.importCollections(snapshot, false)"),
        "{body}"
    );

    assert_eq!(fresh_schema_from(&l.migrations).await, expected);
}

#[tokio::test]
async fn automigrate_files_rebuild_the_same_schema_on_a_fresh_data_dir() {
    let l = layout();
    let app = spawn(&l, true).await;
    build_schema(&app).await;
    // Update: a rule, a field added, a field removed, a field changed.
    let articles = get(&app, "/api/collections/articles").await;
    let mut fields: Vec<Value> = articles["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter(|f| f["name"] != json!("score"))
        .cloned()
        .collect();
    for f in &mut fields {
        if f["name"] == json!("title") {
            f["max"] = json!(200);
        }
    }
    fields.push(json!({"name": "summary", "type": "editor"}));
    let resp = app
        .update_collection("articles", json!({"listRule": "", "fields": fields}))
        .await;
    assert_eq!(
        resp.status(),
        200,
        "{}",
        resp.text().await.unwrap_or_default()
    );
    // Create and delete one.
    app.create_collection_ok(json!({"name": "scratch", "type": "base"}))
        .await;
    let (status, body) = status_json(
        app.su(Method::DELETE, "/api/collections/scratch", None)
            .await,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let expected = schema(&app).await;
    app.stop().await;

    let files = js_files(&l.migrations);
    let kinds: Vec<&str> = files
        .iter()
        .map(|f| f.split_once('_').map(|(_, rest)| rest).unwrap_or_default())
        .collect();
    assert_eq!(
        kinds,
        [
            "created_tags.js",
            "created_articles.js",
            "created_members.js",
            "updated_articles.js",
            "created_scratch.js",
            "deleted_scratch.js"
        ],
        "one file per change, in order"
    );
    assert_eq!(
        count(
            &l,
            "SELECT count(*) FROM _migrations WHERE file LIKE '%.js'"
        ),
        6,
        "recorded as applied"
    );
    // A restart applies nothing (they are recorded).
    let again = spawn(&l, true).await;
    assert_eq!(schema(&again).await, expected);
    again.stop().await;

    assert_eq!(fresh_schema_from(&l.migrations).await, expected);
}

#[tokio::test]
async fn history_sync_forgets_applied_files_that_are_gone() {
    let l = layout();
    std::fs::write(l.migrations.join("1_a.js"), "migrate((app) => {})").expect("write");
    std::fs::write(l.migrations.join("2_b.js"), "migrate((app) => {})").expect("write");
    let up = ferrobase(&l, &["migrate", "up"]).await;
    assert!(up.status.success(), "{}", text(&up));
    std::fs::remove_file(l.migrations.join("1_a.js")).expect("remove");

    let out = ferrobase(&l, &["migrate", "history-sync"]).await;

    assert!(out.status.success(), "{}", text(&out));
    let left = column(&l, "SELECT file FROM _migrations ORDER BY file");
    assert!(left.contains(&"2_b.js".to_owned()), "{left:?}");
    assert!(!left.contains(&"1_a.js".to_owned()), "{left:?}");
    assert!(
        left.contains(&"0001_init".to_owned()),
        "system rows are never synced away: {left:?}"
    );
}

#[tokio::test]
async fn raw_sql_in_a_migration_keeps_the_search_index_in_step() {
    if sqlite_only("raw SQL in migrations and full-text search") {
        return;
    }
    let l = layout();
    let app = spawn(&l, false).await;
    app.create_collection_ok(json!({"name": "memos", "listRule": "", "fields": [
        {"name": "title", "type": "text", "searchable": true},
    ]}))
    .await;
    for title in ["quince tart", "plum jam"] {
        app.create_record_ok("memos", json!({"title": title})).await;
    }
    app.stop().await;
    std::fs::write(
        l.migrations.join("1700000100_raw_memos.js"),
        r#"migrate((app) => {
  app.db().newQuery("INSERT INTO {{memos}} ([[id]], [[title]]) VALUES ('rawmemo00000001', 'medlar jelly')").execute()
  app.db().newQuery("UPDATE {{memos}} SET [[title]] = 'pear tart' WHERE [[title]] = 'quince tart'").execute()
  app.db().newQuery("DELETE FROM {{memos}} WHERE [[title]] = 'plum jam'").execute()
}, (app) => {})
"#,
    )
    .expect("migration file");

    let app = spawn(&l, false).await;

    for (word, want) in [
        ("medlar", 1),
        ("pear", 1),
        ("quince", 0),
        ("plum", 0),
        ("tart", 1),
    ] {
        let (status, found) =
            status_json(app.list_records("memos", &[("search", word)], None).await).await;
        assert_eq!(status, 200, "{found}");
        assert_eq!(
            found["totalItems"], want,
            "{word:?} after the migration: {found}"
        );
    }
    app.stop().await;
}
