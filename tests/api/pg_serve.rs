//! `ferrobase serve --db postgres://…`: the real binary on a random port,
//! each test in a fresh database of the throwaway PostgreSQL of the test
//! command (`PG_TEST_URL`; skipped without it, a failure under `CI`). One
//! scenario (sign-up, owner rules, list, batch, files, realtime, logs,
//! settings, attacks) runs against SQLite and PostgreSQL and must answer the
//! same statuses; then what only PostgreSQL has: its refusals at start,
//! JavaScript migrations applied at the start and by `migrate up` beside a
//! running server, its metrics, and acknowledged creates surviving a `kill -9`.

use crate::helpers::DataDir;
use crate::pg_cli::{Database, pg_url};
use reqwest::Method;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub(crate) const EMAIL: &str = "root@example.com";
pub(crate) const PASSWORD: &str = "root-pass-123";
/// How long a test waits for an event or a log entry that should come.
pub(crate) const WAIT: Duration = Duration::from_secs(8);

/// A running `ferrobase serve`, killed (SIGKILL) when dropped.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
    pub(crate) client: reqwest::Client,
    pub(crate) token: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ferrobase ARGS --dir DIR [--db URL]`, waiting for it.
fn ferrobase(dir: &Path, db: Option<&str>, args: &[&str]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferrobase"));
    command
        .env_remove("FERROBASE_DATABASE_URL")
        .args(args)
        .arg("--dir")
        .arg(dir);
    if let Some(url) = db {
        command.args(["--db", url]);
    }
    command.output().expect("ferrobase runs")
}

/// Upserts the superuser, starts `serve` and logs in.
pub(crate) async fn serve(dir: &Path, db: Option<&str>) -> Server {
    let upsert = ferrobase(dir, db, &["superuser", "upsert", EMAIL, PASSWORD]);
    assert!(
        upsert.status.success(),
        "{}",
        String::from_utf8_lossy(&upsert.stderr)
    );
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferrobase"));
    command
        .env_remove("FERROBASE_DATABASE_URL")
        .args(["serve", "--http", "127.0.0.1:0", "--dir"])
        .arg(dir);
    if let Some(url) = db {
        command.args(["--db", url]);
    }
    let mut child = command
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
    let client = reqwest::Client::new();
    let mut server = Server {
        child,
        base,
        client,
        token: String::new(),
    };
    server.token = server.login("_superusers", EMAIL, PASSWORD).await;
    server
}

impl Server {
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header("Authorization", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        crate::helpers::status_json(req.send().await.expect("request")).await
    }

    pub(crate) async fn su(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call(method, path, Some(&self.token), body).await
    }

    pub(crate) async fn login(&self, collection: &str, identity: &str, password: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                &format!("/api/collections/{collection}/auth-with-password"),
                None,
                Some(json!({"identity": identity, "password": password})),
            )
            .await;
        assert_eq!(status, 200, "login {identity}: {body}");
        body["token"].as_str().expect("token").to_owned()
    }

    /// Creates a post with a file, as `token`.
    async fn upload_post(&self, token: &str, owner: &str, title: &str) -> (u16, Value) {
        let form = reqwest::multipart::Form::new()
            .text("title", title.to_owned())
            .text("owner", owner.to_owned())
            .part(
                "doc",
                reqwest::multipart::Part::bytes(b"hello from postgres".to_vec())
                    .file_name("note.txt")
                    .mime_str("text/plain")
                    .expect("mime"),
            );
        let resp = self
            .client
            .post(format!("{}/api/collections/posts/records", self.base))
            .header("Authorization", token)
            .multipart(form)
            .send()
            .await
            .expect("upload");
        crate::helpers::status_json(resp).await
    }
}

/// A realtime stream on one node.
pub(crate) struct Stream {
    response: reqwest::Response,
    buffer: String,
    pub(crate) client_id: String,
}

impl Stream {
    pub(crate) async fn open(server: &Server) -> Stream {
        let response = server
            .client
            .get(format!("{}/api/realtime", server.base))
            .send()
            .await
            .expect("realtime");
        assert_eq!(response.status(), 200);
        let mut stream = Stream {
            response,
            buffer: String::new(),
            client_id: String::new(),
        };
        let (name, data) = stream.next(WAIT).await.expect("PB_CONNECT");
        assert_eq!(name, "PB_CONNECT");
        stream.client_id = data["clientId"].as_str().expect("clientId").to_owned();
        stream
    }

    /// Subscribes to `topics`, as `token` (a guest without).
    pub(crate) async fn subscribe(&self, server: &Server, token: Option<&str>, topics: &[&str]) {
        let body = json!({"clientId": self.client_id, "subscriptions": topics});
        let (status, answer) = server
            .call(Method::POST, "/api/realtime", token, Some(body))
            .await;
        assert_eq!(status, 204, "{answer}");
    }

    /// The next (event, data) within `wait`; `None` on timeout or when the
    /// server ended the stream.
    pub(crate) async fn next(&mut self, wait: Duration) -> Option<(String, Value)> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let raw: String = self.buffer.drain(..end + 2).collect();
                let (mut name, mut data) = (String::new(), Value::Null);
                for line in raw.lines() {
                    if let Some(n) = line.strip_prefix("event:") {
                        name = n.to_owned();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data = serde_json::from_str(d).unwrap_or(Value::Null);
                    }
                }
                return Some((name, data));
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?
                .ok()??;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Record ids of the `topic` events that arrive within `wait` of each other.
    pub(crate) async fn ids(&mut self, topic: &str, wait: Duration) -> Vec<String> {
        let mut ids = Vec::new();
        while let Some((name, data)) = self.next(wait).await {
            if name == topic {
                ids.push(data["record"]["id"].as_str().unwrap_or_default().to_owned());
            }
        }
        ids
    }

    /// Whether the server ends the stream within `wait`.
    pub(crate) async fn ends_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Err(_) => return false,
                Ok(Ok(Some(_))) => continue,
                Ok(_) => return true,
            }
        }
    }
}

/// Signs `name` up on `server` (users need no verification to log in here).
pub(crate) async fn sign_up(server: &Server, name: &str) -> (String, String) {
    let (status, body) = server
        .call(
            Method::POST,
            "/api/collections/users/records",
            None,
            Some(json!({"email": format!("{name}@example.com"),
                "password": "secret-pass-1", "passwordConfirm": "secret-pass-1"})),
        )
        .await;
    assert_eq!(status, 200, "sign-up {name}: {body}");
    let id = body["id"].as_str().expect("id").to_owned();
    let token = server
        .login("users", &format!("{name}@example.com"), "secret-pass-1")
        .await;
    (id, token)
}

/// The scenario, run on one engine: every step's name and status (and
/// whatever must hold on either engine is asserted on the way).
async fn scenario(server: &Server) -> Vec<(&'static str, u16)> {
    let mut seen = Vec::new();
    let (s, body) = server.su(Method::GET, "/api/health", None).await;
    assert_eq!(s, 200, "{body}");
    let owner_only = "owner = @request.auth.id";
    let (s, posts) = server
        .su(
            Method::POST,
            "/api/collections",
            Some(json!({"name": "posts", "type": "base",
                "listRule": owner_only, "viewRule": owner_only,
                "createRule": "@request.auth.id != '' && owner = @request.auth.id",
                "updateRule": owner_only, "deleteRule": owner_only,
                "fields": [
                    {"name": "title", "type": "text", "required": true},
                    {"name": "owner", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1},
                    {"name": "doc", "type": "file", "maxSelect": 1, "maxSize": 1000},
                    {"name": "created", "type": "autodate", "onCreate": true}
                ]})),
        )
        .await;
    assert_eq!(s, 200, "{posts}");
    let (s, body) = server
        .su(
            Method::POST,
            "/api/collections",
            Some(json!({"name": "members", "type": "auth", "createRule": "",
                "fields": [{"name": "nick", "type": "text"}]})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    seen.push(("create auth collection", s));

    // Sign-up and password login.
    let mut users = Vec::new();
    for name in ["alice", "bob"] {
        users.push(sign_up(server, name).await);
    }
    let [(alice, alice_t), (bob, bob_t)] = [users[0].clone(), users[1].clone()];

    // Realtime: alice and bob listen to posts before alice writes.
    let mut alice_sse = Stream::open(server).await;
    alice_sse
        .subscribe(server, Some(&alice_t), &["posts"])
        .await;
    let mut bob_sse = Stream::open(server).await;
    bob_sse.subscribe(server, Some(&bob_t), &["posts"]).await;

    let (s, post) = server.upload_post(&alice_t, &alice, "hello world").await;
    assert_eq!(s, 200, "{post}");
    let id = post["id"].as_str().expect("id").to_owned();
    let file = post["doc"].as_str().expect("stored file name").to_owned();
    let got = alice_sse.next(WAIT).await;
    let (event, data) = got.expect("alice's create event");
    assert_eq!(event, "posts");
    assert_eq!(data["action"], "create");
    assert_eq!(data["record"]["id"], id.as_str());
    assert!(
        bob_sse.next(Duration::from_millis(500)).await.is_none(),
        "bob must not receive alice's private post"
    );

    let record = format!("/api/collections/posts/records/{id}");
    for (step, token) in [
        ("owner views", Some(alice_t.as_str())),
        ("other user views", Some(bob_t.as_str())),
        ("guest views", None),
    ] {
        seen.push((step, server.call(Method::GET, &record, token, None).await.0));
    }
    let (s, body) = server
        .call(
            Method::PATCH,
            &record,
            Some(&bob_t),
            Some(json!({"title": "bob was here"})),
        )
        .await;
    seen.push(("other user updates", s));
    assert_ne!(s, 200, "{body}");
    seen.push((
        "other user deletes",
        server
            .call(Method::DELETE, &record, Some(&bob_t), None)
            .await
            .0,
    ));
    seen.push((
        "guest updates",
        server
            .call(
                Method::PATCH,
                &record,
                None,
                Some(json!({"title": "guest"})),
            )
            .await
            .0,
    ));
    let (s, body) = server
        .call(
            Method::POST,
            "/api/collections/posts/records",
            None,
            Some(json!({"title": "guest post", "owner": alice})),
        )
        .await;
    seen.push(("guest creates", s));
    assert_eq!(s, 400, "{body}");
    let (s, body) = server
        .call(
            Method::POST,
            "/api/collections/posts/records",
            Some(&bob_t),
            Some(json!({"title": "as alice", "owner": alice})),
        )
        .await;
    seen.push(("other user creates for the owner", s));
    assert_eq!(s, 400, "{body}");
    let (s, body) = server
        .call(
            Method::PATCH,
            &record,
            Some(&alice_t),
            Some(json!({"title": "hello again"})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["title"], "hello again");
    seen.push(("owner updates", s));

    // Attacks: a forged token is a guest at best; a malformed filter a 400.
    let forged = format!("{}x", &alice_t[..alice_t.len() - 1]);
    let (s, body) = server.call(Method::GET, &record, Some(&forged), None).await;
    seen.push(("forged token views", s));
    assert_eq!(s, 404, "{body}");
    let (s, _) = server
        .call(
            Method::POST,
            "/api/collections/users/auth-refresh",
            Some(&forged),
            None,
        )
        .await;
    seen.push(("forged token refreshes", s));
    assert_eq!(s, 401);
    for (filter, why) in [
        ("(((", "unbalanced"),
        ("title ~", "missing operand"),
        ("nope = 1", "unknown field"),
        ("title = 'x' || 1=1 --", "comment marker"),
    ] {
        let (s, body) = server
            .call(
                Method::GET,
                &format!(
                    "/api/collections/posts/records?filter={}",
                    urlencode(filter)
                ),
                Some(&alice_t),
                None,
            )
            .await;
        assert_eq!(s, 400, "filter {filter:?} ({why}): {body}");
    }
    seen.push(("malformed filters", 400));

    // List with filter, sort and expand.
    let (s, _) = server.upload_post(&alice_t, &alice, "second").await;
    assert_eq!(s, 200);
    let (s, _) = server.upload_post(&bob_t, &bob, "bob's").await;
    assert_eq!(s, 200);
    let (s, list) = server
        .call(
            Method::GET,
            "/api/collections/posts/records?filter=title~'e'&sort=-title&expand=owner",
            Some(&alice_t),
            None,
        )
        .await;
    assert_eq!(s, 200, "{list}");
    let titles: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|r| r["title"].as_str())
        .collect();
    assert_eq!(titles, ["second", "hello again"], "{list}");
    assert_eq!(list["items"][0]["expand"]["owner"]["id"], alice.as_str());

    // File download.
    let resp = server
        .client
        .get(format!("{}/api/files/posts/{id}/{file}", server.base))
        .send()
        .await
        .expect("download");
    seen.push(("file download", resp.status().as_u16()));
    assert_eq!(
        resp.bytes().await.expect("bytes").as_ref(),
        b"hello from postgres"
    );

    // Settings patch, then a batch.
    let (s, body) = server
        .su(
            Method::PATCH,
            "/api/settings",
            Some(json!({"batch": {"enabled": true}})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["batch"]["enabled"], true);
    let (s, body) = server
        .call(
            Method::POST,
            "/api/batch",
            Some(&alice_t),
            Some(json!({"requests": [
                {"method": "POST", "url": "/api/collections/posts/records", "body": {"title": "b1", "owner": alice}},
                {"method": "PATCH", "url": format!("/api/collections/posts/records/{id}"), "body": {"title": "batched"}}
            ]})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    seen.push(("batch", s));
    let (s, body) = server
        .call(
            Method::POST,
            "/api/batch",
            Some(&alice_t),
            Some(json!({"requests": [
                {"method": "POST", "url": "/api/collections/posts/records", "body": {"title": "b2", "owner": alice}},
                {"method": "DELETE", "url": format!("/api/collections/posts/records/{id}x")}
            ]})),
        )
        .await;
    seen.push(("failing batch", s));
    assert_eq!(s, 400, "{body}");
    let (_, list) = server
        .call(
            Method::GET,
            "/api/collections/posts/records?filter=title='b2'",
            Some(&alice_t),
            None,
        )
        .await;
    assert_eq!(
        list["totalItems"], 0,
        "a failed batch writes nothing: {list}"
    );

    // Request logs land in the same database.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (s, logs) = server.su(Method::GET, "/api/logs?perPage=1", None).await;
        assert_eq!(s, 200, "{logs}");
        if logs["totalItems"].as_i64().unwrap_or(0) > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no request log arrived"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    seen.push((
        "owner deletes",
        server
            .call(Method::DELETE, &record, Some(&alice_t), None)
            .await
            .0,
    ));
    seen
}

/// A runtime for the HTTP side: the PostgreSQL client of [`Database`] is
/// blocking, so the tests are plain `#[test]`s that use it outside.
pub(crate) fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[test]
fn serve_on_postgres_answers_the_scenario_as_sqlite_does() {
    let Some(base) = pg_url() else { return };
    let db = Database::create(&base);
    let (sqlite_dir, pg_dir) = (DataDir::new(), DataDir::new());
    let url = db.url();

    let (on_sqlite, on_postgres) = rt().block_on(async {
        let on_sqlite = scenario(&serve(sqlite_dir.path(), None).await).await;
        let on_postgres = scenario(&serve(pg_dir.path(), Some(&url)).await).await;
        (on_sqlite, on_postgres)
    });

    assert_eq!(on_postgres, on_sqlite);
    assert!(
        on_postgres.contains(&("other user views", 404)),
        "{on_postgres:?}"
    );
    assert!(
        db.count("SELECT count(*) FROM _logs") > 0,
        "request logs in PostgreSQL"
    );
    assert!(
        !pg_dir.path().join("data.db").exists(),
        "nothing was served from a SQLite file"
    );
}

