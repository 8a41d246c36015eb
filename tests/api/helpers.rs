//! A running server per test, plus one method per endpoint so tests don't
//! assemble URLs by hand.

use ferrobase::{Application, Config};
use reqwest::{Method, Response};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

pub const SU_EMAIL: &str = "admin@example.com";
pub const SU_PASSWORD: &str = "Passw0rd!123";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub superuser_token: String,
    pub data_dir: PathBuf,
    handle: actix_web::dev::ServerHandle,
    _tmp: Option<tempfile::TempDir>,
    /// The bucket files go to when the app runs on S3 ([`on_s3`]).
    pub s3: Option<S3Bucket>,
    /// The PostgreSQL database of this app ([`TestBackend::Postgres`]).
    _pg: Option<std::sync::Arc<AppDatabase>>,
}

/// A test app's PostgreSQL database, dropped on a thread of its own (the
/// PostgreSQL client blocks, which the test's runtime does not allow).
pub struct AppDatabase(Option<crate::pg_cli::Database>);

impl AppDatabase {
    fn url(&self) -> String {
        self.0.as_ref().map(|db| db.url()).unwrap_or_default()
    }
}

impl Drop for AppDatabase {
    fn drop(&mut self) {
        if let Some(db) = self.0.take() {
            let _ = std::thread::spawn(move || drop(db)).join();
        }
    }
}

/// Which engine the in-process test apps run on: `FB_TEST_BACKEND=postgres`
/// gives each app a fresh database on `PG_TEST_URL`'s server (dropped with
/// the app; an app restarted on the same data dir finds the same one).
/// Only for the in-process apps: the real binary refuses unknown
/// `FERROBASE_*` variables, so modules that start it run on SQLite only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    Sqlite,
    Postgres,
}

impl TestBackend {
    pub fn current() -> Self {
        match std::env::var("FB_TEST_BACKEND").as_deref() {
            Ok("postgres") => TestBackend::Postgres,
            Ok("sqlite") | Err(_) => TestBackend::Sqlite,
            Ok(other) => panic!("FB_TEST_BACKEND={other:?}: use sqlite or postgres"),
        }
    }
}

/// For tests of what only SQLite has (full-text search, backups, the SQL
/// console, hooks' database access…): true (and says why) on PostgreSQL,
/// where the test then returns early.
pub fn sqlite_only(why: &str) -> bool {
    let skip = TestBackend::current() == TestBackend::Postgres;
    if skip {
        eprintln!("skipped on PostgreSQL: {why}");
    }
    skip
}

/// The URL of the PostgreSQL database the apps on `dir` run on under
/// `FB_TEST_BACKEND=postgres` (kept while `dir` exists), for tests that
/// also run the real binary there (`--db`) or read it back; `None` on SQLite.
pub fn database_url_for(dir: &Path) -> Option<String> {
    (TestBackend::current() == TestBackend::Postgres).then(|| pg_database_for(dir, true).url())
}

/// The PostgreSQL database of the app on `dir`: the one an earlier app on
/// the same dir used (restart tests), else a fresh one. With `keep` (a dir
/// the test owns, which may be served again) it stays until a later app
/// finds that dir removed; the last few go with the test command's
/// throwaway server.
fn pg_database_for(dir: &Path, keep: bool) -> std::sync::Arc<AppDatabase> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, Weak};
    /// Databases by data dir; weak, so a finished test's database is dropped,
    /// except those of dirs given with `in_dir` (kept for the restart).
    static BY_DIR: Mutex<Option<HashMap<PathBuf, Weak<AppDatabase>>>> = Mutex::new(None);
    static KEPT: Mutex<Vec<(PathBuf, Arc<AppDatabase>)>> = Mutex::new(Vec::new());
    // A kept database goes once its test removed the dir (its temp dir).
    KEPT.lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|(kept, _)| kept.exists());
    let mut map = BY_DIR.lock().unwrap_or_else(|e| e.into_inner());
    let map = map.get_or_insert_with(HashMap::new);
    if let Some(db) = map.get(dir).and_then(Weak::upgrade) {
        return db;
    }
    let base = std::env::var("PG_TEST_URL")
        .expect("FB_TEST_BACKEND=postgres needs PG_TEST_URL (tests/postgres/throwaway.sh)");
    // The client is blocking: off the test's runtime.
    let db = std::thread::spawn(move || crate::pg_cli::Database::create(&base))
        .join()
        .expect("database created");
    let db = Arc::new(AppDatabase(Some(db)));
    map.insert(dir.to_path_buf(), Arc::downgrade(&db));
    if keep {
        KEPT.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((dir.to_path_buf(), db.clone()));
    }
    db
}

