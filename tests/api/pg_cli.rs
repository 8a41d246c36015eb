//! Choosing the database with the real binary: `database.url` from the
//! config file, `FERROBASE_DATABASE_URL` and `--db` (in that order of
//! strength) against the throwaway PostgreSQL of the test command
//! (`PG_TEST_URL`), each test in a database of its own. The commands that run
//! on PostgreSQL do their work there (the rows are read back with a client
//! of our own), the others refuse with one line and touch nothing, a first
//! use initialises an empty database once however many commands race, and
//! no password is ever printed.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Passed in every URL: the throwaway server trusts loopback, so it
/// connects, and no output may ever contain it.
pub(crate) const PASSWORD: &str = "pg-topsecret-7";

/// The test server's URL; `None` outside CI when there is none.
pub(crate) fn pg_url() -> Option<String> {
    match std::env::var("PG_TEST_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "PG_TEST_URL is not set: tests/run.sh starts a throwaway PostgreSQL"
            );
            eprintln!("skipped: PG_TEST_URL is not set (tests/postgres/throwaway.sh starts one)");
            None
        }
    }
}

/// A fresh database on the test server, dropped with the value.
pub(crate) struct Database {
    base: String,
    name: String,
}

impl Database {
    pub(crate) fn create(base: &str) -> Self {
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "fb_cli_{}_{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = postgres::Client::connect(base, postgres::NoTls).expect("connect");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        Self {
            base: base.to_owned(),
            name,
        }
    }

    /// This database's URL, with [`PASSWORD`] in it.
    pub(crate) fn url(&self) -> String {
        let mut url = url::Url::parse(&self.base).expect("PG_TEST_URL parses");
        url.set_path(&self.name);
        url.set_password(Some(PASSWORD)).expect("password");
        url.to_string()
    }

    fn client(&self) -> postgres::Client {
        let mut url = url::Url::parse(&self.base).expect("PG_TEST_URL parses");
        url.set_path(&self.name);
        postgres::Client::connect(url.as_str(), postgres::NoTls).expect("connect")
    }

    /// The first column of every row of `sql`, as text.
    pub(crate) fn column(&self, sql: &str) -> Vec<String> {
        self.client()
            .query(sql, &[])
            .expect(sql)
            .iter()
            .map(|row| row.get::<_, String>(0))
            .collect()
    }

    pub(crate) fn count(&self, sql: &str) -> i64 {
        self.client().query_one(sql, &[]).expect(sql).get(0)
    }

    fn is_initialised(&self) -> bool {
        self.count("SELECT count(to_regclass('_collections'))") == 1
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&self.base, postgres::NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// Runs the binary in `dir` with `env` as its only `FERROBASE_DATABASE_URL`
/// source besides the flags in `args`.
fn ferrobase(dir: &Path, env: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferrobase"));
    command.env_remove("FERROBASE_DATABASE_URL");
    if let Some(url) = env {
        command.env("FERROBASE_DATABASE_URL", url);
    }
    command
        .args(args)
        .arg("--dir")
        .arg(dir)
        .output()
        .expect("ferrobase runs")
}

/// stdout and stderr together, checked never to hold the password.
fn said(out: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains(PASSWORD), "the password was printed: {text}");
    assert!(!text.contains("panicked"), "{text}");
    text
}

fn ok(out: &Output) -> String {
    let text = said(out);
    assert!(out.status.success(), "{text}");
    text
}

fn failed(out: &Output) -> String {
    let text = said(out);
    assert!(!out.status.success(), "must fail: {text}");
    text
}

fn superusers(db: &Database) -> Vec<String> {
    db.column("SELECT email FROM _superusers ORDER BY email")
}

