//! Rate limits from the settings: which rule applies, who is exempt, and the
//! 429 envelope. Windows are 60 s so counts, not the clock, decide; one test
//! waits out a 1 s window.

use crate::helpers::{TestApp, spawn_app, status_json};
use reqwest::{Method, Response};
use serde_json::{Value, json};
use std::time::Duration;

const PASSWORD: &str = "secret-pass-1";

/// Saves `rateLimits` (enabled) with `rules` and `excluded` IPs as the superuser.
async fn enable(app: &TestApp, rules: Value, excluded: Value) {
    let body = json!({"rateLimits": {"enabled": true, "rules": rules, "excludedIPs": excluded}});
    let (status, saved) =
        status_json(app.su(Method::PATCH, "/api/settings", Some(body)).await).await;
    assert_eq!(status, 200, "enable rate limits: {saved}");
}

fn rule(label: &str, audience: &str, duration: u64, max_requests: u64) -> Value {
    json!({"label": label, "audience": audience, "duration": duration, "maxRequests": max_requests})
}

async fn guest(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> Response {
    app.request(method, path, None, body).await
}

async fn sign_up(app: &TestApp, email: &str) -> Response {
    let body = json!({"email": email, "password": PASSWORD, "passwordConfirm": PASSWORD});
    guest(
        app,
        Method::POST,
        "/api/collections/users/records",
        Some(body),
    )
    .await
}

async fn assert_too_many(resp: Response, why: &str) {
    let (status, body) = status_json(resp).await;
    assert_eq!(status, 429, "{why}: {body}");
    assert_eq!(
        body,
        json!({"data": {}, "message": "Too Many Requests.", "status": 429}),
        "{why}"
    );
}

#[tokio::test]
async fn third_guest_create_in_a_window_is_refused_while_listing_still_works() {
    let app = spawn_app().await;
    enable(&app, json!([rule("*:create", "", 60, 2)]), json!([])).await;

    let first = sign_up(&app, "a@example.com").await;
    let second = sign_up(&app, "b@example.com").await;
    let third = sign_up(&app, "c@example.com").await;
    let list = app.list_records("users", &[], None).await;

    assert_eq!(first.status(), 200);
    assert_eq!(second.status(), 200);
    assert_eq!(
        third
            .headers()
            .get("x-content-type-options")
            .map(|v| v.as_bytes()),
        Some(&b"nosniff"[..]),
        "a 429 still passes through the outer middlewares"
    );
    assert_too_many(third, "third create in the window").await;
    assert_eq!(list.status(), 200, "*:create does not limit list");
}

#[tokio::test]
async fn a_collection_rule_beats_a_wildcard_rule_and_applies_by_id_too() {
    let app = spawn_app().await;
    let (_, users) = status_json(app.su(Method::GET, "/api/collections/users", None).await).await;
    let users_id = users["id"].as_str().expect("users id").to_owned();
    enable(
        &app,
        json!([rule("*:list", "", 60, 100), rule("users:list", "", 60, 2)]),
        json!([]),
    )
    .await;

    let by_name = app.list_records("users", &[], None).await;
    let by_id = app.list_records(&users_id, &[], None).await;
    let third = app.list_records("users", &[], None).await;
    let superusers = guest(
        &app,
        Method::GET,
        "/api/collections/_superusers/records",
        None,
    )
    .await;

    assert_eq!(by_name.status(), 200);
    assert_eq!(by_id.status(), 200, "an id maps to the collection's name");
    assert_too_many(third, "users:list allows two, although *:list allows 100").await;
    assert_ne!(
        superusers.status(),
        429,
        "other collections fall back to *:list"
    );
}

#[tokio::test]
async fn an_api_prefix_rule_limits_other_endpoints() {
    let app = spawn_app().await;
    enable(&app, json!([rule("/api/", "", 60, 2)]), json!([])).await;

    let health = guest(&app, Method::GET, "/api/health", None).await;
    let methods = guest(
        &app,
        Method::GET,
        "/api/collections/users/auth-methods",
        None,
    )
    .await;
    let third = guest(&app, Method::GET, "/api/health", None).await;

    assert_eq!(health.status(), 200);
    assert_eq!(
        methods.status(),
        200,
        "the prefix counts every /api/ endpoint together"
    );
    assert_too_many(third, "third /api/ request in the window").await;
}

#[tokio::test]
async fn a_guest_audience_does_not_limit_authenticated_users() {
    let app = spawn_app().await;
    assert_eq!(sign_up(&app, "alice@example.com").await.status(), 200);
    let alice = app.login_as("users", "alice@example.com", PASSWORD).await;
    enable(&app, json!([rule("*:list", "@guest", 60, 1)]), json!([])).await;

    let guest_first = app.list_records("users", &[], None).await;
    let guest_second = app.list_records("users", &[], None).await;
    let mut alice_statuses = Vec::new();
    for _ in 0..3 {
        alice_statuses.push(app.list_records("users", &[], Some(&alice)).await.status());
    }

    assert_eq!(guest_first.status(), 200);
    assert_too_many(guest_second, "second guest list").await;
    assert_eq!(
        alice_statuses, [200; 3],
        "@guest rules skip signed-in users"
    );
}

#[tokio::test]
async fn superusers_are_never_limited() {
    let app = spawn_app().await;
    enable(&app, json!([rule("/api/", "", 60, 1)]), json!([])).await;

    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(app.su(Method::GET, "/api/collections", None).await.status());
    }
    let guest_first = guest(&app, Method::GET, "/api/health", None).await;
    let guest_second = guest(&app, Method::GET, "/api/health", None).await;

    assert_eq!(statuses, [200; 3]);
    assert_eq!(guest_first.status(), 200);
    assert_too_many(guest_second, "the same rule still limits guests").await;
}

