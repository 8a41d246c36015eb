//! Request logs: every /api/ request becomes an entry in auxiliary.db,
//! readable (filtered, by id, per hour) by superusers only; with
//! `logs.maxDays = 0` nothing is written.

use crate::helpers::{TestApp, spawn_app, status_json};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

/// Polls the logs list (entries are written in the background) until `filter` matches `want` entries.
async fn logs_matching(app: &TestApp, filter: &str, want: i64) -> Value {
    let path = format!("/api/logs?perPage=50&filter={}", urlencode(filter));
    let mut last = Value::Null;
    for _ in 0..40 {
        let (status, body) = status_json(app.su(Method::GET, &path, None).await).await;
        assert_eq!(status, 200, "{body}");
        if body["totalItems"].as_i64() == Some(want) {
            return body;
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("expected {want} entries for {filter}, last answer {last}");
}

fn urlencode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn requests_are_logged_with_their_outcome_and_can_be_filtered() {
    let app = spawn_app().await;
    app.request(
        Method::POST,
        "/api/collections/users/records",
        None,
        Some(json!({"email": "not-an-email"})),
    )
    .await;
    app.su(Method::GET, "/api/health?probe=1", None).await;

    let failed = logs_matching(&app, "data.status = 400 && data.url ~ 'users/records'", 1).await;
    let entry = &failed["items"][0];
    let health = logs_matching(&app, "data.url = '/api/health?probe=1'", 1).await;
    let id = entry["id"].as_str().expect("id");
    let (view_status, viewed) =
        status_json(app.su(Method::GET, &format!("/api/logs/{id}"), None).await).await;
    let (stats_status, stats) =
        status_json(app.su(Method::GET, "/api/logs/stats", None).await).await;
    let (missing, _) = status_json(app.su(Method::GET, "/api/logs/nope", None).await).await;
    let (bad_filter, bad_body) = status_json(
        app.su(Method::GET, "/api/logs?filter=password%3D1", None)
            .await,
    )
    .await;
    let (guest, _) = status_json(app.request(Method::GET, "/api/logs", None, None).await).await;

    assert_eq!(entry["level"], 8, "failed requests are errors");
    assert_eq!(entry["message"], "POST /api/collections/users/records");
    assert_eq!(entry["data"]["method"], "POST");
    assert_eq!(entry["data"]["error"], "Failed to create record.");
    assert!(entry["data"]["details"]["email"].is_string(), "{entry}");
    assert_eq!(entry["data"]["remoteIP"], "127.0.0.1");
    assert_eq!(entry["data"]["auth"], "");
    assert_eq!(health["items"][0]["level"], 0);
    assert_eq!(health["items"][0]["data"]["auth"], "_superusers");
    assert!(health["items"][0]["data"]["execTime"].is_number());
    assert_eq!(view_status, 200);
    assert_eq!(&viewed, entry);
    assert_eq!(stats_status, 200);
    assert!(
        stats[0]["date"]
            .as_str()
            .is_some_and(|d| d.ends_with(":00:00.000Z")),
        "{stats}"
    );
    assert!(stats[0]["total"].as_i64().is_some_and(|t| t >= 2));
    assert_eq!(missing, 404);
    assert_eq!(bad_filter, 400, "{bad_body}");
    assert!(guest == 401 || guest == 403, "{guest}");
}

#[tokio::test]
async fn max_days_zero_turns_logging_off() {
    let app = spawn_app().await;
    let (status, body) = status_json(
        app.su(
            Method::PATCH,
            "/api/settings",
            Some(json!({"logs": {"maxDays": 0}})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, baseline) = status_json(app.su(Method::GET, "/api/logs", None).await).await;
    for _ in 0..5 {
        app.su(Method::GET, "/api/health?off=1", None).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let off = logs_matching(&app, "data.url = '/api/health?off=1'", 0).await;
    let (deleted, _) = status_json(app.su(Method::DELETE, "/api/logs", None).await).await;

    assert!(baseline["totalItems"].as_i64().is_some());
    assert_eq!(off["totalItems"], 0);
    assert_eq!(deleted, 204);
}

#[tokio::test]
async fn trusted_proxy_headers_give_the_client_ip_to_logs_and_health() {
    let app = spawn_app().await;
    let health_with = |marker: &'static str, forwarded: &'static str| {
        app.client
            .get(format!("{}/api/health?proxy={marker}", app.base))
            .header("Authorization", app.superuser_token.clone())
            .header("X-Forwarded-For", forwarded)
            .send()
    };

    // Not trusted yet: the peer is the client, and health points at the header.
    let (_, untrusted) =
        status_json(health_with("untrusted", "203.0.113.7").await.expect("sent")).await;
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
    let (_, trusted) = status_json(
        health_with("trusted", "198.51.100.1, 203.0.113.9")
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(untrusted["data"]["realIP"], "127.0.0.1", "{untrusted}");
    assert_eq!(untrusted["data"]["possibleProxyHeader"], "X-Forwarded-For");
    assert_eq!(
        trusted["data"]["realIP"], "203.0.113.9",
        "rightmost address: {trusted}"
    );
    assert_eq!(trusted["data"]["possibleProxyHeader"], "");
    let logged = logs_matching(&app, "data.url ~ 'proxy=trusted'", 1).await;
    let data = &logged["items"][0]["data"];
    assert_eq!(data["userIP"], "203.0.113.9", "{data}");
    assert_eq!(
        data["remoteIP"], "127.0.0.1",
        "the peer stays the remote IP: {data}"
    );
}

#[tokio::test]
async fn percent_encoded_api_paths_are_logged_like_the_plain_path() {
    let app = spawn_app().await;
    let paths = [
        "/api/health?enc=plain",
        "/%61pi/health?enc=a",
        "/api/he%61lth?enc=lower",
        "/%61%70%69/%68ealth?enc=all",
        "/api/%68%65%61%6C%74%68?enc=upper",
    ];
    for path in paths {
        let (status, body) = status_json(app.su(Method::GET, path, None).await).await;
        assert_eq!(status, 200, "{path} is routed: {body}");
    }

    let logged = logs_matching(&app, "data.url ~ 'enc='", paths.len() as i64).await;

    for path in paths {
        let found = logged["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|e| e["data"]["url"] == path && e["data"]["status"] == 200);
        assert!(found, "{path} must be logged with its status: {logged}");
    }
}

#[tokio::test]
async fn unrouted_api_paths_are_logged_too() {
    let app = spawn_app().await;
    for path in ["/api/nope?miss=1", "/%61pi/nope?miss=2"] {
        app.request(Method::GET, path, None, None).await;
    }

    let logged = logs_matching(&app, "data.url ~ 'miss='", 2).await;

    assert!(
        logged["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|e| e["data"]["status"] == 404),
        "{logged}"
    );
}

#[tokio::test]
async fn secret_query_values_and_long_methods_are_not_stored_in_logs() {
    let app = spawn_app().await;
    let secret = "s3cr3t-VALUE-42";
    for query in [
        format!("token={secret}&probe=redact1"),
        format!("probe=redact2&%74oken={secret}"),
        format!("probe=redact3&TOKEN={secret}"),
        format!("probe=redact4&password={secret}&passwordConfirm={secret}"),
        format!("probe=redact5&code={secret}&state={secret}"),
        format!("probe=redact6&access_token={secret}&refresh_token={secret}"),
        format!("probe=redact7&otp={secret}&secret={secret}"),
    ] {
        app.request(Method::GET, &format!("/api/health?{query}"), None, None)
            .await;
    }
    app.client
        .get(format!(
            "{}/api/oauth2-redirect?code={secret}&state={secret}&probe=redact8",
            app.base
        ))
        .header(
            "Referer",
            format!("https://app.example.com/cb?token={secret}"),
        )
        .send()
        .await
        .expect("sent");
    let long_method = format!("X{}", "Y".repeat(300));
    app.request(
        Method::from_bytes(long_method.as_bytes()).expect("method"),
        "/api/health?probe=longmethod",
        None,
        None,
    )
    .await;

    let logged = logs_matching(&app, "data.url ~ 'probe='", 9).await;

    let text = logged.to_string();
    assert!(!text.contains(secret), "a secret reached the logs: {text}");
    for item in logged["items"].as_array().expect("items") {
        let url = item["data"]["url"].as_str().expect("url");
        assert!(url.contains("probe="), "other query values stay: {url}");
        assert!(
            item["data"]["method"].as_str().expect("method").len() <= 50,
            "{item}"
        );
    }
    assert!(text.contains("probe=redact1"), "{text}");
}

#[tokio::test]
async fn a_burst_of_requests_is_logged_whole_with_distinct_ids_and_wire_format_times() {
    // More than two multi-row INSERTs' worth: the writer mixes full statements and single rows.
    let app = spawn_app().await;
    let before = chrono::Utc::now() - chrono::Duration::seconds(2);
    for n in 0..70 {
        app.request(Method::GET, &format!("/api/health?burst={n}"), None, None)
            .await;
    }

    logs_matching(&app, "data.url ~ 'burst='", 70).await;
    let mut items = Vec::new();
    for page in 1..=2 {
        let path = format!(
            "/api/logs?perPage=50&page={page}&filter={}",
            urlencode("data.url ~ 'burst='")
        );
        let (status, body) = status_json(app.su(Method::GET, &path, None).await).await;
        assert_eq!(status, 200, "{body}");
        items.extend(body["items"].as_array().cloned().unwrap_or_default());
    }
    let since = before.format("%Y-%m-%d %H:%M:%S").to_string();
    let in_range = logs_matching(
        &app,
        &format!("data.url ~ 'burst=' && created >= '{since}'"),
        70,
    )
    .await;

    let ids: std::collections::HashSet<&str> =
        items.iter().filter_map(|i| i["id"].as_str()).collect();
    assert_eq!(ids.len(), 70, "every request has its own entry and id");
    for item in &items {
        let id = item["id"].as_str().expect("id");
        assert!(
            id.len() == 15
                && id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
            "PocketBase id shape: {id}"
        );
        let created = item["created"].as_str().expect("created");
        let parsed = chrono::NaiveDateTime::parse_from_str(created, "%Y-%m-%d %H:%M:%S%.3fZ");
        assert!(
            created.len() == 24 && parsed.is_ok(),
            "wire format: {created}"
        );
    }
    let newest = items[0]["data"]["url"].as_str().unwrap_or_default();
    assert_eq!(newest, "/api/health?burst=69", "newest first by default");
    assert_eq!(in_range["totalItems"], 70, "created filters see the stamps");
}
