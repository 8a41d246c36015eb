//! The second part of the hooks' JSVM API: `$app`'s read helpers
//! (`settings`, `isDev`, `countRecords`, `findAllRecords`,
//! `findAuthRecordByEmail`, `findRecordsByIds`, `findFirstRecordByData`,
//! `expandRecord`, `logger`), `$dbx` with `$app.recordQuery`, `$mails`,
//! `$security.randomStringByRegex` / `parseUnverifiedJWT`, more of `$apis`,
//! `DateTime` and `ValidationError`. The routes are in
//! `fixtures/pb_hooks_api2/main.pb.js`; they are guest-callable on purpose.

use crate::helpers::{TestApp, spawn_app_configured, status_json};
use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const TIMEOUT_MS: u64 = 1_000;
const PASSWORD: &str = "password123";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/api/fixtures/pb_hooks_api2")
}

/// A server with the fixture hooks, `posts` (alpha, beta, gamma) and
/// `comments` (a relation to posts) and two users.
async fn app_with_hooks() -> TestApp {
    let app = spawn_app_configured(|config| {
        config.hooks.dir = fixtures();
        config.hooks.timeout_ms = TIMEOUT_MS;
        config.hooks.pool_size = 2;
    })
    .await;
    // Rules closed: the hooks read as the superuser whatever the rules say.
    let posts = app
        .create_collection_ok(json!({
            "name": "posts",
            "fields": [{"name": "title", "type": "text"}, {"name": "slug", "type": "text"}]
        }))
        .await;
    app.create_collection_ok(json!({
        "name": "comments",
        "fields": [{"name": "post", "type": "relation", "collectionId": posts["id"], "maxSelect": 1}]
    }))
    .await;
    for (title, slug) in [("alpha", "x1"), ("beta", "x2"), ("gamma", "y")] {
        app.create_record_ok("posts", json!({"title": title, "slug": slug}))
            .await;
    }
    for email in ["alice@example.com", "bob@example.com"] {
        app.create_record_ok(
            "users",
            json!({"email": email, "password": PASSWORD, "passwordConfirm": PASSWORD}),
        )
        .await;
    }
    app
}

async fn get(app: &TestApp, path: &str, token: Option<&str>) -> (u16, Value) {
    status_json(app.request(Method::GET, path, token, None).await).await
}

async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    status_json(app.request(Method::POST, path, None, Some(body)).await).await
}

fn query(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).expect("query")
}