/// A bucket on the shared loopback S3 server.
pub struct S3Bucket {
    pub server: &'static crate::s3_server::S3Server,
    pub name: String,
}

impl S3Bucket {
    /// The `s3` settings that point at this bucket.
    pub fn settings(&self) -> Value {
        json!({"enabled": true, "bucket": self.name, "region": "us-east-1",
               "endpoint": self.server.endpoint, "accessKey": "test", "secret": "test-secret",
               "forcePathStyle": true})
    }
}

thread_local! {
    /// Set by [`on_s3`]: apps spawned on this thread keep files on S3.
    static ON_S3: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Declares, for each named test of the enclosing module's parent, a test
/// that runs it again with files on S3 (see [`on_s3`]).
#[macro_export]
macro_rules! on_s3_tests {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            $crate::helpers::on_s3(super::$name);
        }
    )*};
}

/// Runs a `#[tokio::test]` function (called as the plain fn it expands to,
/// on this thread) with every app it spawns storing files in a fresh bucket
/// of the shared moto server. Skips loudly when moto is not installed.
pub fn on_s3(test: fn()) {
    if crate::s3_server::shared().is_none() {
        return;
    }
    ON_S3.with(|on| on.set(true));
    test();
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { handle.stop(false).await });
        }
    }
}

/// Starts a server on a fresh data dir with one superuser.
pub async fn spawn_app() -> TestApp {
    AppBuilder::default().spawn().await
}

/// Starts a server whose files go to a fresh bucket on the loopback S3
/// server; `None` (said on stderr) when moto is not installed here.
pub async fn spawn_app_on_s3() -> Option<TestApp> {
    crate::s3_server::shared()?;
    Some(AppBuilder::default().on_s3().spawn().await)
}

/// Starts a server on an existing data dir (for restart tests); creates the
/// superuser if it does not exist yet.
pub async fn spawn_app_in(dir: &Path) -> TestApp {
    AppBuilder::default().in_dir(dir).spawn().await
}

/// Starts a server on a fresh data dir like [`spawn_app`], with `edit`
/// applied to the test config first (small limits, fewer readers, …).
pub async fn spawn_app_configured(edit: impl FnOnce(&mut Config) + 'static) -> TestApp {
    AppBuilder::default().configured(edit).spawn().await
}

/// A change to the test config made before the app is built.
type ConfigEdit = Box<dyn FnOnce(&mut Config)>;

/// The one way a test server starts: a data dir (fresh and removed with
/// the app unless given), the test config with optional edits, a superuser
/// upserted and logged in.
#[derive(Default)]
pub struct AppBuilder {
    dir: Option<PathBuf>,
    edit: Option<ConfigEdit>,
    s3: bool,
    backend: Option<TestBackend>,
}

impl AppBuilder {
    /// Runs on `backend` whatever `FB_TEST_BACKEND` says (tests comparing
    /// the engines start one app on each).
    pub fn on(mut self, backend: TestBackend) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Runs on `dir`, which outlives the app (restart tests).
    pub fn in_dir(mut self, dir: &Path) -> Self {
        self.dir = Some(dir.to_path_buf());
        self
    }

    /// Keeps files in a fresh bucket of the shared moto server.
    pub fn on_s3(mut self) -> Self {
        self.s3 = true;
        self
    }

    /// Applies `edit` to the test config before the app is built.
    pub fn configured(mut self, edit: impl FnOnce(&mut Config) + 'static) -> Self {
        self.edit = Some(Box::new(edit));
        self
    }

