//! Record hooks on `POST /api/batch` members: each member runs its request
//! hook and the model hooks as it would alone, all in the batch's one
//! transaction; a hook that throws in any member fails the whole batch
//! (nothing kept, the member named), and the After…Success hooks only hear
//! of a committed batch. Fixtures: `fixtures/pb_hooks_batch/`.

use crate::helpers::{TestApp, spawn_app_configured, status_json};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::PathBuf;

async fn app_with_batch_hooks() -> TestApp {
    let app = spawn_app_configured(|config| {
        config.hooks.dir =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/api/fixtures/pb_hooks_batch");
        config.hooks.timeout_ms = 2_000;
        config.hooks.pool_size = 2;
    })
    .await;
    // items: everyone creates, only superusers update or delete.
    app.create_collection_ok(json!({
        "name": "items", "listRule": "", "viewRule": "", "createRule": "",
        "fields": [{"name": "title", "type": "text"}, {"name": "slug", "type": "text"},
                   {"name": "doc", "type": "file", "maxSelect": 1, "maxSize": 1000}]
    }))
    .await;
    app.create_collection_ok(json!({
        "name": "plain", "listRule": "", "viewRule": "", "createRule": "",
        "fields": [{"name": "title", "type": "text"}, {"name": "slug", "type": "text"}]
    }))
    .await;
    app.create_collection_ok(json!({
        "name": "events", "fields": [{"name": "text", "type": "text"}]
    }))
    .await;
    app.su(
        Method::PATCH,
        "/api/settings",
        Some(json!({"batch": {"enabled": true}})),
    )
    .await;
    app
}

fn create(collection: &str, title: &str) -> Value {
    json!({"method": "POST", "url": format!("/api/collections/{collection}/records"), "body": {"title": title}})
}

async fn batch(app: &TestApp, token: Option<&str>, requests: Vec<Value>) -> (u16, Value) {
    status_json(
        app.request(
            Method::POST,
            "/api/batch",
            token,
            Some(json!({ "requests": requests })),
        )
        .await,
    )
    .await
}

async fn su_batch(app: &TestApp, requests: Vec<Value>) -> (u16, Value) {
    let token = app.superuser_token.clone();
    batch(app, Some(&token), requests).await
}

/// Every value of `field` in `collection`, sorted.
async fn column(app: &TestApp, collection: &str, field: &str) -> Vec<String> {
    let path = format!("/api/collections/{collection}/records?perPage=200");
    let (status, body) = status_json(app.su(Method::GET, &path, None).await).await;
    assert_eq!(status, 200, "{body}");
    let mut out: Vec<String> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r[field].as_str().unwrap_or_default().to_owned())
        .collect();
    out.sort();
    out
}

async fn events(app: &TestApp) -> Vec<String> {
    column(app, "events", "text").await
}

/// The failed member of a batch answer: its index and its own answer.
fn failed_member(body: &Value) -> (String, Value) {
    let requests = body["data"]["requests"].as_object().expect("requests");
    assert_eq!(requests.len(), 1, "one member is named: {body}");
    let (index, item) = requests.iter().next().expect("one");
    assert_eq!(item["code"], "batch_request_failed", "{body}");
    (index.clone(), item["response"].clone())
}

#[tokio::test]
async fn batch_members_run_their_request_and_model_hooks_and_commit_together() {
    let app = app_with_batch_hooks().await;

    let (status, body) = su_batch(
        &app,
        vec![
            create("items", "a"),
            create("items", " b "),
            create("plain", "p"),
        ],
    )
    .await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["body"]["slug"], "m-a", "onRecordCreate ran: {body}");
    assert_eq!(
        body[1]["body"]["title"], "b",
        "the request hook trimmed it: {body}"
    );
    assert_eq!(
        body[2]["body"]["slug"], "plain-p",
        "model hook without request hook: {body}"
    );
    assert_eq!(column(&app, "items", "slug").await, ["m-a", "m-b"]);
    assert_eq!(
        events(&app).await,
        [
            "model a",
            "model b",
            "request a",
            "request b",
            "success a",
            "success b",
            "validate p slug=plain-p",
        ]
    );
}

