//! Model hooks on the remaining server-side saves, as PocketBase fires
//! them: an OTP login deletes its `_otps` row (`onRecordDelete` … on
//! `_otps`) and saves the record verified (`onRecordUpdate` …), each a save
//! of its own whose refusal is logged while the login goes on; OAuth2
//! linking saves the record and creates its `_externalAuths` row in one
//! transaction (a throw refuses the login, nothing kept); an OAuth2 sign-up
//! runs `onRecordCreateRequest`. Fixtures: `fixtures/pb_hooks_flows/`.

use crate::helpers::{TestApp, spawn_app_configured, status_json};
use crate::oauth2::{enable_oidc, oauth2_flow, start_provider};
use crate::smtp_sink::SmtpSink;
use reqwest::Method;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);
const PASSWORD: &str = "first-pass-123";

async fn app_with_flow_hooks() -> (TestApp, SmtpSink) {
    let app = spawn_app_configured(|config| {
        config.hooks.dir =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/api/fixtures/pb_hooks_flows");
        config.hooks.timeout_ms = 2_000;
        config.hooks.pool_size = 2;
    })
    .await;
    let sink = crate::smtp_sink::start().await;
    let smtp = json!({"smtp": {"enabled": true, "host": "127.0.0.1", "port": sink.port}});
    let (status, body) =
        status_json(app.su(Method::PATCH, "/api/settings", Some(smtp)).await).await;
    assert_eq!(status, 200, "{body}");
    app.create_collection_ok(
        json!({"name": "events", "fields": [{"name": "text", "type": "text"}]}),
    )
    .await;
    let otp = json!({"otp": {"enabled": true, "length": 6}});
    let (status, body) = status_json(app.update_collection("users", otp).await).await;
    assert_eq!(status, 200, "{body}");
    (app, sink)
}

async fn user(app: &TestApp, email: &str, name: &str) -> String {
    let record = app
        .create_record_ok(
            "users",
            json!({"email": email, "name": name, "password": PASSWORD, "passwordConfirm": PASSWORD}),
        )
        .await;
    record["id"].as_str().expect("id").to_owned()
}

async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let path = format!("/api/collections/users/{path}");
    status_json(app.request(Method::POST, &path, None, Some(body)).await).await
}