#[test]
fn the_database_url_comes_from_the_file_the_environment_and_the_flag_in_that_order() {
    let Some(base) = pg_url() else { return };
    let db = Database::create(&base);
    let tmp = crate::helpers::DataDir::new();
    let dir = tmp.path();
    let write_config = |name: &str, url: &str| {
        let path = dir.parent().expect("root").join(name);
        std::fs::write(&path, format!("[database]\nurl = {url:?}\n")).expect("config");
        path.to_string_lossy().into_owned()
    };
    let good = write_config("good.toml", &db.url());
    let unreachable = format!("postgres://app:{PASSWORD}@127.0.0.1:1/none");
    let bad = write_config("bad.toml", &unreachable);
    fn upsert(email: &str) -> [&str; 4] {
        ["superuser", "upsert", email, "long-enough-1"]
    }

    let file = ferrobase(
        dir,
        None,
        &[&["--config", &good][..], &upsert("file@example.com")].concat(),
    );
    let env_beats_file = ferrobase(
        dir,
        Some(&db.url()),
        &[&["--config", &bad][..], &upsert("env@example.com")].concat(),
    );
    let flag_beats_env = ferrobase(
        dir,
        Some(&unreachable),
        &[&["--db", &db.url()][..], &upsert("flag@example.com")].concat(),
    );
    let empty_flag_is_sqlite = ferrobase(
        dir,
        Some(&db.url()),
        &[
            &["--config", &good, "--db="][..],
            &upsert("sqlite@example.com"),
        ]
        .concat(),
    );

    ok(&file);
    ok(&env_beats_file);
    ok(&flag_beats_env);
    ok(&empty_flag_is_sqlite);
    assert_eq!(
        superusers(&db),
        ["env@example.com", "file@example.com", "flag@example.com"],
        "each run wrote to PostgreSQL, the --db= run did not"
    );
    assert!(
        dir.join("data.db").is_file(),
        "--db= (empty) is the embedded SQLite in --dir"
    );
    let sqlite = rusqlite::Connection::open(dir.join("data.db")).expect("sqlite");
    let emails: Vec<String> = sqlite
        .prepare("SELECT email FROM _superusers")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("emails");
    assert_eq!(emails, ["sqlite@example.com"]);
}

#[test]
fn a_bad_or_unreachable_database_url_fails_within_seconds_naming_the_problem_not_the_password() {
    let tmp = crate::helpers::DataDir::new();
    let dir = tmp.path();
    for (url, expected, why) in [
        (
            format!("mysql://app:{PASSWORD}@127.0.0.1/app"),
            "database.url: must start with postgres:// or postgresql://",
            "another engine",
        ),
        (
            format!("postgres://app:{PASSWORD}@127.0.0.1:99999/app"),
            "database.url: not a valid URL",
            "a port out of range",
        ),
        (
            format!("postgres://app:{PASSWORD}@127.0.0.1:1/app?sslmode=disable"),
            "cannot connect to PostgreSQL",
            "nothing listens there",
        ),
        (
            // TEST-NET-1 (RFC 5737): never routed, so only the connect timeout ends it.
            format!("postgres://app:{PASSWORD}@192.0.2.1:5432/app?sslmode=disable"),
            "cannot connect to PostgreSQL",
            "an unreachable host",
        ),
        (
            format!("postgres://app:{PASSWORD}@127.0.0.1:1/app?sslmode=sometimes"),
            "not valid",
            "an unknown sslmode",
        ),
    ] {
        for args in [
            &[
                "--db",
                url.as_str(),
                "superuser",
                "upsert",
                "a@example.com",
                "long-enough-1",
            ][..],
            &["--db", url.as_str(), "db", "check"][..],
        ] {
            let started = Instant::now();
            let out = ferrobase(dir, None, args);
            let took = started.elapsed();

            let text = failed(&out);
            assert!(text.contains(expected), "{why}: {text}");
            assert!(
                took < Duration::from_secs(10),
                "{why}: took {took:?} to give up"
            );
        }
        let out = ferrobase(
            dir,
            Some(&url),
            &["superuser", "upsert", "a@example.com", "x-long-pass"],
        );
        assert!(
            failed(&out).contains(expected),
            "{why}, from the environment"
        );
    }
    assert!(
        !dir.join("data.db").exists(),
        "a refused URL never falls back to SQLite"
    );
    let help = ferrobase(
        dir,
        None,
        &["--db", "postgres://a:pg-topsecret-7@h/db", "--help"],
    );
    assert!(ok(&help).contains("--db <URL>"));
}

