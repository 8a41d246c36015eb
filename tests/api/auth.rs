//! Superuser authentication and tokens.

use crate::helpers::{SU_EMAIL, SU_PASSWORD, spawn_app, status_json};
use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64");
    serde_json::from_slice(&bytes).expect("json")
}

#[tokio::test]
async fn superuser_login_returns_a_token_with_pocketbase_claims_and_the_record() {
    let app = spawn_app().await;

    let (status, body) = status_json(
        app.request(
            Method::POST,
            "/api/collections/_superusers/auth-with-password",
            None,
            Some(json!({"identity": SU_EMAIL, "password": SU_PASSWORD})),
        )
        .await,
    )
    .await;

    assert_eq!(status, 200);
    let c = claims(body["token"].as_str().expect("token"));
    assert_eq!(c["type"], "auth");
    assert_eq!(c["collectionId"], "pbc_3142635823");
    assert_eq!(c["refreshable"], true);
    assert!(
        c["exp"].as_i64().expect("exp") > chrono_now(),
        "not expired"
    );
    assert_eq!(body["record"]["email"], SU_EMAIL);
    assert_eq!(body["record"]["collectionName"], "_superusers");
    assert!(
        body["record"].get("password").is_none() && body["record"].get("tokenKey").is_none(),
        "{body}"
    );
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

#[tokio::test]
async fn wrong_password_and_unknown_identity_look_the_same() {
    let app = spawn_app().await;
    let url = "/api/collections/_superusers/auth-with-password";

    let (s1, b1) = status_json(
        app.request(
            Method::POST,
            url,
            None,
            Some(json!({"identity": SU_EMAIL, "password": "wrong-password"})),
        )
        .await,
    )
    .await;
    let (s2, b2) = status_json(
        app.request(
            Method::POST,
            url,
            None,
            Some(json!({"identity": "nobody@example.com", "password": "wrong-password"})),
        )
        .await,
    )
    .await;
    let (s3, b3) = status_json(app.request(Method::POST, url, None, Some(json!({}))).await).await;

    assert_eq!((s1, s2), (400, 400));
    assert_eq!(b1, b2);
    assert_eq!(b1["message"], "Failed to authenticate.");
    assert_eq!(s3, 400);
    assert_eq!(b3["data"]["identity"]["code"], "validation_required");
}

#[tokio::test]
async fn bearer_prefix_is_optional_and_case_insensitive() {
    let app = spawn_app().await;
    let token = app.superuser_token.clone();

    for header in [
        token.clone(),
        format!("Bearer {token}"),
        format!("bearer {token}"),
    ] {
        let resp = app
            .request(Method::GET, "/api/collections", Some(&header), None)
            .await;
        assert_eq!(resp.status(), 200, "header form {:?}", &header[..10]);
    }
}

#[tokio::test]
async fn changing_a_superuser_password_revokes_old_tokens() {
    let app = spawn_app().await;
    let old = app.superuser_token.clone();
    let (_, me) = status_json(
        app.su(Method::GET, "/api/collections/_superusers/records", None)
            .await,
    )
    .await;
    let id = me["items"][0]["id"].as_str().expect("id").to_owned();

    let (status, body) = status_json(
        app.su(
            Method::PATCH,
            &format!("/api/collections/_superusers/records/{id}"),
            Some(json!({"password": "NewPassw0rd!", "passwordConfirm": "NewPassw0rd!"})),
        )
        .await,
    )
    .await;
    let after = app
        .request(Method::GET, "/api/collections", Some(&old), None)
        .await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(
        after.status(),
        401,
        "the old token died with the password change"
    );
    let fresh = app.login_as("_superusers", SU_EMAIL, "NewPassw0rd!").await;
    assert_eq!(
        app.request(Method::GET, "/api/collections", Some(&fresh), None)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn auth_refresh_issues_a_new_token_for_the_same_record() {
    let app = spawn_app().await;

    let (status, body) = status_json(
        app.su(
            Method::POST,
            "/api/collections/_superusers/auth-refresh",
            None,
        )
        .await,
    )
    .await;
    let (guest_status, _) = status_json(
        app.request(
            Method::POST,
            "/api/collections/_superusers/auth-refresh",
            None,
            None,
        )
        .await,
    )
    .await;

    assert_eq!(status, 200);
    assert_eq!(
        claims(body["token"].as_str().expect("token"))["id"],
        body["record"]["id"]
    );
    assert_eq!(guest_status, 401);
}

#[tokio::test]
async fn the_last_superuser_cannot_be_deleted() {
    let app = spawn_app().await;
    let (_, me) = status_json(
        app.su(Method::GET, "/api/collections/_superusers/records", None)
            .await,
    )
    .await;
    let id = me["items"][0]["id"].as_str().expect("id").to_owned();

    let (status, body) = status_json(
        app.su(
            Method::DELETE,
            &format!("/api/collections/_superusers/records/{id}"),
            None,
        )
        .await,
    )
    .await;

    assert_eq!(status, 400);
    assert_eq!(
        body["message"],
        "You can't delete the only existing superuser."
    );
}