async fn su_get(app: &TestApp, path: &str) -> Value {
    let (status, body) = status_json(app.su(Method::GET, path, None).await).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

async fn stored(app: &TestApp, id: &str) -> Value {
    su_get(app, &format!("/api/collections/users/records/{id}")).await
}

async fn events(app: &TestApp) -> Vec<String> {
    let body = su_get(app, "/api/collections/events/records?perPage=200").await;
    let mut out: Vec<String> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    out.sort();
    out
}

async fn count(app: &TestApp, collection: &str) -> u64 {
    let body = su_get(app, &format!("/api/collections/{collection}/records")).await;
    body["totalItems"].as_u64().expect("totalItems")
}

async fn login_status(app: &TestApp, email: &str, password: &str) -> u16 {
    let body = json!({"identity": email, "password": password});
    post(app, "auth-with-password", body).await.0
}

/// Requests a code for `email`; answers its id and the mailed code.
async fn otp_for(app: &TestApp, sink: &SmtpSink, email: &str) -> (String, String) {
    let (status, body) = post(app, "request-otp", json!({"email": email})).await;
    assert_eq!(status, 200, "{body}");
    let code = sink
        .wait_for(email, WAIT)
        .await
        .expect("otp mail")
        .find_digits(6)
        .expect("code");
    (body["otpId"].as_str().expect("otpId").to_owned(), code)
}

async fn use_otp(app: &TestApp, otp_id: &str, code: &str) -> (u16, Value) {
    post(
        app,
        "auth-with-otp",
        json!({"otpId": otp_id, "password": code}),
    )
    .await
}

#[tokio::test]
async fn an_otp_login_deletes_the_code_and_saves_the_verified_record_through_the_hooks() {
    let (app, sink) = app_with_flow_hooks().await;
    let id = user(&app, "otp@example.com", "").await;
    let (otp_id, code) = otp_for(&app, &sink, "otp@example.com").await;

    let (status, body) = use_otp(&app, &otp_id, &code).await;
    let (again, _) = use_otp(&app, &otp_id, &code).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(again, 400, "the code works once");
    assert_eq!(body["record"]["verified"], true, "{body}");
    assert!(body["record"].get("password").is_none(), "{body}");
    assert!(body["record"].get("tokenKey").is_none(), "{body}");
    let record = stored(&app, &id).await;
    assert_eq!(record["name"], "hooked", "the hook's own field: {record}");
    assert_eq!(count(&app, "_otps").await, 0);
    let seen = events(&app).await;
    for expected in [
        "otp-created otp@example.com hash-visible=false",
        "otp-after-delete otp@example.com",
        "otp-deleted otp@example.com hash-visible=false",
        "update otp@example.com verified=true",
    ] {
        assert!(seen.iter().any(|e| e == expected), "{expected} in {seen:?}");
    }
    assert!(!seen.iter().any(|e| e.starts_with("secret")), "{seen:?}");
    for planted in ["planted-by-hook", PASSWORD] {
        assert_eq!(
            login_status(&app, "otp@example.com", planted).await,
            400,
            "{planted}: the verified upgrade replaced the password with a random one"
        );
    }
}

#[tokio::test]
async fn a_throwing_otp_create_hook_refuses_the_request_and_stores_no_code() {
    let (app, sink) = app_with_flow_hooks().await;
    user(&app, "nocode@example.com", "").await;

    let (status, body) = post(&app, "request-otp", json!({"email": "nocode@example.com"})).await;
    let (unknown, fake) = post(&app, "request-otp", json!({"email": "ghost@example.com"})).await;

    assert_eq!(status, 400, "{body}");
    assert_eq!(body["message"], "No codes for you.", "{body}");
    assert_eq!(
        unknown, 200,
        "an unknown address still gets a fake id: {fake}"
    );
    assert_eq!(count(&app, "_otps").await, 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sink.count_for("nocode@example.com"),
        0,
        "no mail for a refused code"
    );
}

#[tokio::test]
async fn a_refused_otp_delete_still_logs_in_as_pocketbase_but_the_code_is_burnt() {
    let (app, sink) = app_with_flow_hooks().await;
    user(&app, "keep@example.com", "").await;
    let (otp_id, code) = otp_for(&app, &sink, "keep@example.com").await;

    let (status, body) = use_otp(&app, &otp_id, &code).await;
    let (again, again_body) = use_otp(&app, &otp_id, &code).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(
        again, 400,
        "a kept code still works only once: {again_body}"
    );
    assert_eq!(
        again_body["message"], "Invalid or expired OTP.",
        "{again_body}"
    );
    assert_eq!(count(&app, "_otps").await, 1, "the hook kept the row");
    let seen = events(&app).await;
    assert!(
        !seen
            .iter()
            .any(|e| e.starts_with("otp-deleted") || e.starts_with("otp-after")),
        "no delete happened: {seen:?}"
    );
}

#[tokio::test]
async fn a_refused_verified_save_is_rolled_back_and_the_otp_login_goes_on() {
    let (app, sink) = app_with_flow_hooks().await;
    let id = user(&app, "stubborn@example.com", "refuse-me").await;
    let (otp_id, code) = otp_for(&app, &sink, "stubborn@example.com").await;

    let (status, body) = use_otp(&app, &otp_id, &code).await;

    assert_eq!(status, 200, "PocketBase logs the failed save: {body}");
    let record = stored(&app, &id).await;
    assert_eq!(record["verified"], false, "the save rolled back: {record}");
    assert_eq!(
        login_status(&app, "stubborn@example.com", PASSWORD).await,
        200,
        "the password replacement rolled back with it"
    );
    assert_eq!(count(&app, "_otps").await, 0, "the delete was its own save");
}

#[tokio::test]
async fn a_throwing_otp_auth_hook_leaves_the_code_and_the_record_as_they_were() {
    let (app, sink) = app_with_flow_hooks().await;
    let id = user(&app, "gate@example.com", "").await;
    let (otp_id, code) = otp_for(&app, &sink, "gate@example.com").await;

    let (status, body) = use_otp(&app, &otp_id, &code).await;

    assert_eq!(status, 400, "{body}");
    assert_eq!(body["message"], "Not today.", "{body}");
    assert_eq!(count(&app, "_otps").await, 1, "the code was not used");
    let record = stored(&app, &id).await;
    assert_eq!(record["verified"], false, "{record}");
    assert_eq!(login_status(&app, "gate@example.com", PASSWORD).await, 200);
    let seen = events(&app).await;
    assert!(
        !seen
            .iter()
            .any(|e| e.starts_with("otp-deleted") || e.starts_with("update")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_wrong_or_foreign_otp_never_reaches_the_hooks() {
    let (app, sink) = app_with_flow_hooks().await;
    user(&app, "target@example.com", "").await;
    let (otp_id, code) = otp_for(&app, &sink, "target@example.com").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };

    let mut statuses = Vec::new();
    for (id, guess) in [
        (otp_id.as_str(), wrong),
        ("nosuchotp000000", code.as_str()),
        (otp_id.as_str(), "' OR 1=1 --"),
    ] {
        statuses.push(use_otp(&app, id, guess).await.0);
    }

    assert!(statuses.iter().all(|s| *s == 400), "{statuses:?}");
    assert_eq!(count(&app, "_otps").await, 1);
    let seen = events(&app).await;
    assert!(
        !seen.iter().any(|e| e.starts_with("otp-deleted")
            || e.starts_with("otp-after")
            || e.starts_with("update")),
        "no model hook of the login ran: {seen:?}"
    );
}

async fn oauth2_app() -> TestApp {
    let (app, _sink) = app_with_flow_hooks().await;
    let provider = start_provider().await;
    enable_oidc(&app, &provider).await;
    app
}

#[tokio::test]
async fn linking_an_existing_record_saves_it_and_creates_the_link_through_the_hooks() {
    let app = oauth2_app().await;
    let id = user(&app, "alice@idp.test", "").await;

    let (status, body) = oauth2_flow(&app, "oidc", "alice", None, json!({})).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["record"]["id"], id.as_str(), "{body}");
    let record = stored(&app, &id).await;
    assert_eq!(record["verified"], true, "{record}");
    assert_eq!(record["name"], "hooked", "{record}");
    assert_eq!(count(&app, "_externalAuths").await, 1);
    let seen = events(&app).await;
    for expected in [
        "link oidc 15",
        "link-after oidc",
        "update alice@idp.test verified=true",
    ] {
        assert!(seen.iter().any(|e| e == expected), "{expected} in {seen:?}");
    }
    assert!(!seen.iter().any(|e| e.starts_with("secret")), "{seen:?}");
    for planted in ["planted-by-hook", PASSWORD] {
        assert_eq!(
            login_status(&app, "alice@idp.test", planted).await,
            400,
            "{planted}: the pre-registered password was replaced, not by the hook's"
        );
    }
}

#[tokio::test]
async fn linking_an_unverified_record_deletes_its_earlier_links_through_the_hooks() {
    let app = oauth2_app().await;
    let id = user(&app, "alice@idp.test", "").await;
    let planted = json!({"collectionRef": "_pb_users_auth_", "recordRef": id,
                         "provider": "github", "providerId": "attacker-1"});
    let (status, body) = status_json(
        app.su(
            Method::POST,
            "/api/collections/_externalAuths/records",
            Some(planted),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = oauth2_flow(&app, "oidc", "alice", None, json!({})).await;

    assert_eq!(status, 200, "{body}");
    let links = su_get(&app, "/api/collections/_externalAuths/records").await;
    let providers: Vec<&str> = links["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|l| l["provider"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(providers, ["oidc"], "the planted link is gone: {links}");
    let seen = events(&app).await;
    assert!(seen.iter().any(|e| e == "unlink github"), "{seen:?}");
}

#[tokio::test]
async fn a_throwing_hook_on_the_record_save_or_the_link_refuses_the_login_and_keeps_nothing() {
    let app = oauth2_app().await;
    let alice = user(&app, "alice@idp.test", "refuse-me").await;
    let mallory = user(&app, "mallory@idp.test", "").await;

    let (refused, refusal) = oauth2_flow(&app, "oidc", "alice", None, json!({})).await;
    let (unlinked, unlink) = oauth2_flow(&app, "oidc", "mallory", None, json!({})).await;

    assert_eq!(refused, 400, "{refusal}");
    assert_eq!(
        refusal["message"], "Refused by the update hook.",
        "{refusal}"
    );
    assert_eq!(unlinked, 400, "{unlink}");
    assert_eq!(unlink["message"], "No link for you.", "{unlink}");
    for (id, email) in [(&alice, "alice@idp.test"), (&mallory, "mallory@idp.test")] {
        let record = stored(&app, id).await;
        assert_eq!(record["verified"], false, "{record}");
        assert_eq!(
            login_status(&app, email, PASSWORD).await,
            200,
            "{email}: the password reset rolled back"
        );
    }
    assert_eq!(count(&app, "_externalAuths").await, 0);
    let seen = events(&app).await;
    assert!(
        !seen
            .iter()
            .any(|e| e.starts_with("update") || e.starts_with("link")),
        "the hooks' own writes rolled back with the login: {seen:?}"
    );
}

#[tokio::test]
async fn an_oauth2_sign_up_runs_the_create_request_hook_in_its_transaction() {
    let app = oauth2_app().await;

    let (status, body) = oauth2_flow(&app, "oidc", "alice", None, json!({})).await;
    let (again, again_body) = oauth2_flow(&app, "oidc", "alice", None, json!({})).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["meta"]["isNew"], true, "{body}");
    assert_eq!(again, 200, "{again_body}");
    assert_eq!(again_body["record"]["id"], body["record"]["id"]);
    assert!(body["record"].get("password").is_none(), "{body}");
    assert_eq!(count(&app, "users").await, 1);
    assert_eq!(count(&app, "_externalAuths").await, 1);
    let seen = events(&app).await;
    for expected in [
        "create-request alice@idp.test",
        "link oidc 15",
        "link-after oidc",
        "update alice@idp.test verified=true",
    ] {
        assert!(seen.iter().any(|e| e == expected), "{expected} in {seen:?}");
    }
}

#[tokio::test]
async fn a_create_request_hook_that_throws_or_answers_itself_signs_up_nobody() {
    let app = oauth2_app().await;

    let mut answers = Vec::new();
    for email in ["blocked@idp.test", "answers@idp.test", "late@idp.test"] {
        answers.push(oauth2_flow(&app, "oidc", "alice", None, json!({"email": email})).await);
    }

    for ((status, body), message) in answers.iter().zip([
        "Sign-ups from blocked are closed.",
        "Failed to authenticate.",
        "Refused after the create.",
    ]) {
        assert_eq!(*status, 400, "{body}");
        assert_eq!(body["message"], message, "{body}");
        assert!(body.get("hijacked").is_none(), "{body}");
    }
    assert_eq!(count(&app, "users").await, 0);
    assert_eq!(count(&app, "_externalAuths").await, 0);
    let seen = events(&app).await;
    assert!(seen.is_empty(), "the late refusal rolled back: {seen:?}");
}

#[tokio::test]
async fn the_create_request_hook_cannot_lift_the_collections_create_rule() {
    let app = oauth2_app().await;
    let closed = json!({"createRule": "@request.context != 'oauth2'"});
    let (status, body) = status_json(app.update_collection("users", closed).await).await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = oauth2_flow(&app, "oidc", "alice", None, json!({})).await;

    assert!((400..500).contains(&status), "{status} {body}");
    assert_eq!(count(&app, "users").await, 0);
    assert_eq!(count(&app, "_externalAuths").await, 0);
}

#[tokio::test]
async fn an_mfa_login_creates_and_deletes_its_session_row_through_the_hooks() {
    let (app, sink) = app_with_flow_hooks().await;
    user(&app, "two@example.com", "").await;
    let mfa = json!({"mfa": {"enabled": true}});
    let (status, body) = status_json(app.update_collection("users", mfa).await).await;
    assert_eq!(status, 200, "{body}");

    let first = json!({"identity": "two@example.com", "password": PASSWORD});
    let (challenged, challenge) = post(&app, "auth-with-password", first).await;
    let mfa_id = challenge["mfaId"].as_str().unwrap_or_default().to_owned();
    let (otp_id, code) = otp_for(&app, &sink, "two@example.com").await;
    let second = json!({"otpId": otp_id, "password": code, "mfaId": mfa_id});
    let (status, body) = post(&app, "auth-with-otp", second.clone()).await;
    let (otp_first, refusal) = post(
        &app,
        "auth-with-otp",
        json!({"otpId": otp_id, "password": code}),
    )
    .await;

    assert_eq!(challenged, 401, "{challenge}");
    assert_eq!(status, 200, "{body}");
    assert!(body["token"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(count(&app, "_mfas").await, 0, "the used session is gone");
    let seen = events(&app).await;
    for expected in ["mfa-created password", "mfa-deleted password"] {
        assert!(seen.iter().any(|e| e == expected), "{expected} in {seen:?}");
    }
    assert_eq!(otp_first, 400, "{refusal}");
    let (replayed, _) = post(&app, "auth-with-otp", second).await;
    assert_eq!(
        replayed, 400,
        "neither the code nor the MFA session works twice"
    );
}

#[tokio::test]
async fn a_refused_mfa_session_refuses_the_first_factor_with_the_hooks_error() {
    let (app, sink) = app_with_flow_hooks().await;
    user(&app, "mfa-otp@example.com", "").await;
    let mfa = json!({"mfa": {"enabled": true}});
    let (status, body) = status_json(app.update_collection("users", mfa).await).await;
    assert_eq!(status, 200, "{body}");
    let (otp_id, code) = otp_for(&app, &sink, "mfa-otp@example.com").await;

    let (status, body) = use_otp(&app, &otp_id, &code).await;

    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["message"], "No MFA session starts with an OTP.",
        "{body}"
    );
    assert!(
        body.get("mfaId").is_none() && body.get("token").is_none(),
        "{body}"
    );
    assert_eq!(count(&app, "_mfas").await, 0);
}

#[tokio::test]
async fn login_origins_are_saved_through_the_hooks_when_alerts_are_on() {
    let (app, _sink) = app_with_flow_hooks().await;
    user(&app, "seen@example.com", "").await;
    let others = count(&app, "_authOrigins").await;
    let off = json!({"authAlert": {"enabled": false}});
    let (status, body) = status_json(app.update_collection("users", off).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(login_status(&app, "seen@example.com", PASSWORD).await, 200);
    let before = events(&app).await;
    let alerts = json!({"authAlert": {"enabled": true}});
    let (status, body) = status_json(app.update_collection("users", alerts).await).await;
    assert_eq!(status, 200, "{body}");

    user(&app, "fresh@example.com", "").await;
    assert_eq!(login_status(&app, "fresh@example.com", PASSWORD).await, 200);
    assert_eq!(login_status(&app, "seen@example.com", PASSWORD).await, 200);

    assert!(
        !before.iter().any(|e| e.starts_with("origin")),
        "alerts off: PocketBase keeps no origin, so no hook runs: {before:?}"
    );
    let seen = events(&app).await;
    assert!(seen.iter().any(|e| e == "origin-created 64"), "{seen:?}");
    assert!(seen.iter().any(|e| e == "origin-updated"), "{seen:?}");
    let kept = count(&app, "_authOrigins").await - others;
    assert_eq!(kept, 2, "one per account and origin");
}
