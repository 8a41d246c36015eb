//! Files on S3 beyond the shared files group (`files::on_s3`): where objects
//! land, keys that try to leave a record's prefix, serving answers that must
//! match local files, the write-only secret, `POST /api/settings/test/s3`,
//! and settings that point at a bucket that cannot be used.

use crate::helpers::{TestApp, spawn_app, spawn_app_on_s3, status_json};
use crate::s3_server::S3Server;
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

/// `docs`: public `attachments` and a protected `secret` file field; records
/// are viewable by any signed-in caller (a protected file needs a file token).
async fn docs(app: &TestApp) -> String {
    let collection = app
        .create_collection_ok(json!({
            "name": "docs", "listRule": "", "viewRule": "@request.auth.id != ''", "createRule": "",
            "updateRule": "",
            "fields": [
                {"name": "attachments", "type": "file", "maxSelect": 5, "maxSize": 1000},
                {"name": "secret", "type": "file", "protected": true},
                {"name": "big", "type": "file", "maxSize": 20 * 1024 * 1024}
            ]
        }))
        .await;
    collection["id"].as_str().expect("collection id").to_owned()
}

async fn upload(app: &TestApp, form: Form) -> (u16, Value) {
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

fn part(name: &str, bytes: &str) -> Part {
    Part::bytes(bytes.as_bytes().to_vec()).file_name(name.to_owned())
}

async fn get(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = app.client.get(format!("{}{path}", app.base));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("file request")
}

#[tokio::test]
async fn uploads_on_s3_land_in_the_bucket_under_the_record_and_nothing_stays_on_disk() {
    let Some(app) = spawn_app_on_s3().await else {
        return;
    };
    let collection_id = docs(&app).await;

    let (status, record) = upload(
        &app,
        Form::new().part("attachments", part("hello.txt", "hello")),
    )
    .await;

    assert_eq!(status, 200, "{record}");
    let id = record["id"].as_str().expect("id");
    let name = record["attachments"][0].as_str().expect("name");
    let bucket = app.s3.as_ref().expect("on s3");
    assert_eq!(
        bucket.server.keys(&bucket.name),
        vec![format!("{collection_id}/{id}/{name}")],
        "PocketBase's key layout"
    );
    let local: Vec<_> = app
        .stored_files()
        .into_iter()
        .filter(|p| p.is_absolute())
        .collect();
    assert!(local.is_empty(), "no local copies or temp files: {local:?}");
}

#[tokio::test]
async fn hostile_file_names_never_leave_the_records_prefix_on_s3() {
    let Some(app) = spawn_app_on_s3().await else {
        return;
    };
    let collection_id = docs(&app).await;
    let mut form = Form::new();
    for name in [
        "../../escape.txt",
        "..%2F..%2Fescape.txt",
        "a/b/c.txt",
        "ünï cødé ✓.txt",
    ] {
        form = form.part("attachments", part(name, "x"));
    }

    let (status, record) = upload(&app, form).await;

    assert_eq!(status, 200, "{record}");
    let id = record["id"].as_str().expect("id");
    let bucket = app.s3.as_ref().expect("on s3");
    let keys = bucket.server.keys(&bucket.name);
    assert_eq!(keys.len(), 4, "{keys:?}");
    for key in &keys {
        let rest = key
            .strip_prefix(&format!("{collection_id}/{id}/"))
            .unwrap_or_else(|| panic!("{key} is outside the record's prefix"));
        assert!(
            !rest.contains('/') && !rest.contains("..") && !rest.contains('%') && rest.is_ascii(),
            "stored names are plain: {key}"
        );
    }
    for (path, why) in [
        (
            format!("/api/files/{collection_id}/{id}/..%2F..%2Fescape.txt"),
            "encoded traversal",
        ),
        (
            format!("/api/files/{collection_id}/{id}/../{id}/x"),
            "dot segments",
        ),
        (
            format!("/api/files/{collection_id}/{id}/%2e%2e%2fescape.txt"),
            "encoded dots",
        ),
        (
            format!("/api/files/{collection_id}/{id}/ünï cødé ✓.txt"),
            "the client's name",
        ),
        (
            format!("/api/files/{collection_id}/..%2F{id}/x.txt"),
            "traversal in the record id",
        ),
        (
            format!("/api/files/..%2F{collection_id}/{id}/x.txt"),
            "traversal in the collection",
        ),
    ] {
        let status = get(&app, &path, &[]).await.status();
        assert_eq!(status, 404, "{why}: {path}");
    }
}

#[tokio::test]
async fn a_guest_cannot_read_a_protected_file_on_s3_and_a_file_token_can() {
    let Some(app) = spawn_app_on_s3().await else {
        return;
    };
    let collection_id = docs(&app).await;
    let (_, record) = upload(
        &app,
        Form::new().part("secret", part("s.txt", "classified")),
    )
    .await;
    let path = format!(
        "/api/files/{collection_id}/{}/{}",
        record["id"].as_str().expect("id"),
        record["secret"].as_str().expect("secret")
    );

    let guest = get(&app, &path, &[]).await;
    let forged = get(&app, &format!("{path}?token=forged.jwt.value"), &[]).await;
    let (_, token) = status_json(app.su(Method::POST, "/api/files/token", None).await).await;
    let token = token["token"].as_str().expect("file token");
    let allowed = get(&app, &format!("{path}?token={token}"), &[]).await;

    assert_eq!(guest.status(), 404, "guests do not learn protected files");
    assert_eq!(forged.status(), 404, "a forged token is no token");
    assert_eq!(allowed.status(), 200);
    assert_eq!(allowed.text().await.expect("body"), "classified");
}

/// Status, the headers both backends must agree on, and the body.
async fn answer(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> (u16, Vec<String>, String) {
    let resp = get(app, path, headers).await;
    let status = resp.status().as_u16();
    let shown = [
        "content-type",
        "content-disposition",
        "content-range",
        "accept-ranges",
        "content-length",
    ]
    .iter()
    .map(|h| {
        let value = resp
            .headers()
            .get(*h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        // The stored names differ between the two apps; the disposition must not.
        let value = if *h == "content-disposition" {
            value.split(';').next().unwrap_or_default()
        } else {
            value
        };
        format!("{h}: {value}")
    })
    .collect();
    (status, shown, resp.text().await.unwrap_or_default())
}

#[tokio::test]
async fn s3_objects_answer_ranges_etags_and_304_exactly_like_local_files() {
    let Some(s3) = spawn_app_on_s3().await else {
        return;
    };
    let local = spawn_app().await;
    let mut paths = Vec::new();
    for app in [&local, &s3] {
        let collection_id = docs(app).await;
        let (_, record) = upload(
            app,
            Form::new().part("attachments", part("n.txt", "hello world")),
        )
        .await;
        paths.push(format!(
            "/api/files/{collection_id}/{}/{}",
            record["id"].as_str().expect("id"),
            record["attachments"][0].as_str().expect("name")
        ));
    }
    let etags: Vec<String> = futures_util::future::join_all(paths.iter().zip([&local, &s3]).map(
        |(path, app)| async move {
            let resp = get(app, path, &[]).await;
            assert!(resp.headers().contains_key("last-modified"), "{path}");
            resp.headers()["etag"].to_str().expect("etag").to_owned()
        },
    ))
    .await;

    for (headers, why) in [
        (vec![], "plain GET"),
        (vec![("Range", "bytes=6-10")], "bounded range"),
        (vec![("Range", "bytes=6-")], "open range"),
        (vec![("Range", "bytes=-5")], "suffix range"),
        (
            vec![("Range", "bytes=0-0,3-4")],
            "several ranges: the first one",
        ),
        (vec![("Range", "bytes=100-200")], "past the end: 416"),
        (vec![("Range", "bytes=5-2")], "reversed: 416"),
        (vec![("Range", "lines=1-2")], "unknown unit: 416"),
        (vec![("Range", "garbage")], "garbage: 416"),
        (vec![("If-None-Match", "\"other\"")], "other etag: 200"),
        (
            vec![("If-Modified-Since", "Thu, 01 Jan 1970 00:00:00 GMT")],
            "modified since 1970",
        ),
        (
            vec![("If-Modified-Since", "Fri, 01 Jan 2100 00:00:00 GMT")],
            "not modified since 2100",
        ),
        (vec![("If-Match", "\"other\"")], "failed If-Match: 412"),
    ] {
        let on_local = answer(&local, &paths[0], &headers).await;
        let on_s3 = answer(&s3, &paths[1], &headers).await;
        assert_eq!(on_s3, on_local, "{why}: S3 answers like local disk");
        assert!(on_s3.0 < 500, "{why}");
    }
    for (app, path, etag) in [(&local, &paths[0], &etags[0]), (&s3, &paths[1], &etags[1])] {
        let cached = get(app, path, &[("If-None-Match", etag)]).await;
        assert_eq!(
            cached.status(),
            304,
            "{path}: a matching etag is not sent again"
        );
        let weak = get(app, path, &[("If-None-Match", &format!("W/{etag}"))]).await;
        assert_eq!(weak.status(), 304, "{path}: weak comparison");
    }
    // Several conditions at once are weighed in the same order on both.
    for (extra, why) in [
        (
            ("Range", "bytes=100-200"),
            "a bad range beats a matching etag",
        ),
        (("Range", "bytes=0-1"), "a matching etag beats a good range"),
        (
            ("If-Match", "\"other\""),
            "a failed If-Match beats a matching etag",
        ),
    ] {
        let mut answers = Vec::new();
        for (app, path, etag) in [(&local, &paths[0], &etags[0]), (&s3, &paths[1], &etags[1])] {
            let resp = get(app, path, &[("If-None-Match", etag), extra]).await;
            answers.push(resp.status().as_u16());
        }
        assert_eq!(answers[1], answers[0], "{why}: S3 answers like local disk");
    }
}

#[tokio::test]
async fn the_s3_secret_is_write_only() {
    let Some(app) = spawn_app_on_s3().await else {
        return;
    };

    let (status, shown) = status_json(app.su(Method::GET, "/api/settings", None).await).await;
    let raw = app
        .su(Method::GET, "/api/settings", None)
        .await
        .text()
        .await
        .expect("body");

    assert_eq!(status, 200);
    assert!(shown["s3"].get("secret").is_none(), "{shown}");
    assert!(
        !raw.contains("test-secret"),
        "the secret appears nowhere: {raw}"
    );
    assert_eq!(shown["s3"]["enabled"], true);
    let guest = app
        .client
        .get(format!("{}/api/settings", app.base))
        .send()
        .await
        .expect("get");
    assert_eq!(guest.status(), 401, "guests cannot read settings at all");
}

#[tokio::test]
async fn test_s3_answers_pocketbases_shapes_for_each_filesystem() {
    let Some(app) = spawn_app_on_s3().await else {
        return;
    };
    let off = spawn_app().await;
    let cases: Vec<(&TestApp, Option<Value>, u16, &str, &str)> = vec![
        (
            &app,
            Some(json!({"filesystem": "storage"})),
            204,
            "",
            "a working bucket",
        ),
        (
            &app,
            None,
            400,
            "Failed to test the S3 filesystem.",
            "no body: filesystem required",
        ),
        (
            &app,
            Some(json!({"filesystem": "nope"})),
            400,
            "Failed to test the S3 filesystem.",
            "unknown filesystem",
        ),
        (
            &app,
            Some(json!({"filesystem": 5})),
            400,
            "",
            "wrongly typed",
        ),
        (
            &app,
            Some(json!({"filesystem": "backups"})),
            400,
            "Failed to test the S3 filesystem. Raw error: \nS3 storage filesystem is not enabled",
            "backups.s3 is off",
        ),
        (
            &off,
            Some(json!({"filesystem": "storage"})),
            400,
            "Failed to test the S3 filesystem. Raw error: \nS3 storage filesystem is not enabled",
            "disabled",
        ),
    ];
    for (app, body, want, message, why) in cases {
        let (status, answer) =
            status_json(app.su(Method::POST, "/api/settings/test/s3", body).await).await;
        assert_eq!(status, want, "{why}: {answer}");
        if want == 400 {
            assert_eq!(answer["status"], 400, "{why}: the envelope");
            let got = answer["message"].as_str().unwrap_or_default();
            assert!(got.starts_with(message), "{why}: {got}");
        }
    }
    let guest = app
        .client
        .post(format!("{}/api/settings/test/s3", app.base))
        .json(&json!({"filesystem": "storage"}))
        .send()
        .await
        .expect("post");
    assert_eq!(guest.status(), 401, "superusers only");
    let bucket = app.s3.as_ref().expect("on s3");
    assert!(
        bucket.server.keys(&bucket.name).is_empty(),
        "the probe object is deleted"
    );
}

#[tokio::test]
async fn a_bucket_that_cannot_be_used_is_refused_and_files_stay_on_the_local_disk() {
    let Some(shared) = crate::s3_server::shared() else {
        return;
    };
    // A second moto that checks credentials: every key is unknown to it.
    let Some(strict) = S3Server::start(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]) else {
        return;
    };
    let app = spawn_app().await;
    let collection_id = docs(&app).await;
    let existing = shared.create_bucket();
    let s3 = |endpoint: &str, bucket: &str| {
        json!({"s3": {"enabled": true, "bucket": bucket, "region": "us-east-1", "endpoint": endpoint,
                       "accessKey": "test", "secret": "wrong", "forcePathStyle": true}})
    };
    let before = status_json(app.su(Method::GET, "/api/settings", None).await)
        .await
        .1;

    for (body, why) in [
        (s3(&shared.endpoint, "no-such-bucket"), "unknown bucket"),
        (s3("http://127.0.0.1:1", &existing), "unreachable endpoint"),
        (s3(&strict.endpoint, &existing), "wrong credentials"),
        (
            s3("http://127.0.0.1:1", "../other"),
            "bucket with a path in it",
        ),
    ] {
        let (status, answer) = status_json(
            app.su(Method::PATCH, "/api/settings", Some(body.clone()))
                .await,
        )
        .await;
        assert_eq!(status, 400, "{why}: {answer}");
        assert_eq!(
            answer["data"]["s3"]["enabled"]["code"], "validation_s3_unreachable",
            "{why}: {answer}"
        );
        assert!(
            !answer.to_string().contains("wrong"),
            "{why}: no secret in errors: {answer}"
        );
        let after = status_json(app.su(Method::GET, "/api/settings", None).await)
            .await
            .1;
        assert_eq!(after, before, "{why}: nothing saved");
    }

    let (status, record) = upload(
        &app,
        Form::new().part("attachments", part("a.txt", "local")),
    )
    .await;
    assert_eq!(status, 200, "{record}");
    let id = record["id"].as_str().expect("id");
    let name = record["attachments"][0].as_str().expect("name");
    assert_eq!(
        app.stored_file(&format!("{collection_id}/{id}/{name}"))
            .as_deref(),
        Some(&b"local"[..]),
        "files still go to the local disk"
    );
    let served = get(
        &app,
        &format!("/api/files/{collection_id}/{id}/{name}"),
        &[],
    )
    .await;
    assert_eq!(served.text().await.expect("body"), "local");
    assert!(
        shared.keys(&existing).is_empty(),
        "nothing reached the bucket"
    );
}

#[tokio::test]
async fn switching_storage_live_sends_new_files_to_the_bucket_and_back() {
    let Some(server) = crate::s3_server::shared() else {
        return;
    };
    let app = spawn_app().await;
    let collection_id = docs(&app).await;
    let bucket = server.create_bucket();
    let settings = json!({"s3": {"enabled": true, "bucket": bucket, "region": "us-east-1",
        "endpoint": server.endpoint, "accessKey": "test", "secret": "s", "forcePathStyle": true}});

    let (_, first) = upload(&app, Form::new().part("attachments", part("1.txt", "one"))).await;
    let (status, body) =
        status_json(app.su(Method::PATCH, "/api/settings", Some(settings)).await).await;
    assert_eq!(status, 200, "{body}");
    let (_, second) = upload(&app, Form::new().part("attachments", part("2.txt", "two"))).await;
    let (status, body) = status_json(
        app.su(
            Method::PATCH,
            "/api/settings",
            Some(json!({"s3": {"enabled": false}})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, third) = upload(
        &app,
        Form::new().part("attachments", part("3.txt", "three")),
    )
    .await;

    let key = |r: &Value| {
        format!(
            "{collection_id}/{}/{}",
            r["id"].as_str().unwrap_or_default(),
            r["attachments"][0].as_str().unwrap_or_default()
        )
    };
    assert_eq!(
        server.keys(&bucket),
        vec![key(&second)],
        "only the file sent while on S3"
    );
    for record in [&first, &third] {
        let local = app.data_dir.join("storage").join(key(record));
        assert!(local.is_file(), "{local:?} on the local disk");
    }
}

#[tokio::test]
async fn a_file_above_the_multipart_threshold_round_trips_and_serves_ranges_from_s3() {
    let Some(app) = spawn_app_on_s3().await else {
        return;
    };
    let collection_id = docs(&app).await;
    // 9 MiB and a bit: two parts of a multipart upload.
    let bytes: Vec<u8> = (0..9 * 1024 * 1024 + 123)
        .map(|i: u32| (i % 251) as u8)
        .collect();
    let token = app.superuser_token.clone();
    let form = Form::new().part("big", Part::bytes(bytes.clone()).file_name("big.bin"));
    let (status, record) = status_json(
        app.send_form(
            Method::POST,
            "/api/collections/docs/records",
            Some(&token),
            form,
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{record}");
    let path = format!(
        "/api/files/{collection_id}/{}/{}",
        record["id"].as_str().expect("id"),
        record["big"].as_str().expect("big")
    );

    let whole = get(&app, &path, &[]).await;
    let tail = get(&app, &path, &[("Range", "bytes=-100000")]).await;
    let middle = get(&app, &path, &[("Range", "bytes=8388600-8388700")]).await;

    assert_eq!(whole.status(), 200);
    assert!(
        whole.bytes().await.expect("body") == bytes,
        "the whole file comes back"
    );
    assert_eq!(tail.status(), 206);
    assert!(tail.bytes().await.expect("tail") == bytes[bytes.len() - 100_000..]);
    assert_eq!(middle.status(), 206, "a range across the part boundary");
    assert!(middle.bytes().await.expect("middle") == bytes[8_388_600..=8_388_700]);
}

#[tokio::test]
async fn when_the_bucket_goes_away_test_s3_says_so_and_requests_fail_cleanly() {
    // A server of its own, stopped halfway through.
    let Some(server) = S3Server::start(&[]) else {
        return;
    };
    let app = spawn_app().await;
    let collection_id = docs(&app).await;
    let bucket = server.create_bucket();
    let settings = json!({"s3": {"enabled": true, "bucket": bucket, "region": "us-east-1",
        "endpoint": server.endpoint, "accessKey": "test", "secret": "s", "forcePathStyle": true}});
    let (status, body) =
        status_json(app.su(Method::PATCH, "/api/settings", Some(settings)).await).await;
    assert_eq!(status, 200, "{body}");
    let (_, before) = upload(&app, Form::new().part("attachments", part("a.txt", "a"))).await;
    let path = format!(
        "/api/files/{collection_id}/{}/{}",
        before["id"].as_str().expect("id"),
        before["attachments"][0].as_str().expect("name")
    );

    drop(server);
    let (test_status, test_body) = status_json(
        app.su(
            Method::POST,
            "/api/settings/test/s3",
            Some(json!({"filesystem": "storage"})),
        )
        .await,
    )
    .await;
    let (upload_status, upload_body) =
        upload(&app, Form::new().part("attachments", part("b.txt", "b"))).await;
    let served = get(&app, &path, &[]).await.status();
    let (_, list) = status_json(
        app.su(Method::GET, "/api/collections/docs/records", None)
            .await,
    )
    .await;

    assert_eq!(test_status, 400, "{test_body}");
    assert!(
        test_body["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Failed to test the S3 filesystem. Raw error: \n")),
        "{test_body}"
    );
    assert_eq!(
        upload_status, 400,
        "an upload that cannot be stored: {upload_body}"
    );
    assert_eq!(upload_body["status"], 400, "the error envelope");
    assert!(
        (400..500).contains(&served.as_u16()),
        "a file that cannot be fetched is a 4xx, got {served}"
    );
    assert_eq!(
        list["totalItems"], 1,
        "the failed upload made no record: {list}"
    );
}

/// Runs `ferrobase storage migrate --to TARGET --dir DIR`: (success, stdout,
/// stderr); retried while the stopped test server still lets go of the data
/// dir (it does so on this test's runtime, so waiting must not block it).
async fn migrate(dir: &std::path::Path, target: &str) -> (bool, String, String) {
    for _ in 0..100 {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ferrobase"))
            .args(["storage", "migrate", "--to", target, "--dir"])
            .arg(dir)
            .output()
            .await
            .expect("ferrobase runs");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if !stderr.contains("already running on the data dir") {
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            return (out.status.success(), stdout, stderr);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the data dir stayed locked");
}

#[tokio::test]
async fn storage_migrate_copies_to_s3_and_back_resumably_and_switches_the_setting() {
    let Some(server) = crate::s3_server::shared() else {
        return;
    };
    let tmp = crate::helpers::DataDir::new();
    let dir = tmp.path();
    let app = crate::helpers::spawn_app_in(dir).await;
    let collection_id = docs(&app).await;
    let bucket = server.create_bucket();
    let off = json!({"s3": {"enabled": false, "bucket": bucket, "region": "us-east-1",
        "endpoint": server.endpoint, "accessKey": "test", "secret": "s", "forcePathStyle": true}});
    let (status, body) = status_json(app.su(Method::PATCH, "/api/settings", Some(off)).await).await;
    assert_eq!(status, 200, "{body}");
    let (_, record) = upload(
        &app,
        Form::new()
            .part("attachments", part("a.txt", "alpha"))
            .part("attachments", part("b.txt", "beta")),
    )
    .await;
    let local_files = app.stored_files().len();
    app.stop().await;

    let (ok, out, err) = migrate(dir, "s3").await;
    let (again_ok, again, _) = migrate(dir, "s3").await;

    assert!(ok, "{out}{err}");
    assert!(out.contains("Copied 2 file(s)"), "{out}");
    assert!(
        again_ok && again.contains("Copied 0 file(s) (0 bytes), 2 already there"),
        "resumable: {again}"
    );
    assert_eq!(server.keys(&bucket).len(), local_files);
    let app = crate::helpers::spawn_app_in(dir).await;
    let (_, settings) = status_json(app.su(Method::GET, "/api/settings", None).await).await;
    assert_eq!(
        settings["s3"]["enabled"], true,
        "the setting switched: {settings}"
    );
    let id = record["id"].as_str().expect("id");
    let name = record["attachments"][1].as_str().expect("name");
    // Served from the bucket now: remove the local copy first to be sure.
    std::fs::remove_dir_all(dir.join("storage").join(&collection_id)).expect("rm local");
    let served = get(
        &app,
        &format!("/api/files/{collection_id}/{id}/{name}"),
        &[],
    )
    .await;
    assert_eq!(served.text().await.expect("body"), "beta");
    let (_, newer) = upload(
        &app,
        Form::new().part("attachments", part("c.txt", "gamma")),
    )
    .await;
    app.stop().await;

    let (ok, out, err) = migrate(dir, "local").await;

    assert!(ok, "{out}{err}");
    assert!(out.contains("Copied 3 file(s)"), "{out}");
    let app = crate::helpers::spawn_app_in(dir).await;
    let (_, settings) = status_json(app.su(Method::GET, "/api/settings", None).await).await;
    assert_eq!(settings["s3"]["enabled"], false, "{settings}");
    let newer_key = format!(
        "{collection_id}/{}/{}",
        newer["id"].as_str().expect("id"),
        newer["attachments"][0].as_str().expect("name")
    );
    assert_eq!(app.stored_file(&newer_key).as_deref(), Some(&b"gamma"[..]));
    assert_eq!(
        server.keys(&bucket).len(),
        3,
        "nothing deleted at the source"
    );
}

#[tokio::test]
async fn storage_migrate_refuses_an_unusable_bucket_and_changes_nothing() {
    let tmp = crate::helpers::DataDir::new();
    let dir = tmp.path();
    let app = crate::helpers::spawn_app_in(dir).await;
    let off = json!({"s3": {"enabled": false, "bucket": "b", "region": "us-east-1",
        "endpoint": "http://127.0.0.1:1", "accessKey": "k", "secret": "s", "forcePathStyle": true}});
    let (status, body) = status_json(app.su(Method::PATCH, "/api/settings", Some(off)).await).await;
    assert_eq!(status, 200, "{body}");
    app.stop().await;

    let (ok, out, err) = migrate(dir, "s3").await;

    assert!(!ok, "{out}");
    assert!(err.contains("the s3 bucket cannot be used"), "{err}");
    let app = crate::helpers::spawn_app_in(dir).await;
    let (_, settings) = status_json(app.su(Method::GET, "/api/settings", None).await).await;
    assert_eq!(settings["s3"]["enabled"], false, "{settings}");
}