#[test]
fn sqlite_only_endpoints_answer_400_and_metrics_show_the_pool() {
    let Some(base) = pg_url() else { return };
    let db = Database::create(&base);
    let dir = DataDir::new();
    let url = db.url();
    rt().block_on(sqlite_only_endpoints(dir.path(), &url));
}

async fn sqlite_only_endpoints(dir: &Path, url: &str) {
    let server = serve(dir, Some(url)).await;
    server
        .su(
            Method::POST,
            "/api/collections",
            Some(json!({"name": "nums", "type": "base", "fields": [{"name": "n", "type": "number"}]})),
        )
        .await;

    for (method, path, body, expected) in [
        (Method::GET, "/api/backups", None, "pg_dump"),
        (Method::POST, "/api/backups", Some(json!({})), "pg_dump"),
        (Method::POST, "/api/backups/x.zip/restore", None, "pg_dump"),
        (
            Method::POST,
            "/api/sql",
            Some(json!({"query": "delete from nums"})),
            "read-only on PostgreSQL",
        ),
    ] {
        let (status, answer) = server.su(method, path, body).await;
        assert_eq!(status, 400, "{path}: {answer}");
        assert!(
            answer["message"].as_str().unwrap_or("").contains(expected),
            "{path}: {answer}"
        );
    }
    let (status, answer) = server
        .su(
            Method::GET,
            "/api/collections/nums/aggregate?groupBy=n&aggregate=count(),sum(n)",
            None,
        )
        .await;
    assert_eq!(
        (status, answer),
        (200, json!({"items": []})),
        "the aggregate endpoint runs on PostgreSQL"
    );
    let (status, answer) = server
        .su(
            Method::POST,
            "/api/sql",
            Some(json!({"query": "select count(*) from nums"})),
        )
        .await;
    assert_eq!(
        (status, &answer["rows"]),
        (200, &json!([["0"]])),
        "the console reads PostgreSQL: {answer}"
    );
    let metrics = server
        .client
        .get(format!("{}/api/metrics", server.base))
        .header("Authorization", &server.token)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        !metrics.contains("ferrobase_db_file_size_bytes"),
        "no SQLite file metrics on PostgreSQL"
    );
    for name in [
        "ferrobase_db_pg_jobs_total",
        "ferrobase_db_pg_wait_seconds",
        "ferrobase_db_pg_retries_total",
        "ferrobase_db_pg_deadlocks_total",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
    let (status, _) = server.call(Method::GET, "/api/backups", None, None).await;
    assert_eq!(status, 401, "a guest is refused before the engine is named");
}