#[tokio::test]
async fn excluded_ips_are_never_limited() {
    let app = spawn_app().await;
    enable(
        &app,
        json!([rule("/api/", "", 60, 1)]),
        json!(["127.0.0.1"]),
    )
    .await;

    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(guest(&app, Method::GET, "/api/health", None).await.status());
    }

    assert_eq!(
        statuses, [200; 3],
        "the test client connects from 127.0.0.1"
    );
}

#[tokio::test]
async fn disabling_rate_limits_restores_normal_answers() {
    let app = spawn_app().await;
    enable(&app, json!([rule("/api/", "", 60, 1)]), json!([])).await;
    assert_eq!(
        guest(&app, Method::GET, "/api/health", None).await.status(),
        200
    );
    assert_too_many(
        guest(&app, Method::GET, "/api/health", None).await,
        "limit in force",
    )
    .await;

    let off = json!({"rateLimits": {"enabled": false}});
    let (status, _) = status_json(app.su(Method::PATCH, "/api/settings", Some(off)).await).await;
    let after = guest(&app, Method::GET, "/api/health", None).await;

    assert_eq!(status, 200);
    assert_eq!(after.status(), 200, "disabled limits no longer apply");
}

#[tokio::test]
async fn a_spent_window_reopens_after_its_duration() {
    let app = spawn_app().await;
    enable(&app, json!([rule("/api/health", "", 1, 1)]), json!([])).await;
    assert_eq!(
        guest(&app, Method::GET, "/api/health", None).await.status(),
        200
    );
    assert_too_many(
        guest(&app, Method::GET, "/api/health", None).await,
        "window spent",
    )
    .await;

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let later = guest(&app, Method::GET, "/api/health", None).await;

    assert_eq!(later.status(), 200, "a new window has begun");
}

/// Spellings of one route that the router sends to the same handler: hex
/// escapes of unreserved letters (lower- and upper-case digits) anywhere in
/// the path, including the collection name.
const ENCODED_AUTH_PATHS: [&str; 6] = [
    "/%61pi/collections/users/auth-with-p%61ssword",
    "/api/collections/users/auth-with-p%61ssword",
    "/api/collections/%75sers/auth-with-password",
    "/api/co%6Clections/users/auth-with-password",
    "/api/co%6clections/users/auth-with-password",
    "/%61%70%69/%63ollections/users/%61uth-with-password",
];

/// Spellings the router may or may not accept; when it routes them, they
/// must be limited like the plain path.
const MAYBE_ROUTED_AUTH_PATHS: [&str; 3] = [
    "/api//collections/users/auth-with-password",
    "/api/collections//users/auth-with-password",
    "/api/collections/users/auth-with-password/",
];

