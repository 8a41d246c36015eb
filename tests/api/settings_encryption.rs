//! `--encryptionEnv VAR` with the real binary: the settings row is stored
//! AES-256-GCM sealed (no secret readable in the database file), a plain
//! row is sealed at the next start, and a missing or wrong key stops the
//! server with a clear message instead of resetting the settings.

use crate::helpers::{SU_EMAIL, SU_PASSWORD};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

const VAR: &str = "FB_TEST_SETTINGS_KEY";
const KEY: &str = "0123456789abcdef0123456789ABCDEF";
const SECRET: &str = "smtp-pass-Zq81";

fn ferrobase(dir: &Path, key: Option<&str>, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrobase"));
    cmd.args(args).arg("--dir").arg(dir).env_remove(VAR);
    if let Some(key) = key {
        cmd.env(VAR, key);
    }
    cmd
}

struct Server(Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `serve` and reads the bound address from its first line.
fn serve(dir: &Path, key: Option<&str>, flags: &[&str]) -> Server {
    let mut args = vec!["serve", "--http", "127.0.0.1:0"];
    args.extend_from_slice(flags);
    let mut child = ferrobase(dir, key, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("banner");
    let base = first
        .trim()
        .strip_prefix("Server started at ")
        .unwrap_or_else(|| panic!("banner: {first:?}"))
        .to_owned();
    Server(child, base)
}

/// Runs `serve` expecting it to refuse to start.
fn serve_fails(dir: &Path, key: Option<&str>, flags: &[&str]) -> Output {
    let mut args = vec!["serve", "--http", "127.0.0.1:0"];
    args.extend_from_slice(flags);
    ferrobase(dir, key, &args).output().expect("runs")
}

async fn su_token(base: &str) -> String {
    let body: Value = reqwest::Client::new()
        .post(format!(
            "{base}/api/collections/_superusers/auth-with-password"
        ))
        .json(&json!({"identity": SU_EMAIL, "password": SU_PASSWORD}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    body["token"].as_str().expect("token").to_owned()
}

async fn settings_call(base: &str, body: Option<Value>) -> Value {
    let client = reqwest::Client::new();
    let token = su_token(base).await;
    let req = match body {
        Some(b) => client.patch(format!("{base}/api/settings")).json(&b),
        None => client.get(format!("{base}/api/settings")),
    };
    let resp = req
        .header("Authorization", token)
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);
    resp.json().await.expect("json")
}

fn stored_row(dir: &Path) -> String {
    let conn = rusqlite::Connection::open(dir.join("data.db")).expect("open");
    conn.query_row("SELECT value FROM _params WHERE id = 'settings'", [], |r| {
        r.get(0)
    })
    .expect("settings row")
}

/// Every byte of the database files (main file and WAL), searched for `needle`.
fn db_files_contain(dir: &Path, needle: &str) -> bool {
    ["data.db", "data.db-wal"].iter().any(|name| {
        std::fs::read(dir.join(name))
            .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
    })
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn encrypted_settings_hide_secrets_on_disk_and_need_the_right_key() {
    let tmp = crate::helpers::DataDir::new();
    let dir = tmp.path();
    let upsert = ferrobase(dir, None, &["superuser", "upsert", SU_EMAIL, SU_PASSWORD])
        .output()
        .expect("runs");
    assert!(upsert.status.success(), "{}", stderr(&upsert));

    // Written without encryption first: the secret is in the file in plain text.
    {
        let plain = serve(dir, None, &[]);
        settings_call(
            &plain.1,
            Some(json!({"smtp": {"password": SECRET}, "meta": {"appName": "Sealed Shop"}})),
        )
        .await;
    }
    assert!(
        stored_row(dir).contains(SECRET),
        "plain before encryption is turned on"
    );

    // Started with the key: the plain row is read and sealed.
    {
        let sealed = serve(dir, Some(KEY), &["--encryptionEnv", VAR]);
        let shown = settings_call(&sealed.1, None).await;
        assert_eq!(
            shown["meta"]["appName"], "Sealed Shop",
            "settings read, not reset"
        );
        settings_call(&sealed.1, Some(json!({"meta": {"senderName": "Ops"}}))).await;
    }
    let row = stored_row(dir);
    assert!(
        serde_json::from_str::<Value>(&row).is_err(),
        "sealed, not JSON: {row}"
    );
    let checkpoint = rusqlite::Connection::open(dir.join("data.db")).expect("open");
    checkpoint
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .expect("checkpoint");
    drop(checkpoint);
    for needle in [SECRET, "Sealed Shop"] {
        assert!(
            !db_files_contain(dir, needle),
            "{needle:?} in the raw database bytes"
        );
    }

    // A missing variable, a wrong or mis-sized key, or no flag: refused, nothing reset.
    let wrong_key = "ffffffffffffffffffffffffffffffff";
    for (key, flags, expected, why) in [
        (
            None,
            &["--encryptionEnv", VAR][..],
            "not set",
            "variable unset",
        ),
        (
            Some(""),
            &["--encryptionEnv", VAR][..],
            "not set",
            "variable empty",
        ),
        (
            Some("short"),
            &["--encryptionEnv", VAR][..],
            "32 bytes",
            "key too short",
        ),
        (
            Some(wrong_key),
            &["--encryptionEnv", VAR][..],
            "cannot be decrypted",
            "wrong key",
        ),
        (
            Some(KEY),
            &[][..],
            "--encryptionEnv",
            "sealed settings without the flag",
        ),
    ] {
        let out = serve_fails(dir, key, flags);
        assert!(!out.status.success(), "{why}: must exit non-zero");
        assert!(stderr(&out).contains(expected), "{why}: {}", stderr(&out));
    }
    assert_eq!(stored_row(dir), row, "failed starts change nothing");

    // The right key still opens them, with every value intact.
    let again = serve(dir, Some(KEY), &["--encryptionEnv", VAR]);
    let shown = settings_call(&again.1, None).await;
    assert_eq!(shown["meta"]["appName"], "Sealed Shop");
    assert_eq!(shown["meta"]["senderName"], "Ops");
    assert!(!shown.to_string().contains(SECRET), "still write-only");
}