#[test]
fn serve_runs_pending_js_migrations_and_hooks_and_automigrate_files_but_refuses_replication() {
    let Some(base) = pg_url() else { return };
    let db = Database::create(&base);
    let dir = DataDir::new();
    let root = dir.path().parent().expect("root").to_path_buf();
    let url = db.url();
    rt().block_on(async {
        // Automigrate (on by default) writes a file per change and records it.
        let server = serve(dir.path(), Some(&url)).await;
        let (s, body) = server
            .su(
                Method::POST,
                "/api/collections",
                Some(json!({"name": "notes", "type": "base", "fields": [{"name": "t", "type": "text"}]})),
            )
            .await;
        assert_eq!(s, 200, "{body}");
    });
    let written: Vec<_> = std::fs::read_dir(root.join("pb_migrations"))
        .expect("pb_migrations written")
        .collect();
    assert_eq!(written.len(), 1);
    assert_eq!(
        db.count("SELECT count(*) FROM _migrations WHERE file LIKE '%.js'"),
        1
    );
    // ... so a restart is not refused.
    rt().block_on(async { drop(serve(dir.path(), Some(&url)).await) });

    let out = Command::new(env!("CARGO_BIN_EXE_ferrobase"))
        .env("FERROBASE_REPLICATION_REPLICA", "file:///nowhere")
        .args(["serve", "--http", "127.0.0.1:0", "--db", &url, "--dir"])
        .arg(dir.path())
        .output()
        .expect("ferrobase runs");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("Litestream copies the embedded SQLite files"),
        "{text}"
    );

    // A pending JavaScript migration runs at the start, before the schema
    // is loaded; one applied by `migrate up` while a server runs reaches
    // that server's schema (the version bump and notification at commit).
    let migrations = root.join("pb_migrations");
    std::fs::write(
        migrations.join("1999999998_mine.js"),
        "migrate((app) => { app.save(new Collection({ name: \"mine\", type: \"base\" })) });",
    )
    .expect("write");
    rt().block_on(async {
        let server = serve(dir.path(), Some(&url)).await;
        let (s, body) = server.su(Method::GET, "/api/collections/mine", None).await;
        assert_eq!(s, 200, "applied at the start: {body}");
        std::fs::write(
            migrations.join("1999999999_later.js"),
            "migrate((app) => { app.save(new Collection({ name: \"later\", type: \"base\" })) });",
        )
        .expect("write");
        let url = url.clone();
        let cli_dir = dir.path().to_path_buf();
        let out = tokio::task::spawn_blocking(move || {
            ferrobase(&cli_dir, Some(&url), &["migrate", "up"])
        })
        .await
        .expect("join");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(said.contains("Applied 1999999999_later.js"), "{said}");
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let (s, _) = server.su(Method::GET, "/api/collections/later", None).await;
            if s == 200 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the running server never saw the migrated collection"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    assert_eq!(
        db.count("SELECT count(*) FROM _migrations WHERE file LIKE '1999999%.js'"),
        2
    );

    // JavaScript hooks run on PostgreSQL: a route, and a model hook whose
    // write joins the record's transaction.
    let hooks = root.join("pb_hooks").join("main.pb.js");
    std::fs::create_dir_all(hooks.parent().expect("dir")).expect("mkdir");
    std::fs::write(
        &hooks,
        "routerAdd('GET', '/x', (e) => e.string(200, 'x'));\n\
         onRecordCreate((e) => { e.record.set('t', 'hooked'); e.next(); }, 'notes');",
    )
    .expect("write");
    rt().block_on(async {
        let server = serve(dir.path(), Some(&url)).await;
        let (s, _) = server.call(Method::GET, "/x", None, None).await;
        assert_eq!(s, 200);
        let (s, body) = server
            .su(
                Method::POST,
                "/api/collections/notes/records",
                Some(json!({"t": "plain"})),
            )
            .await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(body["t"], "hooked", "{body}");
    });
    assert_eq!(db.count("SELECT count(*) FROM notes WHERE t = 'hooked'"), 1);
}

