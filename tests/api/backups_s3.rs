//! Backups kept in the `backups.s3` bucket of a loopback moto server: the
//! cases of `backups.rs` run again with the archives in the bucket, plus
//! what only a bucket brings (the local disk stays empty, downloads stream
//! the stored bytes, an unusable bucket is a clean 400) and the attacks on
//! every backups endpoint. Skips loudly when moto is not installed.

use crate::backups::{Place, Server, cron_prune_case, download_upload_case, restore_case, start};
use crate::helpers::{DataDir, TestApp, spawn_app, status_json};
use crate::s3_server::S3Server;
use reqwest::Method;
use serde_json::{Value, json};
use std::path::Path;

/// The `backups.s3` settings for `bucket` on `server`.
fn backups_s3(server: &S3Server, bucket: &str) -> Value {
    json!({"backups": {"s3": {"enabled": true, "bucket": bucket, "region": "us-east-1",
        "endpoint": server.endpoint, "accessKey": "test", "secret": "test-secret",
        "forcePathStyle": true}}})
}

/// A served data dir whose backups go to a fresh bucket of the shared moto.
async fn start_on_s3(dir: &Path) -> Option<(Server, &'static S3Server, String)> {
    let s3 = crate::s3_server::shared()?;
    let bucket = s3.create_bucket();
    let server = start(dir).await;
    let (status, body) = server
        .call(
            Method::PATCH,
            "/api/settings",
            Some(backups_s3(s3, &bucket)),
        )
        .await;
    assert_eq!(status, 200, "backups switch to S3: {body}");
    Some((server, s3, bucket))
}

/// An in-process app whose backups go to a fresh bucket on `s3`.
async fn app_on_s3(s3: &S3Server) -> (TestApp, String) {
    let app = spawn_app().await;
    let bucket = s3.create_bucket();
    let (status, body) = status_json(
        app.su(
            Method::PATCH,
            "/api/settings",
            Some(backups_s3(s3, &bucket)),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "backups switch to S3: {body}");
    (app, bucket)
}

async fn keys_listed(app: &TestApp) -> Vec<String> {
    let (status, listed) = status_json(app.su(Method::GET, "/api/backups", None).await).await;
    assert_eq!(status, 200, "{listed}");
    let mut keys: Vec<String> = listed
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|b| b["key"].as_str().map(str::to_owned))
        .collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn on_s3_a_backup_is_made_listed_restored_and_deleted_in_the_bucket() {
    let tmp = DataDir::new();
    let Some((server, s3, bucket)) = start_on_s3(tmp.path()).await else {
        return;
    };

    restore_case(&server, &Place::S3(s3, bucket.clone())).await;

    assert!(
        Place::Local(tmp.path()).keys().is_empty(),
        "no archive or temp file stays on the local disk"
    );
}

#[tokio::test]
async fn on_s3_downloads_stream_the_stored_bytes_and_uploads_are_checked_first() {
    let tmp = DataDir::new();
    let Some((server, s3, bucket)) = start_on_s3(tmp.path()).await else {
        return;
    };
    download_upload_case(&server, &Place::S3(s3, bucket.clone())).await;
    let (_, file_token) = server.call(Method::POST, "/api/files/token", None).await;
    let token = file_token["token"].as_str().expect("file token");

    let download = server
        .client
        .get(format!(
            "{}/api/backups/orig.zip?token={token}",
            server.base
        ))
        .send()
        .await
        .expect("download");
    let length = download.content_length();
    let disposition = download
        .headers()
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = download.bytes().await.expect("bytes");
    let head = server
        .client
        .head(format!(
            "{}/api/backups/orig.zip?token={token}",
            server.base
        ))
        .send()
        .await
        .expect("head");
    let head_length = head
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());

    let stored = s3.get_bytes(&bucket, "orig.zip").expect("object");
    assert_eq!(bytes.as_ref(), stored.as_slice(), "the object's bytes");
    assert_eq!(length, Some(stored.len() as u64), "a known length");
    assert_eq!(head.status(), 200);
    assert_eq!(head_length, length, "HEAD gives the same length");
    assert!(
        disposition.is_some_and(|d| d.contains("attachment") && d.contains("orig.zip")),
        "sent as an attachment"
    );
    assert!(
        Place::Local(tmp.path()).keys().is_empty(),
        "nothing on disk"
    );
}

#[tokio::test]
async fn on_s3_the_scheduled_backup_prunes_to_cron_max_keep_in_the_bucket() {
    let tmp = DataDir::new();
    let Some((server, s3, bucket)) = start_on_s3(tmp.path()).await else {
        return;
    };

    cron_prune_case(&server, &Place::S3(s3, bucket)).await;

    assert!(
        Place::Local(tmp.path()).keys().is_empty(),
        "nothing on disk"
    );
}

