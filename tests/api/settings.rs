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
    assert_eq!(
        bad_body["message"], "Failed to send the test email.",
        "PocketBase's words: {bad_body}"
    );
    assert_eq!(bad_body["data"]["email"]["code"], "validation_is_email");
    assert_eq!(
        bad_body["data"]["template"]["code"],
        "validation_in_invalid"
    );
    assert_eq!(s3, 400);
}

/// Saves `superuserIPs` as the superuser and checks it was accepted.
async fn allow_superusers_from(app: &crate::helpers::TestApp, ips: serde_json::Value) {
    let (status, body) = status_json(
        app.su(
            Method::PATCH,
            "/api/settings",
            Some(json!({ "superuserIPs": ips })),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "save superuserIPs {ips}: {body}");
}

async fn superuser_login(app: &crate::helpers::TestApp) -> (u16, serde_json::Value) {
    status_json(
        app.request(
            Method::POST,
            "/api/collections/_superusers/auth-with-password",
            None,
            Some(json!({"identity": crate::helpers::SU_EMAIL, "password": crate::helpers::SU_PASSWORD})),
        )
        .await,
    )
    .await
}

#[tokio::test]
async fn superuser_ips_admit_listed_addresses_and_subnets() {
    let app = spawn_app().await;

    for list in [
        json!(["127.0.0.1"]),
        json!(["10.0.0.1", "127.0.0.0/8"]),
        json!([]),
    ] {
        allow_superusers_from(&app, list.clone()).await;
        let (login, body) = superuser_login(&app).await;
        let (settings, _) = status_json(app.su(Method::GET, "/api/settings", None).await).await;

        assert_eq!(login, 200, "{list}: {body}");
        assert_eq!(settings, 200, "{list}: a listed superuser keeps working");
    }
}

#[tokio::test]
async fn superusers_outside_superuser_ips_are_refused_everywhere() {
    let app = spawn_app().await;
    app.create_collection_ok(json!({
        "name": "docs", "listRule": null, "viewRule": null,
        "fields": [{"name": "secret", "type": "file", "protected": true}]
    }))
    .await;
    let (_, users) = status_json(
        app.request(
            Method::POST,
            "/api/collections/users/records",
            None,
            Some(json!({"email": "u@example.com", "password": "secret-pass-1", "passwordConfirm": "secret-pass-1"})),
        )
        .await,
    )
    .await;
    let user_id = users["id"].as_str().expect("user id").to_owned();
    let (_, file_token) = status_json(app.su(Method::POST, "/api/files/token", None).await).await;
    let file_token = file_token["token"].as_str().expect("file token").to_owned();
    let (_, refreshed) = status_json(
        app.su(
            Method::POST,
            "/api/collections/_superusers/auth-refresh",
            None,
        )
        .await,
    )
    .await;
    assert!(refreshed["token"].is_string(), "{refreshed}");
    allow_superusers_from(&app, json!(["10.0.0.1"])).await;

    let (login, login_body) = superuser_login(&app).await;
    let forwarded = app
        .client
        .post(format!(
            "{}/api/collections/_superusers/auth-with-password",
            app.base
        ))
        .header("X-Forwarded-For", "10.0.0.1")
        .json(
            &json!({"identity": crate::helpers::SU_EMAIL, "password": crate::helpers::SU_PASSWORD}),
        )
        .send()
        .await
        .expect("sent");
    let mut refused = Vec::new();
    for (method, path) in [
        (Method::GET, "/api/settings"),
        (Method::GET, "/api/collections"),
        (Method::GET, "/api/health"),
        (Method::GET, "/api/collections/docs/records"),
        (Method::POST, "/api/collections/_superusers/auth-refresh"),
        (Method::POST, "/api/files/token"),
        (Method::DELETE, "/api/logs"),
    ] {
        let (status, body) = status_json(app.su(method.clone(), path, None).await).await;
        refused.push((format!("{method} {path}"), status, body));
    }
    let refreshed_token = refreshed["token"].as_str().expect("token");
    let (old_token, _) = status_json(
        app.request(Method::GET, "/api/settings", Some(refreshed_token), None)
            .await,
    )
    .await;
    let (impersonate, _) = status_json(
        app.su(
            Method::POST,
            &format!("/api/collections/users/impersonate/{user_id}"),
            Some(json!({})),
        )
        .await,
    )
    .await;
    let backup = app
        .client
        .get(format!(
            "{}/api/backups/none.zip?token={file_token}",
            app.base
        ))
        .send()
        .await
        .expect("sent");
    let (user_login, user_body) = status_json(
        app.request(
            Method::POST,
            "/api/collections/users/auth-with-password",
            None,
            Some(json!({"identity": "u@example.com", "password": "secret-pass-1"})),
        )
        .await,
    )
    .await;

    assert_eq!(login, 403, "{login_body}");
    assert_eq!(
        login_body,
        json!({"data": {}, "message": "You are not allowed to perform this request.", "status": 403})
    );
    assert_eq!(
        forwarded.status(),
        403,
        "an untrusted X-Forwarded-For does not move the client"
    );
    for (what, status, body) in refused {
        assert_eq!(status, 403, "{what}: {body}");
        assert_eq!(
            body["message"], "You are not allowed to perform this request.",
            "{what}"
        );
    }
    assert_eq!(old_token, 403, "tokens issued before the list changed too");
    assert_eq!(impersonate, 403);
    assert_eq!(
        backup.status(),
        403,
        "a superuser file token from outside the list downloads nothing"
    );
    assert_eq!(
        user_login, 200,
        "other auth collections are unaffected: {user_body}"
    );
}

#[tokio::test]
async fn superuser_ips_and_excluded_ips_must_be_addresses_or_subnets() {
    let app = spawn_app().await;

    for (patch, pointer, why) in [
        (
            json!({"superuserIPs": ["localhost"]}),
            "/data/superuserIPs/0/code",
            "host name",
        ),
        (
            json!({"superuserIPs": ["10.0.0.0/33"]}),
            "/data/superuserIPs/0/code",
            "prefix too long",
        ),
        (
            json!({"superuserIPs": [""]}),
            "/data/superuserIPs/0/code",
            "empty entry",
        ),
        (
            json!({"rateLimits": {"excludedIPs": ["127.0.0.1", "nope"]}}),
            "/data/rateLimits/excludedIPs/1/code",
            "excluded garbage",
        ),
    ] {
        let (status, body) = status_json(
            app.su(Method::PATCH, "/api/settings", Some(patch.clone()))
                .await,
        )
        .await;
        assert_eq!(status, 400, "{why}: {body}");
        assert!(
            body.pointer(pointer).is_some_and(|c| c.is_string()),
            "{why}: {body}"
        );
    }
    let (status, after) = status_json(app.su(Method::GET, "/api/settings", None).await).await;
    assert_eq!(
        status, 200,
        "nothing was saved, the superuser still gets in"
    );
    assert_eq!(after["superuserIPs"], json!([]));
}