    pub async fn spawn(mut self) -> TestApp {
        let (dir, tmp) = match self.dir {
            Some(dir) => (dir, None),
            None => {
                let tmp = tempfile::tempdir().expect("temp dir");
                (tmp.path().to_path_buf(), Some(tmp))
            }
        };
        let mut config = Config::for_tests(&dir);
        let backend = self.backend.unwrap_or_else(TestBackend::current);
        let pg = (backend == TestBackend::Postgres).then(|| pg_database_for(&dir, tmp.is_none()));
        if let Some(db) = &pg {
            config.database.url = ferrobase::config::DatabaseUrl::new(db.url());
        }
        if let Some(edit) = self.edit.take() {
            edit(&mut config);
        }
        let app = Application::build(config).await.expect("app builds");
        ferrobase::auth::upsert_superuser(app.db(), SU_EMAIL, SU_PASSWORD)
            .await
            .expect("superuser");
        let base = format!("http://127.0.0.1:{}", app.port());
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());
        let client = reqwest::Client::new();
        let superuser_token = login(&client, &base, "_superusers", SU_EMAIL, SU_PASSWORD).await;
        let mut app = TestApp {
            base,
            client,
            superuser_token,
            data_dir: dir,
            handle,
            _tmp: tmp,
            s3: None,
            _pg: pg,
        };
        if self.s3 || ON_S3.with(|on| on.get()) {
            let server = crate::s3_server::shared().expect("on_s3 checked the server");
            let bucket = S3Bucket {
                server,
                name: server.create_bucket(),
            };
            let (status, body) = status_json(
                app.su(
                    Method::PATCH,
                    "/api/settings",
                    Some(json!({"s3": bucket.settings()})),
                )
                .await,
            )
            .await;
            assert_eq!(status, 200, "files switch to S3: {body}");
            app.s3 = Some(bucket);
        }
        app
    }
}

async fn login(
    client: &reqwest::Client,
    base: &str,
    collection: &str,
    identity: &str,
    password: &str,
) -> String {
    let resp = client
        .post(format!(
            "{base}/api/collections/{collection}/auth-with-password"
        ))
        .json(&json!({"identity": identity, "password": password}))
        .send()
        .await
        .expect("login request");
    assert_eq!(resp.status(), 200, "login must succeed");
    let body: Value = resp.json().await.expect("login json");
    body["token"].as_str().expect("token").to_owned()
}

impl TestApp {
    /// Stops the server gracefully and waits for it (the data dir stays).
    pub async fn stop(self) {
        self.handle.stop(true).await;
    }

