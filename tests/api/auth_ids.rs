//! Auth record ids are unique across every auth collection (superusers
//! included), so an `id = @request.auth.id` rule cannot be passed by signing
//! up in a second auth collection with a victim's id.

use crate::helpers::{TestApp, spawn_app, status_json};
use reqwest::Method;
use serde_json::{Value, json};

const PASSWORD: &str = "member-pass-123";

/// A second auth collection anyone may sign up to.
async fn members(app: &TestApp) {
    app.create_collection_ok(json!({
        "name": "members", "type": "auth",
        "createRule": "", "listRule": "", "viewRule": "",
    }))
    .await;
}

/// A guest sign-up with a chosen id; returns (status, body).
async fn sign_up(app: &TestApp, collection: &str, id: &str, email: &str) -> (u16, Value) {
    status_json(
        app.request(
            Method::POST,
            &format!("/api/collections/{collection}/records"),
            None,
            Some(json!({"id": id, "email": email, "password": PASSWORD,
                        "passwordConfirm": PASSWORD})),
        )
        .await,
    )
    .await
}

async fn count(app: &TestApp, collection: &str) -> i64 {
    let (status, body) = status_json(
        app.su(
            Method::GET,
            &format!("/api/collections/{collection}/records"),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["totalItems"].as_i64().unwrap_or(-1)
}

#[tokio::test]
async fn an_id_taken_in_another_auth_collection_is_refused() {
    let app = spawn_app().await;
    members(&app).await;
    let (_, superusers) = status_json(
        app.su(Method::GET, "/api/collections/_superusers/records", None)
            .await,
    )
    .await;
    let superuser_id = superusers["items"][0]["id"]
        .as_str()
        .expect("superuser id")
        .to_owned();
    let (status, user) = sign_up(&app, "users", "victimid0000001", "victim@example.com").await;
    assert_eq!(status, 200, "{user}");
    let (status, member) = sign_up(&app, "members", "memberid0000001", "m@example.com").await;
    assert_eq!(status, 200, "{member}");

    for (collection, id, why) in [
        ("members", "victimid0000001", "a users id in members"),
        ("users", "memberid0000001", "a members id in users"),
        (
            "members",
            superuser_id.as_str(),
            "a superuser's id in members",
        ),
        ("users", superuser_id.as_str(), "a superuser's id in users"),
    ] {
        let before = count(&app, collection).await;

        let (status, body) = sign_up(&app, collection, id, "attacker@example.com").await;

        assert_eq!(status, 400, "{why}: {body}");
        assert_eq!(
            body["data"]["id"]["code"], "validation_invalid_auth_id",
            "{why}: {body}"
        );
        assert_eq!(body["message"], "Failed to create record.", "{why}");
        assert_eq!(
            count(&app, collection).await,
            before,
            "{why}: nothing stored"
        );
    }
    let (fresh, body) = sign_up(&app, "members", "freshid00000001", "fresh@example.com").await;
    assert_eq!(fresh, 200, "a fresh id is fine: {body}");
}

#[tokio::test]
async fn a_superuser_cannot_reuse_an_auth_id_either() {
    let app = spawn_app().await;
    members(&app).await;
    let (status, user) = sign_up(&app, "users", "sharedid0000001", "u@example.com").await;
    assert_eq!(status, 200, "{user}");

    let (status, body) = status_json(
        app.create_record(
            "members",
            json!({"id": "sharedid0000001", "email": "x@example.com",
                   "password": PASSWORD, "passwordConfirm": PASSWORD}),
        )
        .await,
    )
    .await;

    assert_eq!(status, 400, "{body}");
    assert_eq!(body["data"]["id"]["code"], "validation_invalid_auth_id");
}

#[tokio::test]
async fn a_base_record_may_share_an_id_with_an_auth_record() {
    let app = spawn_app().await;
    app.create_collection_ok(json!({"name": "notes", "type": "base",
        "fields": [{"name": "title", "type": "text"}]}))
        .await;
    let (status, user) = sign_up(&app, "users", "sameid000000001", "u@example.com").await;
    assert_eq!(status, 200, "{user}");

    let (status, body) = status_json(
        app.create_record("notes", json!({"id": "sameid000000001", "title": "x"}))
            .await,
    )
    .await;

    assert_eq!(
        status, 200,
        "only auth collections share the id space: {body}"
    );
}

#[tokio::test]
async fn parallel_sign_ups_with_one_id_in_two_auth_collections_do_not_both_succeed() {
    let app = spawn_app().await;
    members(&app).await;

    for round in 0..6 {
        let id = format!("raceid{round:09}");
        let (user_email, member_email) = (
            format!("u{round}@example.com"),
            format!("m{round}@example.com"),
        );
        let (a, b) = tokio::join!(
            sign_up(&app, "users", &id, &user_email),
            sign_up(&app, "members", &id, &member_email),
        );

        let mut statuses = [a.0, b.0];
        statuses.sort();
        assert_eq!(statuses, [200, 400], "round {round}: {a:?} {b:?}");
    }
}
