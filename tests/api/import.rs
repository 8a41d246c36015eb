//! `PUT /api/collections/import`: PocketBase's matching (id, then name),
//! `deleteMissing` (never system collections), its error envelope, views
//! created after the tables they read, and all-or-nothing: a refused import
//! leaves the whole schema and every record as it was.

use crate::helpers::{TestApp, spawn_app, spawn_app_configured, status_json};
use base64::Engine;
use ferrobase::schema::MAX_IMPORT_COLLECTIONS;
use reqwest::Method;
use serde_json::{Value, json};

const FAILED: &str = "Failed to import collections.";
const LOADING: &str = "An error occurred while loading the submitted data.";

async fn import(app: &TestApp, collections: Value, delete_missing: bool) -> (u16, Value) {
    let body = json!({"collections": collections, "deleteMissing": delete_missing});
    status_json(
        app.su(Method::PUT, "/api/collections/import", Some(body))
            .await,
    )
    .await
}

/// Every collection as the API lists it (the whole schema).
async fn schema(app: &TestApp) -> Value {
    let (status, body) = status_json(
        app.su(Method::GET, "/api/collections?perPage=500", None)
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["items"].clone()
}

async fn collection(app: &TestApp, name: &str) -> (u16, Value) {
    status_json(
        app.su(Method::GET, &format!("/api/collections/{name}"), None)
            .await,
    )
    .await
}

fn field_names(c: &Value) -> Vec<String> {
    c["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| f["name"].as_str().expect("name").to_owned())
        .collect()
}

async fn posts_with_a_record(app: &TestApp) -> Value {
    let posts = app
        .create_collection_ok(json!({
            "name": "posts", "listRule": "", "viewRule": "",
            "fields": [{"name": "title", "type": "text"}, {"name": "views", "type": "number"}]
        }))
        .await;
    app.create_record_ok("posts", json!({"title": "kept", "views": 3}))
        .await;
    posts
}

#[tokio::test]
async fn an_import_creates_and_updates_collections_and_answers_204() {
    let app = spawn_app().await;
    let posts = posts_with_a_record(&app).await;

    let (status, body) = import(
        &app,
        json!([
            {"name": "posts", "fields": [{"name": "title", "type": "text"}, {"name": "body", "type": "editor"}]},
            {"id": "pbc_tags00000001", "name": "tags", "type": "base", "fields": [
                {"name": "label", "type": "text", "required": true},
                {"name": "post", "type": "relation", "collectionId": posts["id"], "maxSelect": 1}
            ]}
        ]),
        false,
    )
    .await;

    assert_eq!(status, 204, "{body}");
    let (_, posts_after) = collection(&app, "posts").await;
    assert_eq!(
        posts_after["id"], posts["id"],
        "matched by name, not recreated"
    );
    assert_eq!(
        field_names(&posts_after),
        ["id", "title", "body", "views"],
        "without deleteMissing the fields left out stay"
    );
    let (status, tags) = collection(&app, "pbc_tags00000001").await;
    assert_eq!(status, 200, "created with its own id: {tags}");
    let (_, list) = status_json(app.list_records("posts", &[], None).await).await;
    assert_eq!(list["items"][0]["title"], "kept", "data survives: {list}");
    assert_eq!(list["items"][0]["views"], 3, "{list}");
}

#[tokio::test]
async fn a_field_sent_without_its_id_keeps_its_column_and_data() {
    let app = spawn_app().await;
    posts_with_a_record(&app).await;

    let (status, body) = import(
        &app,
        json!([{"name": "posts", "fields": [
            {"name": "title", "type": "text", "max": 50},
            {"name": "views", "type": "number"}
        ]}]),
        true,
    )
    .await;

    assert_eq!(status, 204, "{body}");
    let (_, list) = status_json(app.list_records("posts", &[], None).await).await;
    assert_eq!(
        list["items"][0]["title"], "kept",
        "same name and type: same field: {list}"
    );
}

#[tokio::test]
async fn delete_missing_drops_left_out_collections_and_fields_but_never_system_ones() {
    let app = spawn_app().await;
    let posts = posts_with_a_record(&app).await;
    app.create_collection_ok(
        json!({"name": "notes", "fields": [{"name": "text", "type": "text"}]}),
    )
    .await;
    app.create_record_ok("notes", json!({"text": "gone"})).await;
    let system_before: Vec<Value> = schema(&app)
        .await
        .as_array()
        .expect("items")
        .iter()
        .filter(|c| c["system"] == true)
        .cloned()
        .collect();

    let (status, body) = import(
        &app,
        json!([{"id": posts["id"], "name": "posts", "fields": [{"name": "title", "type": "text"}]}]),
        true,
    )
    .await;

    assert_eq!(status, 204, "{body}");
    let after = schema(&app).await;
    let names: Vec<&str> = after
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(!names.contains(&"notes"), "notes was left out: {names:?}");
    assert!(
        !names.contains(&"users"),
        "users is not a system collection: {names:?}"
    );
    for system in &system_before {
        let (status, now) = collection(&app, system["id"].as_str().expect("id")).await;
        assert_eq!(
            status, 200,
            "system collection {} must stay",
            system["name"]
        );
        assert_eq!(
            now["fields"], system["fields"],
            "{} untouched",
            system["name"]
        );
    }
    let (_, posts_after) = collection(&app, "posts").await;
    assert_eq!(
        field_names(&posts_after),
        ["id", "title"],
        "views field dropped"
    );
    let (status, _) = status_json(app.list_records("notes", &[], None).await).await;
    assert_eq!(status, 404, "the notes table and its records are gone");
    let (status, body) = status_json(
        app.su(Method::GET, "/api/collections/_superusers/records", None)
            .await,
    )
    .await;
    assert_eq!(status, 200, "superusers can still sign in and list: {body}");
}

#[tokio::test]
async fn a_failing_collection_anywhere_in_the_import_changes_nothing_at_all() {
    let app = spawn_app().await;
    let posts = posts_with_a_record(&app).await;
    app.create_collection_ok(
        json!({"name": "notes", "fields": [{"name": "text", "type": "text"}]}),
    )
    .await;
    let before = schema(&app).await;
    let good_first = json!({"name": "posts", "fields": [{"name": "title", "type": "text"}]});
    let new_table = json!({"name": "fresh", "fields": [{"name": "a", "type": "text"}]});
    let cases = [
        (
            json!([good_first, new_table, {"name": "bad name"}]),
            "an invalid name last",
        ),
        (
            json!([new_table, {"name": "x", "fields": [{"name": "a", "type": "nope"}]}, good_first]),
            "an unknown field type in the middle",
        ),
        (
            json!([new_table, {"name": "rel", "fields": [{"name": "r", "type": "relation", "collectionId": "pbc_missing"}]}]),
            "a relation to nothing",
        ),
        (
            json!([new_table, {"name": "ruled", "listRule": "nosuchfield = 1"}]),
            "a rule naming an unknown field",
        ),
        (
            json!([new_table, {"name": "v", "type": "view", "viewQuery": "select id from nowhere"}]),
            "a view reading a missing table",
        ),
        (
            json!([new_table, {"name": "v", "type": "view", "viewQuery": "delete from posts"}]),
            "a view that writes",
        ),
        (
            json!([new_table, {"name": "notes"}, {"name": "NOTES"}]),
            "one name twice (any case)",
        ),
        (
            json!([new_table, {"id": posts["id"], "name": "a1"}, {"id": posts["id"], "name": "a2"}]),
            "one id twice",
        ),
        (
            json!([good_first, {"name": "posts2", "fields": [{"name": "title", "type": "text"}], "indexes": ["CREATE INDEX idx_x ON posts2 (nope)"]}]),
            "an index on a missing column",
        ),
        (
            json!([new_table, {"name": "_superusers", "type": "base"}]),
            "_superusers turned into a base collection",
        ),
        (
            json!([new_table, {"id": "pbc_3142635823", "name": "admins"}]),
            "_superusers renamed",
        ),
        (
            json!([new_table, {"name": "_mfas", "type": "base", "id": "pbc_new_mfas"}]),
            "a new collection named like a system one",
        ),
    ];
    for (collections, why) in cases {
        for delete_missing in [false, true] {
            let (status, body) = import(&app, collections.clone(), delete_missing).await;

            assert_eq!(
                status, 400,
                "{why} (deleteMissing {delete_missing}): {body}"
            );
            assert_eq!(body["message"], FAILED, "{why}: {body}");
            assert_eq!(
                body["data"]["collections"]["code"], "validation_collections_import_failure",
                "{why}: {body}"
            );
            assert_eq!(schema(&app).await, before, "{why}: nothing may change");
        }
    }
    let (_, list) = status_json(app.list_records("posts", &[], None).await).await;
    assert_eq!(list["items"][0]["views"], 3, "records untouched: {list}");
}

#[tokio::test]
async fn a_validation_failure_names_the_collection_as_pocketbase_does() {
    let app = spawn_app().await;

    let (status, body) = import(
        &app,
        json!([{"name": "bad name", "id": "pbc_bad0000001"}]),
        false,
    )
    .await;

    assert_eq!(status, 400, "{body}");
    let message = body["data"]["collections"]["message"]
        .as_str()
        .expect("message");
    assert!(
        message
            .starts_with("Data validations failed for collection \"bad name\" (pbc_bad0000001):\n"),
        "{message}"
    );
    assert!(
        message.contains("\"name\""),
        "the failing key is named: {message}"
    );
}

#[tokio::test]
async fn an_empty_or_malformed_import_is_refused_before_anything_runs() {
    let app = spawn_app().await;
    let before = schema(&app).await;

    for (body, message, why) in [
        (
            json!({"collections": [], "deleteMissing": true}),
            "An error occurred while validating the submitted data.",
            "an empty list (deleteMissing would wipe all)",
        ),
        (
            json!({"deleteMissing": true}),
            "An error occurred while validating the submitted data.",
            "no list",
        ),
        (json!({"collections": "posts"}), LOADING, "a string"),
        (json!({"collections": [1, 2]}), LOADING, "numbers"),
        (
            json!({"collections": [{"name": "a"}], "deleteMissing": "yes"}),
            LOADING,
            "a string flag",
        ),
        (
            json!({"collections": [{"name": "a", "fields": "x"}]}),
            FAILED,
            "fields not a list",
        ),
        (
            json!({"collections": [{"name": "a", "listRule": 5}]}),
            FAILED,
            "a numeric rule",
        ),
    ] {
        let (status, answer) = status_json(
            app.su(Method::PUT, "/api/collections/import", Some(body))
                .await,
        )
        .await;

        assert_eq!(status, 400, "{why}: {answer}");
        assert_eq!(answer["message"], message, "{why}: {answer}");
        if message != LOADING {
            assert!(answer["data"]["collections"].is_object(), "{why}: {answer}");
        }
    }
    assert_eq!(schema(&app).await, before, "nothing changed");
}

#[tokio::test]
async fn only_a_live_superuser_may_import() {
    let app = spawn_app().await;
    let (status, user) = status_json(
        app.request(
            Method::POST,
            "/api/collections/users/records",
            None,
            Some(json!({"email": "u@example.com", "password": "secret-pass-1", "passwordConfirm": "secret-pass-1"})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{user}");
    let user_token = app
        .login_as("users", "u@example.com", "secret-pass-1")
        .await;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = app.superuser_token.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&engine.decode(parts[1]).expect("b64")).expect("claims");
    claims["exp"] = json!(4_102_444_800u64);
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        engine.encode(serde_json::to_vec(&claims).expect("json")),
        parts[2]
    );
    let before = schema(&app).await;
    let body = json!({"collections": [{"name": "users", "listRule": ""}], "deleteMissing": true});

    for (token, expected, who) in [
        (None, 401, "a guest"),
        (Some(user_token.as_str()), 403, "a user"),
        (Some(forged.as_str()), 401, "a forged superuser token"),
        (Some("garbage"), 401, "garbage"),
    ] {
        let (status, answer) = status_json(
            app.request(
                Method::PUT,
                "/api/collections/import",
                token,
                Some(body.clone()),
            )
            .await,
        )
        .await;

        assert_eq!(status, expected, "{who}: {answer}");
    }
    assert_eq!(schema(&app).await, before, "nothing changed");
}

#[tokio::test]
async fn superusers_keep_password_sign_in_whatever_the_import_says() {
    let app = spawn_app().await;

    let (status, body) = import(
        &app,
        json!([{"name": "_superusers", "passwordAuth": {"enabled": false}, "oauth2": {"enabled": true}}]),
        false,
    )
    .await;

    assert_eq!(status, 204, "{body}");
    let (_, su) = collection(&app, "_superusers").await;
    assert_eq!(su["passwordAuth"]["enabled"], true, "{su}");
    assert_ne!(su["oauth2"]["enabled"], true, "{su}");
    let (status, body) = status_json(
        app.update_collection("_superusers", json!({"passwordAuth": {"enabled": false}}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["passwordAuth"]["enabled"], true,
        "a PATCH cannot either: {body}"
    );
    app.login_as(
        "_superusers",
        crate::helpers::SU_EMAIL,
        crate::helpers::SU_PASSWORD,
    )
    .await;
}

#[tokio::test]
async fn views_are_created_after_the_tables_they_read_and_follow_their_changes() {
    let app = spawn_app().await;
    posts_with_a_record(&app).await;
    app.create_collection_ok(
        json!({"name": "titles", "type": "view", "viewQuery": "select id, title from posts"}),
    )
    .await;

    let (status, body) = import(
        &app,
        json!([
            {"name": "titles", "type": "view", "viewQuery": "select id, headline from posts", "listRule": ""},
            {"name": "counts", "type": "view", "viewQuery": "select id, count(*) as n from authors group by id", "listRule": ""},
            {"name": "authors", "fields": [{"name": "name", "type": "text"}]},
            {"name": "posts", "fields": [{"name": "headline", "type": "text"}, {"name": "views", "type": "number"}]}
        ]),
        true,
    )
    .await;

    assert_eq!(status, 204, "{body}");
    let (_, titles) = collection(&app, "titles").await;
    assert_eq!(field_names(&titles), ["id", "headline"], "{titles}");
    let (status, list) = status_json(app.list_records("titles", &[], None).await).await;
    assert_eq!(status, 200, "{list}");
    let (status, _) = collection(&app, "counts").await;
    assert_eq!(status, 200, "a view listed before its table");
}

#[tokio::test]
async fn a_payload_past_the_body_limit_or_the_collection_limit_is_refused() {
    let app = spawn_app_configured(|c| c.server.max_body_bytes = 64 * 1024).await;
    let list = |n: usize| -> Value {
        (0..n)
            .map(|i| json!({"name": format!("c{i}"), "fields": [{"name": "t", "type": "text"}]}))
            .collect()
    };
    let big = app.su(
        Method::PUT,
        "/api/collections/import",
        Some(json!({"collections": list(2000)})),
    );
    let (status, body) = status_json(big.await).await;
    assert_eq!(status, 413, "{body}");

    let app = spawn_app().await;
    let before = schema(&app).await;
    let names: Vec<Value> = (0..=MAX_IMPORT_COLLECTIONS)
        .map(|i| json!({"name": format!("c{i}")}))
        .collect();
    let (status, body) = import(&app, Value::Array(names), false).await;

    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["data"]["collections"]["code"],
        "validation_collections_import_failure"
    );
    assert_eq!(schema(&app).await, before, "nothing changed");
}
