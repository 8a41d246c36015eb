//! The settings API.

use crate::helpers::{spawn_app, status_json};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn settings_have_the_reference_shape_and_hide_secrets() {
    let app = spawn_app().await;
    app.su(
        Method::PATCH,
        "/api/settings",
        Some(json!({"smtp": {"password": "hunter2"}})),
    )
    .await;

    let (status, body) = status_json(app.su(Method::GET, "/api/settings", None).await).await;

    assert_eq!(status, 200);
    for key in [
        "meta",
        "smtp",
        "s3",
        "backups",
        "batch",
        "rateLimits",
        "trustedProxy",
        "logs",
        "superuserIPs",
    ] {
        assert!(body.get(key).is_some(), "missing section {key}: {body}");
    }
    assert!(
        !body.to_string().contains("hunter2"),
        "secrets are write-only"
    );
}

#[tokio::test]
async fn patch_merges_persists_and_validates() {
    let app = spawn_app().await;

    let (status, body) = status_json(
        app.su(
            Method::PATCH,
            "/api/settings",
            Some(json!({"meta": {"appName": "Shop"}})),
        )
        .await,
    )
    .await;
    let (_, again) = status_json(app.su(Method::GET, "/api/settings", None).await).await;
    let (bad_status, bad) = status_json(
        app.su(
            Method::PATCH,
            "/api/settings",
            Some(json!({"meta": {"appName": ""}})),
        )
        .await,
    )
    .await;

    assert_eq!(status, 200);
    assert_eq!(body["meta"]["appName"], "Shop");
    assert_eq!(
        again["meta"]["appURL"], "http://localhost:8090",
        "other keys are kept"
    );
    assert_eq!(bad_status, 400);
    assert_eq!(
        bad["message"],
        "An error occurred while saving the new settings."
    );
    assert_eq!(
        bad["data"]["meta"]["appName"]["code"],
        "validation_required"
    );
}

#[tokio::test]
async fn settings_are_for_superusers_only() {
    let app = spawn_app().await;

    let resp = app.request(Method::GET, "/api/settings", None, None).await;

    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn test_email_sends_the_chosen_template_through_smtp_and_validates_input() {
    let (app, sink) = crate::helpers::spawn_app_with_mail().await;

    let (sent, _) = status_json(
        app.su(
            Method::POST,
            "/api/settings/test/email",
            Some(json!({"email": "probe@example.com", "template": "otp", "collection": "users"})),
        )
        .await,
    )
    .await;
    let mail = sink
        .wait_for("probe@example.com", std::time::Duration::from_secs(5))
        .await;
    let (bad, bad_body) = status_json(
        app.su(
            Method::POST,
            "/api/settings/test/email",
            Some(json!({"email": "nope", "template": "poem"})),
        )
        .await,
    )
    .await;
    let (s3, _) = status_json(app.su(Method::POST, "/api/settings/test/s3", None).await).await;

    assert_eq!(sent, 204);
    assert!(
        mail.expect("the test email arrives")
            .decoded()
            .contains("123456")
    );
    assert_eq!(bad, 400);
    assert_eq!(bad_body["data"]["email"]["code"], "validation_is_email");
    assert_eq!(
        bad_body["data"]["template"]["code"],
        "validation_in_invalid"
    );
    assert_eq!(s3, 400);
}
