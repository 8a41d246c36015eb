//! What PocketBase 0.40.6 gives a *new* collection: the scaffolds the admin
//! panel starts from and the options of a freshly created auth collection
//! (token durations, MFA, the five email templates), compared with answers
//! recorded from PocketBase itself (`fixtures/`).

use crate::helpers::{spawn_app, status_json};
use serde_json::{Value, json};

/// Replaces the random part of the scaffold's index names (PocketBase draws
/// a new one per request) so two answers can be compared.
fn without_index_ids(mut v: Value) -> Value {
    if let Some(indexes) = v["auth"]["indexes"].as_array_mut() {
        for index in indexes {
            let sql = index.as_str().unwrap_or_default();
            let masked: String = sql
                .split('`')
                .enumerate()
                .map(|(i, part)| match (i, part.rsplit_once('_')) {
                    (1, Some((head, _))) => format!("{head}_RANDOM"),
                    _ => part.to_owned(),
                })
                .collect::<Vec<_>>()
                .join("`");
            *index = json!(masked);
        }
    }
    v
}

#[tokio::test]
async fn a_new_auth_collection_gets_pocketbases_defaults_for_new_collections() {
    let app = spawn_app().await;
    let expected: Value =
        serde_json::from_str(include_str!("fixtures/pocketbase_new_auth_collection.json"))
            .expect("fixture");

    let mut created = app
        .create_collection_ok(json!({"name": "members", "type": "auth"}))
        .await;

    for key in ["id", "created", "updated"] {
        created.as_object_mut().expect("object").remove(key);
    }
    for (key, value) in expected.as_object().expect("fixture object") {
        assert_eq!(&created[key], value, "{key} differs from PocketBase 0.40.6");
    }
    assert_eq!(created, expected, "no key more or less than PocketBase");
}

#[tokio::test]
async fn the_scaffolds_are_pocketbases() {
    let app = spawn_app().await;
    let expected: Value =
        serde_json::from_str(include_str!("fixtures/pocketbase_scaffolds.json")).expect("fixture");

    let (status, scaffolds) = status_json(
        app.su(
            reqwest::Method::GET,
            "/api/collections/meta/scaffolds",
            None,
        )
        .await,
    )
    .await;

    assert_eq!(status, 200, "{scaffolds}");
    let (ours, theirs) = (without_index_ids(scaffolds), without_index_ids(expected));
    for kind in ["base", "auth", "view"] {
        for (key, value) in theirs[kind].as_object().expect("fixture object") {
            assert_eq!(
                &ours[kind][key], value,
                "{kind}.{key} differs from PocketBase 0.40.6"
            );
        }
    }
    assert_eq!(ours, theirs, "no key more or less than PocketBase");
}