async fn post_titles(app: &TestApp) -> Vec<String> {
    let path = "/api/collections/posts/records?perPage=100&sort=title";
    let (status, body) = status_json(app.su(Method::GET, path, None).await).await;
    assert_eq!(status, 200, "{body}");
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["title"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn user_id(app: &TestApp, email: &str) -> String {
    let (status, body) = get(
        app,
        &format!("/api2/by-email?{}", query(&[("email", email)])),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn settings_and_is_dev_are_readable_without_secrets() {
    let app = app_with_hooks().await;
    let (status, body) = status_json(
        app.su(
            Method::PATCH,
            "/api/settings",
            Some(json!({"meta": {"appName": "Hooked"},
                        "smtp": {"enabled": false, "host": "127.0.0.1", "port": 25, "password": "s3cret"}})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = get(&app, "/api2/info", None).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["appName"], "Hooked", "{body}");
    assert_eq!(body["smtpEnabled"], false, "{body}");
    assert_eq!(
        body["smtpPassword"], "",
        "the SMTP password is never handed to hooks (but the key is there): {body}"
    );
    assert_eq!(body["dev"], false, "not started with --dev");
}

#[tokio::test]
async fn count_and_find_all_read_every_record_and_bind_their_values() {
    let app = app_with_hooks().await;

    for (title, expected, why) in [
        ("alpha", 1, "a plain value"),
        ("x' OR 1=1 --", 0, "quote, or and comment"),
        ("{:t}", 0, "a placeholder as the value"),
        ("alpha\" || title != \"", 0, "filter syntax as the value"),
    ] {
        let (status, body) = get(
            &app,
            &format!("/api2/count?{}", query(&[("title", title)])),
            None,
        )
        .await;
        assert_eq!(status, 200, "{why}: {body}");
        assert_eq!(body["all"], 3, "{why}: rules are not applied: {body}");
        assert_eq!(
            body["byFilter"], expected,
            "{title:?} ({why}) by filter: {body}"
        );
        assert_eq!(
            body["byHash"], expected,
            "{title:?} ({why}) by $dbx: {body}"
        );
    }

    let (status, body) = get(&app, "/api2/all", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["all"], json!(["alpha", "beta", "gamma"]), "{body}");
    assert_eq!(
        body["byFilter"],
        json!(["alpha", "beta", "gamma"]),
        "{body}"
    );
    assert_eq!(body["byDbx"], json!(["alpha", "beta", "gamma"]), "{body}");
    assert_eq!(post_titles(&app).await.len(), 3, "table intact");
}

#[tokio::test]
async fn dbx_expressions_bind_every_value_and_never_change_the_statement() {
    let app = app_with_hooks().await;
    let hostile = [
        "x' OR '1'='1",
        "x\"; DROP TABLE posts; --",
        "{:v}",
        "alpha' --",
        "/* */ alpha",
        "%",
        "_",
    ];

    for kind in [
        "exp",
        "expQuoted",
        "hash",
        "in",
        "like",
        "not",
        "exists",
        "or",
        "and",
    ] {
        for value in hostile {
            let (status, body) =
                post(&app, "/api2/dbx", json!({"kind": kind, "value": value})).await;
            assert_eq!(status, 200, "{kind} with {value:?}: {body}");
            let titles: Vec<&str> = body
                .as_array()
                .expect("titles")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let expected: &[&str] = match kind {
                "in" | "or" => &["alpha"],
                "not" => &["alpha", "beta", "gamma"],
                _ => &[],
            };
            assert_eq!(
                titles, expected,
                "{kind} with {value:?} must match as a value"
            );
        }
    }
    for (kind, value, expected, why) in [
        ("hash", "beta", json!(["beta"]), "equality"),
        ("like", "mm", json!(["gamma"]), "like wraps in %"),
        ("notLike", "a", json!([]), "every title has an a"),
        ("notIn", "beta", json!(["alpha", "gamma"]), "not in"),
        ("between", "b", json!(["beta", "gamma"]), "between"),
        ("and", "alpha", json!(["alpha"]), "and: alpha has slug x1"),
        (
            "exists",
            "beta",
            json!(["alpha", "beta", "gamma"]),
            "exists subquery",
        ),
        (
            "orderBy",
            "title DESC",
            json!(["gamma", "beta", "alpha"]),
            "order",
        ),
    ] {
        let (status, body) = post(&app, "/api2/dbx", json!({"kind": kind, "value": value})).await;
        assert_eq!(status, 200, "{why}: {body}");
        assert_eq!(body, expected, "{why}");
    }
    assert_eq!(
        post_titles(&app).await,
        ["alpha", "beta", "gamma"],
        "table intact"
    );
}

#[tokio::test]
async fn dbx_column_names_and_orders_that_are_not_plain_names_are_refused() {
    let app = app_with_hooks().await;

    for (body, why) in [
        (
            json!({"kind": "hashColumn", "column": "title = title OR 1", "value": "x"}),
            "SQL as a column",
        ),
        (
            json!({"kind": "hashColumn", "column": "title\"--", "value": "x"}),
            "quote in a column",
        ),
        (
            json!({"kind": "hashColumn", "column": "", "value": "x"}),
            "empty column",
        ),
        (
            json!({"kind": "orderBy", "value": "title; DROP TABLE posts"}),
            "SQL in the order",
        ),
        (
            json!({"kind": "orderBy", "value": "(SELECT 1)"}),
            "subquery as the order",
        ),
        (
            json!({"kind": "orderBy", "value": "title DESC, id"}),
            "two terms in one string",
        ),
        (
            json!({"kind": "hashColumn", "column": "nosuch", "value": "x"}),
            "unknown column",
        ),
    ] {
        let (status, answer) = post(&app, "/api2/dbx", body.clone()).await;
        assert_eq!(status, 400, "{why} ({body}): {answer}");
        assert_eq!(answer["status"], 400, "{why}: the envelope: {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(
            !message.contains("FROM"),
            "{why}: no SQL text to the client: {answer}"
        );
    }
    assert_eq!(post_titles(&app).await.len(), 3, "table intact");
}

#[tokio::test]
async fn finders_by_email_ids_and_data_match_exactly_and_refuse_bad_names() {
    let app = app_with_hooks().await;

    let alice = user_id(&app, "alice@example.com").await;
    assert!(!alice.is_empty());
    // users' email index is not COLLATE NOCASE: exact, as PocketBase's.
    for email in [
        "ALICE@example.com",
        "nobody@example.com",
        "alice@example.com' OR '1'='1",
        "%",
        "",
    ] {
        let (status, body) = get(
            &app,
            &format!("/api2/by-email?{}", query(&[("email", email)])),
            None,
        )
        .await;
        assert_eq!(status, 404, "{email:?}: {body}");
    }

    let (_, all) = status_json(
        app.su(
            Method::GET,
            "/api/collections/posts/records?sort=title",
            None,
        )
        .await,
    )
    .await;
    let ids: Vec<Value> = all["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    for (ids, expected, why) in [
        (
            json!([ids[0], ids[2]]),
            json!(["alpha", "gamma"]),
            "two ids",
        ),
        (json!([]), json!([]), "no ids"),
        (
            json!(["' OR 1=1 --", ids[1]]),
            json!(["beta"]),
            "SQL as an id",
        ),
    ] {
        let (status, body) = post(&app, "/api2/by-ids", json!({"ids": ids})).await;
        assert_eq!(status, 200, "{why}: {body}");
        assert_eq!(body, expected, "{why}");
    }
    let (status, body) = post(&app, "/api2/by-ids", json!({"ids": "not a list"})).await;
    assert_eq!(status, 400, "ids must be a list: {body}");

    for (key, value, expected, why) in [
        ("slug", "x2", 200, "a field"),
        ("slug", "x' OR '1'='1", 404, "SQL as the value"),
        ("nosuch", "x", 400, "not a field"),
        ("slug = slug OR 1", "x", 400, "SQL as the key"),
    ] {
        let (status, body) = get(
            &app,
            &format!("/api2/by-data?{}", query(&[("key", key), ("value", value)])),
            None,
        )
        .await;
        assert_eq!(status, expected, "{why}: {body}");
    }
}

#[tokio::test]
async fn expand_record_fills_in_the_relation() {
    let app = app_with_hooks().await;
    let (_, all) = status_json(
        app.su(
            Method::GET,
            "/api/collections/posts/records?sort=title",
            None,
        )
        .await,
    )
    .await;
    let beta = all["items"][1]["id"].clone();
    let comment = app
        .create_record_ok("comments", json!({"post": beta}))
        .await;

    let (status, body) = get(
        &app,
        &format!("/api2/expand/{}", comment["id"].as_str().expect("id")),
        None,
    )
    .await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["post"], "beta", "{body}");
}

#[tokio::test]
async fn logger_writes_and_answers() {
    let app = app_with_hooks().await;
    let (status, body) = get(&app, "/api2/log", None).await;
    assert_eq!(status, 204, "{body}");
}

#[tokio::test]
async fn mails_use_the_account_flow_tokens_and_templates() {
    let app = app_with_hooks().await;
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

    let (status, body) = post(
        &app,
        "/api2/mail/verification",
        json!({"email": "alice@example.com"}),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let mail = sink
        .wait_for("alice@example.com", Duration::from_secs(10))
        .await
        .expect("verification mail");
    let token = mail.find_token().expect("a token in the mail");
    let (status, body) = status_json(
        app.request(
            Method::POST,
            "/api/collections/users/confirm-verification",
            None,
            Some(json!({"token": token})),
        )
        .await,
    )
    .await;
    assert_eq!(
        status, 204,
        "the mailed token confirms the account as the REST flow's does: {body}"
    );

    let (status, body) = post(
        &app,
        "/api2/mail/reset",
        json!({"email": "bob@example.com"}),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let mail = sink
        .wait_for("bob@example.com", Duration::from_secs(10))
        .await
        .expect("reset mail");
    let token = mail.find_token().expect("a token in the mail");
    let (status, body) = status_json(
        app.request(
            Method::POST,
            "/api/collections/users/confirm-password-reset",
            None,
            Some(json!({"token": token, "password": "newpassword1", "passwordConfirm": "newpassword1"})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 204, "the mailed reset token works: {body}");
    app.login_as("users", "bob@example.com", "newpassword1")
        .await;

    let (status, body) = post(
        &app,
        "/api2/mail/change",
        json!({"email": "alice@example.com", "newEmail": "alice2@example.com"}),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let mail = sink
        .wait_for("alice2@example.com", Duration::from_secs(10))
        .await
        .expect("change mail to the new address");
    assert!(mail.find_token().is_some(), "{}", mail.raw);

    let (status, body) = post(
        &app,
        "/api2/mail/otp",
        json!({"email": "alice@example.com"}),
    )
    .await;
    assert_eq!(status, 204, "{body}");

    // The login alert: the info is escaped into the template as PocketBase does.
    let (status, body) = post(
        &app,
        "/api2/mail/alert",
        json!({"email": "bob@example.com", "info": "<b>Firefox</b> on Linux"}),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let alert = loop {
        let found = sink.messages().into_iter().find(|m| {
            m.to.iter().any(|t| t.contains("bob@example.com"))
                && m.subject().is_some_and(|s| s.contains("new location"))
        });
        if let Some(mail) = found {
            break mail;
        }
        assert!(Instant::now() < deadline, "no login alert mail");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let text = alert.decoded();
    let html = text.split("text/html").nth(1).expect("an HTML part");
    assert!(
        html.contains("&lt;b&gt;Firefox&lt;/b&gt; on Linux"),
        "{text}"
    );
    assert!(
        !html.contains("<b>Firefox"),
        "no markup from the hook's text: {text}"
    );
    let (status, body) = post(
        &app,
        "/api2/mail/alert",
        json!({"email": "bob@example.com", "info": "x".repeat(5_000)}),
    )
    .await;
    assert_eq!(status, 400, "an oversized alert text: {body}");

    for (kind, body, why) in [
        (
            "change",
            json!({"email": "alice@example.com", "newEmail": "x@y.z\r\nBcc: evil@example.com"}),
            "header injection",
        ),
        (
            "change",
            json!({"email": "alice@example.com", "newEmail": "not an email"}),
            "not an address",
        ),
        (
            "unsaved",
            json!({"email": "alice@example.com"}),
            "an unsaved record",
        ),
    ] {
        let (status, answer) = post(&app, &format!("/api2/mail/{kind}"), body).await;
        assert_eq!(status, 400, "{why}: {answer}");
    }
    assert!(
        sink.messages()
            .iter()
            .all(|m| m.to.iter().all(|t| !t.contains("evil"))),
        "no mail to an injected address"
    );
}

#[tokio::test]
async fn random_string_by_regex_matches_and_refuses_unbounded_output() {
    let app = app_with_hooks().await;
    let (status, body) = get(
        &app,
        &format!("/api2/regex?{}", query(&[("p", "[a-z]{5}-\\d{3}")])),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let value = body["value"].as_str().expect("value");
    assert_eq!(value.len(), 9, "{value}");
    assert!(
        value[..5].chars().all(|c| c.is_ascii_lowercase()) && &value[5..6] == "-",
        "{value}"
    );

    for (pattern, why) in [
        ("a{1000}{1000}{1000}", "a billion characters"),
        ("(", "invalid"),
        ("[z-a]", "invalid class"),
    ] {
        let (status, body) = get(
            &app,
            &format!("/api2/regex?{}", query(&[("p", pattern)])),
            None,
        )
        .await;
        assert_eq!(status, 400, "{why}: {body}");
    }
}

fn unsigned_jwt(claims: Value) -> String {
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.c2ln",
        b64(&json!({"alg": "HS256", "typ": "JWT"})),
        b64(&claims)
    )
}

#[tokio::test]
async fn parse_unverified_jwt_reads_claims_but_refuses_expired_or_malformed_tokens() {
    let app = app_with_hooks().await;
    let now = chrono::Utc::now().timestamp();
    let good = unsigned_jwt(json!({"sub": "abc", "exp": now + 60}));
    let (status, body) = get(&app, &format!("/api2/jwt?{}", query(&[("t", &good)])), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sub"], "abc");

    let expired = unsigned_jwt(json!({"sub": "abc", "exp": now - 60}));
    let future = unsigned_jwt(json!({"sub": "abc", "nbf": now + 600}));
    for (token, why) in [
        (expired.as_str(), "expired"),
        (future.as_str(), "not yet valid"),
        ("abc", "one segment"),
        ("a.b.c.d", "four segments"),
        ("a.!!!.c", "payload not base64"),
    ] {
        let (status, body) =
            get(&app, &format!("/api2/jwt?{}", query(&[("t", token)])), None).await;
        assert_eq!(status, 400, "{why}: {body}");
    }
}

#[tokio::test]
async fn require_superuser_or_owner_admits_only_the_owner_and_superusers() {
    let app = app_with_hooks().await;
    let alice_id = user_id(&app, "alice@example.com").await;
    let alice = app.login_as("users", "alice@example.com", PASSWORD).await;
    let bob = app.login_as("users", "bob@example.com", PASSWORD).await;
    let forged = format!("{}x", &alice[..alice.len() - 1]);
    let su = app.superuser_token.clone();
    let path = format!("/api2/owner/{alice_id}");

    for (token, expected, why) in [
        (None, 401, "guest"),
        (Some(forged.as_str()), 401, "forged token"),
        (Some(bob.as_str()), 403, "another user"),
        (Some(alice.as_str()), 200, "the owner"),
        (Some(su.as_str()), 200, "a superuser"),
    ] {
        let (status, body) = get(&app, &path, token).await;
        assert_eq!(status, expected, "{why}: {body}");
    }
}

#[tokio::test]
async fn body_limit_refuses_a_larger_body_with_413() {
    let app = app_with_hooks().await;
    let (status, body) = post(&app, "/api2/limited", json!({"a": 1})).await;
    assert_eq!(status, 200, "small body: {body}");
    let (status, body) = post(&app, "/api2/limited", json!({"a": "x".repeat(100)})).await;
    assert_eq!(status, 413, "large body: {body}");
}

#[tokio::test]
async fn enrich_record_shows_a_guest_only_what_the_guest_may_see() {
    let app = app_with_hooks().await;
    let alice_id = user_id(&app, "alice@example.com").await;
    let alice = app.login_as("users", "alice@example.com", PASSWORD).await;
    let bob = app.login_as("users", "bob@example.com", PASSWORD).await;
    let path = format!("/api2/enrich/{alice_id}");

    for (token, shows_email, why) in [
        (None, false, "guest"),
        (Some(bob.as_str()), false, "another user"),
        (Some(alice.as_str()), true, "the owner"),
        (Some(app.superuser_token.as_str()), true, "a superuser"),
    ] {
        let (status, body) = get(&app, &path, token).await;
        assert_eq!(status, 200, "{why}: {body}");
        assert_eq!(body["id"], alice_id.as_str(), "{why}");
        assert_eq!(body.get("email").is_some(), shows_email, "{why}: {body}");
        assert!(
            body.get("password").is_none() && body.get("tokenKey").is_none(),
            "{why}: {body}"
        );
    }
}

#[tokio::test]
async fn record_auth_response_issues_a_working_token_for_superuser_routes_only() {
    let app = app_with_hooks().await;
    let (status, body) = post(&app, "/api2/token", json!({"email": "alice@example.com"})).await;
    assert_eq!(status, 401, "a guest cannot mint tokens: {body}");

    let (status, body) = status_json(
        app.su(
            Method::POST,
            "/api2/token",
            Some(json!({"email": "alice@example.com"})),
        )
        .await,
    )
    .await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["record"]["email"], "alice@example.com",
        "the owner's view: {body}"
    );
    assert_eq!(
        body["meta"],
        json!({"via": "hook", "method": "custom", "hookSaw": "alice@example.com"}),
        "onRecordAuthRequest ran on the hook's auth answer: {body}"
    );
    assert!(body["record"].get("tokenKey").is_none(), "{body}");
    let token = body["token"].as_str().expect("token");
    let (status, body) = status_json(
        app.request(
            Method::POST,
            "/api/collections/users/auth-refresh",
            Some(token),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "the token is a real auth token: {body}");
}

#[tokio::test]
async fn date_time_and_validation_error_behave_as_pocketbase_documents() {
    let app = app_with_hooks().await;
    let (status, body) = get(&app, "/api2/datetime", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "string": "2024-01-31 10:00:00.000Z", "unix": 1_706_695_200,
            "plusHour": "2024-01-31 11:00:00.000Z", "nextMonth": "2024-03-02 10:00:00.000Z",
            "empty": false, "before": true, "json": "2024-01-31 10:00:00.000Z"
        })
    );
    let (status, body) = get(&app, "/api2/datetime-bad", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"d": ""}),
        "an unparsable date is the zero time, as PocketBase's"
    );

    let (status, body) = post(&app, "/api2/validate", json!({})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body,
        json!({"status": 400, "message": "Invalid title.",
               "data": {"title": {"code": "invalid_title", "message": "Title is not valid."}}})
    );
}

#[tokio::test]
async fn a_hook_looping_over_the_new_api_is_stopped_by_the_time_limit() {
    let app = app_with_hooks().await;
    let started = Instant::now();
    let (status, body) = get(&app, "/api2/loop", None).await;
    assert_eq!(status, 500, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "stopped in time: {:?}",
        started.elapsed()
    );
    let (status, _) = get(&app, "/api2/info", None).await;
    assert_eq!(status, 200, "the server keeps serving");
}

#[tokio::test]
async fn record_auth_response_keeps_the_auth_rule_mfa_and_the_superuser_ip_list() {
    let app = app_with_hooks().await;
    let open = |collection: &str, email: &str, method: &str| json!({"collection": collection, "email": email, "method": method});
    let (status, body) = post(
        &app,
        "/api2/token-open",
        open("users", "alice@example.com", ""),
    )
    .await;
    assert_eq!(status, 200, "the default authRule admits everyone: {body}");

    let (status, body) = status_json(
        app.su(
            Method::PATCH,
            "/api/collections/users",
            Some(json!({"authRule": "verified = true"})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(
        &app,
        "/api2/token-open",
        open("users", "alice@example.com", ""),
    )
    .await;
    assert_eq!(status, 403, "alice is not verified: {body}");
    assert!(body.get("token").is_none(), "{body}");

    let (status, body) = status_json(
        app.su(
            Method::PATCH,
            "/api/collections/users",
            Some(json!({"authRule": "", "otp": {"enabled": true}, "mfa": {"enabled": true}})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(
        &app,
        "/api2/token-open",
        open("users", "alice@example.com", "password"),
    )
    .await;
    assert_eq!(status, 401, "MFA wants a second method: {body}");
    assert!(
        body["mfaId"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(body.get("token").is_none(), "{body}");
    let (status, body) = post(
        &app,
        "/api2/token-open",
        open("users", "alice@example.com", ""),
    )
    .await;
    assert_eq!(
        status, 200,
        "no method named: no MFA step, as PocketBase: {body}"
    );

    let su = open("_superusers", crate::helpers::SU_EMAIL, "");
    let (status, body) = post(&app, "/api2/token-open", su.clone()).await;
    assert_eq!(status, 200, "an open route is the author's choice: {body}");
    let (status, body) = status_json(
        app.su(
            Method::PATCH,
            "/api/settings",
            Some(json!({"superuserIPs": ["10.9.9.9"]})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(&app, "/api2/token-open", su).await;
    assert_eq!(
        status, 403,
        "no superuser token outside superuserIPs: {body}"
    );
}

/// `e.realIP()` and the superuser IP check of `recordAuthResponse` read the
/// client address as every REST endpoint does: a forwarded header counts
/// only once it is trusted in the settings, so a guest cannot claim an
/// allowed address and a real client behind the proxy is not refused.
#[tokio::test]
async fn hooks_see_the_client_ip_the_rest_endpoints_see() {
    let app = app_with_hooks().await;
    let forwarded = |method: Method, path: &str, ip: &str, body: Option<Value>| {
        let mut req = app
            .client
            .request(method, format!("{}{path}", app.base))
            .header("X-Forwarded-For", ip.to_owned());
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send()
    };
    let (_, body) = status_json(
        forwarded(Method::GET, "/api2/ip", "203.0.113.9", None)
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(
        body["ip"], "127.0.0.1",
        "an untrusted header is ignored: {body}"
    );

    let (status, body) = status_json(
        app.su(
            Method::PATCH,
            "/api/settings",
            Some(json!({"trustedProxy": {"headers": ["X-Forwarded-For"], "useLeftmostIP": false}})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = status_json(
        forwarded(Method::GET, "/api2/ip", "203.0.113.9", None)
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(
        body["ip"], "203.0.113.9",
        "the trusted header names the client: {body}"
    );
    assert_eq!(body["addr"], "203.0.113.9", "{body}");

    // Only 203.0.113.9 may act as a superuser now (this PATCH comes from there).
    let (status, body) = status_json(
        app.client
            .patch(format!("{}/api/settings", app.base))
            .header("Authorization", app.superuser_token.clone())
            .header("X-Forwarded-For", "203.0.113.9")
            .json(&json!({"superuserIPs": ["203.0.113.9"]}))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let su = json!({"collection": "_superusers", "email": crate::helpers::SU_EMAIL, "method": ""});
    for (ip, expected) in [("203.0.113.9", 200), ("10.0.0.1", 403), ("127.0.0.1", 403)] {
        let (status, body) = status_json(
            forwarded(Method::POST, "/api2/token-open", ip, Some(su.clone()))
                .await
                .expect("sent"),
        )
        .await;
        assert_eq!(status, expected, "superuser token from {ip}: {body}");
        assert_eq!(body.get("token").is_some(), expected == 200, "{body}");
    }
}

/// A failing `newQuery` answers PocketBase's opaque 400: the database's
/// text (here a table name) goes to the log, never to the client.
#[tokio::test]
async fn a_failing_raw_query_does_not_show_sqlite_text_to_the_client() {
    let app = app_with_hooks().await;
    let (status, body) = get(&app, "/api2/badsql", None).await;
    assert_eq!(status, 400, "{body}");
    let text = body.to_string();
    assert!(
        !text.contains("secret_table_xyz") && !text.contains("no such table"),
        "{body}"
    );
    let (status, _) = get(&app, "/api/health", None).await;
    assert_eq!(status, 200, "the server keeps serving");
}

/// A hook's raw `INSERT` bypasses the record write path, which indexes the
/// rows it inserts: the row is indexed before the hook's write commits.
#[tokio::test]
async fn a_raw_insert_from_a_hook_is_in_the_search_index() {
    if crate::helpers::sqlite_only("full-text search and raw SQL from hooks are SQLite-only") {
        return;
    }
    let app = app_with_hooks().await;
    app.create_collection_ok(json!({
        "name": "memos", "listRule": "",
        "fields": [{"name": "title", "type": "text", "searchable": true}]
    }))
    .await;

    let (status, body) = post(&app, "/api2/raw-memo", json!({})).await;
    assert_eq!(status, 200, "{body}");

    let (status, found) = get(
        &app,
        "/api/collections/memos/records?search=marmalade",
        None,
    )
    .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["totalItems"], 1, "the raw row is searchable: {found}");
}
