//! Backups through the real binary: create while serving, list, refuse bad
//! names and foreign archives (touching nothing), restore (the server
//! restarts itself on the same address with the archived data), plus the
//! `backup` and `db check` commands. The case bodies take a [`Place`] and
//! run again with the archives in a bucket (`backups_s3.rs`).

use crate::helpers::status_json;
use reqwest::{Client, Method};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const EMAIL: &str = "backup-admin@example.com";
const PASSWORD: &str = "backup-pass-123";

pub struct Server {
    child: Child,
    pub base: String,
    pub client: Client,
    pub token: String,
}

/// Where a case's archives are kept, as the test sees them from outside.
pub enum Place<'a> {
    /// `DATA_DIR/backups/`.
    Local(&'a Path),
    /// A bucket of a loopback S3 server (keys at its root).
    S3(&'a crate::s3_server::S3Server, String),
}

impl Place<'_> {
    /// Puts `bytes` into the store as `key`, behind the server's back.
    pub fn plant(&self, key: &str, bytes: &[u8]) {
        match self {
            Place::Local(dir) => {
                std::fs::create_dir_all(dir.join("backups")).expect("backups dir");
                std::fs::write(dir.join("backups").join(key), bytes).expect("write");
            }
            Place::S3(server, bucket) => {
                let (status, body) = server
                    .request("PUT", &format!("/{bucket}/{key}"), bytes)
                    .expect("put object");
                assert_eq!(status, 200, "planted {key}: {body}");
            }
        }
    }

    /// Every stored name, sorted (temp files included, to see leftovers).
    pub fn keys(&self) -> Vec<String> {
        match self {
            Place::Local(dir) => {
                let mut keys: Vec<String> = std::fs::read_dir(dir.join("backups"))
                    .map(|entries| {
                        entries
                            .flatten()
                            .filter(|e| e.path().is_file())
                            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                keys.sort();
                keys
            }
            Place::S3(server, bucket) => server.keys(bucket),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn ferrobase(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ferrobase"))
        .args(args)
        .arg("--dir")
        .arg(dir)
        .env_remove("FERROBASE_BIN")
        .output()
        .expect("ferrobase runs")
}

pub async fn start(dir: &Path) -> Server {
    let upsert = ferrobase(dir, &["superuser", "upsert", EMAIL, PASSWORD]);
    assert!(upsert.status.success(), "{upsert:?}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrobase"))
        .args(["serve", "--http", "127.0.0.1:0", "--dir"])
        .arg(dir)
        .env_remove("FERROBASE_BIN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut first = String::new();
    BufReader::new(stdout)
        .read_line(&mut first)
        .expect("banner");
    let base = first
        .trim()
        .strip_prefix("Server started at ")
        .expect("banner shape")
        .to_owned();
    let client = Client::new();
    let login: Value = client
        .post(format!(
            "{base}/api/collections/_superusers/auth-with-password"
        ))
        .json(&json!({"identity": EMAIL, "password": PASSWORD}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("login json");
    let token = login["token"].as_str().expect("token").to_owned();
    Server {
        child,
        base,
        client,
        token,
    }
}

impl Server {
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("Authorization", &self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        status_json(req.send().await.expect("request")).await
    }

    pub async fn titles(&self) -> Vec<String> {
        let (status, body) = self
            .call(
                Method::GET,
                "/api/collections/notes/records?sort=title",
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|r| r["title"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

#[tokio::test]
async fn a_backup_restores_to_the_state_it_was_taken_in() {
    let tmp = crate::helpers::DataDir::new();
    let server = start(tmp.path()).await;
    restore_case(&server, &Place::Local(tmp.path())).await;
}

/// Create, refuse a duplicate and a bad name, list, refuse a foreign
/// archive (nothing changes), restore (the server restarts with the
/// archived data), delete.
pub async fn restore_case(server: &Server, place: &Place<'_>) {
    let (status, body) = server
        .call(
            Method::POST,
            "/api/collections",
            Some(json!({"name": "notes", "fields": [{"name": "title", "type": "text"}]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    server
        .call(
            Method::POST,
            "/api/collections/notes/records",
            Some(json!({"title": "kept"})),
        )
        .await;

    let (created, _) = server
        .call(
            Method::POST,
            "/api/backups",
            Some(json!({"name": "one.zip"})),
        )
        .await;
    let (duplicate, duplicate_body) = server
        .call(
            Method::POST,
            "/api/backups",
            Some(json!({"name": "one.zip"})),
        )
        .await;
    let (bad_name, bad_name_body) = server
        .call(
            Method::POST,
            "/api/backups",
            Some(json!({"name": "../evil.zip"})),
        )
        .await;
    let (_, listed) = server.call(Method::GET, "/api/backups", None).await;
    server
        .call(
            Method::POST,
            "/api/collections/notes/records",
            Some(json!({"title": "after"})),
        )
        .await;
    place.plant("foreign.zip", b"PK\x03\x04 not really");
    let (foreign, foreign_body) = server
        .call(Method::POST, "/api/backups/foreign.zip/restore", None)
        .await;
    let before_restore = server.titles().await;
    let (restored, _) = server
        .call(Method::POST, "/api/backups/one.zip/restore", None)
        .await;
    // The server restarts itself on the same address.
    let mut after_restore = Vec::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let relogin = server
            .client
            .post(format!(
                "{}/api/collections/_superusers/auth-with-password",
                server.base
            ))
            .json(&json!({"identity": EMAIL, "password": PASSWORD}))
            .send()
            .await;
        if let Ok(resp) = relogin
            && resp.status() == 200
        {
            after_restore = server.titles().await;
            if after_restore == ["kept"] {
                break;
            }
        }
    }
    let (deleted, _) = server
        .call(Method::DELETE, "/api/backups/one.zip", None)
        .await;
    let (missing, missing_body) = server
        .call(Method::DELETE, "/api/backups/one.zip", None)
        .await;
    let (missing_restore, missing_restore_body) = server
        .call(Method::POST, "/api/backups/one.zip/restore", None)
        .await;

    assert_eq!(created, 204);
    assert_eq!(duplicate, 400, "{duplicate_body}");
    assert_eq!(bad_name, 400);
    assert_eq!(
        bad_name_body["data"]["name"]["code"],
        "validation_match_invalid"
    );
    assert_eq!(listed[0]["key"], "one.zip", "{listed}");
    assert!(listed[0]["size"].as_u64().is_some_and(|s| s > 0));
    assert_eq!(foreign, 400, "{foreign_body}");
    assert_eq!(
        before_restore,
        ["after", "kept"],
        "a refused restore changes nothing"
    );
    assert_eq!(restored, 204);
    assert_eq!(after_restore, ["kept"], "the archived state is back");
    assert_eq!(deleted, 204);
    // PocketBase's answers for a backup that is not there.
    assert_eq!(missing, 400, "{missing_body}");
    assert_eq!(
        missing_body["message"],
        "Invalid or already deleted backup file."
    );
    assert_eq!(missing_restore, 400, "{missing_restore_body}");
    assert_eq!(
        missing_restore_body["message"],
        "Missing or invalid backup file."
    );
    assert!(
        !place.keys().contains(&"one.zip".to_owned()),
        "deleted from the store"
    );
}

#[tokio::test]
async fn the_cli_backs_up_a_running_server_and_checks_the_database() {
    let tmp = crate::helpers::DataDir::new();
    let server = start(tmp.path()).await;

    let created = ferrobase(tmp.path(), &["backup", "create", "cli.zip"]);
    let (_, listed) = server.call(Method::GET, "/api/backups", None).await;
    let check = ferrobase(tmp.path(), &["db", "check"]);
    let restore_while_running = ferrobase(
        tmp.path(),
        &[
            "backup",
            "restore",
            &tmp.path().join("backups/cli.zip").to_string_lossy(),
        ],
    );
    drop(server);
    let restore_stopped = ferrobase(
        tmp.path(),
        &[
            "backup",
            "restore",
            &tmp.path().join("backups/cli.zip").to_string_lossy(),
        ],
    );
    let check_after = ferrobase(tmp.path(), &["db", "check"]);

    assert!(created.status.success(), "{created:?}");
    assert_eq!(listed[0]["key"], "cli.zip");
    assert!(check.status.success());
    assert!(String::from_utf8_lossy(&check.stdout).contains("ok"));
    assert!(
        !restore_while_running.status.success(),
        "the server holds the data dir"
    );
    assert!(
        String::from_utf8_lossy(&restore_while_running.stderr).contains("already running"),
        "{restore_while_running:?}"
    );
    assert!(restore_stopped.status.success(), "{restore_stopped:?}");
    assert!(check_after.status.success());
}

#[tokio::test]
async fn archives_download_with_a_superuser_file_token_and_upload_after_checks() {
    let tmp = crate::helpers::DataDir::new();
    let server = start(tmp.path()).await;
    download_upload_case(&server, &Place::Local(tmp.path())).await;
}

/// Download with a file token (not with a header), upload a copy, refuse
/// garbage, a bad name and a taken name, storing nothing for them.
pub async fn download_upload_case(server: &Server, place: &Place<'_>) {
    let (created, _) = server
        .call(
            Method::POST,
            "/api/backups",
            Some(json!({"name": "orig.zip"})),
        )
        .await;
    let (_, file_token) = server.call(Method::POST, "/api/files/token", None).await;
    let token = file_token["token"].as_str().expect("file token");
    let url = format!("{}/api/backups/orig.zip", server.base);

    let download = server
        .client
        .get(format!("{url}?token={token}"))
        .send()
        .await
        .expect("download");
    let download_status = download.status().as_u16();
    let bytes = download.bytes().await.expect("zip bytes");
    let header_only = server
        .client
        .get(&url)
        .header("Authorization", &server.token)
        .send()
        .await
        .expect("download")
        .status();
    let upload = |name: &'static str, data: Vec<u8>| {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(data).file_name(name),
        );
        server
            .client
            .post(format!("{}/api/backups/upload", server.base))
            .header("Authorization", &server.token)
            .multipart(form)
            .send()
    };
    let copied = upload("copy.zip", bytes.to_vec())
        .await
        .expect("upload")
        .status();
    let garbage = upload("junk.zip", b"not a zip".to_vec())
        .await
        .expect("upload")
        .status();
    let bad_name = upload("Bad Name.zip", bytes.to_vec())
        .await
        .expect("upload")
        .status();
    let taken = upload("copy.zip", bytes.to_vec()).await.expect("upload");
    let (taken_status, taken): (u16, Value) = status_json(taken).await;
    assert_eq!(taken_status, 400, "{taken}");
    assert_eq!(
        taken["data"]["file"]["message"], "Backup file with the specified name already exists.",
        "PocketBase's key and words: {taken}"
    );
    let (_, listed) = server.call(Method::GET, "/api/backups", None).await;
    let keys: Vec<&str> = listed
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|b| b["key"].as_str())
        .collect();

    assert_eq!(created, 204);
    assert_eq!(download_status, 200);
    assert!(bytes.starts_with(b"PK"), "a zip archive");
    assert_eq!(
        header_only, 403,
        "an Authorization header is not a file token"
    );
    assert_eq!(copied, 204);
    assert_eq!(garbage, 400);
    assert_eq!(bad_name, 400);
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["copy.zip", "orig.zip"],
        "refused uploads store nothing"
    );
    assert_eq!(
        place.keys(),
        ["copy.zip", "orig.zip"],
        "the store holds exactly the listed archives"
    );
}

#[tokio::test]
async fn the_scheduled_backup_keeps_the_newest_cron_max_keep() {
    let tmp = crate::helpers::DataDir::new();
    let server = start(tmp.path()).await;
    cron_prune_case(&server, &Place::Local(tmp.path())).await;
}

/// Runs the automatic backup job four times with `cronMaxKeep: 2`: the two
/// newest automatic archives stay, a manual one is never pruned.
pub async fn cron_prune_case(server: &Server, place: &Place<'_>) {
    let (status, body) = server
        .call(
            Method::PATCH,
            "/api/settings",
            Some(json!({"backups": {"cron": "0 3 * * *", "cronMaxKeep": 2}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (created, _) = server
        .call(
            Method::POST,
            "/api/backups",
            Some(json!({"name": "manual.zip"})),
        )
        .await;
    assert_eq!(created, 204);
    let mut made = Vec::new();
    for _ in 0..4 {
        let (run, body) = server
            .call(Method::POST, "/api/crons/__pbAutoBackup__", None)
            .await;
        assert_eq!(run, 204, "{body}");
        let (_, listed) = server.call(Method::GET, "/api/backups", None).await;
        // The newest automatic one (S3 times are whole seconds: the manual
        // archive may tie with the first run).
        let newest = listed
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|b| b["key"].as_str())
            .find(|k| k.starts_with("auto_"));
        made.push(newest.unwrap_or_default().to_owned());
        // Names carry the time to the second.
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let (_, listed) = server.call(Method::GET, "/api/backups", None).await;
    let mut keys: Vec<String> = listed
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|b| b["key"].as_str().map(str::to_owned))
        .collect();
    keys.sort();
    let mut want = vec![made[2].clone(), made[3].clone(), "manual.zip".to_owned()];
    want.sort();
    assert!(
        made.iter().all(|k| k.starts_with("auto_pb_backup_")),
        "{made:?}"
    );
    assert_eq!(
        keys, want,
        "the two newest automatic ones and the manual one"
    );
    assert_eq!(place.keys(), want, "pruned in the store itself");
}

#[tokio::test]
async fn created_backups_are_named_and_refused_in_pocketbases_words() {
    let tmp = crate::helpers::DataDir::new();
    let server = start(tmp.path()).await;
    let (status, body) = server
        .call(
            Method::PATCH,
            "/api/settings",
            Some(json!({"meta": {"appName": "My Shop"}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = server
        .call(Method::POST, "/api/backups", Some(json!({})))
        .await;
    assert_eq!(status, 204, "no name: a fresh one {body}");
    let (_, listed) = server.call(Method::GET, "/api/backups", None).await;
    let key = listed[0]["key"].as_str().unwrap_or_default().to_owned();
    assert!(
        key.starts_with("pb_backup_my_shop_") && key.ends_with(".zip"),
        "PocketBase's name: the app name in snake case, then the time: {key}"
    );

    for (body, status, message, why) in [
        (
            json!({"name": "Bad Name.zip"}),
            400,
            json!("Must be in a valid format."),
            "an invalid name",
        ),
        (
            json!({"name": key}),
            400,
            json!("The backup file name is invalid or already exists."),
            "a taken name",
        ),
    ] {
        let (got, answer) = server.call(Method::POST, "/api/backups", Some(body)).await;
        assert_eq!(got, status, "{why}: {answer}");
        assert_eq!(
            answer["data"]["name"]["message"], message,
            "{why}: {answer}"
        );
    }
    let (got, answer) = server
        .call(Method::POST, "/api/backups", Some(json!({"name": 5})))
        .await;
    assert_eq!(got, 400, "{answer}");
    assert_eq!(
        answer,
        json!({"status": 400, "message": "An error occurred while loading the submitted data.", "data": {}}),
        "a number does not bind as a name"
    );
    let (_, listed) = server.call(Method::GET, "/api/backups", None).await;
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(1),
        "refusals store nothing"
    );
}
