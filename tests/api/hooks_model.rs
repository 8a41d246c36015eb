//! JavaScript model hooks (`onRecordCreate` …, `onRecordAfter…`): they run
//! around every write of the one write path (API, `$app.save` in a hook),
//! inside the write's transaction. Fixtures: `fixtures/pb_hooks_model/`.

use crate::helpers::{TestApp, spawn_app_configured, status_json};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::PathBuf;

const TIMEOUT_MS: u64 = 1_000;

async fn app_with_model_hooks(pool_size: usize) -> TestApp {
    app_configured(pool_size, |_| {}).await
}

async fn app_configured(
    pool_size: usize,
    edit: impl FnOnce(&mut ferrobase::Config) + 'static,
) -> TestApp {
    let app = spawn_app_configured(move |config| {
        config.hooks.dir =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/api/fixtures/pb_hooks_model");
        config.hooks.timeout_ms = TIMEOUT_MS;
        config.hooks.pool_size = pool_size;
        edit(config);
    })
    .await;
    for name in ["notes", "audits"] {
        app.create_collection_ok(json!({
            "name": name, "listRule": "", "viewRule": "", "createRule": "",
            "updateRule": "", "deleteRule": "",
            "fields": [{"name": "title", "type": "text"}, {"name": "slug", "type": "text"},
                       {"name": "secret", "type": "text", "hidden": true},
                       {"name": "doc", "type": "file", "maxSelect": 1, "maxSize": 1000}]
        }))
        .await;
    }
    app
}

async fn titles(app: &TestApp, collection: &str) -> Vec<String> {
    let path = format!("/api/collections/{collection}/records?perPage=100");
    let (status, body) = status_json(app.su(Method::GET, &path, None).await).await;
    assert_eq!(status, 200, "{body}");
    let mut out: Vec<String> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["title"].as_str().unwrap_or_default().to_owned())
        .collect();
    out.sort();
    out
}

async fn create_note(app: &TestApp, title: &str) -> (u16, Value) {
    status_json(
        app.request(
            Method::POST,
            "/api/collections/notes/records",
            None,
            Some(json!({ "title": title })),
        )
        .await,
    )
    .await
}

#[tokio::test]
async fn on_record_create_changes_the_record_and_writes_in_the_same_transaction() {
    let app = app_with_model_hooks(2).await;

    let (status, body) = create_note(&app, "  hello ").await;

    assert_eq!(status, 200, "{body}");
    assert!(
        body.get("slug").is_none(),
        "the answer is enriched (onRecordEnrich hides slug): {body}"
    );
    let stored = "/api/collections/notes/records?filter=slug%3D%27model-hello%27";
    let (_, page) = status_json(app.su(Method::GET, stored, None).await).await;
    assert_eq!(page["totalItems"], 1, "slug set before e.next(): {page}");
    assert_eq!(
        titles(&app, "audits").await,
        ["after hello", "created hello"],
        "the hook's own write and the after-success hook's"
    );
}

#[tokio::test]
async fn a_throwing_on_record_create_leaves_no_row_before_or_after_e_next() {
    let app = app_with_model_hooks(2).await;

    for (title, message, why) in [
        (
            "refuse-before",
            "Refused before the write.",
            "thrown before e.next()",
        ),
        (
            "refuse-after",
            "Refused after the write.",
            "thrown after e.next() and after its own save",
        ),
    ] {
        let (status, body) = create_note(&app, title).await;
        assert_eq!(status, 400, "{why}: {body}");
        assert_eq!(body["message"], message, "{why}: {body}");
    }

    assert!(titles(&app, "notes").await.is_empty(), "no note stored");
    assert!(
        titles(&app, "audits").await.is_empty(),
        "the hook's own save was rolled back with the note"
    );
}

#[tokio::test]
async fn a_throwing_on_record_create_leaves_no_uploaded_file() {
    let app = app_with_model_hooks(2).await;
    let before = app.stored_files();
    let form = reqwest::multipart::Form::new()
        .text("title", "refuse-after")
        .part(
            "doc",
            reqwest::multipart::Part::bytes(b"hello".to_vec()).file_name("a.txt"),
        );

    let response = app
        .send_form(Method::POST, "/api/collections/notes/records", None, form)
        .await;

    let (status, body) = status_json(response).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["message"], "Refused after the write.", "{body}");
    assert_eq!(app.stored_files(), before, "the placed file was removed");
    assert!(titles(&app, "notes").await.is_empty(), "no note stored");
}