#[tokio::test]
async fn percent_encoded_paths_are_limited_exactly_like_the_plain_path() {
    let app = spawn_app().await;
    let login = json!({"identity": "nobody@example.com", "password": "wrong-pass-1"});
    for (label, why) in [
        ("users:auth", "collection action"),
        ("*:authWithPassword", "wildcard action"),
        (
            "POST /api/collections/users/auth-with-password",
            "method and exact path",
        ),
        ("/api/collections/users/auth-with-password", "exact path"),
        ("/api/collections/", "path prefix"),
    ] {
        enable(&app, json!([rule(label, "", 60, 1)]), json!([])).await;

        let first = guest(
            &app,
            Method::POST,
            "/%61pi/collections/users/auth-with-p%61ssword",
            Some(login.clone()),
        )
        .await;
        let plain = guest(
            &app,
            Method::POST,
            "/api/collections/users/auth-with-password",
            Some(login.clone()),
        )
        .await;

        assert_eq!(
            first.status(),
            400,
            "{label} ({why}): an encoded login is routed"
        );
        assert_too_many(
            plain,
            &format!("{label} ({why}): the encoded request counted"),
        )
        .await;
        for path in ENCODED_AUTH_PATHS {
            let resp = guest(&app, Method::POST, path, Some(login.clone())).await;
            assert_too_many(resp, &format!("{label} ({why}): {path}")).await;
        }
        for path in MAYBE_ROUTED_AUTH_PATHS {
            let (status, body) =
                status_json(guest(&app, Method::POST, path, Some(login.clone())).await).await;
            assert!(
                status == 404 || status == 429,
                "{label} ({why}): {path} is either not routed or limited, got {status} {body}"
            );
        }
    }
}

