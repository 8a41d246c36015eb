//! The embedded admin panel at `/_/`, the first-run install link, and the
//! collection dry run the panel validates rules with.

use crate::helpers::{spawn_app, status_json};
use ferrobase::{Application, Config};
use reqwest::Method;
use serde_json::json;

/// A server with no superuser, and the install token `serve` would print.
async fn spawn_fresh() -> (
    String,
    String,
    tempfile::TempDir,
    actix_web::dev::ServerHandle,
) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let app = Application::build(Config::for_tests(tmp.path()))
        .await
        .expect("app builds");
    let token = app
        .issue_install_token()
        .await
        .expect("count superusers")
        .expect("no superuser yet, so a token");
    let base = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    (base, token, tmp, handle)
}

fn asset_path(html: &str) -> String {
    let start = html
        .find("/_/assets/")
        .expect("index.html names a hashed asset");
    let end = html[start..].find('"').expect("closing quote") + start;
    html[start..end].to_owned()
}

#[tokio::test]
async fn the_panel_index_is_html_that_is_revalidated() {
    let app = spawn_app().await;

    let resp = app.request(Method::GET, "/_/", None, None).await;

    assert_eq!(resp.status(), 200);
    let headers = resp.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-cache");
    assert!(headers.contains_key("etag"));
    let html = resp.text().await.expect("body");
    assert!(html.contains("<div id=\"app\">"), "the SPA shell: {html}");
}

