//! `onRecordEnrich` on every record answer PocketBase enriches: create and
//! update answers, the record of an auth response, realtime messages.
//! Fixtures: `fixtures/pb_hooks_enrich/`.

use crate::helpers::{TestApp, spawn_app_configured, status_json};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::PathBuf;

const PASSWORD: &str = "password123";

async fn app_with_enrich_hooks() -> TestApp {
    let app = spawn_app_configured(|config| {
        config.hooks.dir =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/api/fixtures/pb_hooks_enrich");
        config.hooks.timeout_ms = 1_000;
        config.hooks.pool_size = 1;
    })
    .await;
    app.create_collection_ok(json!({
        "name": "notes", "listRule": "", "viewRule": "", "createRule": "",
        "updateRule": "", "deleteRule": "",
        "fields": [{"name": "title", "type": "text"}, {"name": "slug", "type": "text"},
                   {"name": "secret", "type": "text", "hidden": true}]
    }))
    .await;
    app
}

/// Creates a user and answers (id, token).
async fn user(app: &TestApp, email: &str) -> (String, String) {
    let created = app
        .create_record_ok(
            "users",
            json!({"email": email, "password": PASSWORD, "passwordConfirm": PASSWORD}),
        )
        .await;
    let id = created["id"].as_str().expect("id").to_owned();
    (id, app.login_as("users", email, PASSWORD).await)
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    status_json(app.request(method, path, token, Some(body)).await).await
}

#[tokio::test]
async fn create_and_update_answers_are_enriched_for_their_caller_only() {
    let app = app_with_enrich_hooks().await;
    let (alice, alice_token) = user(&app, "alice@example.com").await;
    let su = app.superuser_token.clone();
    let note = json!({"title": "t", "slug": "s", "secret": "s3"});

    for (token, viewer, secret, why) in [
        (None, "guest", None, "a guest"),
        (
            Some(alice_token.as_str()),
            alice.as_str(),
            None,
            "a user: not unhidden for users",
        ),
        (
            Some(su.as_str()),
            "",
            Some("s3"),
            "a superuser: unhidden by name",
        ),
    ] {
        let (status, created) = send(
            &app,
            Method::POST,
            "/api/collections/notes/records",
            token,
            note.clone(),
        )
        .await;
        assert_eq!(status, 200, "{why}: {created}");
        let id = created["id"].as_str().expect("id");
        let path = format!("/api/collections/notes/records/{id}");
        let (status, updated) =
            send(&app, Method::PATCH, &path, token, json!({"title": "u"})).await;
        assert_eq!(status, 200, "{why}: {updated}");

        for (body, place) in [(&created, "create"), (&updated, "update")] {
            if viewer.is_empty() {
                assert!(body["viewer"].is_string(), "{why} ({place}): {body}");
            } else {
                assert_eq!(
                    body["viewer"], viewer,
                    "{why} ({place}): custom data: {body}"
                );
            }
            assert!(
                body.get("slug").is_none(),
                "{why} ({place}): hidden by the hook: {body}"
            );
            assert_eq!(body["secret"].as_str(), secret, "{why} ({place}): {body}");
        }
    }
}

#[tokio::test]
async fn a_throwing_enrich_hook_answers_its_error_on_create_after_the_write_as_pocketbase_does() {
    let app = app_with_enrich_hooks().await;

    let (status, body) = send(
        &app,
        Method::POST,
        "/api/collections/notes/records",
        None,
        json!({"title": "boom"}),
    )
    .await;

    assert_eq!(status, 400, "{body}");
    assert_eq!(body["message"], "Not enriched.", "{body}");
    assert!(body["data"].is_object(), "the error envelope: {body}");
    let (status, page) = status_json(app.list_records("notes", &[], None).await).await;
    assert_eq!(
        status, 400,
        "listing runs the same hook and fails the same way: {page}"
    );
}

#[tokio::test]
async fn a_timing_out_enrich_hook_on_create_answers_500_and_the_server_keeps_serving() {
    let app = app_with_enrich_hooks().await;

    let (status, body) = send(
        &app,
        Method::POST,
        "/api/collections/notes/records",
        None,
        json!({"title": "spin"}),
    )
    .await;
    assert_eq!(status, 500, "{body}");

    let (status, body) = send(
        &app,
        Method::POST,
        "/api/collections/notes/records",
        None,
        json!({"title": "fine"}),
    )
    .await;
    assert_eq!(status, 200, "the runtime was rebuilt: {body}");
    assert_eq!(body["viewer"], "guest", "{body}");
}

#[tokio::test]
async fn the_auth_response_record_is_enriched_as_its_owner_and_never_shows_secrets() {
    let app = app_with_enrich_hooks().await;
    let (alice, _) = user(&app, "alice@example.com").await;

    let (status, body) = send(
        &app,
        Method::POST,
        "/api/collections/users/auth-with-password",
        None,
        json!({"identity": "alice@example.com", "password": PASSWORD}),
    )
    .await;

    assert_eq!(status, 200, "{body}");
    let record = &body["record"];
    assert_eq!(
        record["whoami"],
        alice.as_str(),
        "e.auth is the record logging in: {body}"
    );
    assert_eq!(record["email"], "alice@example.com", "{body}");
    for secret in ["password", "tokenKey"] {
        assert!(
            record.get(secret).is_none(),
            "{secret} unhidden by name but never shown: {body}"
        );
    }
    assert!(body["token"].is_string(), "{body}");

    let token = body["token"].as_str().expect("token");
    let (status, refreshed) = send(
        &app,
        Method::POST,
        "/api/collections/users/auth-refresh",
        Some(token),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(refreshed["record"]["whoami"], alice.as_str(), "{refreshed}");
    assert!(refreshed["record"].get("tokenKey").is_none(), "{refreshed}");
}