#[tokio::test]
async fn guests_users_and_forged_tokens_are_refused_on_every_backups_endpoint_on_s3() {
    let Some(s3) = crate::s3_server::shared() else {
        return;
    };
    let (app, bucket) = app_on_s3(s3).await;
    let (status, body) = status_json(
        app.su(
            Method::POST,
            "/api/backups",
            Some(json!({"name": "one.zip"})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    app.create_record_ok(
        "users",
        json!({"email": "u@example.com", "password": "secret-pass-1",
               "passwordConfirm": "secret-pass-1"}),
    )
    .await;
    let user = app
        .login_as("users", "u@example.com", "secret-pass-1")
        .await;
    let su = app.superuser_token.clone();
    let forged = format!("{}x", &su[..su.len() - 1]);
    let before = s3.keys(&bucket);

    for (token, who) in [
        (None, "a guest"),
        (Some(user.as_str()), "a user"),
        (Some(forged.as_str()), "a forged superuser token"),
        (Some("garbage"), "garbage"),
    ] {
        for (method, path, body) in [
            (Method::GET, "/api/backups", None),
            (
                Method::POST,
                "/api/backups",
                Some(json!({"name": "evil.zip"})),
            ),
            (Method::GET, "/api/backups/one.zip", None),
            (Method::DELETE, "/api/backups/one.zip", None),
            (Method::POST, "/api/backups/one.zip/restore", None),
            (Method::POST, "/api/backups/upload", Some(json!({}))),
            (
                Method::POST,
                "/api/settings/test/s3",
                Some(json!({"filesystem": "backups"})),
            ),
        ] {
            let (status, answer) =
                status_json(app.request(method.clone(), path, token, body).await).await;
            assert!(
                matches!(status, 401 | 403),
                "{who} on {method} {path}: {status} {answer}"
            );
            assert_eq!(answer["status"], status, "{who} on {path}: the envelope");
        }
        let with_token = app
            .client
            .get(format!(
                "{}/api/backups/one.zip?token={}",
                app.base,
                token.unwrap_or_default()
            ))
            .send()
            .await
            .expect("download");
        assert_eq!(
            with_token.status(),
            403,
            "{who}: not a superuser file token"
        );
    }
    assert_eq!(s3.keys(&bucket), before, "the bucket is untouched");
}

#[tokio::test]
async fn hostile_and_missing_backup_names_on_s3_are_4xx_and_change_nothing() {
    let Some(s3) = crate::s3_server::shared() else {
        return;
    };
    let (app, bucket) = app_on_s3(s3).await;
    let (status, body) = status_json(
        app.su(
            Method::POST,
            "/api/backups",
            Some(json!({"name": "one.zip"})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    // Objects someone else put there: not archive names, so not ours.
    let planted = Place::S3(s3, bucket.clone());
    planted.plant("nested/two.zip", b"PK\x03\x04 other");
    planted.plant("notes.txt", b"hello");
    let before = s3.keys(&bucket);
    let huge = format!("{}.zip", "a".repeat(5000));

    let (_, file_token) = status_json(app.su(Method::POST, "/api/files/token", None).await).await;
    let token = file_token["token"].as_str().expect("file token").to_owned();
    for key in [
        "..%2Fone.zip",
        "%2E%2E%2Fone.zip",
        "nested%2Ftwo.zip",
        "notes.txt",
        "ONE.zip",
        "missing.zip",
        "one.zip%00",
        huge.as_str(),
    ] {
        for (method, path) in [
            (Method::DELETE, format!("/api/backups/{key}")),
            (Method::POST, format!("/api/backups/{key}/restore")),
            (Method::GET, format!("/api/backups/{key}?token={token}")),
        ] {
            let (status, answer) = status_json(app.su(method.clone(), &path, None).await).await;
            assert!(
                (400..500).contains(&status),
                "{method} {key:.40}: {status} {answer}"
            );
            assert_eq!(answer["status"], status, "{key:.40}: the envelope");
        }
    }
    for name in [
        "../x.zip",
        "nested/x.zip",
        "x.zip/../y.zip",
        huge.as_str(),
        "",
    ] {
        let body = json!({"name": name});
        let (status, answer) =
            status_json(app.su(Method::POST, "/api/backups", Some(body)).await).await;
        if name.is_empty() {
            // An empty name is PocketBase's "pick one for me".
            assert_eq!(status, 204, "{answer}");
            continue;
        }
        assert_eq!(status, 400, "create {name:.40}: {answer}");
        assert!(answer["data"]["name"]["code"].is_string(), "{answer}");
    }

    let mut after = s3.keys(&bucket);
    let fresh: Vec<String> = after
        .iter()
        .filter(|k| !before.contains(k))
        .cloned()
        .collect();
    assert_eq!(
        fresh.len(),
        1,
        "only the unnamed backup was added: {fresh:?}"
    );
    assert!(fresh[0].starts_with("pb_backup_"), "{fresh:?}");
    after.retain(|k| before.contains(k));
    assert_eq!(after, before, "nothing else changed");
    let listed = keys_listed(&app).await;
    assert!(
        !listed.iter().any(|k| k.contains('/') || k == "notes.txt"),
        "foreign objects are not listed: {listed:?}"
    );
}

#[tokio::test]
async fn an_unusable_backups_bucket_is_refused_and_a_lost_one_is_a_clean_400() {
    let Some(shared) = crate::s3_server::shared() else {
        return;
    };
    let Some(lost) = S3Server::start(&[]) else {
        return;
    };
    let app = spawn_app().await;
    let settings_before = status_json(app.su(Method::GET, "/api/settings", None).await)
        .await
        .1;

    for (body, why) in [
        (backups_s3(shared, "no-such-bucket"), "unknown bucket"),
        (
            json!({"backups": {"s3": {"enabled": true, "bucket": "b", "region": "us-east-1",
                "endpoint": "http://127.0.0.1:1", "accessKey": "k", "secret": "s",
                "forcePathStyle": true}}}),
            "unreachable endpoint",
        ),
    ] {
        let (status, answer) =
            status_json(app.su(Method::PATCH, "/api/settings", Some(body)).await).await;
        assert_eq!(status, 400, "{why}: {answer}");
        assert_eq!(
            answer["data"]["backups"]["s3"]["enabled"]["code"], "validation_s3_unreachable",
            "{why}: {answer}"
        );
        let after = status_json(app.su(Method::GET, "/api/settings", None).await)
            .await
            .1;
        assert_eq!(after, settings_before, "{why}: nothing saved");
    }

    // A bucket that worked when saved and is gone now.
    let bucket = lost.create_bucket();
    let (status, body) = status_json(
        app.su(
            Method::PATCH,
            "/api/settings",
            Some(backups_s3(&lost, &bucket)),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = status_json(
        app.su(
            Method::POST,
            "/api/backups",
            Some(json!({"name": "one.zip"})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    drop(lost);

    for (method, path, body) in [
        (Method::GET, "/api/backups", None),
        (
            Method::POST,
            "/api/backups",
            Some(json!({"name": "two.zip"})),
        ),
        (Method::DELETE, "/api/backups/one.zip", None),
        (Method::POST, "/api/backups/one.zip/restore", None),
        (
            Method::POST,
            "/api/settings/test/s3",
            Some(json!({"filesystem": "backups"})),
        ),
    ] {
        let (status, answer) = status_json(app.su(method.clone(), path, body).await).await;
        assert_eq!(status, 400, "{method} {path}: {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("Failed to"),
            "{method} {path}: a clear message: {answer}"
        );
        assert!(!answer.to_string().contains("test-secret"), "no secret");
    }
    assert!(
        !app.data_dir.join(".restore").exists(),
        "no restore was staged"
    );
    assert!(
        Place::Local(&app.data_dir).keys().is_empty(),
        "no partial archive on the local disk"
    );
    let (status, _) = status_json(app.su(Method::GET, "/api/health", None).await).await;
    assert_eq!(status, 200, "the server keeps serving");
}

#[tokio::test]
async fn test_s3_for_backups_probes_the_backups_bucket_and_leaves_it_clean() {
    let Some(s3) = crate::s3_server::shared() else {
        return;
    };
    let (app, bucket) = app_on_s3(s3).await;

    let (status, answer) = status_json(
        app.su(
            Method::POST,
            "/api/settings/test/s3",
            Some(json!({"filesystem": "backups"})),
        )
        .await,
    )
    .await;

    assert_eq!(status, 204, "{answer}");
    assert!(s3.keys(&bucket).is_empty(), "the probe object is deleted");
}

#[tokio::test]
async fn concurrent_backups_on_s3_run_one_at_a_time_and_the_refused_store_nothing() {
    let Some(s3) = crate::s3_server::shared() else {
        return;
    };
    let (app, bucket) = app_on_s3(s3).await;
    let names = ["c1.zip", "c2.zip", "c3.zip"];

    let app = &app;
    let answers = futures_util::future::join_all(names.iter().map(|name| async move {
        let body = Some(json!({ "name": name }));
        status_json(app.su(Method::POST, "/api/backups", body).await).await
    }))
    .await;

    let mut made = Vec::new();
    for (name, (status, answer)) in names.iter().zip(&answers) {
        match status {
            204 => made.push((*name).to_owned()),
            400 => assert_eq!(
                answer["message"],
                "Try again later - another backup/restore process has already been started.",
                "{name}: PocketBase's refusal"
            ),
            other => panic!("{name}: {other} {answer}"),
        }
    }
    assert!(!made.is_empty(), "one of them ran: {answers:?}");
    assert_eq!(
        s3.keys(&bucket),
        made,
        "exactly the accepted ones are stored"
    );
}
