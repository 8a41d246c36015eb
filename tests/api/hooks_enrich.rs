//! `onRecordEnrich` on every record answer PocketBase enriches: create and
//! update answers, the record of an auth response, realtime messages.
//! Fixtures: `fixtures/pb_hooks_enrich/`.

use crate::helpers::{TestApp, spawn_app_configured, status_json};
use crate::realtime::{EVENT_WAIT, SILENCE_WAIT, Sse};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::PathBuf;

const PASSWORD: &str = "password123";

async fn app_with_enrich_hooks() -> TestApp {
    app_with_hooks_in("tests/api/fixtures/pb_hooks_enrich").await
}

/// The notes collection with the hook files of `dir` (none if it is missing).
async fn app_with_hooks_in(dir: &'static str) -> TestApp {
    let app = spawn_app_configured(move |config| {
        config.hooks.dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dir);
        config.hooks.timeout_ms = 1_000;
        config.hooks.pool_size = 1;
    })
    .await;
    app.create_collection_ok(json!({
        "name": "notes", "listRule": "", "viewRule": "", "createRule": "",
        "updateRule": "", "deleteRule": "",
        "fields": [{"name": "title", "type": "text"}, {"name": "slug", "type": "text"},
                   {"name": "secret", "type": "text", "hidden": true},
                   {"name": "author", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1}]
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

#[tokio::test]
async fn impersonate_and_hook_built_auth_answers_are_enriched_as_the_record_logging_in() {
    let app = app_with_enrich_hooks().await;
    let (alice, _) = user(&app, "alice@example.com").await;
    let su = app.superuser_token.clone();

    let (status, impersonated) = send(
        &app,
        Method::POST,
        &format!("/api/collections/users/impersonate/{alice}"),
        Some(&su),
        json!({}),
    )
    .await;
    let (built, answer) = send(
        &app,
        Method::POST,
        "/enrich/token",
        Some(&su),
        json!({"email": "alice@example.com"}),
    )
    .await;

    assert_eq!(status, 200, "{impersonated}");
    assert_eq!(built, 200, "{answer}");
    for body in [&impersonated, &answer] {
        let record = &body["record"];
        assert_eq!(
            record["whoami"],
            alice.as_str(),
            "e.auth is the record logging in, not the superuser asking: {body}"
        );
        for secret in ["password", "tokenKey"] {
            assert!(record.get(secret).is_none(), "{secret}: {body}");
        }
        assert!(body["token"].is_string(), "{body}");
    }
}

#[tokio::test]
async fn a_hook_built_auth_answer_stays_superuser_only_and_a_throwing_enrich_refuses_it() {
    let app = app_with_enrich_hooks().await;
    let (_, alice_token) = user(&app, "alice@example.com").await;
    app.create_record_ok(
        "users",
        json!({"email": "boom@example.com", "name": "boom", "password": PASSWORD, "passwordConfirm": PASSWORD}),
    )
    .await;
    let su = app.superuser_token.clone();

    for (token, why) in [
        (None, "a guest"),
        (Some(alice_token.as_str()), "a user"),
        (Some("forged.token.value"), "a forged token"),
    ] {
        let (status, body) = send(
            &app,
            Method::POST,
            "/enrich/token",
            token,
            json!({"email": "alice@example.com"}),
        )
        .await;
        assert!(
            (400..500).contains(&status) && body.get("token").is_none(),
            "{why}: {status} {body}"
        );
    }
    let (status, body) = send(
        &app,
        Method::POST,
        "/enrich/token?expand=x",
        Some(&su),
        json!({"email": "boom@example.com"}),
    )
    .await;
    assert_eq!(status, 400, "the enrich hook threw: {body}");
    assert_eq!(body["message"], "Not enriched.", "{body}");
    assert!(body.get("token").is_none(), "{body}");
}

/// Opens a stream subscribed to `notes/*` with `token`.
async fn subscriber(app: &TestApp, token: Option<&str>) -> Sse {
    let sse = Sse::open(app).await;
    let response = app.subscribe(&sse.client_id, &["notes/*"], token).await;
    assert_eq!(response.status(), 204, "subscribed");
    sse
}

/// The records of the `notes/*` events a stream receives within the wait.
async fn received(sse: &mut Sse) -> Vec<Value> {
    sse.drain(SILENCE_WAIT)
        .await
        .into_iter()
        .filter(|e| e.name == "notes/*")
        .map(|e| e.data["record"].clone())
        .collect()
}

#[tokio::test]
async fn realtime_records_are_enriched_per_subscriber_and_hidden_fields_stay_hidden() {
    let app = app_with_enrich_hooks().await;
    let (alice, alice_token) = user(&app, "alice@example.com").await;
    let su = app.superuser_token.clone();
    let mut guest = subscriber(&app, None).await;
    let mut user = subscriber(&app, Some(&alice_token)).await;
    let mut superuser = subscriber(&app, Some(&su)).await;

    let (status, _) = status_json(
        app.create_record("notes", json!({"title": "t", "slug": "s", "secret": "s3"}))
            .await,
    )
    .await;
    assert_eq!(status, 200);

    for (sse, viewer, secret, why) in [
        (&mut guest, Some("guest"), None, "a guest"),
        (
            &mut user,
            Some(alice.as_str()),
            None,
            "a user: not unhidden for users",
        ),
        (
            &mut superuser,
            None,
            Some("s3"),
            "a superuser: unhidden by name",
        ),
    ] {
        let records = received(sse).await;
        assert_eq!(records.len(), 1, "{why}: {records:?}");
        let record = &records[0];
        match viewer {
            Some(viewer) => assert_eq!(record["viewer"], viewer, "{why}: e.auth: {record}"),
            None => assert!(record["viewer"].is_string(), "{why}: {record}"),
        }
        assert!(
            record.get("slug").is_none(),
            "{why}: hidden by the hook: {record}"
        );
        assert_eq!(record["secret"].as_str(), secret, "{why}: {record}");
    }
}

#[tokio::test]
async fn a_throwing_or_spinning_enrich_hook_skips_the_realtime_event_and_stalls_nothing() {
    let app = app_with_enrich_hooks().await;
    let mut guest = subscriber(&app, None).await;

    for (title, expected) in [("boom", 400), ("spin", 500)] {
        let (status, body) =
            status_json(app.create_record("notes", json!({"title": title})).await).await;
        assert_eq!(status, expected, "{title}: the create answer fails: {body}");
    }
    let (status, body) =
        status_json(app.create_record("notes", json!({"title": "fine"})).await).await;
    assert_eq!(status, 200, "the server keeps serving: {body}");

    let records = received(&mut guest).await;
    let titles: Vec<&str> = records.iter().filter_map(|r| r["title"].as_str()).collect();
    assert_eq!(
        titles,
        ["fine"],
        "failed enrichments are skipped, later events arrive: {records:?}"
    );
}

#[tokio::test]
async fn realtime_auth_records_never_show_password_or_token_key_even_when_unhidden_by_name() {
    let app = app_with_enrich_hooks().await;
    let (alice, alice_token) = user(&app, "alice@example.com").await;
    let sse = Sse::open(&app).await;
    let topic = format!("users/{alice}");
    let response = app
        .subscribe(&sse.client_id, &[topic.as_str()], Some(&alice_token))
        .await;
    assert_eq!(response.status(), 204);
    let mut sse = sse;

    let path = format!("/api/collections/users/records/{alice}");
    let (status, _) = send(
        &app,
        Method::PATCH,
        &path,
        Some(&alice_token),
        json!({"name": "A"}),
    )
    .await;
    assert_eq!(status, 200);

    let events = sse.drain(SILENCE_WAIT).await;
    let records: Vec<&Value> = events
        .iter()
        .filter(|e| e.name == topic)
        .map(|e| &e.data["record"])
        .collect();
    assert_eq!(records.len(), 1, "{events:?}");
    assert_eq!(
        records[0]["whoami"],
        alice.as_str(),
        "e.auth is the subscriber: {}",
        records[0]
    );
    for secret in ["password", "tokenKey"] {
        assert!(records[0].get(secret).is_none(), "{secret}: {}", records[0]);
    }
}

#[tokio::test]
async fn batch_answers_are_enriched_for_the_batch_caller() {
    let app = app_with_enrich_hooks().await;
    let (alice, alice_token) = user(&app, "alice@example.com").await;
    let (status, _) = status_json(
        app.su(
            Method::PATCH,
            "/api/settings",
            Some(json!({"batch": {"enabled": true}})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    let url = "/api/collections/notes/records";

    let (status, body) = send(
        &app,
        Method::POST,
        "/api/batch",
        Some(&alice_token),
        json!({"requests": [
            {"method": "POST", "url": url, "body": {"title": "a", "slug": "s", "secret": "s3"}},
            {"method": "POST", "url": format!("{url}?fields=title,viewer"), "body": {"title": "b"}},
        ]}),
    )
    .await;

    assert_eq!(status, 200, "{body}");
    let first = &body[0]["body"];
    assert_eq!(
        first["viewer"],
        alice.as_str(),
        "e.auth is the caller: {body}"
    );
    assert!(first.get("slug").is_none(), "hidden by the hook: {body}");
    assert!(
        first.get("secret").is_none(),
        "not unhidden for users: {body}"
    );
    assert_eq!(
        body[1]["body"],
        json!({"title": "b", "viewer": alice}),
        "fields picks from the enriched record: {body}"
    );
}

#[tokio::test]
async fn expanded_relation_records_are_enriched_by_their_own_collections_hooks() {
    let app = app_with_enrich_hooks().await;
    let (alice, alice_token) = user(&app, "alice@example.com").await;
    let (boom, boom_token) = user(&app, "boom@example.com").await;
    let path = format!("/api/collections/users/records/{boom}");
    let (status, _) = send(
        &app,
        Method::PATCH,
        &path,
        Some(&boom_token),
        json!({"name": "boom"}),
    )
    .await;
    assert_eq!(status, 200);
    let url = "/api/collections/notes/records?expand=author";

    let (status, created) = send(
        &app,
        Method::POST,
        url,
        Some(&alice_token),
        json!({"title": "t", "author": alice}),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let id = created["id"].as_str().expect("id");
    let view = format!("/api/collections/notes/records/{id}?expand=author");
    let (status, viewed) = status_json(
        app.request(Method::GET, &view, Some(&alice_token), None)
            .await,
    )
    .await;
    assert_eq!(status, 200, "{viewed}");

    for (body, place) in [(&created, "create"), (&viewed, "view")] {
        let author = &body["expand"]["author"];
        assert_eq!(
            author["whoami"],
            alice.as_str(),
            "{place}: the users hook ran: {body}"
        );
        for secret in ["password", "tokenKey"] {
            assert!(author.get(secret).is_none(), "{place}: {secret}: {body}");
        }
        assert_eq!(
            body["viewer"],
            alice.as_str(),
            "{place}: the notes hook ran: {body}"
        );
    }

    let (status, body) = send(
        &app,
        Method::POST,
        url,
        Some(&boom_token),
        json!({"title": "t", "author": boom}),
    )
    .await;
    assert_eq!(
        status, 200,
        "a failing expanded enrichment is not the answer's failure: {body}"
    );
    assert!(
        body["expand"].get("author").is_none(),
        "the relation is dropped: {body}"
    );
}

#[tokio::test]
async fn a_field_unhidden_for_guests_reaches_them_and_the_delete_event_still_arrives() {
    let app = app_with_enrich_hooks().await;
    let mut guest = subscriber(&app, None).await;
    let created = app
        .create_record_ok("notes", json!({"title": "public-secret", "secret": "s3"}))
        .await;
    let id = created["id"].as_str().expect("id");
    // The unhidden value is read when the event is rendered: wait for it
    // before the delete (see the README on this race).
    let create = guest.next(EVENT_WAIT).await.expect("create event");
    assert_eq!(create.data["action"], "create", "{create:?}");
    assert_eq!(
        create.data["record"]["secret"], "s3",
        "unhidden by name for guests, as PocketBase does"
    );

    let response = app.delete_record("notes", id).await;
    assert_eq!(response.status(), 204);

    let delete = guest
        .next(EVENT_WAIT)
        .await
        .expect("the delete event is not lost");
    assert_eq!(delete.data["action"], "delete", "{delete:?}");
    assert_eq!(delete.data["record"]["id"], id, "{delete:?}");
}
