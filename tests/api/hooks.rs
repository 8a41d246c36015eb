//! JavaScript hooks (`pb_hooks`): custom routes, record request hooks,
//! `$app`, and the limits that keep a bad hook from taking the server down.
//! The hook files are in `fixtures/pb_hooks/main.pb.js`.

use crate::helpers::{TestApp, spawn_app_configured, status_json};
use ferrobase::{Application, Config};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The hooks' time limit in these tests.
const TIMEOUT_MS: u64 = 1_000;
/// How long past the limit an interrupted hook may take to answer.
const MARGIN: Duration = Duration::from_secs(4);
const PASSWORD: &str = "password123";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/api/fixtures/pb_hooks")
}

async fn app_with_hooks() -> TestApp {
    let app = spawn_app_configured(|config| {
        config.hooks.dir = fixtures();
        config.hooks.timeout_ms = TIMEOUT_MS;
        config.hooks.pool_size = 2;
    })
    .await;
    for name in ["posts", "drafts"] {
        app.create_collection_ok(json!({
            "name": name, "listRule": "", "viewRule": "", "createRule": "",
            "updateRule": "", "deleteRule": "",
            "fields": [{"name": "title", "type": "text", "max": 50},
                       {"name": "slug", "type": "text"}]
        }))
        .await;
    }
    app
}

async fn user_token(app: &TestApp, email: &str) -> String {
    app.create_record_ok(
        "users",
        json!({"email": email, "password": PASSWORD, "passwordConfirm": PASSWORD}),
    )
    .await;
    app.login_as("users", email, PASSWORD).await
}

async fn get(app: &TestApp, path: &str, token: Option<&str>) -> (u16, Value) {
    status_json(app.request(Method::GET, path, token, None).await).await
}

async fn list_titles(app: &TestApp, collection: &str) -> Vec<String> {
    let path = format!("/api/collections/{collection}/records?perPage=100");
    let (status, body) = status_json(app.su(Method::GET, &path, None).await).await;
    assert_eq!(status, 200, "{body}");
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["title"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_custom_route_answers_with_its_path_parameter() {
    let app = app_with_hooks().await;

    let (status, body) = get(&app, "/api/hello/world", None).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"message": "Hello world"}));
}

#[tokio::test]
async fn require_auth_refuses_guests_and_forged_tokens_and_admits_users() {
    let app = app_with_hooks().await;
    let token = user_token(&app, "alice@example.com").await;
    let forged = format!("{}x", &token[..token.len() - 1]);

    for (auth, expected, why) in [
        (None, 401, "guest"),
        (Some("not-a-token"), 401, "garbage token"),
        (Some(forged.as_str()), 401, "forged signature"),
        (Some(token.as_str()), 200, "user"),
    ] {
        let (status, body) = get(&app, "/api/private/hello/bob", auth).await;
        assert_eq!(status, expected, "{why}: {body}");
        if expected == 401 {
            assert_eq!(body["status"], 401, "{why}: the envelope");
        }
    }
    let (status, body) = get(&app, "/api/superusers-only", Some(&token)).await;
    assert_eq!(status, 403, "a user is not a superuser: {body}");
    let su = app.superuser_token.clone();
    let (status, body) = get(&app, "/api/superusers-only", Some(&su)).await;
    assert_eq!(status, 200, "superuser: {body}");
}

#[tokio::test]
async fn a_create_hook_sets_a_computed_field_before_the_record_is_stored() {
    let app = app_with_hooks().await;

    let (status, body) = status_json(
        app.request(
            Method::POST,
            "/api/collections/posts/records",
            None,
            Some(json!({"title": "Hello Big World"})),
        )
        .await,
    )
    .await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["slug"], "hello-big-world",
        "set before e.next(): {body}"
    );
    let id = body["id"].as_str().expect("id");
    let (_, stored) = status_json(app.get_record("posts", id, None).await).await;
    assert_eq!(stored["slug"], "hello-big-world", "stored too: {stored}");
}

#[tokio::test]
async fn a_hook_that_throws_answers_its_status_and_stores_nothing() {
    let app = app_with_hooks().await;

    let (status, body) = status_json(
        app.request(
            Method::POST,
            "/api/collections/posts/records",
            None,
            Some(json!({"title": "forbidden"})),
        )
        .await,
    )
    .await;

    assert_eq!(status, 400, "{body}");
    assert_eq!(body["message"], "This title is not allowed.", "{body}");
    assert_eq!(body["status"], 400, "the envelope: {body}");
    assert!(
        list_titles(&app, "posts").await.is_empty(),
        "nothing stored"
    );
}

#[tokio::test]
async fn a_hook_that_never_calls_next_answers_itself_and_stores_nothing() {
    let app = app_with_hooks().await;

    let (status, body) = status_json(
        app.request(
            Method::POST,
            "/api/collections/drafts/records",
            None,
            Some(json!({"title": "held back"})),
        )
        .await,
    )
    .await;

    assert_eq!((status, body), (202, json!({"held": "held back"})));
    assert!(
        list_titles(&app, "drafts").await.is_empty(),
        "nothing stored"
    );
}

