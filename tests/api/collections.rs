//! The collections API.

use crate::helpers::{spawn_app, status_json};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn a_name_only_collection_gets_the_pocketbase_id_and_only_an_id_field() {
    let app = spawn_app().await;

    let created = app.create_collection_ok(json!({"name": "tags"})).await;

    assert_eq!(
        created["id"], "pbc_1219621782",
        "id is pbc_ + crc32(type + name)"
    );
    assert_eq!(created["type"], "base");
    assert_eq!(created["fields"].as_array().map(Vec::len), Some(1));
    assert_eq!(created["fields"][0]["id"], "text3208210256");
    assert_eq!(
        created["listRule"],
        serde_json::Value::Null,
        "rules default to superusers only"
    );
}

#[tokio::test]
async fn the_superusers_collection_has_the_id_the_sdk_hard_codes() {
    let app = spawn_app().await;

    let (status, body) = status_json(
        app.su(Method::GET, "/api/collections/_superusers", None)
            .await,
    )
    .await;

    assert_eq!(status, 200);
    assert_eq!(body["id"], "pbc_3142635823");
    assert!(
        !body.to_string().contains("secret"),
        "token secrets are never returned: {body}"
    );
}

#[tokio::test]
async fn collections_can_be_filtered_and_sorted_by_name_and_type() {
    let app = spawn_app().await;
    app.create_collection_ok(json!({"name": "alpha"})).await;
    app.create_collection_ok(json!({"name": "beta"})).await;
    app.create_collection_ok(json!({"name": "members", "type": "auth"}))
        .await;

    let (status, body) = status_json(
        app.su(
            Method::GET,
            "/api/collections?filter=type%3D%27base%27%20%26%26%20system%3Dfalse&sort=-name",
            None,
        )
        .await,
    )
    .await;

    assert_eq!(status, 200, "{body}");
    let names: Vec<&str> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, vec!["beta", "alpha"]);
    assert_eq!(body["totalItems"], 2);
}

#[tokio::test]
async fn collection_names_are_unique_regardless_of_case() {
    let app = spawn_app().await;
    app.create_collection_ok(json!({"name": "posts"})).await;

    let (status, body) = status_json(app.create_collection(json!({"name": "POSTS"})).await).await;

    assert_eq!(status, 400);
    assert_eq!(
        body["data"]["name"]["code"], "validation_collection_name_exists",
        "{body}"
    );
}

#[tokio::test]
async fn a_field_error_is_reported_under_its_index() {
    let app = spawn_app().await;

    let (status, body) =
        status_json(app.create_collection(json!({"name": "x", "fields": [{"name": "t", "type": "text"}, {"name": "r", "type": "relation"}]})).await)
            .await;

    assert_eq!(status, 400);
    assert_eq!(body["message"], "Failed to create collection.");
    assert_eq!(
        body["data"]["fields"]["1"]["collectionId"]["code"], "validation_required",
        "{body}"
    );
}

#[tokio::test]
async fn rules_are_checked_when_saved() {
    let app = spawn_app().await;

    let (status, body) = status_json(
        app.create_collection(json!({"name": "x", "listRule": "id = ("}))
            .await,
    )
    .await;

    assert_eq!(status, 400);
    assert_eq!(
        body["data"]["listRule"]["code"], "validation_invalid_rule",
        "{body}"
    );
}

#[tokio::test]
async fn renaming_a_collection_keeps_its_records() {
    let app = spawn_app().await;
    app.create_collection_ok(json!({"name": "old", "fields": [{"name": "t", "type": "text"}]}))
        .await;
    let rec = app.create_record_ok("old", json!({"t": "kept"})).await;

    let (status, _) = status_json(app.update_collection("old", json!({"name": "new"})).await).await;
    let (view_status, view) = status_json(
        app.get_record(
            "new",
            rec["id"].as_str().expect("id"),
            Some(&app.superuser_token.clone()),
        )
        .await,
    )
    .await;

    assert_eq!(status, 200);
    assert_eq!(view_status, 200);
    assert_eq!(view["t"], "kept");
    assert_eq!(view["collectionName"], "new");
}

#[tokio::test]
async fn indexes_are_applied_and_unique_ones_enforced() {
    let app = spawn_app().await;
    app.create_collection_ok(json!({
        "name": "slugs",
        "fields": [{"name": "slug", "type": "text"}],
        "indexes": ["CREATE UNIQUE INDEX `idx_slug` ON `slugs` (`slug`)"]
    }))
    .await;
    app.create_record_ok("slugs", json!({"slug": "a"})).await;

    let (status, body) = status_json(app.create_record("slugs", json!({"slug": "a"})).await).await;

    assert_eq!(status, 400);
    assert_eq!(
        body["data"]["slug"]["code"], "validation_not_unique",
        "{body}"
    );
}

#[tokio::test]
async fn deleting_a_referenced_collection_is_refused() {
    let app = spawn_app().await;
    let people = app.create_collection_ok(json!({"name": "people"})).await;
    app.create_collection_ok(json!({"name": "posts", "fields": [{"name": "author", "type": "relation", "collectionId": people["id"]}]})).await;

    let (status, body) = status_json(
        app.su(Method::DELETE, "/api/collections/people", None)
            .await,
    )
    .await;

    assert_eq!(status, 400);
    assert_eq!(
        body["message"],
        "Failed to delete collection probably due to existing reference in posts."
    );
}

#[tokio::test]
async fn system_collections_cannot_be_deleted() {
    let app = spawn_app().await;

    let (status, body) = status_json(
        app.su(Method::DELETE, "/api/collections/_superusers", None)
            .await,
    )
    .await;

    assert_eq!(status, 400);
    assert_eq!(body["message"], "Failed to delete collection.");
}

#[tokio::test]
async fn truncate_removes_every_record() {
    let app = spawn_app().await;
    app.create_collection_ok(json!({"name": "notes", "fields": [{"name": "t", "type": "text"}]}))
        .await;
    for i in 0..3 {
        app.create_record_ok("notes", json!({"t": i.to_string()}))
            .await;
    }

    let truncate = app
        .su(Method::DELETE, "/api/collections/notes/truncate", None)
        .await;
    let (_, list) = status_json(
        app.list_records("notes", &[], Some(&app.superuser_token.clone()))
            .await,
    )
    .await;

    assert_eq!(truncate.status(), 204);
    assert_eq!(list["totalItems"], 0);
}

#[tokio::test]
async fn the_collections_api_is_for_superusers_only() {
    let app = spawn_app().await;

    let guest = app
        .request(Method::GET, "/api/collections", None, None)
        .await;
    let garbage = app
        .request(
            Method::GET,
            "/api/collections",
            Some("Bearer garbage"),
            None,
        )
        .await;

    assert_eq!(guest.status(), 401);
    assert_eq!(garbage.status(), 401, "an invalid token is a guest");
}

#[tokio::test]
async fn a_collection_can_be_renamed_by_case_only() {
    let app = spawn_app().await;
    app.create_collection_ok(json!({"name": "posts", "fields": [{"name": "t", "type": "text"}]}))
        .await;
    app.create_record_ok("posts", json!({"t": "kept"})).await;

    let (status, body) = status_json(
        app.update_collection("posts", json!({"name": "Posts"}))
            .await,
    )
    .await;
    let (_, list) = status_json(
        app.su(Method::GET, "/api/collections/Posts/records", None)
            .await,
    )
    .await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "Posts");
    assert_eq!(list["totalItems"], 1);
}