#[tokio::test]
async fn an_encoded_record_create_counts_against_the_create_limit() {
    let app = spawn_app().await;
    enable(&app, json!([rule("users:create", "", 60, 1)]), json!([])).await;
    let body = json!({"email": "x@example.com", "password": PASSWORD, "passwordConfirm": PASSWORD});

    let first = guest(
        &app,
        Method::POST,
        "/api/collections/users/rec%6Frds",
        Some(body.clone()),
    )
    .await;
    let second = sign_up(&app, "y@example.com").await;

    assert_eq!(first.status(), 200, "the encoded create is routed");
    assert_too_many(second, "the encoded create used the window").await;
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods_count_against_path_rules() {
    let app = spawn_app().await;
    enable(&app, json!([rule("/api/", "", 60, 2)]), json!([])).await;

    let unknown = guest(&app, Method::GET, "/api/nope", None).await;
    let wrong_method = guest(&app, Method::PUT, "/api/health", None).await;
    let third = guest(&app, Method::GET, "/%61pi/health", None).await;

    assert_eq!(unknown.status(), 404);
    assert_eq!(wrong_method.status(), 404);
    assert_too_many(third, "404s used the /api/ window").await;
}

/// Turns batching on (off by default).
async fn enable_batch(app: &TestApp) {
    let body = json!({"batch": {"enabled": true}});
    let (status, saved) =
        status_json(app.su(Method::PATCH, "/api/settings", Some(body)).await).await;
    assert_eq!(status, 200, "enable batch: {saved}");
}

fn sign_up_member(email: &str) -> Value {
    json!({"method": "POST", "url": "/api/collections/users/records",
           "body": {"email": email, "password": PASSWORD, "passwordConfirm": PASSWORD}})
}

async fn guest_batch(app: &TestApp, requests: Vec<Value>) -> (u16, Value) {
    status_json(
        guest(
            app,
            Method::POST,
            "/api/batch",
            Some(json!({"requests": requests})),
        )
        .await,
    )
    .await
}

async fn user_count(app: &TestApp) -> i64 {
    let (_, list) = status_json(
        app.su(Method::GET, "/api/collections/users/records", None)
            .await,
    )
    .await;
    list["totalItems"].as_i64().expect("totalItems")
}

#[tokio::test]
async fn batch_members_count_against_every_label_their_single_request_would() {
    for (label, why) in [
        ("*:create", "wildcard action"),
        ("users:create", "collection action"),
        ("POST /api/collections/users/records", "method and path"),
        ("/api/collections/users/records", "path"),
    ] {
        let app = spawn_app().await;
        enable_batch(&app).await;
        enable(&app, json!([rule(label, "", 60, 2)]), json!([])).await;

        let (status, body) = guest_batch(
            &app,
            (0..3)
                .map(|i| sign_up_member(&format!("m{i}@example.com")))
                .collect(),
        )
        .await;

        assert_eq!(status, 400, "{label} ({why}): {body}");
        assert_eq!(body["message"], "Batch transaction failed.", "{label}");
        assert_eq!(
            body["data"]["requests"]["2"]["response"]["status"], 429,
            "{label} ({why}): the third member is over the limit: {body}"
        );
        assert_eq!(
            user_count(&app).await,
            0,
            "{label}: nothing of the batch is written"
        );
    }
}

#[tokio::test]
async fn batches_and_single_requests_share_one_window() {
    let app = spawn_app().await;
    enable_batch(&app).await;
    enable(&app, json!([rule("*:create", "", 60, 3)]), json!([])).await;

    let single = sign_up(&app, "single@example.com").await;
    let (pair, body) = guest_batch(
        &app,
        vec![
            sign_up_member("b1@example.com"),
            sign_up_member("b2@example.com"),
        ],
    )
    .await;
    let after_batch = sign_up(&app, "late@example.com").await;
    let (second_batch, _) = guest_batch(&app, vec![sign_up_member("b3@example.com")]).await;

    assert_eq!(single.status(), 200);
    assert_eq!(pair, 200, "two more creates fit in the window: {body}");
    assert_too_many(after_batch, "the window was spent by the batch").await;
    assert_eq!(second_batch, 400, "a later batch is refused too");
    assert_eq!(user_count(&app).await, 3, "never more than the limit");
}

#[tokio::test]
async fn upsert_members_count_as_the_create_or_update_they_become() {
    let app = spawn_app().await;
    enable_batch(&app).await;
    enable(&app, json!([rule("users:create", "", 60, 1)]), json!([])).await;
    let upsert = |email: &str| {
        json!({"method": "PUT", "url": "/api/collections/users/records",
               "body": {"email": email, "password": PASSWORD, "passwordConfirm": PASSWORD}})
    };

    let (status, body) = guest_batch(
        &app,
        vec![upsert("u1@example.com"), upsert("u2@example.com")],
    )
    .await;

    assert_eq!(
        status, 400,
        "two creating upserts exceed one create: {body}"
    );
    assert_eq!(body["data"]["requests"]["1"]["response"]["status"], 429);
    assert_eq!(user_count(&app).await, 0);
}

#[tokio::test]
async fn the_batch_label_limits_the_batch_itself() {
    let app = spawn_app().await;
    enable_batch(&app).await;
    enable(&app, json!([rule("/api/batch", "", 60, 1)]), json!([])).await;

    let (first, body) = guest_batch(&app, vec![sign_up_member("a@example.com")]).await;
    let second = guest(
        &app,
        Method::POST,
        "/api/batch",
        Some(json!({"requests": [sign_up_member("b@example.com")]})),
    )
    .await;

    assert_eq!(first, 200, "{body}");
    assert_too_many(second, "second batch in the window").await;
}

#[tokio::test]
async fn every_request_flow_carries_its_own_rate_limit_label() {
    let app = spawn_app().await;
    let (status, _) = status_json(
        app.update_collection("users", json!({"otp": {"enabled": true}}))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    let user = sign_up(&app, "flows@example.com").await;
    assert_eq!(user.status(), 200);
    let token = app.login_as("users", "flows@example.com", PASSWORD).await;
    for (action, path, auth, body) in [
        (
            "requestOTP",
            "request-otp",
            false,
            json!({"email": "flows@example.com"}),
        ),
        (
            "requestVerification",
            "request-verification",
            false,
            json!({"email": "flows@example.com"}),
        ),
        (
            "requestPasswordReset",
            "request-password-reset",
            false,
            json!({"email": "flows@example.com"}),
        ),
        (
            "requestEmailChange",
            "request-email-change",
            true,
            json!({"newEmail": "new@example.com"}),
        ),
    ] {
        for label in [format!("*:{action}"), format!("users:{action}")] {
            enable(&app, json!([rule(&label, "", 60, 1)]), json!([])).await;
            let url = format!("/api/collections/users/{path}");
            let send = || {
                app.request(
                    Method::POST,
                    &url,
                    auth.then_some(token.as_str()),
                    Some(body.clone()),
                )
            };

            let first = send().await;
            let second = send().await;

            assert!(first.status().is_success(), "{label}: first {path} passes");
            assert_too_many(second, &format!("{label} limits {path}")).await;
        }
    }
    enable(&app, json!([rule("*:requestOTP", "", 60, 1)]), json!([])).await;
    let other = app
        .request(
            Method::POST,
            "/api/collections/users/request-verification",
            None,
            Some(json!({"email": "flows@example.com"})),
        )
        .await;
    assert_eq!(other.status(), 204, "a requestOTP rule limits nothing else");
}