#[tokio::test]
async fn hashed_assets_have_their_type_and_are_cached_forever() {
    let app = spawn_app().await;
    let html = app
        .request(Method::GET, "/_/", None, None)
        .await
        .text()
        .await
        .expect("body");
    let script = asset_path(&html);

    let resp = app.request(Method::GET, &script, None, None).await;

    assert_eq!(resp.status(), 200, "{script}");
    assert_eq!(
        resp.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        resp.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let css = app
        .request(Method::GET, &script.replace(".js", ".css"), None, None)
        .await;
    assert!(
        css.status() == 404 || css.headers()["content-type"] == "text/css; charset=utf-8",
        "a stylesheet, when it exists, is served as CSS"
    );
}

#[tokio::test]
async fn an_unchanged_asset_answers_304_to_its_etag() {
    let app = spawn_app().await;
    let first = app.request(Method::GET, "/_/", None, None).await;
    let etag = first.headers()["etag"].to_str().expect("ascii").to_owned();

    let again = app
        .client
        .get(format!("{}/_/", app.base))
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("request");

    assert_eq!(again.status(), 304);
}

#[tokio::test]
async fn unknown_panel_paths_fall_back_to_the_index_but_missing_assets_do_not() {
    let app = spawn_app().await;

    let deep = app.request(Method::GET, "/_/deep/link", None, None).await;
    let missing = app
        .request(Method::GET, "/_/assets/index-missing.js", None, None)
        .await;

    assert_eq!(deep.status(), 200);
    assert_eq!(deep.headers()["content-type"], "text/html; charset=utf-8");
    assert!(deep.text().await.expect("body").contains("id=\"app\""));
    assert_eq!(
        missing.status(),
        404,
        "a stale asset must not be answered with HTML"
    );
}

#[tokio::test]
async fn the_bare_mount_redirects_to_the_panel() {
    let app = spawn_app().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");

    let resp = client
        .get(format!("{}/_", app.base))
        .send()
        .await
        .expect("request");

    assert_eq!(resp.status(), 301);
    assert_eq!(resp.headers()["location"], "/_/");
}

#[tokio::test]
async fn the_install_token_creates_one_superuser_once() {
    let (base, token, _tmp, handle) = spawn_fresh().await;
    let client = reqwest::Client::new();
    let install = |body: serde_json::Value| {
        client
            .post(format!("{base}/api/_install"))
            .json(&body)
            .send()
    };
    let creds = |email: &str| json!({"token": token, "email": email, "password": "Passw0rd!123", "passwordConfirm": "Passw0rd!123"});

    let first = install(creds("owner@example.com")).await.expect("request");
    let second = install(creds("intruder@example.com"))
        .await
        .expect("request");

    assert_eq!(first.status(), 204);
    let (status, body) = status_json(second).await;
    assert_eq!(status, 401, "the token is single use: {body}");
    assert_eq!(body["data"], json!({}));
    let login = client
        .post(format!(
            "{base}/api/collections/_superusers/auth-with-password"
        ))
        .json(&json!({"identity": "owner@example.com", "password": "Passw0rd!123"}))
        .send()
        .await
        .expect("request");
    assert_eq!(login.status(), 200, "the new superuser can sign in");
    handle.stop(false).await;
}

#[tokio::test]
async fn bad_install_input_is_a_400_per_field_and_keeps_the_token() {
    let (base, token, _tmp, handle) = spawn_fresh().await;
    let client = reqwest::Client::new();

    for (body, field, why) in [
        (
            json!({"token": token, "email": "not-an-email", "password": "Passw0rd!123", "passwordConfirm": "Passw0rd!123"}),
            "email",
            "bad email",
        ),
        (
            json!({"token": token, "email": "a@example.com", "password": "short", "passwordConfirm": "short"}),
            "password",
            "short password",
        ),
        (
            json!({"token": token, "email": "a@example.com", "password": "Passw0rd!123", "passwordConfirm": "other"}),
            "passwordConfirm",
            "mismatch",
        ),
    ] {
        let resp = client
            .post(format!("{base}/api/_install"))
            .json(&body)
            .send()
            .await
            .expect("request");
        let (status, body) = status_json(resp).await;
        assert_eq!(status, 400, "{why}: {body}");
        assert!(body["data"][field]["message"].is_string(), "{why}: {body}");
    }
    let wrong_types = client
        .post(format!("{base}/api/_install"))
        .json(&json!({"token": token, "email": 12, "password": ["x"]}))
        .send()
        .await
        .expect("request");
    let (status, body) = status_json(wrong_types).await;
    assert_eq!(status, 400, "wrong JSON types: {body}");
    assert_eq!(
        body["message"], "An error occurred while loading the submitted data.",
        "wrong JSON types do not bind: {body}"
    );
    let wrong = client
        .post(format!("{base}/api/_install"))
        .json(&json!({"token": "nope", "email": "a@example.com", "password": "Passw0rd!123", "passwordConfirm": "Passw0rd!123"}))
        .send()
        .await
        .expect("request");
    let not_json = client
        .post(format!("{base}/api/_install"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .expect("request");
    let ok = client
        .post(format!("{base}/api/_install"))
        .json(&json!({"token": token, "email": "a@example.com", "password": "Passw0rd!123", "passwordConfirm": "Passw0rd!123"}))
        .send()
        .await
        .expect("request");

    assert_eq!(wrong.status(), 401);
    assert_eq!(not_json.status(), 400);
    assert_eq!(
        ok.status(),
        204,
        "earlier bad input did not spend the token"
    );
    handle.stop(false).await;
}

#[tokio::test]
async fn no_install_is_possible_once_a_superuser_exists() {
    let app = spawn_app().await;

    let resp = app
        .request(
            Method::POST,
            "/api/_install",
            None,
            Some(json!({"token": "anything", "email": "a@example.com", "password": "Passw0rd!123", "passwordConfirm": "Passw0rd!123"})),
        )
        .await;

    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn the_collection_dry_run_reports_rule_errors_and_stores_nothing() {
    let app = spawn_app().await;
    let draft = |rule: &str| json!({"name": "drafts", "type": "base", "fields": [{"name": "title", "type": "text"}], "listRule": rule});

    let bad = app
        .su(
            Method::POST,
            "/api/collections/meta/validate",
            Some(draft("titel = 'x'")),
        )
        .await;
    let good = app
        .su(
            Method::POST,
            "/api/collections/meta/validate",
            Some(draft("title = 'x'")),
        )
        .await;
    let anonymous = app
        .request(
            Method::POST,
            "/api/collections/meta/validate",
            None,
            Some(draft("")),
        )
        .await;

    let (status, body) = status_json(bad).await;
    assert_eq!(status, 400);
    assert_eq!(body["data"]["listRule"]["code"], "validation_invalid_rule");
    assert_eq!(good.status(), 204);
    assert_eq!(anonymous.status(), 401);
    let stored = app.su(Method::GET, "/api/collections/drafts", None).await;
    assert_eq!(stored.status(), 404, "a dry run stores nothing");
}

#[tokio::test]
async fn the_dry_run_checks_an_update_against_the_existing_collection() {
    let app = spawn_app().await;
    let posts = app
        .create_collection_ok(
            json!({"name": "posts", "fields": [{"name": "title", "type": "text"}]}),
        )
        .await;

    let resp = app
        .su(
            Method::POST,
            "/api/collections/meta/validate",
            Some(json!({"id": posts["id"], "name": "posts", "fields": posts["fields"], "viewRule": "nope = 1"})),
        )
        .await;

    let (status, body) = status_json(resp).await;
    assert_eq!(status, 400);
    assert_eq!(body["message"], "Failed to update collection.");
    assert!(body["data"]["viewRule"].is_object(), "{body}");
}
