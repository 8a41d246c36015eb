//! Serving stored files, from an attacker's side: cached thumbs of protected
//! images, thumbs after a file is replaced, hostile `thumb` values, and small
//! files (read in one step) answering ranges and validators like large ones.

use crate::helpers::{TestApp, spawn_app, status_json};
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use std::io::Cursor;

/// A PNG filled with one colour.
fn png(width: u32, height: u32, rgb: [u8; 3]) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(width, height, image::Rgb(rgb));
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("encode png");
    out.into_inner()
}

fn part(name: &str, bytes: Vec<u8>) -> Part {
    Part::bytes(bytes).file_name(name.to_owned())
}

/// `album`: `photo` (public image, thumbs 50x50), `private` (protected image,
/// thumbs 50x50), `blob` (any file up to 1 MiB). View rule: members only.
async fn setup() -> TestApp {
    let app = spawn_app().await;
    app.create_collection_ok(json!({"name": "members", "type": "auth", "fields": []}))
        .await;
    app.create_collection_ok(json!({
        "name": "album", "listRule": "", "createRule": "", "updateRule": "", "deleteRule": "",
        "viewRule": "@request.auth.collectionName = 'members'",
        "fields": [
            {"name": "photo", "type": "file", "maxSelect": 1, "thumbs": ["50x50"]},
            {"name": "private", "type": "file", "maxSelect": 1, "thumbs": ["50x50"],
             "protected": true},
            {"name": "blob", "type": "file", "maxSelect": 1, "maxSize": 1 << 20}
        ]
    }))
    .await;
    app
}