#[test]
fn superuser_commands_run_on_postgres_and_their_rows_are_there() {
    let Some(base) = pg_url() else { return };
    let db = Database::create(&base);
    let tmp = crate::helpers::DataDir::new();
    let dir = tmp.path();
    let url = db.url();
    let run = |args: &[&str]| ferrobase(dir, Some(&url), args);

    // --dev: every SQL statement and debug log on stderr, still no password.
    let first = run(&[
        "--dev",
        "superuser",
        "upsert",
        "ops@example.com",
        "first-pass-1",
    ]);
    let second = run(&["superuser", "create", "two@example.com", "second-pass-2"]);
    let taken = run(&["superuser", "create", "two@example.com", "second-pass-2"]);
    let otp_off = run(&["superuser", "otp", "ops@example.com"]);
    db.client()
        .batch_execute(
            "UPDATE _collections SET options = options || \
             '{\"otp\": {\"enabled\": true, \"duration\": 180}}' WHERE name = '_superusers'",
        )
        .expect("OTP on");
    let otp = run(&["superuser", "otp", "ops@example.com"]);
    let otp_missing = run(&["superuser", "otp", "nobody@example.com"]);
    let ips = run(&["superuser", "ips", "10.0.0.0/24", "127.0.0.1"]);
    // Past the settings (read from PostgreSQL) to the bucket, which is unset.
    let storage = run(&["storage", "migrate", "--to", "s3"]);
    let deleted = run(&["superuser", "delete", "two@example.com"]);
    let last = run(&["superuser", "delete", "ops@example.com"]);

    assert!(ok(&first).contains("Successfully saved superuser \"ops@example.com\"!"));
    assert!(ok(&second).contains("Successfully created new superuser"));
    assert!(failed(&taken).contains("already exists"));
    assert!(failed(&otp_off).contains("OTP auth is not enabled for the _superusers collection"));
    let printed = ok(&otp);
    let otp_id = printed
        .lines()
        .find_map(|l| l.split_once("Id:").map(|(_, v)| v.trim().to_owned()))
        .unwrap_or_else(|| panic!("an id in {printed}"));
    assert!(printed.contains("Valid: 180s"), "{printed}");
    assert_eq!(
        db.column(&format!(
            "SELECT \"recordRef\" FROM _otps WHERE id = '{otp_id}' AND password <> ''"
        ))
        .len(),
        1,
        "the printed OTP is stored (hashed) in PostgreSQL"
    );
    failed(&otp_missing);
    ok(&ips);
    let settings = db.column("SELECT value FROM _params WHERE id = 'settings'");
    assert!(
        settings.iter().any(|v| v.contains("10.0.0.0/24")),
        "{settings:?}"
    );
    assert!(failed(&storage).contains("the s3 settings cannot be used"));
    assert!(ok(&deleted).contains("Successfully deleted superuser \"two@example.com\"!"));
    failed(&last);
    assert_eq!(superusers(&db), ["ops@example.com"], "the last one stays");
    assert!(
        !dir.join("data.db").exists(),
        "nothing was written to the data dir's SQLite"
    );
}

#[test]
fn migrate_status_collections_typegen_and_history_sync_read_postgres() {
    let Some(base) = pg_url() else { return };
    let db = Database::create(&base);
    let tmp = crate::helpers::DataDir::new();
    let dir = tmp.path();
    let migrations = dir.parent().expect("root").join("pb_migrations");
    let url = db.url();
    let run = |args: &[&str]| ferrobase(dir, Some(&url), args);

    let typegen_empty = run(&["typegen"]);
    let status = run(&["migrate", "status"]);
    let typegen = run(&["typegen"]);
    let snapshot = run(&["migrate", "collections"]);
    db.client()
        .batch_execute(
            "INSERT INTO _migrations (file, applied) VALUES ('1700000000_gone.js', '2026-01-01 00:00:00.000Z')",
        )
        .expect("a forgotten migration");
    let listed = run(&["migrate", "status"]);
    let synced = run(&["migrate", "history-sync"]);

    assert!(
        failed(&typegen_empty).contains("has no Ferrobase tables yet"),
        "typegen reads; it never initialises"
    );
    assert!(!db.column("SELECT file FROM _migrations").is_empty());
    let status = ok(&status);
    assert!(status.contains("applied  0001_init"), "{status}");
    assert!(!status.contains("pending"), "{status}");
    assert!(ok(&typegen).contains("UsersRecord"));
    assert!(ok(&snapshot).contains("collections_snapshot.js"));
    let written: Vec<_> = std::fs::read_dir(&migrations)
        .expect("pb_migrations")
        .collect();
    assert_eq!(written.len(), 1, "{written:?}");
    assert!(ok(&listed).contains("applied  1700000000_gone.js"));
    assert!(ok(&synced).contains("Removed 1 applied migration(s) without a file."));
    assert!(
        db.column("SELECT file FROM _migrations WHERE file LIKE '%.js'")
            .is_empty()
    );
}