#[tokio::test]
async fn a_request_hook_that_throws_in_one_member_fails_the_whole_batch() {
    let app = app_with_batch_hooks().await;

    let (status, body) = su_batch(
        &app,
        vec![
            create("plain", "p"),
            create("items", "a"),
            create("items", "refuse-request"),
        ],
    )
    .await;

    assert_eq!(status, 400, "{body}");
    assert_eq!(body["message"], "Batch transaction failed.");
    let (index, response) = failed_member(&body);
    assert_eq!(index, "2", "the member whose hook threw: {body}");
    assert_eq!(
        response,
        json!({"status": 400, "message": "Refused by the request hook.", "data": {}})
    );
    assert!(column(&app, "items", "title").await.is_empty());
    assert!(column(&app, "plain", "title").await.is_empty());
    assert_eq!(
        events(&app).await,
        ["error a"],
        "the hooks' own writes rolled back; the written member heard of the failure"
    );
}

#[tokio::test]
async fn a_model_hook_that_throws_fails_the_batch_at_its_member() {
    let app = app_with_batch_hooks().await;

    let (status, body) = su_batch(
        &app,
        vec![create("items", "a"), create("items", "refuse-model")],
    )
    .await;

    assert_eq!(status, 400, "{body}");
    let (index, response) = failed_member(&body);
    assert_eq!(index, "1", "{body}");
    assert_eq!(response["message"], "Refused by the model hook.", "{body}");
    assert!(column(&app, "items", "title").await.is_empty());
    assert_eq!(
        events(&app).await,
        ["error a"],
        "the failed member's own error hook ran inside the transaction and rolled back with it"
    );
}

#[tokio::test]
async fn a_hook_that_throws_after_next_rolls_the_batch_back() {
    let app = app_with_batch_hooks().await;

    let (status, body) = su_batch(
        &app,
        vec![create("items", "a"), create("items", "throw-after-next")],
    )
    .await;

    assert_eq!(status, 400, "{body}");
    let (index, response) = failed_member(&body);
    assert_eq!(index, "1", "{body}");
    assert_eq!(response["message"], "Refused after e.next().", "{body}");
    assert!(column(&app, "items", "title").await.is_empty());
    assert_eq!(events(&app).await, ["error a", "error throw-after-next"]);
}

#[tokio::test]
async fn a_request_hook_that_answers_itself_gives_its_members_answer_and_writes_nothing() {
    let app = app_with_batch_hooks().await;

    let (status, body) = su_batch(
        &app,
        vec![create("items", "own-answer"), create("items", "a")],
    )
    .await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0], json!({"status": 201, "body": {"own": true}}));
    assert_eq!(body[1]["status"], 200, "{body}");
    assert_eq!(column(&app, "items", "title").await, ["a"]);
}

#[tokio::test]
async fn update_and_delete_members_run_their_request_hooks() {
    let app = app_with_batch_hooks().await;
    let item = app.create_record_ok("items", json!({"title": "z"})).await;
    let url = format!(
        "/api/collections/items/records/{}",
        item["id"].as_str().expect("id")
    );

    let (refused, refusal) = su_batch(
        &app,
        vec![json!({"method": "PATCH", "url": url, "body": {"title": "refuse-update"}})],
    )
    .await;
    let (status, body) = su_batch(
        &app,
        vec![
            json!({"method": "PATCH", "url": url, "body": {"title": "z2"}}),
            json!({"method": "DELETE", "url": url}),
        ],
    )
    .await;

    assert_eq!(refused, 400, "{refusal}");
    let (index, response) = failed_member(&refusal);
    assert_eq!((index.as_str(), &response["status"]), ("0", &json!(403)));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["body"]["title"], "z2", "{body}");
    assert_eq!(body[1], json!({"status": 204, "body": null}));
    assert!(
        column(&app, "items", "title").await.is_empty(),
        "nothing kept"
    );
    let seen = events(&app).await;
    for expected in ["update-request z2", "delete-request z2"] {
        assert!(seen.iter().any(|e| e == expected), "{expected} in {seen:?}");
    }
}

