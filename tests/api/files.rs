//! File fields: multipart uploads, modifiers, limits, storage layout and
//! cleanup, serving (download, thumbs, ranges), protected files, batch.

use crate::helpers::{TestApp, spawn_app, status_json};
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use std::io::Cursor;

const SU_ONLY: Value = Value::Null;

fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("encode png");
    out.into_inner()
}

fn file(name: &str, bytes: impl Into<Vec<u8>>) -> Part {
    Part::bytes(bytes.into()).file_name(name.to_owned())
}

/// `docs`: title (required), cover (one image, thumbs 50x50), attachments
/// (up to 3, 100 bytes each), secret (protected). View rule null: superusers only.
async fn setup() -> (TestApp, String) {
    let app = spawn_app().await;
    let collection = app
        .create_collection_ok(json!({
            "name": "docs", "listRule": "", "viewRule": SU_ONLY, "createRule": "", "updateRule": "",
            "deleteRule": "",
            "fields": [
                {"name": "title", "type": "text", "required": true},
                {"name": "cover", "type": "file", "maxSelect": 1,
                 "mimeTypes": ["image/png", "image/jpeg"], "thumbs": ["50x50", "0x30"]},
                {"name": "attachments", "type": "file", "maxSelect": 3, "maxSize": 100},
                {"name": "secret", "type": "file", "protected": true}
            ]
        }))
        .await;
    let id = collection["id"].as_str().expect("collection id").to_owned();
    (app, id)
}

async fn create(app: &TestApp, form: Form) -> (u16, Value) {
    let token = app.superuser_token.clone();
    status_json(
        app.send_form(
            Method::POST,
            "/api/collections/docs/records",
            Some(&token),
            form,
        )
        .await,
    )
    .await
}

async fn update(app: &TestApp, id: &str, form: Form) -> (u16, Value) {
    let token = app.superuser_token.clone();
    status_json(
        app.send_form(
            Method::PATCH,
            &format!("/api/collections/docs/records/{id}"),
            Some(&token),
            form,
        )
        .await,
    )
    .await
}

async fn get_file(app: &TestApp, record: &Value, name: &str, query: &str) -> reqwest::Response {
    let url = format!(
        "{}/api/files/{}/{}/{name}{query}",
        app.base,
        record["collectionId"].as_str().unwrap_or_default(),
        record["id"].as_str().unwrap_or_default()
    );
    app.client.get(url).send().await.expect("file request")
}

