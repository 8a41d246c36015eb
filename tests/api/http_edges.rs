//! Health, CORS, security headers, 404s, body limits.

use crate::helpers::{spawn_app, status_json};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn health_answers_like_pocketbase() {
    let app = spawn_app().await;

    let (status, body) =
        status_json(app.request(Method::GET, "/api/health", None, None).await).await;

    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"message": "API is healthy.", "code": 200, "data": {}})
    );
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_are_json_404s() {
    let app = spawn_app().await;

    for (method, path) in [
        (Method::GET, "/api/nothing"),
        (Method::PUT, "/api/health"),
        (Method::PUT, "/api/collections/x/records/y"),
    ] {
        let (status, body) = status_json(app.request(method.clone(), path, None, None).await).await;
        assert_eq!(status, 404, "{method} {path}");
        assert_eq!(body["status"], 404, "{method} {path}: {body}");
    }
}

#[tokio::test]
async fn cors_allows_any_origin_and_answers_preflight_with_204() {
    let app = spawn_app().await;

    let simple = app
        .client
        .get(format!("{}/api/health", app.base))
        .header("Origin", "https://app.example")
        .send()
        .await
        .expect("send");
    let preflight = app
        .client
        .request(
            Method::OPTIONS,
            format!("{}/api/collections/posts/records", app.base),
        )
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "content-type,authorization",
        )
        .send()
        .await
        .expect("send");

    assert_eq!(simple.headers()["access-control-allow-origin"], "*");
    assert_eq!(preflight.status(), 204);
    assert_eq!(
        preflight.headers()["access-control-allow-headers"],
        "content-type,authorization"
    );
    assert!(
        preflight.headers()["access-control-allow-methods"]
            .to_str()
            .expect("ascii")
            .contains("PATCH")
    );
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;

    let resp = app.request(Method::GET, "/api/nothing", None, None).await;

    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "SAMEORIGIN"),
        ("x-xss-protection", "1; mode=block"),
    ] {
        assert_eq!(resp.headers()[name], value, "{name}");
    }
    assert!(resp.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn malformed_json_is_a_400_envelope() {
    let app = spawn_app().await;
    app.create_collection_ok(json!({"name": "posts", "createRule": ""}))
        .await;

    let resp = app
        .client
        .post(format!("{}/api/collections/posts/records", app.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("send");
    let (status, body) = status_json(resp).await;

    assert_eq!(status, 400);
    assert_eq!(
        body["message"],
        "Something went wrong while processing your request."
    );
}

#[tokio::test]
async fn an_oversized_body_is_a_413_envelope() {
    let app = spawn_app().await;
    let big = "x".repeat(33 * 1024 * 1024);

    let resp = app
        .client
        .post(format!("{}/api/collections", app.base))
        .header("Authorization", &app.superuser_token)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await;

    match resp {
        Ok(r) => {
            let (status, body) = status_json(r).await;
            assert_eq!(status, 413);
            assert_eq!(body["message"], "Request entity too large.");
        }
        // The server may close the connection before the client finished sending.
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
}

/// Found by the `multipart` fuzz target: actix-multipart 0.7 panicked on a
/// boundary of one to three characters followed by a short line, and hung on
/// a body that ended inside a part. Each must be a 400 and leave the server
/// serving (0.8.5 fixed both).
#[tokio::test]
async fn malformed_multipart_bodies_are_400s_not_panics_or_hangs() {
    let app = spawn_app().await;
    app.create_collection_ok(json!({
        "name": "notes", "type": "base", "createRule": "",
        "fields": [{"name": "title", "type": "text"}],
    }))
    .await;
    let url = format!("{}/api/collections/notes/records", app.base);
    let cases: [(&str, &[u8], &str); 4] = [
        ("B", b"x\r\n\n", "one-character boundary, then a line of one byte"),
        ("BB", b"--\n", "two-character boundary, then a three-byte line of dashes"),
        ("BCD", b"x\r\n--\n", "three-character boundary, then a three-byte line of dashes"),
        (
            "B",
            b"--B\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nhel\x00--B\r\nContent-Disposition: form-data; na",
            "body ends inside a part's headers",
        ),
    ];

    for (boundary, body, why) in cases {
        let response = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            app.client
                .post(&url)
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(body.to_vec())
                .send(),
        )
        .await
        .unwrap_or_else(|_| panic!("{why}: no answer within 10 s"))
        .unwrap_or_else(|e| panic!("{why}: the connection broke: {e}"));
        let (status, answer) = status_json(response).await;
        assert_eq!(status, 400, "{why}: {answer}");
        assert_eq!(answer["status"], 400, "{why}: {answer}");
    }
    let token = app.superuser_token.clone();
    let (status, list) = status_json(app.list_records("notes", &[], Some(&token)).await).await;
    assert_eq!(status, 200, "the server still serves: {list}");
    assert_eq!(list["totalItems"], 0, "nothing was created: {list}");
}

#[tokio::test]
async fn unreadable_bodies_are_worded_per_endpoint_and_null_reads_as_empty() {
    let app = crate::helpers::spawn_app().await;
    app.create_collection_ok(serde_json::json!({
        "name": "loose", "createRule": "", "updateRule": "", "viewRule": "",
        "fields": [{"name": "t", "type": "text"}]
    }))
    .await;
    let record = app
        .create_record_ok("loose", serde_json::json!({"t": "kept"}))
        .await;
    let record_path = format!(
        "/api/collections/loose/records/{}",
        record["id"].as_str().expect("id")
    );
    // (method, path, body, status, message) — as PocketBase 0.40.6 answers.
    let cases: Vec<(reqwest::Method, &str, &str, u16, &str)> = vec![
        (
            reqwest::Method::POST,
            "/api/collections",
            "[1]",
            400,
            "Failed to load the collection type data due to invalid formatting.",
        ),
        (
            reqwest::Method::POST,
            "/api/collections",
            "{bad",
            400,
            "Failed to load the collection type data due to invalid formatting.",
        ),
        (
            reqwest::Method::PATCH,
            "/api/collections/loose",
            "\"x\"",
            400,
            "Failed to load the submitted data due to invalid formatting.",
        ),
        (
            reqwest::Method::PATCH,
            "/api/settings",
            "[1]",
            400,
            "An error occurred while loading the submitted data.",
        ),
        (
            reqwest::Method::POST,
            "/api/settings/apple/generate-client-secret",
            "{bad",
            400,
            "An error occurred while loading the submitted data.",
        ),
        (
            reqwest::Method::POST,
            "/api/collections/loose/records",
            "null",
            200,
            "",
        ),
        (
            reqwest::Method::PATCH,
            record_path.as_str(),
            "null",
            200,
            "",
        ),
    ];
    for (method, path, body, status, message) in cases {
        let response = app
            .client
            .request(method.clone(), format!("{}{path}", app.base))
            .header("Authorization", &app.superuser_token)
            .header("Content-Type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("request");
        let (got, answer) = crate::helpers::status_json(response).await;
        assert_eq!(got, status, "{method} {path} {body}: {answer}");
        if status >= 400 {
            assert_eq!(
                answer["message"], message,
                "{method} {path} {body}: {answer}"
            );
        }
    }
    let (_, kept) = crate::helpers::status_json(
        app.get_record("loose", record["id"].as_str().expect("id"), None)
            .await,
    )
    .await;
    assert_eq!(kept["t"], "kept", "a null update changes nothing: {kept}");
}