#[test]
fn acknowledged_creates_survive_a_kill_9_on_postgres() {
    let Some(base) = pg_url() else { return };
    let db = Database::create(&base);
    let dir = DataDir::new();
    let url = db.url();
    let acked = rt().block_on(create_until_killed(dir.path(), &url));
    assert!(acked.len() > 10, "the writers got going: {}", acked.len());

    let stored = db.count("SELECT count(*) FROM events");
    assert!(stored >= acked.len() as i64, "{stored} < {}", acked.len());
    rt().block_on(async {
        let server = serve(dir.path(), Some(&url)).await;
        for id in acked.iter().step_by(7) {
            let (s, body) = server
                .su(
                    Method::GET,
                    &format!("/api/collections/events/records/{id}"),
                    None,
                )
                .await;
            assert_eq!(s, 200, "acknowledged {id} lost: {body}");
        }
    });
}

/// Four writers create records as fast as they can until the server is
/// killed (SIGKILL) mid-way; the ids it acknowledged.
async fn create_until_killed(dir: &Path, url: &str) -> Vec<String> {
    let server = serve(dir, Some(url)).await;
    let (s, body) = server
        .su(
            Method::POST,
            "/api/collections",
            Some(json!({"name": "events", "type": "base", "fields": [{"name": "n", "type": "number"}]})),
        )
        .await;
    assert_eq!(s, 200, "{body}");

    // Four writers create as fast as they can; the server is killed mid-way.
    let (base_url, token) = (server.base.clone(), server.token.clone());
    let mut writers = Vec::new();
    for w in 0..4 {
        let (base_url, token) = (base_url.clone(), token.clone());
        writers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut acked = Vec::new();
            for i in 0..1000 {
                let sent = client
                    .post(format!("{base_url}/api/collections/events/records"))
                    .header("Authorization", &token)
                    .json(&json!({"n": w * 1000 + i}))
                    .send()
                    .await;
                let Ok(resp) = sent else { break };
                if resp.status() != 200 {
                    break;
                }
                let Ok(body) = resp.json::<Value>().await else {
                    break;
                };
                acked.push(body["id"].as_str().expect("id").to_owned());
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(server); // SIGKILL
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.expect("writer"));
    }
    acked
}