#[tokio::test]
async fn a_guest_batch_with_hooks_cannot_pass_a_rule_it_fails_alone() {
    let app = app_with_batch_hooks().await;
    let item = app.create_record_ok("items", json!({"title": "z"})).await;
    let id = item["id"].as_str().expect("id");
    let url = format!("/api/collections/items/records/{id}");
    let events_before = events(&app).await;

    for (requests, why) in [
        (
            vec![
                create("items", "a"),
                json!({"method": "PATCH", "url": url, "body": {"title": "hacked"}}),
            ],
            "update is superusers only",
        ),
        (
            vec![
                create("items", "a"),
                json!({"method": "DELETE", "url": url}),
            ],
            "delete is superusers only",
        ),
        (
            vec![create("items", "a"), create("events", "forged")],
            "events have no create rule",
        ),
    ] {
        let (status, body) = batch(&app, None, requests).await;
        assert_eq!(status, 400, "{why}: {body}");
        let (index, response) = failed_member(&body);
        assert_eq!(index, "1", "{why}: {body}");
        assert!(
            [403, 404].contains(&response["status"].as_u64().unwrap_or(0)),
            "{why}: {body}"
        );
    }
    for token in ["not-a-token", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.forged"] {
        let (status, body) = batch(&app, Some(token), vec![create("events", "forged")]).await;
        assert!(
            (400..500).contains(&status),
            "forged token {token}: {status} {body}"
        );
    }

    assert_eq!(column(&app, "items", "title").await, ["z"], "nothing kept");
    let after: Vec<String> = events(&app)
        .await
        .into_iter()
        .filter(|e| !e.starts_with("error "))
        .collect();
    assert_eq!(
        after, events_before,
        "no hook write survived a refused batch (only the error hooks ran)"
    );
}

#[tokio::test]
async fn malformed_members_in_a_hooked_batch_are_refused_whole() {
    let app = app_with_batch_hooks().await;
    let huge = "x".repeat(200_000);

    for (member, why) in [
        (
            json!({"method": "POST", "url": "/api/collections/items/records", "body": "text"}),
            "body not an object",
        ),
        (
            json!({"method": "GET", "url": "/api/collections/items/records"}),
            "not a write",
        ),
        (
            json!({"method": "POST", "url": "/api/settings"}),
            "not a record URL",
        ),
        (
            json!({"method": "POST", "url": "/api/collections/nope/records"}),
            "unknown collection",
        ),
        (
            json!({"method": "POST", "url": "/api/collections/items/records?fields=%zz"}),
            "broken escape",
        ),
        (
            json!({"method": "POST", "url": "/api/collections/items/records", "body": {"title": huge}}),
            "huge title",
        ),
    ] {
        let (status, body) = su_batch(&app, vec![create("items", "a"), member]).await;
        assert!((400..500).contains(&status), "{why}: {status} {body}");
    }
    assert!(
        column(&app, "items", "title").await.is_empty()
            || column(&app, "items", "title")
                .await
                .iter()
                .all(|t| t.len() > 1000)
    );
}

#[tokio::test]
async fn a_later_member_sees_what_an_earlier_member_wrote() {
    let app = app_with_batch_hooks().await;
    let id = "batchitem000001";
    let url = format!("/api/collections/items/records/{id}");

    let (status, body) = su_batch(
        &app,
        vec![
            json!({"method": "POST", "url": "/api/collections/items/records", "body": {"id": id, "title": "first"}}),
            json!({"method": "PATCH", "url": url, "body": {"title": "second"}}),
            json!({"method": "PUT", "url": "/api/collections/items/records", "body": {"id": id, "title": "third"}}),
        ],
    )
    .await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body[2]["body"]["title"], "third",
        "the upsert updated: {body}"
    );
    assert_eq!(column(&app, "items", "title").await, ["third"]);
    let seen = events(&app).await;
    assert!(
        seen.iter().any(|e| e == "update-request second"),
        "the update hook saw the uncommitted record: {seen:?}"
    );
}

#[tokio::test]
async fn a_submitted_id_survives_the_create_hooks_alone_and_in_a_batch() {
    let app = app_with_batch_hooks().await;

    let alone = app
        .create_record_ok("items", json!({"id": "aloneitem000001", "title": "x"}))
        .await;
    let (status, body) = su_batch(
        &app,
        vec![
            json!({"method": "POST", "url": "/api/collections/plain/records",
                    "body": {"id": "plainitem000001", "title": "y"}}),
        ],
    )
    .await;

    assert_eq!(alone["id"], "aloneitem000001", "{alone}");
    assert_eq!(alone["slug"], "m-x", "{alone}");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["body"]["id"], "plainitem000001", "{body}");
}

