//! Model hooks in the account flows: the record saves of verification,
//! password reset, email change and OAuth2 sign-up run `onRecordUpdate` /
//! `onRecordCreate` and their `onRecordAfter…` hooks, as PocketBase's flows
//! save through `app.Save`; a hook that throws refuses the flow and nothing
//! of it is kept. Fixtures: `fixtures/pb_hooks_accounts/`.

use crate::helpers::{TestApp, spawn_app_configured, status_json};
use crate::oauth2::{enable_oidc, oauth2_flow, start_provider};
use crate::smtp_sink::SmtpSink;
use reqwest::Method;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);
const PASSWORD: &str = "first-pass-123";
const NEW_PASSWORD: &str = "second-pass-456";

async fn app_with_account_hooks() -> (TestApp, SmtpSink) {
    let app = spawn_app_configured(|config| {
        config.hooks.dir =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/api/fixtures/pb_hooks_accounts");
        config.hooks.timeout_ms = 2_000;
        config.hooks.pool_size = 2;
    })
    .await;
    let sink = crate::smtp_sink::start().await;
    let (status, body) = status_json(
        app.su(
            Method::PATCH,
            "/api/settings",
            Some(json!({"smtp": {"enabled": true, "host": "127.0.0.1", "port": sink.port}})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    app.create_collection_ok(
        json!({"name": "events", "fields": [{"name": "text", "type": "text"}]}),
    )
    .await;
    (app, sink)
}

async fn user(app: &TestApp, email: &str) -> Value {
    app.create_record_ok(
        "users",
        json!({"email": email, "password": PASSWORD, "passwordConfirm": PASSWORD}),
    )
    .await
}

async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let path = format!("/api/collections/users/{path}");
    status_json(app.request(Method::POST, &path, None, Some(body)).await).await
}

/// The token mailed to `email` after `request` (e.g. "request-verification").
async fn mailed_token(app: &TestApp, sink: &SmtpSink, request: &str, email: &str) -> String {
    let (status, body) = post(app, request, json!({"email": email})).await;
    assert_eq!(status, 204, "{body}");
    sink.wait_for(email, WAIT)
        .await
        .expect("mail arrives")
        .find_token()
        .expect("token in the mail")
}

async fn stored(app: &TestApp, id: &str) -> Value {
    let path = format!("/api/collections/users/records/{id}");
    let (status, body) = status_json(app.su(Method::GET, &path, None).await).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn events(app: &TestApp) -> Vec<String> {
    let path = "/api/collections/events/records?perPage=200";
    let (status, body) = status_json(app.su(Method::GET, path, None).await).await;
    assert_eq!(status, 200, "{body}");
    let mut out: Vec<String> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    out.sort();
    out
}

async fn login_status(app: &TestApp, email: &str, password: &str) -> u16 {
    let (status, _) = post(
        app,
        "auth-with-password",
        json!({"identity": email, "password": password}),
    )
    .await;
    status
}

#[tokio::test]
async fn confirming_a_verification_runs_the_update_hooks_in_its_transaction() {
    let (app, sink) = app_with_account_hooks().await;
    let created = user(&app, "ver@example.com").await;
    let token = mailed_token(&app, &sink, "request-verification", "ver@example.com").await;

    let (status, body) = post(&app, "confirm-verification", json!({"token": token})).await;

    assert_eq!(status, 204, "{body}");
    let record = stored(&app, created["id"].as_str().expect("id")).await;
    assert_eq!(record["verified"], true, "{record}");
    assert_eq!(
        record["name"], "hooked",
        "the hook's change was saved: {record}"
    );
    let seen = events(&app).await;
    for expected in [
        "update ver@example.com verified=true",
        "after-update ver@example.com",
    ] {
        assert!(seen.iter().any(|e| e == expected), "{expected} in {seen:?}");
    }
    assert!(!seen.iter().any(|e| e.starts_with("secret")), "{seen:?}");
}

#[tokio::test]
async fn a_throwing_update_hook_refuses_the_flow_and_nothing_is_kept() {
    let (app, sink) = app_with_account_hooks().await;
    let created = user(&app, "refuse@example.com").await;
    let id = created["id"].as_str().expect("id");
    let verify = mailed_token(&app, &sink, "request-verification", "refuse@example.com").await;

    let (verified, body) = post(&app, "confirm-verification", json!({"token": verify})).await;
    let reset = mailed_token(&app, &sink, "request-password-reset", "refuse@example.com").await;
    let (reset_status, reset_body) = post(
        &app,
        "confirm-password-reset",
        json!({"token": reset, "password": NEW_PASSWORD, "passwordConfirm": NEW_PASSWORD}),
    )
    .await;

    assert_eq!(verified, 400, "{body}");
    assert_eq!(body["message"], "Refused by the update hook.", "{body}");
    assert_eq!(reset_status, 400, "{reset_body}");
    let record = stored(&app, id).await;
    assert_eq!(record["verified"], false, "{record}");
    assert_eq!(
        login_status(&app, "refuse@example.com", PASSWORD).await,
        200
    );
    assert_eq!(
        login_status(&app, "refuse@example.com", NEW_PASSWORD).await,
        400,
        "the refused reset changed no password"
    );
    assert!(
        !events(&app)
            .await
            .iter()
            .any(|e| e.contains("update refuse"))
    );
}

#[tokio::test]
async fn a_password_reset_runs_the_hooks_and_a_hook_cannot_plant_a_password_or_token_key() {
    let (app, sink) = app_with_account_hooks().await;
    user(&app, "sneaky@example.com").await;
    let old_token = app.login_as("users", "sneaky@example.com", PASSWORD).await;
    let reset = mailed_token(&app, &sink, "request-password-reset", "sneaky@example.com").await;

    let (status, body) = post(
        &app,
        "confirm-password-reset",
        json!({"token": reset, "password": NEW_PASSWORD, "passwordConfirm": NEW_PASSWORD}),
    )
    .await;

    assert_eq!(status, 204, "{body}");
    assert_eq!(
        login_status(&app, "sneaky@example.com", NEW_PASSWORD).await,
        200
    );
    for planted in ["planted-by-hook", PASSWORD] {
        assert_eq!(
            login_status(&app, "sneaky@example.com", planted).await,
            400,
            "{planted} must not log in"
        );
    }
    let refreshed = app
        .request(
            Method::POST,
            "/api/collections/users/auth-refresh",
            Some(&old_token),
            None,
        )
        .await;
    assert_eq!(refreshed.status(), 401, "the tokenKey still rotated");
    let seen = events(&app).await;
    for expected in [
        "update sneaky@example.com verified=true",
        "after-update sneaky@example.com",
    ] {
        assert!(seen.iter().any(|e| e == expected), "{expected} in {seen:?}");
    }
    assert!(!seen.iter().any(|e| e.starts_with("secret")), "{seen:?}");
}

#[tokio::test]
async fn an_email_change_runs_the_update_hooks_with_the_new_address() {
    let (app, sink) = app_with_account_hooks().await;
    user(&app, "old@example.com").await;
    let login = app.login_as("users", "old@example.com", PASSWORD).await;
    let path = "/api/collections/users/request-email-change";
    let asked = app
        .request(
            Method::POST,
            path,
            Some(&login),
            Some(json!({"newEmail": "new@example.com"})),
        )
        .await;
    assert_eq!(asked.status(), 204);
    let token = sink
        .wait_for("new@example.com", WAIT)
        .await
        .expect("mail")
        .find_token()
        .expect("token");

    let (status, body) = post(
        &app,
        "confirm-email-change",
        json!({"token": token, "password": PASSWORD}),
    )
    .await;

    assert_eq!(status, 204, "{body}");
    assert_eq!(login_status(&app, "new@example.com", PASSWORD).await, 200);
    let seen = events(&app).await;
    assert!(
        seen.iter()
            .any(|e| e == "update new@example.com verified=true"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn an_oauth2_sign_up_runs_the_create_hooks_and_a_throwing_one_keeps_nothing() {
    let (app, _sink) = app_with_account_hooks().await;
    let provider = start_provider().await;
    enable_oidc(&app, &provider).await;

    let (status, body) = oauth2_flow(&app, "oidc", "alice", None, json!({})).await;
    let (refused, refusal) = oauth2_flow(&app, "oidc", "bob", None, json!({})).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["record"]["name"], "hooked",
        "onRecordCreate ran, then onRecordUpdate as PocketBase saves the new record verified: {body}"
    );
    assert_eq!(refused, 400, "{refusal}");
    let (_, bobs) = status_json(
        app.list_records(
            "users",
            &[("filter", "email='bob@idp.test'")],
            Some(&app.superuser_token.clone()),
        )
        .await,
    )
    .await;
    assert_eq!(bobs["totalItems"], 0, "no record without its link: {bobs}");
    let (_, links) = status_json(
        app.su(Method::GET, "/api/collections/_externalAuths/records", None)
            .await,
    )
    .await;
    assert_eq!(links["totalItems"], 1, "alice's link only: {links}");
    let seen = events(&app).await;
    for expected in [
        "after-create alice@idp.test",
        "create alice@idp.test",
        "update alice@idp.test verified=true",
    ] {
        assert!(seen.iter().any(|e| e == expected), "{expected} in {seen:?}");
    }
    assert!(
        !seen.iter().any(|e| e.ends_with("bob@idp.test")),
        "bob's hooks wrote inside the rolled-back sign-up: {seen:?}"
    );
}

#[tokio::test]
async fn forged_or_misused_tokens_never_reach_the_hooks() {
    let (app, sink) = app_with_account_hooks().await;
    let created = user(&app, "victim@example.com").await;
    let verify = mailed_token(&app, &sink, "request-verification", "victim@example.com").await;
    let mut forged = verify.clone();
    forged.pop();
    forged.push(if verify.ends_with('A') { 'B' } else { 'A' });

    for (path, body, why) in [
        (
            "confirm-verification",
            json!({"token": "garbage"}),
            "not a token",
        ),
        (
            "confirm-verification",
            json!({"token": forged}),
            "a forged signature",
        ),
        (
            "confirm-password-reset",
            json!({"token": verify, "password": NEW_PASSWORD, "passwordConfirm": NEW_PASSWORD}),
            "a verification token used for a reset",
        ),
        (
            "confirm-email-change",
            json!({"token": verify, "password": PASSWORD}),
            "a verification token used for an email change",
        ),
    ] {
        let (status, answer) = post(&app, path, body).await;
        assert_eq!(status, 400, "{why}: {answer}");
    }

    let record = stored(&app, created["id"].as_str().expect("id")).await;
    assert_eq!(record["verified"], false, "{record}");
    assert_eq!(record["name"], "signed-up", "no update hook ran: {record}");
    assert_eq!(
        login_status(&app, "victim@example.com", PASSWORD).await,
        200
    );
    assert!(
        !events(&app).await.iter().any(|e| e.contains("update")),
        "no update hook ran"
    );
}