#[test]
fn db_check_passes_on_a_fresh_database_and_names_what_was_dropped() {
    let Some(base) = pg_url() else { return };
    let db = Database::create(&base);
    let tmp = crate::helpers::DataDir::new();
    let dir = tmp.path();
    let url = db.url();
    let run = |args: &[&str]| ferrobase(dir, Some(&url), args);

    let empty = run(&["db", "check"]);
    assert!(!db.is_initialised(), "db check never initialises");
    ok(&run(&[
        "superuser",
        "upsert",
        "ops@example.com",
        "first-pass-1",
    ]));
    let fresh = run(&["db", "check"]);
    let index = db.column(
        "SELECT indexname::text FROM pg_indexes WHERE tablename = '_superusers' \
         AND indexname <> '_superusers_pkey' ORDER BY 1 LIMIT 1",
    );
    let [index] = &index[..] else {
        panic!("an index of _superusers: {index:?}")
    };
    db.client()
        .batch_execute(&format!(
            "DROP TABLE \"_authOrigins\"; ALTER TABLE users DROP COLUMN name; \
             DROP FUNCTION fb_pad(bigint, int); DROP AGGREGATE total(double precision); \
             DROP INDEX \"{index}\""
        ))
        .expect("damage");
    let damaged = run(&["db", "check"]);

    assert!(failed(&empty).contains("has no Ferrobase tables yet"));
    let fresh = ok(&fresh);
    assert!(
        fresh.contains("check of postgres://postgres:***@") && fresh.contains(": ok"),
        "{fresh}"
    );
    assert_eq!(damaged.status.code(), Some(1));
    let damaged = failed(&damaged);
    for problem in [
        "collection _authOrigins: its table is missing",
        "collection users: column name is missing from its table",
        "function fb_pad (used by rules and filters) is missing",
        "aggregate total(double precision) (SQLite's, for view queries) is missing",
        &format!("collection _superusers: index {index} is missing from its table"),
        "found 5 problem(s)",
    ] {
        assert!(damaged.contains(problem), "{problem}: {damaged}");
    }
}

#[test]
fn commands_that_cannot_run_on_postgres_refuse_in_one_line_and_change_nothing() {
    let Some(base) = pg_url() else { return };
    let db = Database::create(&base);
    let tmp = crate::helpers::DataDir::new();
    let dir = tmp.path();
    let url = db.url();
    for (args, expected) in [
        (&["backup", "create"][..], "pg_dump / pg_restore"),
        (&["backup", "restore", "x.zip"][..], "pg_dump / pg_restore"),
        (&["restore", "--from", "file:///nowhere"][..], "pg_restore"),
        (
            &["search", "reindex"][..],
            "full-text search is SQLite-only",
        ),
    ] {
        let out = ferrobase(dir, Some(&url), args);

        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let text = failed(&out);
        assert!(text.contains(expected), "{args:?}: {text}");
        assert_eq!(text.trim().lines().count(), 1, "{args:?}: one line: {text}");
    }
    assert!(!db.is_initialised(), "nothing was written to PostgreSQL");
    assert_eq!(
        std::fs::read_dir(dir).expect("dir").count(),
        0,
        "nothing was written to the data dir"
    );
}