#[tokio::test]
async fn an_update_hook_that_loops_after_e_next_times_out_and_the_update_is_rolled_back() {
    let app = app_with_model_hooks(2).await;
    let (_, note) = create_note(&app, "calm").await;
    let id = note["id"].as_str().expect("id");

    let started = std::time::Instant::now();
    let (status, body) = status_json(
        app.request(
            Method::PATCH,
            &format!("/api/collections/notes/records/{id}"),
            None,
            Some(json!({"title": "loop"})),
        )
        .await,
    )
    .await;

    assert_eq!(status, 500, "{body}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "stopped by the limit"
    );
    assert_eq!(
        titles(&app, "notes").await,
        ["calm"],
        "the update was rolled back"
    );
    let (status, body) = create_note(&app, "next").await;
    assert_eq!(status, 200, "the writer and the pool still work: {body}");
}

#[tokio::test]
async fn a_throwing_on_record_delete_keeps_the_record() {
    let app = app_with_model_hooks(2).await;
    let (_, keep) = create_note(&app, "keep").await;
    let (_, gone) = create_note(&app, "gone").await;

    for (note, expected, why) in [
        (&keep, 403, "the hook refuses"),
        (&gone, 204, "the hook passes"),
    ] {
        let id = note["id"].as_str().expect("id");
        let response = app.delete_record("notes", id).await;
        assert_eq!(response.status(), expected, "{why}");
    }

    assert_eq!(titles(&app, "notes").await, ["keep"]);
}

