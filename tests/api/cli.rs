//! The real binary's PocketBase-parity commands and flags: `superuser
//! create|update|upsert|delete|otp` with PocketBase's messages, and
//! `serve --origins`, `--dev`, `--publicDir`, `--indexFallback`.

use crate::helpers::{spawn_app_in, status_json};
use reqwest::Method;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

const EMAIL: &str = "ops@example.com";

fn ferrobase(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrobase"))
        .args(args)
        .arg("--dir")
        .arg(dir)
        .output()
        .expect("ferrobase runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn superuser_commands_create_update_and_delete_as_pocketbases_do() {
    let tmp = crate::helpers::DataDir::new();
    let dir = tmp.path();

    let created = ferrobase(dir, &["superuser", "create", EMAIL, "first-pass-1"]);
    let again = ferrobase(dir, &["superuser", "create", EMAIL, "other-pass-1"]);
    let updated = ferrobase(dir, &["superuser", "update", EMAIL, "second-pass-2"]);
    let update_missing = ferrobase(
        dir,
        &["superuser", "update", "nobody@example.com", "x-pass-123"],
    );
    let short = ferrobase(dir, &["superuser", "create", "b@example.com", "short"]);
    let bad_email = ferrobase(
        dir,
        &["superuser", "create", "not-an-email", "long-enough-1"],
    );
    let delete_missing = ferrobase(dir, &["superuser", "delete", "nobody@example.com"]);
    let upserted = ferrobase(
        dir,
        &["superuser", "upsert", "second@example.com", "third-pass-3"],
    );

    assert!(created.status.success(), "{}", stderr(&created));
    assert_eq!(
        stdout(&created).trim(),
        format!("Successfully created new superuser {EMAIL:?}!")
    );
    assert!(!again.status.success(), "create refuses an existing email");
    assert!(updated.status.success(), "{}", stderr(&updated));
    assert_eq!(
        stdout(&updated).trim(),
        format!("Successfully changed superuser {EMAIL:?} password!")
    );
    assert!(
        !update_missing.status.success(),
        "update needs an existing superuser"
    );
    assert!(
        stderr(&update_missing)
            .contains("superuser with email \"nobody@example.com\" doesn't exist"),
        "{}",
        stderr(&update_missing)
    );
    assert!(!short.status.success(), "password under 8 characters");
    assert!(!bad_email.status.success(), "not an email");
    assert!(
        delete_missing.status.success(),
        "PocketBase: deleting a missing one is done"
    );
    assert!(stdout(&delete_missing).contains("is missing or already deleted"));
    assert!(upserted.status.success(), "{}", stderr(&upserted));

    let deleted = ferrobase(dir, &["superuser", "delete", "second@example.com"]);
    assert!(deleted.status.success(), "{}", stderr(&deleted));
    let app = spawn_app_in(dir).await;
    let client = reqwest::Client::new();
    for (email, password, expected, why) in [
        (EMAIL, "second-pass-2", 200, "the updated password"),
        (EMAIL, "first-pass-1", 400, "the old password is gone"),
        (
            EMAIL,
            "other-pass-1",
            400,
            "the refused create changed nothing",
        ),
        ("second@example.com", "third-pass-3", 400, "deleted"),
        ("b@example.com", "short", 400, "never created"),
    ] {
        let response = client
            .post(format!(
                "{}/api/collections/_superusers/auth-with-password",
                app.base
            ))
            .json(&json!({"identity": email, "password": password}))
            .send()
            .await
            .expect("login");
        assert_eq!(response.status(), expected, "{why}");
    }
}

#[tokio::test]
async fn superuser_otp_issues_a_code_that_logs_in_once_otp_is_enabled() {
    let tmp = crate::helpers::DataDir::new();
    let dir = tmp.path();
    let app = spawn_app_in(dir).await;
    let email = crate::helpers::SU_EMAIL;

    let disabled = ferrobase(dir, &["superuser", "otp", email]);
    // The collections API does not offer OTP on _superusers (yet), so it is
    // switched on through the SQL console.
    let (status, body) = status_json(
        app.su(
            Method::POST,
            "/api/sql",
            Some(json!({"query": "update _collections set options = \
                json_set(options, '$.otp.enabled', json('true'), '$.otp.duration', 180) \
                where name = '_superusers'"})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["affectedRows"], 1, "{body}");
    let missing = ferrobase(dir, &["superuser", "otp", "nobody@example.com"]);
    let issued = ferrobase(dir, &["superuser", "otp", email]);

    assert!(!disabled.status.success(), "refused while OTP is off");
    assert!(
        stderr(&disabled).contains("OTP auth is not enabled for the _superusers collection"),
        "{}",
        stderr(&disabled)
    );
    assert!(!missing.status.success());
    assert!(issued.status.success(), "{}", stderr(&issued));
    let out = stdout(&issued);
    let field = |label: &str| {
        out.lines()
            .find_map(|l| l.split_once(label).map(|(_, v)| v.trim().to_owned()))
            .unwrap_or_else(|| panic!("{label} in {out}"))
    };
    let (otp_id, pass, valid) = (field("Id:"), field("Pass:"), field("Valid:"));
    assert!(
        out.starts_with(&format!(
            "Successfully created OTP for superuser {email:?}:"
        )),
        "{out}"
    );
    assert!(valid.ends_with('s'), "{out}");
    let (status, login) = status_json(
        app.request(
            Method::POST,
            "/api/collections/_superusers/auth-with-otp",
            None,
            Some(json!({"otpId": otp_id, "password": pass})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "the printed code logs in: {login}");
    assert!(login["token"].is_string(), "{login}");
}

/// `ferrobase serve` on a free port; stderr goes to a file (a pipe nobody
/// drains would block a chatty `--dev` server).
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path, extra: &[&str], log: &Path) -> Server {
    let upsert = ferrobase(dir, &["superuser", "upsert", EMAIL, "first-pass-1"]);
    assert!(upsert.status.success(), "{}", stderr(&upsert));
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrobase"))
        .args(["serve", "--http", "127.0.0.1:0", "--dir"])
        .arg(dir)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("log file"))
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
    Server { child, base }
}

async fn allowed_origin(base: &str, origin: &str) -> Option<String> {
    let response = reqwest::Client::new()
        .get(format!("{base}/api/health"))
        .header("Origin", origin)
        .send()
        .await
        .expect("request");
    response
        .headers()
        .get("access-control-allow-origin")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[tokio::test]
async fn serve_origins_limits_cors_to_the_listed_origins() {
    let tmp = crate::helpers::DataDir::new();
    let log = tmp.path().join("stderr.log");
    let data = tmp.path().join("data");
    let server = serve(
        &data,
        &["--origins", "https://a.example, https://b.example"],
        &log,
    );

    for (origin, expected, why) in [
        (
            "https://a.example",
            Some("https://a.example"),
            "first listed",
        ),
        (
            "https://b.example",
            Some("https://b.example"),
            "second listed, after a space",
        ),
        ("https://evil.example", None, "not listed"),
    ] {
        assert_eq!(
            allowed_origin(&server.base, origin).await.as_deref(),
            expected,
            "{why}"
        );
    }
    let default = serve(
        &tmp.path().join("other"),
        &[],
        &tmp.path().join("other.log"),
    );
    assert!(
        allowed_origin(&default.base, "https://evil.example")
            .await
            .is_some(),
        "without --origins every origin is allowed (PocketBase's *)"
    );
}

#[tokio::test]
async fn serve_refuses_an_empty_origin() {
    let tmp = crate::helpers::DataDir::new();

    let out = ferrobase(
        tmp.path(),
        &[
            "serve",
            "--http",
            "127.0.0.1:0",
            "--origins",
            "https://a.example,,",
        ],
    );

    assert!(!out.status.success(), "an empty entry is a config error");
    assert!(stderr(&out).contains("cors_origins"), "{}", stderr(&out));
}

#[tokio::test]
async fn dev_mode_logs_sql_and_requests_but_no_bound_values() {
    let tmp = crate::helpers::DataDir::new();
    let log = tmp.path().join("stderr.log");
    let server = serve(&tmp.path().join("data"), &["--dev"], &log);
    let secret = "first-pass-1";

    let login: Value = reqwest::Client::new()
        .post(format!(
            "{}/api/collections/_superusers/auth-with-password",
            server.base
        ))
        .json(&json!({"identity": EMAIL, "password": secret}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    assert!(login["token"].is_string(), "{login}");
    drop(server);
    let logged = std::fs::read_to_string(&log).expect("log");

    assert!(
        logged.contains("ferrobase::sql"),
        "statements are logged: {logged}"
    );
    assert!(logged.contains("SELECT"), "statement text: {logged}");
    assert!(
        logged.contains("auth-with-password"),
        "requests are logged: {logged}"
    );
    assert!(!logged.contains(secret), "no password in the log");
    assert!(!logged.contains(EMAIL), "no bound values in the log");
}

#[tokio::test]
async fn serve_public_dir_and_index_fallback_flags_choose_the_static_files() {
    let tmp = crate::helpers::DataDir::new();
    let site = tmp.path().join("site");
    std::fs::create_dir_all(&site).expect("mkdir");
    std::fs::write(site.join("index.html"), "flag site").expect("write");
    let site_arg = format!("--publicDir={}", site.display());
    let with = serve(
        &tmp.path().join("a"),
        &[&site_arg],
        &tmp.path().join("a.log"),
    );
    let without = serve(
        &tmp.path().join("b"),
        &[&site_arg, "--indexFallback=false"],
        &tmp.path().join("b.log"),
    );
    let client = reqwest::Client::new();

    let root = client
        .get(format!("{}/", with.base))
        .send()
        .await
        .expect("root");
    let spa = client
        .get(format!("{}/deep/route", with.base))
        .send()
        .await
        .expect("spa");
    let no_spa = client
        .get(format!("{}/deep/route", without.base))
        .send()
        .await
        .expect("404");

    assert_eq!(root.text().await.expect("body"), "flag site");
    assert_eq!(
        spa.text().await.expect("body"),
        "flag site",
        "fallback on by default"
    );
    assert_eq!(no_spa.status(), 404, "--indexFallback=false");
}

#[tokio::test]
async fn superuser_ips_sets_and_clears_the_allow_list() {
    let tmp = crate::helpers::DataDir::new();
    let dir = tmp.path();

    let set = ferrobase(dir, &["superuser", "ips", "127.0.0.1", "10.0.0.0/24"]);
    let bad = ferrobase(dir, &["superuser", "ips", "127.0.0.1", "not-an-ip"]);
    let app = spawn_app_in(dir).await;
    let (status, settings) = status_json(app.su(Method::GET, "/api/settings", None).await).await;

    assert!(set.status.success(), "{}", stderr(&set));
    assert_eq!(
        stdout(&set),
        "Successfully updated SuperuserIPs setting:\n├─ 127.0.0.1\n└─ 10.0.0.0/24\n"
    );
    assert!(!bad.status.success(), "an invalid entry is refused");
    assert_eq!(status, 200, "{settings}");
    assert_eq!(
        settings["superuserIPs"],
        json!(["127.0.0.1", "10.0.0.0/24"]),
        "the refused list changed nothing"
    );
    let cleared = ferrobase(dir, &["superuser", "ips"]);
    assert!(cleared.status.success(), "{}", stderr(&cleared));
    assert_eq!(
        stdout(&cleared).trim(),
        "Successfully cleared SuperuserIPs setting!"
    );
}

/// What `GET /api/version-probe` answers (the route the watched hook file
/// defines), or `None` while the server does not answer it.
async fn probe(base: &str) -> Option<String> {
    let response = reqwest::Client::new()
        .get(format!("{base}/api/version-probe"))
        .timeout(std::time::Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    response.status().is_success().then_some(())?;
    response.text().await.ok()
}

/// Polls the probe until it answers `want` (at most 15 s).
async fn probe_until(base: &str, want: &str) -> Option<String> {
    let mut last = None;
    for _ in 0..60 {
        last = probe(base).await;
        if last.as_deref() == Some(want) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    last
}

fn write_probe(hooks: &Path, body: &str) {
    // A new size each time, so a change inside one mtime tick is still seen.
    std::fs::write(hooks.join("probe.pb.js"), body).expect("hook file");
}

fn probe_route(version: &str) -> String {
    format!("routerAdd(\"GET\", \"/api/version-probe\", (e) => e.string(200, \"{version}\"))\n")
}

#[tokio::test]
async fn hooks_watch_reloads_changed_files_and_keeps_serving_through_a_broken_one() {
    let tmp = crate::helpers::DataDir::new();
    let data = tmp.path().join("pb_data");
    let hooks = tmp.path().join("pb_hooks");
    std::fs::create_dir_all(&hooks).expect("hooks dir");
    write_probe(&hooks, &probe_route("v1"));
    let log = tmp.path().join("stderr.log");
    let server = serve(&data, &[], &log);
    assert_eq!(probe(&server.base).await.as_deref(), Some("v1"));
    let types = std::fs::read_to_string(data.join("types.d.ts")).unwrap_or_default();
    assert!(
        types.contains("declare function routerAdd("),
        "pb_data/types.d.ts is written for editors, as PocketBase does"
    );

    write_probe(&hooks, &probe_route("v2-changed"));
    assert_eq!(
        probe_until(&server.base, "v2-changed").await.as_deref(),
        Some("v2-changed"),
        "a changed file is picked up without a manual restart"
    );

    write_probe(
        &hooks,
        "routerAdd(\"GET\", \"/api/version-probe\", (e) => {{{ broken",
    );
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(
        probe(&server.base).await.as_deref(),
        Some("v2-changed"),
        "a file that does not load keeps the running hooks (and the server up)"
    );
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        logged.contains("probe.pb.js") && logged.contains("do not load"),
        "the error names the file: {logged}"
    );

    write_probe(&hooks, &probe_route("v3-fixed-again"));
    assert_eq!(
        probe_until(&server.base, "v3-fixed-again").await.as_deref(),
        Some("v3-fixed-again"),
        "fixing the file reloads again"
    );
}

#[tokio::test]
async fn hooks_watch_false_keeps_the_files_loaded_at_start() {
    let tmp = crate::helpers::DataDir::new();
    let data = tmp.path().join("pb_data");
    let hooks = tmp.path().join("pb_hooks");
    std::fs::create_dir_all(&hooks).expect("hooks dir");
    write_probe(&hooks, &probe_route("start"));
    let log = tmp.path().join("stderr.log");
    let server = serve(&data, &["--hooksWatch=false", "--hooksPool=1"], &log);
    assert_eq!(probe(&server.base).await.as_deref(), Some("start"));

    write_probe(&hooks, &probe_route("changed-later"));
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(probe(&server.base).await.as_deref(), Some("start"));
}