    /// Sends a request with an optional token and JSON body.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.header("Authorization", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.expect("request sent")
    }

    /// Same as [`TestApp::request`] as the superuser.
    pub async fn su(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        let token = self.superuser_token.clone();
        self.request(method, path, Some(&token), body).await
    }

    pub async fn create_collection(&self, body: Value) -> Response {
        self.su(Method::POST, "/api/collections", Some(body)).await
    }

    /// Creates a collection and returns its JSON (panics unless 200).
    pub async fn create_collection_ok(&self, body: Value) -> Value {
        let resp = self.create_collection(body.clone()).await;
        let status = resp.status();
        let json: Value = resp.json().await.expect("json");
        assert_eq!(status, 200, "create collection {body}: {json}");
        json
    }

    pub async fn update_collection(&self, name: &str, body: Value) -> Response {
        self.su(
            Method::PATCH,
            &format!("/api/collections/{name}"),
            Some(body),
        )
        .await
    }

    pub async fn create_record(&self, collection: &str, body: Value) -> Response {
        self.su(
            Method::POST,
            &format!("/api/collections/{collection}/records"),
            Some(body),
        )
        .await
    }

    /// Creates a record as the superuser and returns it (panics unless 200).
    pub async fn create_record_ok(&self, collection: &str, body: Value) -> Value {
        let resp = self.create_record(collection, body.clone()).await;
        let status = resp.status();
        let json: Value = resp.json().await.expect("json");
        assert_eq!(status, 200, "create record {body}: {json}");
        json
    }

    pub async fn get_record(&self, collection: &str, id: &str, token: Option<&str>) -> Response {
        self.request(
            Method::GET,
            &format!("/api/collections/{collection}/records/{id}"),
            token,
            None,
        )
        .await
    }

    pub async fn list_records(
        &self,
        collection: &str,
        query: &[(&str, &str)],
        token: Option<&str>,
    ) -> Response {
        let mut req = self
            .client
            .get(format!(
                "{}/api/collections/{collection}/records",
                self.base
            ))
            .query(query);
        if let Some(t) = token {
            req = req.header("Authorization", t);
        }
        req.send().await.expect("request sent")
    }

    /// `GET /api/collections/{collection}/aggregate` with `query`.
    pub async fn aggregate(
        &self,
        collection: &str,
        query: &[(&str, &str)],
        token: Option<&str>,
    ) -> Response {
        let mut req = self
            .client
            .get(format!(
                "{}/api/collections/{collection}/aggregate",
                self.base
            ))
            .query(query);
        if let Some(t) = token {
            req = req.header("Authorization", t);
        }
        req.send().await.expect("request sent")
    }

    pub async fn update_record(&self, collection: &str, id: &str, body: Value) -> Response {
        self.su(
            Method::PATCH,
            &format!("/api/collections/{collection}/records/{id}"),
            Some(body),
        )
        .await
    }

    pub async fn delete_record(&self, collection: &str, id: &str) -> Response {
        self.su(
            Method::DELETE,
            &format!("/api/collections/{collection}/records/{id}"),
            None,
        )
        .await
    }

    /// Sends a multipart form with an optional token.
    pub async fn send_form(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        form: reqwest::multipart::Form,
    ) -> Response {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .multipart(form);
        if let Some(t) = token {
            req = req.header("Authorization", t);
        }
        req.send().await.expect("request sent")
    }

    /// Every file under the data dir's `storage/` (temp folder included).
    /// The bytes stored under `key` (`COLLECTION/RECORD/NAME`): from the
    /// bucket when the app runs on S3, else from `DATA_DIR/storage`.
    pub fn stored_file(&self, key: &str) -> Option<Vec<u8>> {
        match &self.s3 {
            Some(bucket) => bucket.server.get(&bucket.name, key).map(String::into_bytes),
            None => std::fs::read(self.data_dir.join("storage").join(key)).ok(),
        }
    }

    /// Stored files: under `DATA_DIR/storage`, plus the keys of the app's
    /// bucket when it runs on S3.
    pub fn stored_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push(path);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.data_dir.join("storage"), &mut out);
        // On S3 the bucket's keys count too (and local files would be a bug
        // the tests then see).
        if let Some(bucket) = &self.s3 {
            out.extend(
                bucket
                    .server
                    .keys(&bucket.name)
                    .into_iter()
                    .map(PathBuf::from),
            );
        }
        out.sort();
        out
    }

    /// Opens `GET /api/realtime` (the SSE stream).
    pub async fn connect_realtime(&self) -> Response {
        self.request(Method::GET, "/api/realtime", None, None).await
    }

    /// `POST /api/realtime`: sets the client's subscriptions with an optional token.
    pub async fn subscribe(
        &self,
        client_id: &str,
        topics: &[&str],
        token: Option<&str>,
    ) -> Response {
        let body = json!({"clientId": client_id, "subscriptions": topics});
        self.request(Method::POST, "/api/realtime", token, Some(body))
            .await
    }

    /// Logs in to an auth collection and returns the token.
    pub async fn login_as(&self, collection: &str, identity: &str, password: &str) -> String {
        login(&self.client, &self.base, collection, identity, password).await
    }
}

/// Reads a response as (status, JSON body); an empty body is `null`.
pub async fn status_json(resp: Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let json = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, json)
}

/// A server whose settings send mail to a fresh loopback SMTP sink.
pub async fn spawn_app_with_mail() -> (TestApp, crate::smtp_sink::SmtpSink) {
    let app = spawn_app().await;
    let sink = crate::smtp_sink::start().await;
    let (status, body) = status_json(
        app.su(
            Method::PATCH,
            "/api/settings",
            Some(json!({"smtp": {"enabled": true, "host": "127.0.0.1", "port": sink.port}})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    (app, sink)
}

/// A data dir for the real binary, one level down in a private temporary
/// folder (`…/pb_data`): PocketBase's layout puts `pb_migrations`,
/// `pb_hooks` and `pb_public` beside the data dir, and a data dir directly
/// in `/tmp` would share (and apply) every other run's migrations.
pub struct DataDir {
    _root: tempfile::TempDir,
    path: PathBuf,
}

impl DataDir {
    pub fn new() -> Self {
        let root = tempfile::tempdir().expect("temp dir");
        let path = root.path().join("pb_data");
        std::fs::create_dir_all(&path).expect("data dir");
        Self { _root: root, path }
    }

    /// The data dir itself.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
