//! `onBatchRequest`: its handlers see and may change `e.batch`, refuse the
//! batch or answer it themselves; `e.next()` runs the batch with every
//! member's own hooks, re-entering the waiting hook runtime (the test pool
//! has one runtime, so any other route would deadlock). Fixtures:
//! `fixtures/pb_hooks_batch_request/`.

use crate::helpers::{TestApp, spawn_app_configured, status_json};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::PathBuf;

async fn app_with_batch_request_hook() -> TestApp {
    let app = spawn_app_configured(|config| {
        config.hooks.dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/api/fixtures/pb_hooks_batch_request");
        config.hooks.timeout_ms = 2_000;
        config.hooks.pool_size = 1;
    })
    .await;
    // posts: everyone creates; closed: superusers only.
    for (name, create_rule) in [("posts", json!("")), ("closed", Value::Null)] {
        app.create_collection_ok(json!({
            "name": name, "listRule": "", "viewRule": "", "createRule": create_rule,
            "fields": [{"name": "note", "type": "text"}, {"name": "stamp", "type": "text"}]
        }))
        .await;
    }
    app.create_collection_ok(
        json!({"name": "events", "fields": [{"name": "text", "type": "text"}]}),
    )
    .await;
    let on = json!({"batch": {"enabled": true}});
    let (status, body) = status_json(app.su(Method::PATCH, "/api/settings", Some(on)).await).await;
    assert_eq!(status, 200, "{body}");
    app
}

fn create(collection: &str, note: &str) -> Value {
    json!({"method": "POST", "url": format!("/api/collections/{collection}/records"), "body": {"note": note}})
}

async fn batch(app: &TestApp, refuse: bool, requests: Vec<Value>) -> (u16, Value) {
    let mut request = app
        .client
        .post(format!("{}/api/batch", app.base))
        .json(&json!({ "requests": requests }));
    if refuse {
        request = request.header("x-refuse", "1");
    }
    status_json(request.send().await.expect("batch sent")).await
}

async fn items(app: &TestApp, collection: &str) -> Vec<Value> {
    let path = format!("/api/collections/{collection}/records?perPage=200");
    let (status, body) = status_json(app.su(Method::GET, &path, None).await).await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().cloned().unwrap_or_default()
}

async fn events(app: &TestApp) -> Vec<String> {
    let mut out: Vec<String> = items(app, "events")
        .await
        .iter()
        .map(|r| r["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn the_hook_changes_the_batch_and_its_members_hooks_run_on_the_one_runtime() {
    let app = app_with_batch_request_hook().await;

    let (status, body) = batch(
        &app,
        false,
        vec![create("posts", "a"), create("posts", "b")],
    )
    .await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body.as_array().map(Vec::len), Some(2), "{body}");
    assert_eq!(body[0]["status"], 200, "{body}");
    let posts = items(&app, "posts").await;
    let shown: Vec<(&str, &str)> = posts
        .iter()
        .map(|p| {
            (
                p["note"].as_str().unwrap_or(""),
                p["stamp"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("a+member-hook", "from-batch-hook"),
            ("b+member-hook", "from-batch-hook")
        ]
    );
    assert_eq!(
        events(&app).await,
        [
            "after-batch 2",
            "created a+member-hook",
            "created b+member-hook"
        ]
    );
}

#[tokio::test]
async fn a_throwing_hook_refuses_the_batch_and_nothing_is_written() {
    let app = app_with_batch_request_hook().await;

    let (status, body) = batch(&app, true, vec![create("posts", "a")]).await;

    assert_eq!(status, 400, "{body}");
    assert_eq!(body["message"], "Batch refused by the hook.", "{body}");
    assert!(items(&app, "posts").await.is_empty());
    assert!(events(&app).await.is_empty());
}

#[tokio::test]
async fn a_hook_answering_itself_runs_no_member() {
    let app = app_with_batch_request_hook().await;
    let three = vec![
        create("posts", "a"),
        create("posts", "b"),
        create("posts", "c"),
    ];

    let (status, body) = batch(&app, false, three).await;

    assert_eq!(status, 202, "{body}");
    assert_eq!(body, json!({"answeredBy": "hook", "count": 3}));
    assert!(items(&app, "posts").await.is_empty());
}

#[tokio::test]
async fn a_member_refused_inside_e_next_fails_the_batch_and_the_hook_cannot_lift_a_rule() {
    let app = app_with_batch_request_hook().await;

    let (status, body) = batch(
        &app,
        false,
        vec![create("posts", "a"), create("closed", "b")],
    )
    .await;

    assert_eq!(status, 400, "{body}");
    assert!(
        body["data"]["requests"]["1"].is_object(),
        "the member is named as without the hook: {body}"
    );
    assert!(items(&app, "posts").await.is_empty(), "rolled back");
    assert!(items(&app, "closed").await.is_empty());
    assert!(
        events(&app).await.is_empty(),
        "e.next() threw: no code after it ran, and the members' writes rolled back"
    );
}

#[tokio::test]
async fn a_malformed_batch_is_refused_before_the_hook() {
    let app = app_with_batch_request_hook().await;

    let (empty, body) = batch(&app, false, Vec::new()).await;
    let (bad_url, bad) = batch(
        &app,
        false,
        vec![json!({"method": "POST", "url": "/api/collections/posts/../../settings", "body": {}})],
    )
    .await;

    assert_eq!(empty, 400, "{body}");
    assert_eq!(bad_url, 400, "{bad}");
    assert!(events(&app).await.is_empty());
}
