//! Account flows on auth collections created through the API, whose
//! autodate fields are whatever the creator chose: none at all (an API-made
//! auth collection has no `updated` field, in PocketBase too), or one under
//! another name. Every flow must answer as usual and stamp exactly the
//! collection's on-update autodates.

use crate::helpers::{TestApp, spawn_app_with_mail, status_json};
use crate::smtp_sink::SmtpSink;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);
const PASSWORD: &str = "first-pass-123";
const NEW_PASSWORD: &str = "second-pass-456";

/// An auth collection with no autodate field at all.
const BARE: &str = "bare";
/// An auth collection stamped on update under another name (`touched`),
/// plus an on-create-only autodate (`born`) that no update may move.
const STAMPED: &str = "stamped";

async fn create_collections(app: &TestApp) {
    app.create_collection_ok(json!({"name": BARE, "type": "auth"}))
        .await;
    app.create_collection_ok(json!({
        "name": STAMPED, "type": "auth",
        "fields": [
            {"name": "touched", "type": "autodate", "onCreate": true, "onUpdate": true},
            {"name": "born", "type": "autodate", "onCreate": true, "onUpdate": false}
        ]
    }))
    .await;
}

async fn spawn() -> (TestApp, SmtpSink) {
    let (app, sink) = spawn_app_with_mail().await;
    create_collections(&app).await;
    (app, sink)
}

/// Creates an unverified account (as the superuser) and returns its id.
async fn account(app: &TestApp, collection: &str, email: &str) -> String {
    let record = app
        .create_record_ok(
            collection,
            json!({"email": email, "password": PASSWORD, "passwordConfirm": PASSWORD}),
        )
        .await;
    record["id"].as_str().expect("id").to_owned()
}