#[tokio::test]
async fn hooked_writes_still_go_through_validation_and_rules() {
    let app = app_with_hooks().await;
    app.update_collection("posts", json!({"createRule": null}))
        .await;

    let (guest, body) = status_json(
        app.request(
            Method::POST,
            "/api/collections/posts/records",
            None,
            Some(json!({"title": "sneaky"})),
        )
        .await,
    )
    .await;
    assert_eq!(guest, 403, "the rule still denies a guest: {body}");
    let (too_long, body) = status_json(
        app.create_record("posts", json!({"title": "x".repeat(51)}))
            .await,
    )
    .await;
    assert_eq!(too_long, 400, "validation still applies: {body}");
    assert!(body["data"]["title"].is_object(), "per-field error: {body}");
    assert!(
        list_titles(&app, "posts").await.is_empty(),
        "nothing stored"
    );
}

#[tokio::test]
async fn update_delete_view_and_list_hooks_run_around_their_actions() {
    let app = app_with_hooks().await;
    let post = app
        .create_record_ok("posts", json!({"title": "keep"}))
        .await;
    app.create_record_ok("posts", json!({"title": "hidden"}))
        .await;
    let id = post["id"].as_str().expect("id");
    let path = format!("/api/collections/posts/records/{id}");

    let (status, body) = status_json(
        app.request(Method::PATCH, &path, None, Some(json!({"title": "keep"})))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["slug"], "updated-keep", "update hook: {body}");
    let (status, body) = get(&app, &path, None).await;
    assert_eq!(
        (status, &body["viewedBy"]),
        (200, &json!("guest")),
        "view hook: {body}"
    );
    let (status, body) = get(&app, "/api/collections/posts/records", None).await;
    assert_eq!(status, 200, "{body}");
    let titles: Vec<&str> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|r| r["title"].as_str())
        .collect();
    assert_eq!(titles, ["keep"], "list hook filtered: {body}");
    let (status, body) = status_json(app.request(Method::DELETE, &path, None, None).await).await;
    assert_eq!(status, 403, "delete hook refused: {body}");
    let (status, _) = get(&app, &path, None).await;
    assert_eq!(status, 200, "still there");
    let (status, body) = status_json(
        app.request(
            Method::DELETE,
            "/api/collections/posts/records/doesnotexist123",
            None,
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, 404, "unknown record: {body}");
}

#[tokio::test]
async fn find_records_by_filter_binds_the_query_value_as_a_value() {
    let app = app_with_hooks().await;
    for title in ["alpha", "beta"] {
        app.create_record_ok("posts", json!({"title": title})).await;
    }

    for (title, expected, why) in [
        ("alpha", 1, "a plain value"),
        ("x' || title != '", 0, "quote and or"),
        ("x\" || 1=1 //", 0, "double quote, or and comment"),
        ("' OR 1=1; DROP TABLE posts; --", 0, "SQL"),
        ("{:title}", 0, "a placeholder as the value"),
    ] {
        let path = format!(
            "/api/posts-by-title?{}",
            serde_urlencoded::to_string([("title", title)]).expect("query")
        );
        let (status, body) = get(&app, &path, None).await;
        assert_eq!(status, 200, "{why}: {body}");
        assert_eq!(body["count"], expected, "{title:?} ({why}): {body}");
    }
    assert_eq!(list_titles(&app, "posts").await.len(), 2, "table intact");
}

#[tokio::test]
async fn app_save_creates_a_record_through_the_write_path() {
    let app = app_with_hooks().await;

    let (status, body) = status_json(
        app.request(
            Method::POST,
            "/api/make-post",
            None,
            Some(json!({"title": "From JS"})),
        )
        .await,
    )
    .await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["title"], "From JS", "{body}");
    assert_eq!(list_titles(&app, "posts").await, ["From JS"]);
    let (status, body) = status_json(
        app.request(
            Method::POST,
            "/api/make-post",
            None,
            Some(json!({"title": "x".repeat(51)})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400, "validation applies to $app.save: {body}");
}

#[tokio::test]
async fn thrown_errors_map_to_pocketbase_envelopes() {
    let app = app_with_hooks().await;

    for (path, status, message, why) in [
        ("/api/bad-request", 400, "Not like this.", "BadRequestError"),
        (
            "/api/teapot",
            418,
            "Short and stout.",
            "ApiError with a status",
        ),
        (
            "/api/broken",
            400,
            "Something went wrong while processing your request.",
            "a plain ReferenceError",
        ),
    ] {
        let (got, body) = get(&app, path, None).await;
        assert_eq!(got, status, "{why}: {body}");
        assert_eq!(body["message"], message, "{why}: {body}");
        assert_eq!(body["status"], status, "{why}: {body}");
    }
    let (_, body) = get(&app, "/api/bad-request", None).await;
    assert_eq!(
        body["data"],
        json!({"field": {"code": "validation_invalid_value", "message": "Invalid value."}}),
        "script data is reduced as PocketBase does"
    );
}

#[tokio::test]
async fn runaway_hooks_answer_500_within_the_limit_while_the_server_keeps_serving() {
    let app = app_with_hooks().await;

    for (path, why) in [
        ("/api/loop", "an infinite loop"),
        ("/api/huge-array", "a huge array"),
        ("/api/huge-string", "string doubling"),
        ("/api/sleepy", "a long sleep"),
    ] {
        let started = Instant::now();
        let (runaway, health) = tokio::join!(get(&app, path, None), async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            get(&app, "/api/health", None).await
        });
        let took = started.elapsed();

        assert_eq!(runaway.0, 500, "{why}: {}", runaway.1);
        assert_eq!(runaway.1["status"], 500, "{why}: the envelope");
        assert!(
            took < Duration::from_millis(TIMEOUT_MS) + MARGIN,
            "{why}: answered after {took:?}"
        );
        assert_eq!(health.0, 200, "{why}: health answered meanwhile");
        let (status, body) = get(&app, "/api/hello/again", None).await;
        assert_eq!(status, 200, "{why}: the next hook request works: {body}");
    }
}