async fn save(app: &TestApp, method: Method, path: &str, form: Form) -> Value {
    let token = app.superuser_token.clone();
    let (status, body) = status_json(app.send_form(method, path, Some(&token), form).await).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn create(app: &TestApp, form: Form) -> Value {
    save(app, Method::POST, "/api/collections/album/records", form).await
}

async fn get(app: &TestApp, record: &Value, name: &str, query: &str) -> reqwest::Response {
    let id = record["id"].as_str().unwrap_or_default();
    app.request(
        Method::GET,
        &format!("/api/files/album/{id}/{name}{query}"),
        None,
        None,
    )
    .await
}

/// A member's file token.
async fn member_file_token(app: &TestApp) -> String {
    app.su(
        Method::POST,
        "/api/collections/members/records",
        Some(json!({"email": "m@example.com", "password": "Passw0rd!123",
                    "passwordConfirm": "Passw0rd!123"})),
    )
    .await;
    let auth = app
        .login_as("members", "m@example.com", "Passw0rd!123")
        .await;
    let resp = app
        .request(Method::POST, "/api/files/token", Some(&auth), None)
        .await;
    let (status, body) = status_json(resp).await;
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().expect("token").to_owned()
}

#[tokio::test]
async fn a_cached_thumb_of_a_protected_image_needs_a_valid_file_token_every_time() {
    let app = setup().await;
    let record = create(
        &app,
        Form::new().part("private", part("p.png", png(80, 60, [200, 10, 10]))),
    )
    .await;
    let name = record["private"].as_str().expect("private").to_owned();
    let token = member_file_token(&app).await;
    let made = get(&app, &record, &name, &format!("?thumb=50x50&token={token}")).await;
    assert_eq!(made.status(), 200, "a member's file token makes the thumb");
    let thumb = made.bytes().await.expect("thumb");
    let decoded = image::load_from_memory(&thumb).expect("thumb decodes");
    assert_eq!((decoded.width(), decoded.height()), (50, 50));

    let tampered = format!("{}x", &token[..token.len() - 1]);
    for (query, why) in [
        ("?thumb=50x50".to_owned(), "no token"),
        ("?thumb=50x50&token=".to_owned(), "empty token"),
        (
            "?thumb=50x50&token=forged.not.jwt".to_owned(),
            "forged token",
        ),
        (
            format!("?thumb=50x50&token={tampered}"),
            "tampered signature",
        ),
        (
            format!("?thumb=50x50&token={}", app.superuser_token),
            "an auth token is not a file token",
        ),
        (
            format!("?token={tampered}&thumb=50x50&thumb=50x50"),
            "tampered, repeated thumb",
        ),
    ] {
        let resp = get(&app, &record, &name, &query).await;
        assert_eq!(
            resp.status(),
            404,
            "{why}: the cached thumb must not be served"
        );
        let body = resp.bytes().await.expect("body");
        assert_ne!(body, thumb, "{why}: thumb bytes leaked");
    }
    let again = get(&app, &record, &name, &format!("?thumb=50x50&token={token}")).await;
    assert_eq!(again.status(), 200, "the valid token still works");
    assert_eq!(again.bytes().await.expect("thumb"), thumb);
}

#[tokio::test]
async fn a_replaced_image_is_served_by_neither_its_old_name_nor_its_old_thumb() {
    let app = setup().await;
    let record = create(
        &app,
        Form::new().part("photo", part("a.png", png(80, 60, [255, 0, 0]))),
    )
    .await;
    let old = record["photo"].as_str().expect("photo").to_owned();
    let id = record["id"].as_str().expect("id").to_owned();
    for query in ["", "?thumb=50x50"] {
        assert_eq!(
            get(&app, &record, &old, query).await.status(),
            200,
            "{query}"
        );
    }

    let updated = save(
        &app,
        Method::PATCH,
        &format!("/api/collections/album/records/{id}"),
        Form::new().part("photo", part("b.png", png(40, 40, [0, 0, 255]))),
    )
    .await;

    for query in ["", "?thumb=50x50"] {
        let resp = get(&app, &record, &old, query).await;
        assert_eq!(resp.status(), 404, "old name {query:?} after the replace");
    }
    let new = updated["photo"].as_str().expect("photo");
    let resp = get(&app, &updated, new, "?thumb=50x50").await;
    assert_eq!(resp.status(), 200);
    let thumb = image::load_from_memory(&resp.bytes().await.expect("thumb"))
        .expect("decodes")
        .to_rgb8();
    assert_eq!(
        thumb.get_pixel(25, 25).0,
        [0, 0, 255],
        "the thumb is made from the new image"
    );
}

#[tokio::test]
async fn hostile_thumb_values_get_the_original_and_nothing_else() {
    let app = setup().await;
    let original = png(80, 60, [0, 255, 0]);
    let record = create(
        &app,
        Form::new().part("photo", part("g.png", original.clone())),
    )
    .await;
    let name = record["photo"].as_str().expect("photo").to_owned();
    let long = format!("?thumb={}", "9".repeat(16 * 1024));

    for query in [
        "?thumb=../../data.db",
        "?thumb=50x50/../../../data.db",
        "?thumb=50x50%2F..%2F..%2Fdata.db",
        "?thumb=..%2F50x50",
        "?thumb=50x50%00",
        "?thumb=100x100%2F..",
        "?thumb=999999x1",
        "?thumb=-50x50",
        long.as_str(),
    ] {
        let resp = get(&app, &record, &name, query).await;
        assert_eq!(resp.status(), 200, "{query:.60}: the original is served");
        assert_eq!(
            resp.bytes().await.expect("body").as_ref(),
            original.as_slice(),
            "{query:.60}"
        );
    }
    assert!(
        !app.stored_files()
            .iter()
            .any(|p| p.to_string_lossy().contains("..")),
        "no stored path was made from a thumb value"
    );
}

#[tokio::test]
async fn small_and_large_files_answer_ranges_validators_and_types_alike() {
    let app = setup().await;
    // Valid JSON longer than the sniffed head: typed from its first 8 KiB, small or large.
    let json_of = |len: usize| format!("[{}1]", "1,".repeat((len - 3) / 2)).into_bytes();
    for (len, why) in [
        (100, "below the sniffed head"),
        (20 * 1024, "read whole in one step"),
        (600 * 1024, "streamed in several chunks"),
    ] {
        let bytes = json_of(len);
        let record = create(&app, Form::new().part("blob", part("d.txt", bytes.clone()))).await;
        let name = record["blob"].as_str().expect("blob").to_owned();

        let full = get(&app, &record, &name, "").await;
        assert_eq!(full.status(), 200, "{why}");
        let etag = full.headers()["etag"].clone();
        let kind = full.headers()["content-type"].clone();
        let small_json = len <= 8 * 1024;
        assert_eq!(
            kind.to_str()
                .expect("ascii")
                .starts_with("application/json"),
            small_json,
            "{why}: type {kind:?}"
        );
        assert_eq!(full.bytes().await.expect("body"), bytes, "{why}");

        let id = record["id"].as_str().expect("id");
        let url = format!("{}/api/files/album/{id}/{name}", app.base);
        let ranged = app
            .client
            .get(&url)
            .header("Range", "bytes=5-9")
            .send()
            .await
            .expect("range");
        assert_eq!(ranged.status(), 206, "{why}");
        assert_eq!(ranged.headers()["content-type"], kind, "{why}");
        assert_eq!(ranged.bytes().await.expect("body"), bytes[5..10], "{why}");
        let past = app
            .client
            .get(&url)
            .header("Range", format!("bytes={}-", bytes.len() + 10))
            .send()
            .await
            .expect("range");
        assert_eq!(past.status(), 416, "{why}");
        let cached = app
            .client
            .get(&url)
            .header("If-None-Match", etag)
            .send()
            .await
            .expect("revalidate");
        assert_eq!(cached.status(), 304, "{why}");
        assert!(cached.bytes().await.expect("body").is_empty(), "{why}");
        let head = app.client.head(&url).send().await.expect("head");
        assert_eq!(head.status(), 200, "{why}");
        assert_eq!(
            head.headers()["content-length"],
            bytes.len().to_string().as_str(),
            "{why}"
        );
        assert!(head.bytes().await.expect("body").is_empty(), "{why}");
    }
}

/// The same tests with files on S3 (a bucket on the loopback moto server).
mod on_s3 {
    crate::on_s3_tests!(
        a_cached_thumb_of_a_protected_image_needs_a_valid_file_token_every_time,
        a_replaced_image_is_served_by_neither_its_old_name_nor_its_old_thumb,
        hostile_thumb_values_get_the_original_and_nothing_else,
        small_and_large_files_answer_ranges_validators_and_types_alike,
    );
}