#[tokio::test]
async fn app_save_in_a_route_runs_the_model_hooks_even_with_one_runtime() {
    // One runtime: the model hook must run re-entrantly on the thread that
    // waits in $app.save, not wait for a free runtime.
    let app = app_with_model_hooks(1).await;

    let (status, body) = status_json(
        app.request(
            Method::POST,
            "/api/make-note",
            None,
            Some(json!({"title": "routed"})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["slug"], "model-routed", "{body}");
    let (status, body) = create_note(&app, "requested").await;
    assert_eq!(
        status, 200,
        "request hook then model hook on one runtime: {body}"
    );
    assert_eq!(
        titles(&app, "audits").await,
        [
            "after requested",
            "after routed",
            "created requested",
            "created routed"
        ]
    );
}

#[tokio::test]
async fn on_record_enrich_shapes_view_and_list_but_unhides_only_when_told() {
    let app = app_with_model_hooks(2).await;
    let (_, note) = create_note(&app, "seen").await;
    let id = note["id"].as_str().expect("id");
    let (status, _) = status_json(
        app.update_record("notes", id, json!({"secret": "s3"}))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    app.create_record_ok(
        "users",
        json!({"email": "u@example.com", "password": "password123", "passwordConfirm": "password123"}),
    )
    .await;
    let user = app.login_as("users", "u@example.com", "password123").await;

    for (token, secret, why) in [
        (None, None, "a guest: the hook does not unhide for guests"),
        (
            Some(user.as_str()),
            Some("s3"),
            "a user: the hook unhides by name",
        ),
        (
            Some(app.superuser_token.as_str()),
            Some("s3"),
            "a superuser sees hidden fields anyway",
        ),
    ] {
        let view = format!("/api/collections/notes/records/{id}");
        let (status, one) = status_json(app.request(Method::GET, &view, token, None).await).await;
        assert_eq!(status, 200, "{why}: {one}");
        let (_, page) = status_json(
            app.request(Method::GET, "/api/collections/notes/records", token, None)
                .await,
        )
        .await;
        let listed = page["items"][0].clone();
        for (body, place) in [(&one, "view"), (&listed, "list")] {
            assert_eq!(
                body["greeting"], "hi seen",
                "{why} ({place}): custom data: {body}"
            );
            assert!(
                body.get("slug").is_none(),
                "{why} ({place}): hidden by the hook: {body}"
            );
            assert_eq!(body["secret"].as_str(), secret, "{why} ({place}): {body}");
        }
        let keys: BTreeSet<&str> = one
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert!(
            keys.contains("collectionId") && keys.contains("id"),
            "{why}: {keys:?}"
        );
    }
}

#[tokio::test]
async fn auth_hooks_can_refuse_a_login_or_change_the_auth_response() {
    let app = app_with_model_hooks(2).await;
    let password = "password123";
    for email in [
        "ok@example.com",
        "blocked@example.com",
        "refused@example.com",
    ] {
        app.create_record_ok(
            "users",
            json!({"email": email, "password": password, "passwordConfirm": password}),
        )
        .await;
    }

    for (email, expected, why) in [
        ("ok@example.com", 200, "both hooks pass"),
        (
            "blocked@example.com",
            403,
            "onRecordAuthWithPasswordRequest throws",
        ),
        ("refused@example.com", 400, "onRecordAuthRequest throws"),
    ] {
        let (status, body) = status_json(
            app.request(
                Method::POST,
                "/api/collections/users/auth-with-password",
                None,
                Some(json!({"identity": email, "password": password})),
            )
            .await,
        )
        .await;
        assert_eq!(status, expected, "{why}: {body}");
        if expected == 200 {
            assert_eq!(body["meta"], json!({"via": "password"}), "{why}: {body}");
            assert!(
                body["token"].as_str().is_some_and(|t| !t.is_empty()),
                "{body}"
            );
            assert_eq!(body["record"]["email"], email, "{body}");
        } else {
            assert!(body.get("token").is_none(), "{why}: no token: {body}");
        }
    }
}

#[tokio::test]
async fn cron_add_jobs_are_listed_run_on_demand_and_a_failing_one_does_not_stop_the_scheduler() {
    let app = app_with_model_hooks(1).await;

    let (status, jobs) = status_json(app.su(Method::GET, "/api/crons", None).await).await;
    assert_eq!(status, 200, "{jobs}");
    let ids: Vec<&str> = jobs
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|j| j["id"].as_str())
        .collect();
    for (id, listed, why) in [
        ("audit-tick", true, "added"),
        ("broken", true, "added"),
        ("spin", true, "added"),
        ("removed", false, "cronRemove took it out"),
    ] {
        assert_eq!(ids.contains(&id), listed, "{id}: {why}: {ids:?}");
    }
    assert!(
        jobs.as_array()
            .expect("array")
            .iter()
            .any(|j| j["id"] == "audit-tick" && j["expression"] == "*/5 * * * *"),
        "{jobs}"
    );

    for (id, why) in [("broken", "throws"), ("spin", "hits the time limit")] {
        let started = std::time::Instant::now();
        let response = app
            .su(Method::POST, &format!("/api/crons/{id}"), None)
            .await;
        assert_eq!(
            response.status(),
            204,
            "{id} ({why}) is logged, not an error of the run"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(8),
            "{id}: bounded"
        );
    }
    let response = app.su(Method::POST, "/api/crons/audit-tick", None).await;
    assert_eq!(response.status(), 204);
    assert_eq!(
        titles(&app, "audits").await,
        ["cron tick"],
        "the runtime still works after both"
    );
}

#[tokio::test]
async fn security_helpers_hash_sign_and_encrypt_as_pocketbase_does() {
    let app = app_with_model_hooks(1).await;

    let (status, body) =
        status_json(app.request(Method::GET, "/api/security", None, None).await).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["random"].as_str().map(str::len), Some(12), "{body}");
    assert!(
        body["alpha"]
            .as_str()
            .is_some_and(|s| s.len() == 8 && s.chars().all(|c| c == 'a' || c == 'b')),
        "{body}"
    );
    assert_eq!(
        body["sha256"],
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(body["md5"], "900150983cd24fb0d6963f7d28e17f72");
    assert_eq!(body["equal"], json!([true, false]));
    assert_eq!(body["sub"], "x", "a token it made parses back");
    assert_eq!(
        body["refused"], "Invalid or expired token.",
        "a wrong secret is refused: {body}"
    );
    assert_eq!(body["plain"], "hidden", "encrypt/decrypt round trip");
    assert_eq!(body["hs256"].as_str().map(str::len), Some(64));
}

async fn fetch(app: &TestApp, url: &str) -> Value {
    let (status, body) = status_json(
        app.request(
            Method::POST,
            "/api/fetch",
            None,
            Some(json!({ "url": url })),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn http_send_cannot_reach_loopback_private_or_metadata_addresses_without_the_setting() {
    let app = app_with_model_hooks(2).await;
    let port = app.base.rsplit(':').next().unwrap_or_default().to_owned();

    for (url, why) in [
        (format!("http://127.0.0.1:{port}/api/health"), "loopback"),
        (
            format!("http://localhost:{port}/api/health"),
            "a name resolving to loopback",
        ),
        (format!("http://[::1]:{port}/api/health"), "v6 loopback"),
        (
            "http://169.254.169.254/latest/meta-data/".to_owned(),
            "cloud metadata (link-local)",
        ),
        ("http://10.0.0.1/".to_owned(), "private"),
        ("http://0.0.0.0/".to_owned(), "unspecified"),
        ("file:///etc/passwd".to_owned(), "not http"),
    ] {
        let body = fetch(&app, &url).await;
        assert!(
            body["error"].is_string(),
            "{why} ({url}) must be refused: {body}"
        );
        assert!(
            body.get("status").is_none(),
            "{why}: no request made: {body}"
        );
    }
}

#[tokio::test]
async fn http_send_reaches_loopback_with_the_setting_and_rechecks_every_redirect_hop() {
    let app = app_configured(2, |config| {
        config.hooks.http_allow_private = true;
        config.hooks.http_allow = vec!["localhost".to_owned()];
    })
    .await;
    let port = app.base.rsplit(':').next().unwrap_or_default().to_owned();

    let body = fetch(&app, &format!("http://localhost:{port}/api/health")).await;
    assert_eq!(body["status"], 200, "allowed host, private allowed: {body}");
    assert_eq!(body["json"]["code"], 200, "the JSON body is parsed: {body}");

    let body = fetch(&app, &format!("http://127.0.0.1:{port}/api/health")).await;
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|m| m.contains("http_allow")),
        "not in the allow-list: {body}"
    );

    let hop = format!("http://127.0.0.1:{port}/api/health");
    let via = format!(
        "http://localhost:{port}/api/redirect?to={}",
        urlencode(&hop)
    );
    let body = fetch(&app, &via).await;
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|m| m.contains("http_allow")),
        "a redirect to a host outside the list is refused at the hop: {body}"
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn a_welcome_mail_is_sent_after_sign_up_through_the_configured_smtp() {
    let app = app_with_model_hooks(2).await;
    let sink = crate::smtp_sink::start().await;
    let (status, body) = status_json(
        app.su(
            Method::PATCH,
            "/api/settings",
            Some(json!({"smtp": {"enabled": true, "host": "127.0.0.1", "port": sink.port}})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");

    app.create_record_ok(
        "users",
        json!({"email": "new@example.com", "password": "password123", "passwordConfirm": "password123"}),
    )
    .await;

    let mail = sink
        .wait_for("new@example.com", std::time::Duration::from_secs(10))
        .await
        .expect("the welcome mail arrives");
    assert!(mail.raw.contains("Subject: Welcome"), "{}", mail.raw);
    assert!(mail.raw.contains("Welcome aboard"), "{}", mail.raw);
}

#[tokio::test]
async fn run_in_transaction_commits_every_write_or_none() {
    let app = app_with_model_hooks(1).await;

    let (status, body) = status_json(
        app.request(
            Method::POST,
            "/api/two-audits",
            None,
            Some(json!({"fail": true})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        titles(&app, "audits").await.is_empty(),
        "a throw rolls back both saves"
    );

    let (status, body) = status_json(
        app.request(
            Method::POST,
            "/api/two-audits",
            None,
            Some(json!({"fail": false})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        titles(&app, "audits").await,
        ["first", "second"],
        "both committed"
    );
}

#[tokio::test]
async fn db_queries_bind_every_value_and_reads_cannot_write() {
    let app = app_with_model_hooks(1).await;
    for title in ["a", "b"] {
        app.create_record_ok("audits", json!({ "title": title }))
            .await;
    }

    let (status, body) = status_json(
        app.request(
            Method::POST,
            "/api/hook-sql",
            None,
            Some(json!({"from": "a", "to": "c", "find": "x' OR '1'='1"})),
        )
        .await,
    )
    .await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["renamed"], 1,
        "execute() answers the rows changed: {body}"
    );
    assert_eq!(
        body["rows"],
        json!([]),
        "a quote in a bound value is only a value: {body}"
    );
    assert_eq!(
        body["refused"], "A query that writes must use execute().",
        "{body}"
    );
    assert_eq!(
        titles(&app, "audits").await,
        ["b", "c"],
        "the DELETE did not run"
    );
}

/// A `counts` collection with a number and a bool, rows b (3, true),
/// a (1, false), c (7, true); answers b's id.
async fn counts(app: &TestApp) -> String {
    app.create_collection_ok(json!({
        "name": "counts", "listRule": "",
        "fields": [{"name": "title", "type": "text"}, {"name": "views", "type": "number"},
                   {"name": "flag", "type": "bool"}]
    }))
    .await;
    let mut b = String::new();
    for (title, views, flag) in [("b", 3, true), ("a", 1, false), ("c", 7, true)] {
        let record = app
            .create_record_ok(
                "counts",
                json!({"title": title, "views": views, "flag": flag}),
            )
            .await;
        if title == "b" {
            b = record["id"].as_str().unwrap_or_default().to_owned();
        }
    }
    b
}

/// Numbers, text, bools and null bound to `{:name}` compare as the hook's
/// author expects on both engines, rows come back in the same shapes, and
/// a placeholder inside a literal or comment stays text.
#[tokio::test]
async fn raw_sql_binds_values_by_type_on_both_engines() {
    let app = app_with_model_hooks(1).await;
    let b = counts(&app).await;

    let (status, body) = status_json(
        app.request(
            Method::POST,
            "/api/hook-sql-typed",
            None,
            Some(json!({"n": 2, "id": b})),
        )
        .await,
    )
    .await;

    assert_eq!(status, 200, "{body}");
    let flags = |v: &Value| v.as_i64().or(v.as_bool().map(i64::from));
    let above: Vec<(String, f64, Option<i64>)> = body["above"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["title"].as_str().unwrap_or_default().to_owned(),
                r["views"].as_f64().unwrap_or(-1.0),
                flags(&r["flag"]),
            )
        })
        .collect();
    assert_eq!(
        above,
        [
            ("b".to_owned(), 3.0, Some(1)),
            ("c".to_owned(), 7.0, Some(1))
        ],
        "views > 2 as numbers, the bool as SQLite's 0/1: {body}"
    );
    assert_eq!(body["byId"], json!([{"title": "b"}]), "{body}");
    assert_eq!(
        body["flagged"],
        json!([{"title": "b"}, {"title": "c"}]),
        "{body}"
    );
    assert_eq!(body["nulls"], json!([{"n": 3}]), "{body}");
    assert_eq!(
        body["text"],
        json!([{"t": "{:n}", "n": 42}]),
        "inside a literal and comments a placeholder is text: {body}"
    );
    assert_eq!(
        body["one"]["title"], "c",
        "one() answers the first row: {body}"
    );
    assert_eq!(body["capped"], 10_000, "all() stops at MAX_QUERY_ROWS");
}

/// Whatever a request sends is only ever a bound value: quotes, comment
/// markers, PostgreSQL's `$1`, a placeholder or a NUL never change the
/// statement (PostgreSQL text cannot hold NUL: the query fails, opaquely).
#[tokio::test]
async fn raw_sql_values_cannot_inject_on_either_engine() {
    let app = app_with_model_hooks(1).await;
    let b = counts(&app).await;
    let postgres = crate::helpers::TestBackend::current() == crate::helpers::TestBackend::Postgres;

    for (value, why) in [
        (json!("x' OR '1'='1"), "a quote"),
        (json!("a' --"), "a line comment"),
        (json!("a /* */"), "a block comment"),
        (json!("$1"), "PostgreSQL's own parameter"),
        (json!("{:t}"), "a placeholder"),
        (json!("a'); DELETE FROM counts; --"), "a second statement"),
        (json!("$q$ OR 1=1 $q$"), "dollar quoting"),
        (json!({"nested": [1]}), "an object (bound as its JSON text)"),
    ] {
        let (status, body) = status_json(
            app.request(
                Method::POST,
                "/api/hook-sql-find",
                None,
                Some(json!({"value": value})),
            )
            .await,
        )
        .await;
        assert_eq!(status, 200, "{why}: {body}");
        assert_eq!(body, json!([]), "{why}: only a value: {body}");
    }
    let (status, body) = status_json(
        app.request(
            Method::POST,
            "/api/hook-sql-find",
            None,
            Some(json!({"value": b})),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body),
        (200, json!([{"title": "b"}])),
        "the id still matches"
    );

    let (status, body) = status_json(
        app.request(
            Method::POST,
            "/api/hook-sql-find",
            None,
            Some(json!({"value": "a\u{0}"})),
        )
        .await,
    )
    .await;
    if postgres {
        assert_eq!(
            (status, &body),
            (
                400,
                &json!({"status": 400, "message": "The query failed.", "data": {}})
            ),
            "NUL: {body}"
        );
    } else {
        assert_eq!((status, &body), (200, &json!([])), "NUL: {body}");
    }
    assert_eq!(
        titles(&app, "counts").await,
        ["a", "b", "c"],
        "nothing deleted"
    );
}

/// On PostgreSQL a hook's raw read and its `execute()` both stop at
/// `database.query_timeout_ms` (`statement_timeout`), answering the
/// generic 400; the server goes on. (`pg_sleep` is PostgreSQL's SQL.)
#[tokio::test]
async fn raw_sql_on_postgres_stops_at_the_query_timeout() {
    if crate::helpers::TestBackend::current() != crate::helpers::TestBackend::Postgres {
        return;
    }
    let app = app_configured(1, |c| c.database.query_timeout_ms = 300).await;
    for write in [false, true] {
        let started = std::time::Instant::now();
        let (status, body) = status_json(
            app.request(
                Method::POST,
                "/api/hook-sql-slow",
                None,
                Some(json!({"write": write})),
            )
            .await,
        )
        .await;
        assert_eq!(status, 400, "write {write}: {body}");
        assert_eq!(
            body["message"], "Something went wrong while processing your request.",
            "write {write}: the time limit's generic answer"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(4),
            "write {write}: stopped near the limit, not after pg_sleep's 5 s: {:?}",
            started.elapsed()
        );
    }
    let (status, body) = status_json(
        app.request(
            Method::POST,
            "/api/hook-sql-typed",
            None,
            Some(json!({"n": 0, "id": ""})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400, "no counts collection here: {body}");
    app.create_record_ok("audits", json!({"title": "after"}))
        .await;
    assert_eq!(
        titles(&app, "audits").await,
        ["after"],
        "the server goes on"
    );
}

/// `execute()` inside `runInTransaction` runs on the session's own
/// transaction (it sees the row the session saved) and rolls back with it.
#[tokio::test]
async fn raw_execute_in_a_session_commits_or_rolls_back_with_it() {
    let app = app_with_model_hooks(1).await;

    let (status, body) = status_json(
        app.request(
            Method::POST,
            "/api/hook-sql-tx",
            None,
            Some(json!({"fail": true})),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, &body),
        (400, &json!({"message": "Changed my mind."})),
        "{body}"
    );
    assert!(titles(&app, "audits").await.is_empty(), "rolled back");

    let (status, body) = status_json(
        app.request(
            Method::POST,
            "/api/hook-sql-tx",
            None,
            Some(json!({"fail": false})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, list) = status_json(
        app.su(Method::GET, "/api/collections/audits/records", None)
            .await,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["items"][0]["title"], "tx-new", "{list}");
    assert_eq!(
        list["items"][0]["slug"], "raw",
        "the raw UPDATE committed with it: {list}"
    );
}

/// The writes of a hook's session reach realtime subscribers once it
/// committed (on PostgreSQL through the outbox), and a session rolled back
/// announces nothing.
#[tokio::test]
async fn a_hooks_session_is_announced_only_when_it_commits() {
    let app = app_with_model_hooks(2).await;
    let mut sse = crate::realtime::Sse::open(&app).await;
    let resp = app
        .subscribe(&sse.client_id, &["notes/*", "audits/*"], None)
        .await;
    assert_eq!(resp.status(), 204);

    let (status, body) = create_note(&app, "refuse-after").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = create_note(&app, "hello").await;
    assert_eq!(status, 200, "{body}");

    let events = sse.drain(std::time::Duration::from_secs(2)).await;
    let mut seen: Vec<(String, String)> = events
        .iter()
        .filter(|e| e.data["action"] == "create")
        .map(|e| {
            let r = &e.data["record"];
            (
                r["collectionName"].as_str().unwrap_or_default().to_owned(),
                r["title"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    seen.sort();
    let expected: Vec<(String, String)> = [
        ("audits", "after hello"),
        ("audits", "created hello"),
        ("notes", "hello"),
    ]
    .iter()
    .map(|(c, t)| ((*c).to_owned(), (*t).to_owned()))
    .collect();
    assert_eq!(seen, expected, "{events:?}");
}