#[tokio::test]
async fn a_syntax_error_in_a_hook_file_stops_the_server_from_starting_and_names_the_line() {
    let data = tempfile::tempdir().expect("temp dir");
    let hooks = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        hooks.path().join("broken.pb.js"),
        "routerAdd(\"GET\", \"/x\", (e) => {\n  return e.json(200, {\n});\n",
    )
    .expect("write");
    let mut config = Config::for_tests(data.path());
    config.hooks.dir = hooks.path().to_path_buf();

    let Err(error) = Application::build(config).await else {
        panic!("the server must not start with a broken hook file");
    };

    let text = error.to_string();
    assert!(text.contains("broken.pb.js"), "names the file: {text}");
    assert!(text.contains("SyntaxError"), "says what: {text}");
}

#[tokio::test]
async fn without_a_hooks_dir_custom_paths_stay_unknown() {
    let app = spawn_app_configured(|_| {}).await;

    let (status, body) = get(&app, "/api/hello/world", None).await;

    assert_eq!(status, 404, "{body}");
}

/// The log lines the `lazy` collection's hooks wrote, sorted.
async fn lazy_log(app: &TestApp) -> Vec<String> {
    let path = "/api/collections/lazylog/records?sort=title&perPage=50";
    let (_, body) = status_json(app.su(Method::GET, path, None).await).await;
    body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("log: {body}"))
        .iter()
        .filter_map(|r| r["title"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn handlers_that_read_the_record_only_after_next_see_it_as_written() {
    let app = app_with_hooks().await;
    for (name, fields) in [
        (
            "lazy",
            json!([{"name": "title", "type": "text"}, {"name": "n", "type": "number"}]),
        ),
        ("lazylog", json!([{"name": "title", "type": "text"}])),
    ] {
        app.create_collection_ok(json!({
            "name": name, "listRule": "", "viewRule": "", "createRule": "",
            "updateRule": "", "deleteRule": "", "fields": fields,
        }))
        .await;
    }
    let user = app
        .create_record_ok(
            "users",
            json!({"email": "lazy@example.com", "password": PASSWORD, "passwordConfirm": PASSWORD}),
        )
        .await;
    let user_id = user["id"].as_str().expect("user id");
    let token = app.login_as("users", "lazy@example.com", PASSWORD).await;

    // Created by a user: every submitted field is written, and after
    // e.next() the record has its id, is stored, and e.auth is the user.
    let (status, created) = status_json(
        app.request(
            Method::POST,
            "/api/collections/lazy/records",
            Some(&token),
            Some(json!({"title": "first", "n": 7})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(
        (&created["title"], &created["n"]),
        (&json!("first"), &json!(7))
    );
    let id = created["id"].as_str().expect("id");
    let (_, stored) = status_json(app.get_record("lazy", id, None).await).await;
    assert_eq!(
        (&stored["title"], &stored["n"]),
        (&json!("first"), &json!(7))
    );

    // Updated by a guest: only the submitted field changes.
    let path = format!("/api/collections/lazy/records/{id}");
    let (status, updated) = status_json(
        app.request(Method::PATCH, &path, None, Some(json!({"n": 8})))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        (&updated["title"], &updated["n"]),
        (&json!("first"), &json!(8))
    );

    // A refused write: nothing stored, the error is the action's own.
    let (status, body) = status_json(
        app.request(
            Method::POST,
            "/api/collections/lazy/records",
            None,
            Some(json!({"n": "not a number"})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400, "{body}");

    let (status, _) = status_json(app.request(Method::DELETE, &path, None, None).await).await;
    assert_eq!(status, 204);
    assert_eq!(
        lazy_log(&app).await,
        [
            format!("create|{id}|first|7|false|lazy|{user_id}"),
            // After a delete, e.record is the record as it was.
            format!("delete|{id}|first"),
            format!("update|{id}|first|8"),
        ]
    );
}