fn names(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn stored_name_shape(name: &str, base: &str, ext: &str) -> bool {
    let Some(rest) = name.strip_prefix(&format!("{base}_")) else {
        return false;
    };
    let Some(random) = rest.strip_suffix(ext) else {
        return false;
    };
    random.len() == 10
        && random
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

#[tokio::test]
async fn uploads_on_create_are_stored_under_collection_and_record() {
    let (app, collection_id) = setup().await;

    let form = Form::new()
        .text("title", "hello")
        .part("cover", file("Cover Image.png", png(40, 20)))
        .part("attachments", file("a.txt", "one"))
        .part("attachments", file("My Doc File.txt", "two"));
    let (status, record) = create(&app, form).await;

    assert_eq!(status, 200, "{record}");
    let cover = record["cover"]
        .as_str()
        .expect("single file field is a string");
    assert!(stored_name_shape(cover, "cover_image", ".png"), "{cover}");
    let attachments = names(&record["attachments"]);
    assert_eq!(attachments.len(), 2);
    assert!(
        stored_name_shape(&attachments[1], "my_doc_file", ".txt"),
        "{attachments:?}"
    );
    let id = record["id"].as_str().expect("id");
    let stored = |name: &str| app.stored_file(&format!("{collection_id}/{id}/{name}"));
    assert_eq!(stored(&attachments[1]).expect("stored"), b"two");
    assert!(stored(cover).is_some());
}

#[tokio::test]
async fn json_payload_and_text_parts_combine_with_files() {
    let (app, _) = setup().await;

    let form = Form::new()
        .text("@jsonPayload", r#"{"title": "from json"}"#)
        .part("attachments", file("a.txt", "x"));
    let (status, record) = create(&app, form).await;

    assert_eq!(status, 200, "{record}");
    assert_eq!(record["title"], "from json");
    assert_eq!(names(&record["attachments"]).len(), 1);
}

#[tokio::test]
async fn modifiers_append_and_remove_files_and_removed_blobs_leave_the_disk() {
    let (app, _) = setup().await;
    let (_, record) = create(
        &app,
        Form::new()
            .text("title", "t")
            .part("attachments", file("one.txt", "1")),
    )
    .await;
    let id = record["id"].as_str().expect("id").to_owned();
    let first = names(&record["attachments"])[0].clone();

    let (status, appended) = update(
        &app,
        &id,
        Form::new()
            .part("attachments+", file("two.txt", "2"))
            .part("+attachments", file("zero.txt", "0")),
    )
    .await;
    assert_eq!(status, 200, "{appended}");
    let after_append = names(&appended["attachments"]);
    assert_eq!(after_append.len(), 3);
    assert!(
        after_append[0].starts_with("zero_")
            && after_append[1] == first
            && after_append[2].starts_with("two_")
    );

    let removed = app
        .update_record("docs", &id, json!({"attachments-": [first.clone()]}))
        .await;
    let (status, removed) = status_json(removed).await;
    assert_eq!(status, 200, "{removed}");
    assert_eq!(names(&removed["attachments"]).len(), 2);
    assert!(
        !app.stored_files().iter().any(|p| p.ends_with(&first)),
        "a removed file is deleted from storage"
    );

    let kept = names(&removed["attachments"])[0].clone();
    let (status, replaced) = update(
        &app,
        &id,
        Form::new()
            .text("attachments", kept.clone())
            .part("attachments", file("new.txt", "n")),
    )
    .await;
    assert_eq!(status, 200, "{replaced}");
    let now = names(&replaced["attachments"]);
    assert_eq!(
        now.len(),
        2,
        "sent names are kept, the rest replaced: {now:?}"
    );
    assert_eq!(now[0], kept);

    let (status, cleared) = status_json(
        app.update_record("docs", &id, json!({"attachments": []}))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(cleared["attachments"], json!([]));
    assert!(app.stored_files().is_empty(), "{:?}", app.stored_files());
}

#[tokio::test]
async fn replacing_a_single_file_removes_the_old_one_and_its_thumbs() {
    let (app, _) = setup().await;
    let (_, record) = create(
        &app,
        Form::new()
            .text("title", "t")
            .part("cover", file("a.png", png(80, 60))),
    )
    .await;
    let old = record["cover"].as_str().expect("cover").to_owned();
    let thumb = get_file(&app, &record, &old, "?thumb=50x50").await;
    assert_eq!(thumb.status(), 200);
    assert!(
        app.stored_files()
            .iter()
            .any(|p| p.to_string_lossy().contains("thumbs_"))
    );

    let (status, updated) = update(
        &app,
        record["id"].as_str().expect("id"),
        Form::new().part("cover", file("b.png", png(10, 10))),
    )
    .await;

    assert_eq!(status, 200, "{updated}");
    let files = app.stored_files();
    assert_eq!(files.len(), 1, "only the new cover remains: {files:?}");
    assert!(files[0].ends_with(updated["cover"].as_str().expect("cover")));
}

#[tokio::test]
async fn oversize_wrong_type_and_too_many_files_are_rejected_and_nothing_is_stored() {
    let (app, _) = setup().await;

    for (form, field, code, why) in [
        (
            Form::new()
                .text("title", "t")
                .part("attachments", file("big.txt", vec![b'a'; 101])),
            "attachments",
            "validation_file_size_limit",
            "one byte over maxSize",
        ),
        (
            Form::new()
                .text("title", "t")
                .part("cover", file("fake.png", "not an image")),
            "cover",
            "validation_invalid_mime_type",
            "the type is sniffed, not taken from the name",
        ),
        (
            (0..4).fold(Form::new().text("title", "t"), |f, i| {
                f.part("attachments", file(&format!("f{i}.txt"), "x"))
            }),
            "attachments",
            "validation_too_many_files",
            "maxSelect is 3",
        ),
    ] {
        let (status, body) = create(&app, form).await;
        assert_eq!(status, 400, "{why}: {body}");
        assert_eq!(body["message"], "Failed to create record.", "{why}");
        assert_eq!(body["data"][field]["code"], code, "{why}: {body}");
    }

    let (_, list) = status_json(app.list_records("docs", &[], None).await).await;
    assert_eq!(list["totalItems"], 0, "no record was created");
    assert!(app.stored_files().is_empty(), "{:?}", app.stored_files());
}

#[tokio::test]
async fn a_create_failing_validation_on_another_field_leaves_no_file() {
    let (app, _) = setup().await;

    let (status, body) = create(
        &app,
        Form::new()
            .part("attachments", file("ok.txt", "fine"))
            .part("cover", file("a.png", png(5, 5))),
    )
    .await;

    assert_eq!(status, 400);
    assert_eq!(body["data"]["title"]["code"], "validation_required");
    assert!(app.stored_files().is_empty(), "{:?}", app.stored_files());
}

#[tokio::test]
async fn a_create_refused_by_its_rule_inside_the_transaction_removes_placed_files() {
    let (app, _) = setup().await;
    app.update_collection("docs", json!({"createRule": "title = 'allowed'"}))
        .await;

    let form = Form::new()
        .text("title", "refused")
        .part("attachments", file("a.txt", "x"));
    let resp = app
        .send_form(Method::POST, "/api/collections/docs/records", None, form)
        .await;

    assert_eq!(resp.status(), 400);
    assert!(app.stored_files().is_empty(), "{:?}", app.stored_files());
}

#[tokio::test]
async fn unknown_names_in_a_file_field_are_invalid() {
    let (app, _) = setup().await;
    let record = app.create_record_ok("docs", json!({"title": "t"})).await;

    let (status, body) = status_json(
        app.update_record(
            "docs",
            record["id"].as_str().expect("id"),
            json!({"attachments": ["../../data.db"]}),
        )
        .await,
    )
    .await;

    assert_eq!(status, 400);
    assert_eq!(
        body["data"]["attachments"]["code"],
        "validation_invalid_file"
    );
    assert_eq!(
        body["data"]["attachments"]["params"]["invalidFiles"],
        json!(["../../data.db"])
    );
}

#[tokio::test]
async fn files_are_served_with_pocketbase_headers_ranges_and_downloads() {
    let (app, _) = setup().await;
    let (_, record) = create(
        &app,
        Form::new()
            .text("title", "t")
            .part("attachments", file("note.txt", "hello world"))
            .part("cover", file("c.png", png(20, 10))),
    )
    .await;
    let note = names(&record["attachments"])[0].clone();
    let cover = record["cover"].as_str().expect("cover").to_owned();

    let resp = get_file(&app, &record, &note, "").await;
    assert_eq!(
        resp.status(),
        200,
        "unprotected files are public even with a null view rule"
    );
    let h = resp.headers().clone();
    assert_eq!(h["content-type"], "text/plain; charset=utf-8");
    assert!(
        h["content-disposition"]
            .to_str()
            .unwrap_or_default()
            .starts_with("attachment"),
        "text is never inline"
    );
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap_or_default()
            .contains("sandbox")
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h.get("x-frame-options").is_none());
    assert!(h.contains_key("etag") && h.contains_key("last-modified"));
    assert_eq!(resp.text().await.expect("body"), "hello world");

    let image = get_file(&app, &record, &cover, "").await;
    assert_eq!(image.headers()["content-type"], "image/png");
    assert!(
        image.headers()["content-disposition"]
            .to_str()
            .unwrap_or_default()
            .starts_with("inline")
    );
    let download = get_file(&app, &record, &cover, "?download=1").await;
    assert!(
        download.headers()["content-disposition"]
            .to_str()
            .unwrap_or_default()
            .starts_with("attachment")
    );

    let url = format!(
        "{}/api/files/docs/{}/{note}",
        app.base,
        record["id"].as_str().unwrap_or_default()
    );
    let partial = app
        .client
        .get(url)
        .header("Range", "bytes=6-10")
        .send()
        .await
        .expect("range");
    assert_eq!(partial.status(), 206);
    assert_eq!(partial.text().await.expect("body"), "world");
}

#[tokio::test]
async fn thumbs_are_made_only_for_listed_sizes_and_100x100() {
    let (app, _) = setup().await;
    let (_, record) = create(
        &app,
        Form::new()
            .text("title", "t")
            .part("cover", file("c.png", png(200, 120))),
    )
    .await;
    let cover = record["cover"].as_str().expect("cover").to_owned();

    for (thumb, want) in [
        ("50x50", (50, 50)),
        ("0x30", (50, 30)),
        ("100x100", (100, 100)),
        ("70x70", (200, 120)),
        ("nonsense", (200, 120)),
    ] {
        let resp = get_file(&app, &record, &cover, &format!("?thumb={thumb}")).await;
        assert_eq!(resp.status(), 200, "{thumb}");
        let bytes = resp.bytes().await.expect("body");
        let img = image::load_from_memory(&bytes).expect("an image");
        assert_eq!((img.width(), img.height()), want, "thumb {thumb}");
    }
}

#[tokio::test]
async fn protected_files_need_a_file_token_whose_record_passes_the_view_rule() {
    let (app, _) = setup().await;
    let (_, record) = create(
        &app,
        Form::new()
            .text("title", "t")
            .part("secret", file("s.txt", "classified")),
    )
    .await;
    let secret = record["secret"].as_str().expect("secret").to_owned();
    app.create_collection_ok(json!({"name": "members", "type": "auth", "fields": []}))
        .await;
    app.su(
        Method::POST,
        "/api/collections/members/records",
        Some(json!({"email": "m@example.com", "password": "Passw0rd!123", "passwordConfirm": "Passw0rd!123"})),
    )
    .await;
    let member = app
        .login_as("members", "m@example.com", "Passw0rd!123")
        .await;

    let guest = get_file(&app, &record, &secret, "").await;
    assert_eq!(guest.status(), 404);
    let auth_token_in_query = get_file(
        &app,
        &record,
        &secret,
        &format!("?token={}", app.superuser_token),
    )
    .await;
    assert_eq!(
        auth_token_in_query.status(),
        404,
        "auth tokens are not file tokens"
    );

    let token_for = |who: String| {
        let app = &app;
        async move {
            let resp = app
                .request(Method::POST, "/api/files/token", Some(&who), None)
                .await;
            let (status, body) = status_json(resp).await;
            assert_eq!(status, 200, "{body}");
            body["token"].as_str().expect("token").to_owned()
        }
    };
    let member_file_token = token_for(member.clone()).await;
    let denied = get_file(
        &app,
        &record,
        &secret,
        &format!("?token={member_file_token}"),
    )
    .await;
    assert_eq!(
        denied.status(),
        404,
        "the view rule (superusers only) refuses the member"
    );

    app.update_collection("docs", json!({"viewRule": "@request.auth.collectionName = 'members' && @request.context = 'protectedFile'"}))
        .await;
    let admitted = get_file(
        &app,
        &record,
        &secret,
        &format!("?token={member_file_token}"),
    )
    .await;
    assert_eq!(
        admitted.status(),
        200,
        "the token's record is @request.auth for the view rule"
    );
    let header_only = app
        .request(
            Method::GET,
            &format!(
                "/api/files/docs/{}/{secret}",
                record["id"].as_str().unwrap_or_default()
            ),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(
        header_only.status(),
        404,
        "an Authorization header is not a file token"
    );

    let su_file_token = token_for(app.superuser_token.clone()).await;
    let allowed = get_file(&app, &record, &secret, &format!("?token={su_file_token}")).await;
    assert_eq!(allowed.status(), 200);
    assert_eq!(allowed.text().await.expect("body"), "classified");

    let (status, _) = status_json(
        app.request(Method::POST, "/api/files/token", None, None)
            .await,
    )
    .await;
    assert_eq!(status, 401, "guests get no file token");
}

#[tokio::test]
async fn unknown_names_and_traversal_attempts_are_not_found() {
    let (app, _) = setup().await;
    let (_, record) = create(
        &app,
        Form::new()
            .text("title", "t")
            .part("attachments", file("a.txt", "x")),
    )
    .await;
    let id = record["id"].as_str().expect("id");

    for path in [
        format!("/api/files/docs/{id}/nope.txt"),
        format!("/api/files/docs/{id}/..%2F..%2Fdata.db"),
        format!("/api/files/docs/{id}/%2E%2E"),
        "/api/files/docs/missing/a.txt".to_owned(),
        "/api/files/nope/x/a.txt".to_owned(),
    ] {
        let resp = app.request(Method::GET, &path, None, None).await;
        assert_eq!(resp.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn deleting_a_record_or_its_collection_removes_the_files() {
    let (app, _) = setup().await;
    let (_, first) = create(
        &app,
        Form::new()
            .text("title", "a")
            .part("attachments", file("a.txt", "x")),
    )
    .await;
    let (_, _second) = create(
        &app,
        Form::new()
            .text("title", "b")
            .part("attachments", file("b.txt", "y")),
    )
    .await;
    assert_eq!(app.stored_files().len(), 2);

    let resp = app
        .delete_record("docs", first["id"].as_str().expect("id"))
        .await;
    assert_eq!(resp.status(), 204);
    assert_eq!(app.stored_files().len(), 1, "the record's folder is gone");

    let resp = app.su(Method::DELETE, "/api/collections/docs", None).await;
    assert_eq!(resp.status(), 204);
    assert!(app.stored_files().is_empty(), "{:?}", app.stored_files());
}

#[tokio::test]
async fn multipart_batch_stores_files_for_its_sub_requests() {
    let (app, _) = setup().await;
    app.su(
        Method::PATCH,
        "/api/settings",
        Some(json!({"batch": {"enabled": true}})),
    )
    .await;
    let payload = json!({"requests": [
        {"method": "POST", "url": "/api/collections/docs/records", "body": {"title": "one"}},
        {"method": "POST", "url": "/api/collections/docs/records", "body": {"title": "two"}}
    ]});
    let form = Form::new()
        .part("requests.0.attachments", file("one.txt", "1"))
        .part("requests[1].attachments+", file("two.txt", "2"))
        .text("@jsonPayload", payload.to_string());
    let token = app.superuser_token.clone();

    let (status, body) = status_json(
        app.send_form(Method::POST, "/api/batch", Some(&token), form)
            .await,
    )
    .await;

    assert_eq!(status, 200, "{body}");
    let second = names(&body[1]["body"]["attachments"]);
    assert_eq!(second.len(), 1);
    assert!(second[0].starts_with("two_"), "{second:?}");
    assert_eq!(app.stored_files().len(), 2);
    let record = &body[1]["body"];
    let served = get_file(&app, record, &second[0], "").await;
    assert_eq!(served.text().await.expect("body"), "2");
}

#[tokio::test]
async fn a_failed_multipart_batch_keeps_no_files() {
    let (app, _) = setup().await;
    app.su(
        Method::PATCH,
        "/api/settings",
        Some(json!({"batch": {"enabled": true}})),
    )
    .await;
    let payload = json!({"requests": [
        {"method": "POST", "url": "/api/collections/docs/records", "body": {"title": "one"}},
        {"method": "POST", "url": "/api/collections/docs/records", "body": {}}
    ]});
    let form = Form::new()
        .part("requests.0.attachments", file("one.txt", "1"))
        .text("@jsonPayload", payload.to_string());
    let token = app.superuser_token.clone();

    let (status, body) = status_json(
        app.send_form(Method::POST, "/api/batch", Some(&token), form)
            .await,
    )
    .await;

    assert_eq!(status, 400, "{body}");
    assert!(app.stored_files().is_empty(), "{:?}", app.stored_files());
}

#[tokio::test]
async fn an_upload_to_a_missing_record_leaves_no_folder_behind() {
    let (app, collection_id) = setup().await;

    let (status, _) = update(
        &app,
        "doesnotexist123",
        Form::new().part("attachments", file("a.txt", "x")),
    )
    .await;

    assert_eq!(status, 404);
    let folder = app
        .data_dir
        .join("storage")
        .join(&collection_id)
        .join("doesnotexist123");
    assert!(!folder.exists(), "{folder:?} should have been removed");
    assert!(app.stored_files().is_empty());
}

#[tokio::test]
async fn rules_see_uploads_in_request_body() {
    let (app, _) = setup().await;
    app.update_collection(
        "docs",
        json!({"createRule": "@request.body.attachments:length > 1 && @request.body.cover:isset = true"}),
    )
    .await;
    let guest_create = |form: Form| {
        let app = &app;
        async move {
            app.send_form(Method::POST, "/api/collections/docs/records", None, form)
                .await
                .status()
        }
    };

    let one = guest_create(
        Form::new()
            .text("title", "t")
            .part("cover", file("c.png", png(4, 4)))
            .part("attachments", file("a.txt", "a")),
    )
    .await;
    let two = guest_create(
        Form::new()
            .text("title", "t")
            .part("cover", file("c.png", png(4, 4)))
            .part("attachments", file("a.txt", "a"))
            .part("attachments", file("b.txt", "b")),
    )
    .await;

    assert_eq!(one, 400, "one attachment does not satisfy :length > 1");
    assert_eq!(
        two, 200,
        "two uploads count as two values of @request.body.attachments"
    );
}

/// The same tests with files on S3 (a bucket on the loopback moto server).
mod on_s3 {
    crate::on_s3_tests!(
        uploads_on_create_are_stored_under_collection_and_record,
        json_payload_and_text_parts_combine_with_files,
        modifiers_append_and_remove_files_and_removed_blobs_leave_the_disk,
        replacing_a_single_file_removes_the_old_one_and_its_thumbs,
        oversize_wrong_type_and_too_many_files_are_rejected_and_nothing_is_stored,
        a_create_failing_validation_on_another_field_leaves_no_file,
        a_create_refused_by_its_rule_inside_the_transaction_removes_placed_files,
        unknown_names_in_a_file_field_are_invalid,
        files_are_served_with_pocketbase_headers_ranges_and_downloads,
        thumbs_are_made_only_for_listed_sizes_and_100x100,
        protected_files_need_a_file_token_whose_record_passes_the_view_rule,
        unknown_names_and_traversal_attempts_are_not_found,
        deleting_a_record_or_its_collection_removes_the_files,
        multipart_batch_stores_files_for_its_sub_requests,
        a_failed_multipart_batch_keeps_no_files,
        an_upload_to_a_missing_record_leaves_no_folder_behind,
        rules_see_uploads_in_request_body,
    );
}