#[tokio::test]
async fn on_record_validate_runs_before_each_create_and_update_and_a_throw_keeps_nothing() {
    let app = app_with_batch_hooks().await;

    let created = app.create_record_ok("plain", json!({"title": "v"})).await;
    let id = created["id"].as_str().expect("id");
    let patch = app.update_record("plain", id, json!({"title": "w"})).await;
    let (refused, refusal) = status_json(
        app.create_record("plain", json!({"title": "invalid"}))
            .await,
    )
    .await;
    let (batch_status, batch_body) =
        su_batch(&app, vec![create("plain", "x"), create("plain", "invalid")]).await;

    assert_eq!(patch.status(), 200);
    assert_eq!(refused, 400, "{refusal}");
    assert_eq!(
        refusal["message"], "Refused by the validate hook.",
        "{refusal}"
    );
    assert_eq!(batch_status, 400, "{batch_body}");
    let (index, response) = failed_member(&batch_body);
    assert_eq!(index, "1", "{batch_body}");
    assert_eq!(response["message"], "Refused by the validate hook.");
    assert_eq!(column(&app, "plain", "title").await, ["w"]);
    assert_eq!(
        events(&app).await,
        ["validate v slug=plain-v", "validate w slug=plain-v"],
        "it saw onRecordCreate's change; the refused writes left nothing"
    );
}

#[tokio::test]
async fn a_member_hook_that_runs_past_its_time_limit_fails_the_batch_and_the_server_keeps_serving()
{
    let app = app_with_batch_hooks().await;

    let (status, body) = su_batch(&app, vec![create("items", "a"), create("items", "spin")]).await;
    let after = app.create_record("items", json!({"title": "later"})).await;

    assert_eq!(status, 400, "{body}");
    let (index, response) = failed_member(&body);
    assert_eq!(index, "1", "{body}");
    assert_eq!(
        response["status"], 500,
        "a limit is a 500 without details: {body}"
    );
    assert_eq!(after.status(), 200, "the server keeps serving");
    assert_eq!(column(&app, "items", "title").await, ["later"]);
}

#[tokio::test]
async fn a_full_batch_of_hooked_members_commits_every_member() {
    let app = app_with_batch_hooks().await;
    let members: Vec<Value> = (0..50)
        .map(|i| create("items", &format!("n{i:02}")))
        .collect();

    let (status, body) = su_batch(&app, members).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body.as_array().map(Vec::len), Some(50));
    assert_eq!(column(&app, "items", "title").await.len(), 50);
    let seen = events(&app).await;
    assert_eq!(
        seen.iter().filter(|e| e.starts_with("success ")).count(),
        50
    );
}

/// A multipart batch: `titles` as item creates, a file for the first.
fn batch_with_file(titles: &[&str]) -> reqwest::multipart::Form {
    let requests: Vec<Value> = titles.iter().map(|t| create("items", t)).collect();
    let file = reqwest::multipart::Part::bytes(b"hello".to_vec())
        .file_name("a.txt")
        .mime_str("text/plain")
        .expect("mime");
    reqwest::multipart::Form::new()
        .part("requests.0.doc", file)
        .text("@jsonPayload", json!({ "requests": requests }).to_string())
}

#[tokio::test]
async fn a_hooked_batch_keeps_its_files_only_when_it_commits() {
    let app = app_with_batch_hooks().await;
    let token = app.superuser_token.clone();

    let refused = app
        .send_form(
            Method::POST,
            "/api/batch",
            Some(&token),
            batch_with_file(&["a", "refuse-request"]),
        )
        .await;
    let refused_status = refused.status();
    let files_after_refusal = app.stored_files();
    let (status, body) = status_json(
        app.send_form(
            Method::POST,
            "/api/batch",
            Some(&token),
            batch_with_file(&["b", "c"]),
        )
        .await,
    )
    .await;

    assert_eq!(refused_status, 400);
    assert!(files_after_refusal.is_empty(), "{files_after_refusal:?}");
    assert_eq!(status, 200, "{body}");
    let name = body[0]["body"]["doc"].as_str().expect("file name");
    assert!(name.starts_with('a') && name.ends_with(".txt"), "{body}");
    assert_eq!(app.stored_files().len(), 1, "{:?}", app.stored_files());
}