/// The record as the superuser sees it.
async fn record(app: &TestApp, collection: &str, id: &str) -> Value {
    let token = app.superuser_token.clone();
    let (status, body) = status_json(app.get_record(collection, id, Some(&token)).await).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn post(
    app: &TestApp,
    collection: &str,
    action: &str,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    status_json(
        app.request(
            Method::POST,
            &format!("/api/collections/{collection}/{action}"),
            token,
            Some(body),
        )
        .await,
    )
    .await
}

/// Asserts the autodates after a flow changed the record: `touched` moved,
/// `born` did not, and the bare collection grew no `updated`.
fn assert_stamped(collection: &str, flow: &str, before: &Value, after: &Value) {
    if collection == STAMPED {
        assert_ne!(
            before["touched"], after["touched"],
            "{flow} on {collection} must stamp the on-update autodate: {after}"
        );
        assert_eq!(
            before["born"], after["born"],
            "{flow} on {collection} must not touch an on-create-only autodate"
        );
    } else {
        assert!(
            after.get("updated").is_none(),
            "{flow} on {collection} must not invent an updated field: {after}"
        );
    }
}

/// Lets the clock move on, so a stamp differs from the create time.
async fn tick() {
    tokio::time::sleep(Duration::from_millis(5)).await;
}

#[tokio::test]
async fn verification_works_on_auth_collections_without_an_updated_field() {
    let (app, sink) = spawn().await;
    for collection in [BARE, STAMPED] {
        let email = format!("ver-{collection}@example.com");
        let id = account(&app, collection, &email).await;
        let before = record(&app, collection, &id).await;
        tick().await;

        let (requested, _) = post(
            &app,
            collection,
            "request-verification",
            None,
            json!({"email": email}),
        )
        .await;
        let token = sink
            .wait_for(&email, WAIT)
            .await
            .and_then(|m| m.find_token())
            .expect("verification token mailed");
        let (confirmed, body) = post(
            &app,
            collection,
            "confirm-verification",
            None,
            json!({"token": token}),
        )
        .await;
        let after = record(&app, collection, &id).await;

        assert_eq!(requested, 204, "request-verification on {collection}");
        assert_eq!(
            confirmed, 204,
            "confirm-verification on {collection}: {body}"
        );
        assert_eq!(after["verified"], true, "{collection}: {after}");
        assert_stamped(collection, "confirm-verification", &before, &after);
    }
}

#[tokio::test]
async fn verification_without_password_login_works_on_auth_collections_without_an_updated_field() {
    // Without password login, confirming also replaces the password.
    let (app, sink) = spawn().await;
    for collection in [BARE, STAMPED] {
        let email = format!("nopw-{collection}@example.com");
        let id = account(&app, collection, &email).await;
        let (status, body) = status_json(
            app.update_collection(collection, json!({"passwordAuth": {"enabled": false}}))
                .await,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let before = record(&app, collection, &id).await;
        tick().await;

        post(
            &app,
            collection,
            "request-verification",
            None,
            json!({"email": email}),
        )
        .await;
        let token = sink
            .wait_for(&email, WAIT)
            .await
            .and_then(|m| m.find_token())
            .expect("verification token mailed");
        let (confirmed, body) = post(
            &app,
            collection,
            "confirm-verification",
            None,
            json!({"token": token}),
        )
        .await;
        let after = record(&app, collection, &id).await;

        assert_eq!(
            confirmed, 204,
            "confirm-verification on {collection}: {body}"
        );
        assert_eq!(after["verified"], true, "{collection}: {after}");
        assert_stamped(collection, "confirm-verification", &before, &after);
    }
}

#[tokio::test]
async fn password_reset_works_on_auth_collections_without_an_updated_field() {
    let (app, sink) = spawn().await;
    for collection in [BARE, STAMPED] {
        let email = format!("reset-{collection}@example.com");
        let id = account(&app, collection, &email).await;
        let before = record(&app, collection, &id).await;
        tick().await;

        let (requested, _) = post(
            &app,
            collection,
            "request-password-reset",
            None,
            json!({"email": email}),
        )
        .await;
        let token = sink
            .wait_for(&email, WAIT)
            .await
            .and_then(|m| m.find_token())
            .expect("reset token mailed");
        let (confirmed, body) = post(
            &app,
            collection,
            "confirm-password-reset",
            None,
            json!({"token": token, "password": NEW_PASSWORD, "passwordConfirm": NEW_PASSWORD}),
        )
        .await;
        let after = record(&app, collection, &id).await;
        let (old_login, _) = post(
            &app,
            collection,
            "auth-with-password",
            None,
            json!({"identity": email, "password": PASSWORD}),
        )
        .await;

        assert_eq!(requested, 204, "request-password-reset on {collection}");
        assert_eq!(
            confirmed, 204,
            "confirm-password-reset on {collection}: {body}"
        );
        assert_eq!(
            old_login, 400,
            "{collection}: the old password must be dead"
        );
        app.login_as(collection, &email, NEW_PASSWORD).await;
        assert_stamped(collection, "confirm-password-reset", &before, &after);
    }
}

#[tokio::test]
async fn email_change_works_on_auth_collections_without_an_updated_field() {
    let (app, sink) = spawn().await;
    for collection in [BARE, STAMPED] {
        let email = format!("old-{collection}@example.com");
        let new_email = format!("new-{collection}@example.com");
        let id = account(&app, collection, &email).await;
        let login = app.login_as(collection, &email, PASSWORD).await;
        let before = record(&app, collection, &id).await;
        tick().await;

        let (requested, body) = post(
            &app,
            collection,
            "request-email-change",
            Some(&login),
            json!({"newEmail": new_email}),
        )
        .await;
        assert_eq!(
            requested, 204,
            "request-email-change on {collection}: {body}"
        );
        let token = sink
            .wait_for(&new_email, WAIT)
            .await
            .and_then(|m| m.find_token())
            .expect("email change token mailed");
        let (confirmed, body) = post(
            &app,
            collection,
            "confirm-email-change",
            None,
            json!({"token": token, "password": PASSWORD}),
        )
        .await;
        let after = record(&app, collection, &id).await;

        assert_eq!(
            confirmed, 204,
            "confirm-email-change on {collection}: {body}"
        );
        assert_eq!(after["email"], new_email.as_str(), "{collection}: {after}");
        assert_eq!(after["verified"], true, "{collection}: {after}");
        assert_stamped(collection, "confirm-email-change", &before, &after);
    }
}

#[tokio::test]
async fn a_first_otp_login_works_on_auth_collections_without_an_updated_field() {
    // The first OTP login verifies the account and replaces its password.
    let (app, sink) = spawn().await;
    for collection in [BARE, STAMPED] {
        let email = format!("otp-{collection}@example.com");
        let id = account(&app, collection, &email).await;
        let (status, body) = status_json(
            app.update_collection(collection, json!({"otp": {"enabled": true, "length": 6}}))
                .await,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let before = record(&app, collection, &id).await;
        tick().await;

        let (requested, body) = post(
            &app,
            collection,
            "request-otp",
            None,
            json!({"email": email}),
        )
        .await;
        assert_eq!(requested, 200, "request-otp on {collection}: {body}");
        let code = sink
            .wait_for(&email, WAIT)
            .await
            .and_then(|m| m.find_digits(6))
            .expect("otp mailed");
        let (status, session) = post(
            &app,
            collection,
            "auth-with-otp",
            None,
            json!({"otpId": body["otpId"], "password": code}),
        )
        .await;
        let after = record(&app, collection, &id).await;

        assert_eq!(status, 200, "auth-with-otp on {collection}: {session}");
        assert_eq!(after["verified"], true, "{collection}: {after}");
        assert_stamped(collection, "auth-with-otp", &before, &after);
    }
}

#[tokio::test]
async fn a_superuser_password_change_works_on_auth_collections_without_an_updated_field() {
    let (app, _sink) = spawn().await;
    for collection in [BARE, STAMPED] {
        let email = format!("patch-{collection}@example.com");
        let id = account(&app, collection, &email).await;
        let before = record(&app, collection, &id).await;
        tick().await;

        let (status, body) = status_json(
            app.update_record(
                collection,
                &id,
                json!({"password": NEW_PASSWORD, "passwordConfirm": NEW_PASSWORD}),
            )
            .await,
        )
        .await;
        let after = record(&app, collection, &id).await;

        assert_eq!(status, 200, "PATCH password on {collection}: {body}");
        app.login_as(collection, &email, NEW_PASSWORD).await;
        assert_stamped(collection, "PATCH password", &before, &after);
    }
}