#[test]
fn db_copy_takes_the_configured_database_when_to_is_left_out() {
    let Some(base) = pg_url() else { return };
    let db = Database::create(&base);
    let tmp = crate::helpers::DataDir::new();
    let dir = tmp.path();
    ok(&ferrobase(
        dir,
        None,
        &["superuser", "upsert", "lite@example.com", "long-enough-1"],
    ));

    let without = ferrobase(dir, None, &["db", "copy"]);
    let copied = ferrobase(dir, Some(&db.url()), &["db", "copy"]);
    let checked = ferrobase(dir, Some(&db.url()), &["db", "check"]);

    assert!(failed(&without).contains("pass --to postgres://"));
    assert!(ok(&copied).contains("Copied into postgres://postgres:***@"));
    ok(&checked);
    assert_eq!(superusers(&db), ["lite@example.com"]);
}

#[test]
fn commands_racing_on_an_empty_database_initialise_it_once() {
    let Some(base) = pg_url() else { return };
    let db = Database::create(&base);
    let tmp = crate::helpers::DataDir::new();
    let url = db.url();

    let outs: Vec<Output> = std::thread::scope(|s| {
        let racers: Vec<_> = (0..4)
            .map(|i| {
                let (dir, url) = (tmp.path(), url.as_str());
                s.spawn(move || {
                    let email = format!("racer{i}@example.com");
                    ferrobase(
                        dir,
                        Some(url),
                        &["superuser", "upsert", &email, "long-enough-1"],
                    )
                })
            })
            .collect();
        racers
            .into_iter()
            .map(|r| r.join().expect("racer"))
            .collect()
    });

    let initialised = outs
        .iter()
        .map(ok)
        .filter(|text| text.contains("gave the empty PostgreSQL database"))
        .count();
    assert_eq!(initialised, 1, "exactly one racer created the tables");
    assert_eq!(superusers(&db).len(), 4);
    assert_eq!(db.count("SELECT count(*) FROM _collections"), 6);
}

#[tokio::test]
async fn an_application_on_an_unreachable_postgres_fails_without_touching_the_data_dir() {
    let tmp = crate::helpers::DataDir::new();
    let mut config = ferrobase::Config::for_tests(tmp.path());
    config.database.url =
        ferrobase::config::DatabaseUrl::new(format!("postgres://app:{PASSWORD}@127.0.0.1:1/app"));

    let built = ferrobase::Application::build(config).await;

    let Err(e) = built else {
        panic!("an application on an unreachable PostgreSQL must not start")
    };
    let text = e.to_string();
    assert!(!text.contains(PASSWORD), "{text}");
    assert_eq!(
        std::fs::read_dir(tmp.path()).expect("dir").count(),
        0,
        "the data dir's SQLite was not opened instead, nor the data dir locked"
    );
}

/// A TCP peer that accepts connections and never says a word (a proxy
/// waiting on a backend that does not come), until dropped.
struct SilentPeer {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SilentPeer {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => held.push(stream),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Self {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for SilentPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn a_server_that_accepts_and_never_answers_is_given_up_on_at_the_connect_timeout() {
    let peer = SilentPeer::start();
    let tmp = crate::helpers::DataDir::new();
    let dir = tmp.path();
    for (query, limit) in [("", 5), ("?connect_timeout=1", 1)] {
        let url = format!(
            "postgres://app:{PASSWORD}@127.0.0.1:{}/app{query}",
            peer.port
        );
        for args in [
            &[
                "--db",
                url.as_str(),
                "superuser",
                "upsert",
                "a@example.com",
                "long-enough-1",
            ][..],
            &["--db", url.as_str(), "db", "check"][..],
        ] {
            let started = Instant::now();
            let out = ferrobase(dir, None, args);
            let took = started.elapsed();

            let text = failed(&out);
            assert!(
                text.contains(&format!("no PostgreSQL handshake within {limit} s")),
                "{args:?}: {text}"
            );
            assert!(
                took >= Duration::from_secs(limit) && took < Duration::from_secs(limit + 4),
                "{args:?}: gave up after {took:?}"
            );
        }
    }
}
