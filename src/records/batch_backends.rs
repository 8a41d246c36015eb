//! Batches and truncate answer the same on SQLite and on PostgreSQL (the
//! throwaway server of the test command): mixed batches by a user and a
//! superuser, batches whose member fails at the start, middle or end (which
//! must leave nothing written), batches racing single updates, and truncate
//! with cascades. The batch is driven as `api/batch.rs` drives it: members
//! prepared in order, uploads placed, one transaction, uploads removed when
//! it did not commit.

use super::write_backends::{
    ALICE, BOB, Engine, P1, P2, P3, P4, outcome, postgres_db, runtime, scrub, user,
};
use super::{
    BatchAbort, BatchWrite, Caller, RecordError, Upload, apply_batch, exists, prepare_create,
    prepare_delete, prepare_update,
};
use crate::config::DatabaseConfig;
use crate::db::Db;
use crate::files;
use futures_util::future::{LocalBoxFuture, join_all};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const C1: &str = "c1aaaaaaaaaaaaa";
const C2: &str = "c2aaaaaaaaaaaaa";
const C3: &str = "c3aaaaaaaaaaaaa";
const P5: &str = "p5aaaaaaaaaaaaa";
const P6: &str = "p6aaaaaaaaaaaaa";

/// One batch member, as its URL and method would give it.
#[derive(Clone)]
enum Member {
    Create(&'static str, Value),
    Update(&'static str, &'static str, Value),
    /// A `PUT` without id in the URL: an update when the body's id exists.
    Upsert(&'static str, Value),
    Delete(&'static str, &'static str),
}

impl Engine {
    /// Runs `members` as `caller` in one batch (member 0 gets `uploads`):
    /// the answers, or `{"failed": index, "response": envelope}`.
    async fn batch(
        &self,
        caller: &Caller,
        members: &[Member],
        uploads: Vec<Upload>,
        timeout: Duration,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        let mut uploads = Some(uploads);
        let (mut writes, mut staged) = (Vec::new(), Vec::new());
        for (index, member) in members.iter().enumerate() {
            let mine = uploads.take().unwrap_or_default();
            match self.prepare(caller, member, mine).await {
                Ok((write, files)) => {
                    writes.push(write);
                    staged.extend(files);
                }
                Err(e) => return failure(index, e),
            }
        }
        let placed = files::place(&self.store, staged).await.expect("placed");
        match apply_batch(&self.db, self.snapshot.clone(), writes, deadline).await {
            Ok(applied) => {
                self.hub.publish(applied.changes);
                applied.cleanup.run(&self.store).await;
                let mut answers = Value::Array(applied.results);
                scrub(&mut answers);
                answers
            }
            Err(abort) => {
                files::remove(&self.store, placed, Vec::new()).await;
                match abort {
                    BatchAbort::Member { index, error } => failure(index, error),
                    other => panic!("the batch itself failed: {other:?}"),
                }
            }
        }
    }

    async fn prepare(
        &self,
        caller: &Caller,
        member: &Member,
        uploads: Vec<Upload>,
    ) -> Result<(BatchWrite, Vec<(files::Staged, files::BlobKey)>), RecordError> {
        let snapshot = self.snapshot.clone();
        let collection = |name: &str| snapshot.get(name).expect("collection");
        let object = |body: &Value| body.as_object().cloned().unwrap_or_default();
        let as_method = |method: &str| Caller {
            method: method.into(),
            context: "batch",
            ..caller.clone()
        };
        let (create, name, id, body) = match member {
            Member::Create(name, body) => (true, *name, String::new(), body.clone()),
            Member::Update(name, id, body) => (false, *name, (*id).to_owned(), body.clone()),
            Member::Upsert(name, body) => {
                let id = body["id"].as_str().unwrap_or_default().to_owned();
                let found = !id.is_empty() && exists(&self.db, &collection(name), &id).await?;
                (!found, *name, id, body.clone())
            }
            Member::Delete(name, id) => {
                let (c, who) = (collection(name), as_method("DELETE"));
                let p = prepare_delete(&snapshot, c, who, (*id).to_owned()).await?;
                return Ok((BatchWrite::Delete(Box::new(p)), Vec::new()));
            }
        };
        let c = collection(name);
        Ok(if create {
            let p =
                prepare_create(&snapshot, c, as_method("POST"), object(&body), &uploads).await?;
            let staged = p.stage(uploads)?;
            (BatchWrite::Create(Box::new(p)), staged)
        } else {
            let (who, body) = (as_method("PATCH"), object(&body));
            let p = prepare_update(&self.db, snapshot.clone(), c, who, id, body, &uploads).await?;
            let staged = p.stage(uploads)?;
            (BatchWrite::Update(Box::new(p)), staged)
        })
    }

    /// The blobs in the store (staging excluded).
    fn blobs(&self) -> usize {
        fn count(dir: &std::path::Path) -> usize {
            std::fs::read_dir(dir).map_or(0, |entries| {
                entries
                    .flatten()
                    .map(|e| {
                        let path = e.path();
                        if path.file_name().is_some_and(|n| n == ".tmp") {
                            0
                        } else if path.is_dir() {
                            count(&path)
                        } else {
                            1
                        }
                    })
                    .sum()
            })
        }
        count(self.files_root())
    }

    /// Every table a batch or truncate here may touch, as a superuser lists it.
    async fn tables(&self) -> Value {
        let mut all = serde_json::Map::new();
        for name in ["posts", "comments", "pins", "notes", "boards", "likes"] {
            let mut rows = self.rows(name).await;
            scrub(&mut rows);
            all.insert(name.into(), rows);
        }
        Value::Object(all)
    }

    /// Users alice and bob; p1 (alice's), p2 (bob's) with a comment on p1,
    /// a required pin and a note on p2, a board and a like of both.
    async fn seed(&self) {
        let su = Caller::superuser();
        for (id, name) in [(ALICE, "alice"), (BOB, "bob")] {
            let body = json!({"id": id, "email": format!("{name}@example.com"),
                "password": "password123", "passwordConfirm": "password123"});
            self.create("users", &su, body).await;
        }
        let p1 = json!({"id": P1, "title": "first", "slug": "one", "owner": ALICE});
        self.create("posts", &user(ALICE), p1).await;
        let p2 = json!({"id": P2, "title": "second", "slug": "two", "owner": BOB});
        self.create("posts", &user(BOB), p2).await;
        let rows = [
            ("comments", json!({"id": C1, "text": "hi", "post": P1})),
            ("pins", json!({"id": "i1aaaaaaaaaaaaa", "post": P2})),
            ("notes", json!({"id": "n1aaaaaaaaaaaaa", "post": P2})),
            (
                "boards",
                json!({"id": "b1aaaaaaaaaaaaa", "posts": [P1, P2]}),
            ),
            ("likes", json!({"id": "l1aaaaaaaaaaaaa", "posts": [P2]})),
        ];
        for (name, body) in rows {
            let made = self.create(name, &su, body).await;
            assert!(made["id"].is_string(), "{name}: {made}");
        }
    }
}

fn failure(index: usize, error: RecordError) -> Value {
    let mut response = outcome(Err(error), "a member");
    scrub(&mut response);
    json!({"failed": index, "response": response})
}

/// The mixed batches: each step's answer and the tables after it.
async fn mixed(engine: &Engine) -> Vec<(String, Value)> {
    engine.seed().await;
    let mut out = Vec::new();
    let file = engine.upload("files", "a.txt", b"batch file").await;
    let alice = [
        Member::Create(
            "posts",
            json!({"id": P3, "title": "third", "slug": "three", "owner": ALICE}),
        ),
        Member::Create("comments", json!({"id": C2, "text": "on p3", "post": P3})),
        Member::Update("posts", P1, json!({"views+": 2, "title": "first!"})),
        Member::Upsert("posts", json!({"id": P1, "slug": "uno"})),
        Member::Upsert(
            "posts",
            json!({"id": P4, "title": "fourth", "owner": ALICE}),
        ),
        Member::Delete("comments", C1),
    ];
    let timeout = Duration::from_secs(10);
    let answer = engine
        .batch(&user(ALICE), &alice, vec![file], timeout)
        .await;
    out.push(("alice's batch".to_owned(), answer));
    out.push(("tables after alice's".to_owned(), engine.tables().await));
    out.push(("blobs after alice's".to_owned(), json!(engine.blobs())));
    let su = [
        Member::Update("posts", P2, json!({"tags+": "blue", "views": 7})),
        Member::Delete("posts", P3),
        Member::Create("notes", json!({"id": "n2aaaaaaaaaaaaa", "post": P1})),
        Member::Upsert("comments", json!({"id": C1, "text": "back", "post": P2})),
    ];
    let answer = engine
        .batch(&Caller::superuser(), &su, Vec::new(), timeout)
        .await;
    out.push(("superuser's batch".to_owned(), answer));
    out.push(("tables after su's".to_owned(), engine.tables().await));
    out.push(("blobs after su's".to_owned(), json!(engine.blobs())));
    out
}

/// Every failing member at every position: the answers, and whether the
/// tables (and the file store) stayed as they were.
async fn failing(engine: &Engine, postgres: bool) -> Vec<(String, Value)> {
    engine.seed().await;
    let good = [
        Member::Create("posts", json!({"id": P5, "title": "fifth", "owner": ALICE})),
        Member::Update("posts", P1, json!({"views+": 1})),
        Member::Create("comments", json!({"id": C3, "text": "x", "post": P1})),
    ];
    let mut bad = vec![
        (
            "a create rule refusal",
            Member::Create("posts", json!({"id": P6, "owner": BOB})),
        ),
        (
            "a missing relation",
            Member::Create("comments", json!({"post": "nosuchpost00000"})),
        ),
        (
            "a unique violation",
            Member::Create("posts", json!({"id": P6, "slug": "two", "owner": ALICE})),
        ),
        (
            "an update of another's record",
            Member::Update("posts", P2, json!({"title": "mine"})),
        ),
        (
            "a taken id",
            Member::Create("posts", json!({"id": P2, "owner": ALICE})),
        ),
        (
            "an update of a forged id",
            Member::Update("posts", "p1\u{0}aaaaaaaaaaaa", json!({"title": "x"})),
        ),
        (
            "a delete of a forged id",
            Member::Delete("comments", "c1\u{0}aaaaaaaaaaaa"),
        ),
    ];
    if postgres {
        // SQLite stores it: only PostgreSQL refuses the batch.
        let nul = Member::Update("posts", P1, json!({"title": "a\u{0}b"}));
        bad.push(("a value PostgreSQL cannot hold", nul));
    }
    let before = engine.tables().await;
    let mut out = Vec::new();
    for (why, member) in bad {
        for at in [0, 1, good.len()] {
            let mut members = good.to_vec();
            members.insert(at, member.clone());
            let file = engine.upload("files", "b.txt", b"rolled back").await;
            let answer = engine
                .batch(&user(ALICE), &members, vec![file], Duration::from_secs(10))
                .await;
            assert_eq!(answer["failed"], json!(at), "{why} at {at}: {answer}");
            assert_eq!(
                engine.tables().await,
                before,
                "{why} at {at}: nothing written"
            );
            assert_eq!(engine.blobs(), 0, "{why} at {at}: the upload removed");
            out.push((format!("{why} at {at}"), answer));
        }
    }
    out
}

fn sqlite_engine(rt: &tokio::runtime::Runtime, dir: &tempfile::TempDir) -> Engine {
    let db = Db::open(dir.path(), &DatabaseConfig::default()).expect("open");
    rt.block_on(Engine::setup(db))
}

fn same(on_sqlite: &[(String, Value)], on_pg: &[(String, Value)]) {
    assert_eq!(on_sqlite.len(), on_pg.len());
    for ((label, want), (_, got)) in on_sqlite.iter().zip(on_pg) {
        assert_eq!(want, got, "{label}");
    }
}

#[test]
fn mixed_batches_answer_the_same_on_both_engines() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tmp");
    let on_sqlite = rt.block_on(mixed(&sqlite_engine(&rt, &dir)));
    let alice = &on_sqlite[0].1;
    assert_eq!(alice.as_array().map(Vec::len), Some(6), "{alice}");
    assert_eq!(alice[0]["body"]["files"], json!(1), "{alice}");
    assert_eq!(alice[2]["body"]["views"], json!(2), "{alice}");
    assert_eq!(alice[3]["body"]["slug"], json!("uno"), "upsert updated");
    assert_eq!(alice[4]["body"]["id"], json!(P4), "upsert created");
    assert_eq!(alice[5]["status"], json!(204), "{alice}");
    let tables = &on_sqlite[4].1;
    assert_eq!(
        tables["comments"]["totalItems"],
        json!(1),
        "c2 cascaded, c1 back"
    );
    assert_eq!(on_sqlite[5].1, json!(0), "p3's file removed with it");
    let Some((_schema, db)) = postgres_db() else {
        return;
    };
    let on_pg = rt.block_on(async { mixed(&Engine::setup(db).await).await });
    same(&on_sqlite, &on_pg);
}

#[test]
fn a_failing_member_anywhere_leaves_nothing_written_on_both_engines() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tmp");
    let on_sqlite = rt.block_on(failing(&sqlite_engine(&rt, &dir), false));
    let Some((_schema, db)) = postgres_db() else {
        return;
    };
    let on_pg = rt.block_on(async { failing(&Engine::setup(db).await, true).await });
    let nul = on_pg
        .iter()
        .find(|(l, _)| l.starts_with("a value PostgreSQL"))
        .map(|(_, v)| v.clone());
    let nul = nul.expect("the NUL case ran");
    let code = &nul["response"]["data"]["title"]["code"];
    assert_eq!(code, "validation_not_on_postgres", "{nul}");
    same(&on_sqlite, &on_pg[..on_sqlite.len()]);
}

/// Batches incrementing p1 and p2 in both orders (so PostgreSQL meets
/// deadlocks and runs a batch again) race single increments: none is lost.
async fn racing(engine: &Engine) {
    engine.seed().await;
    let su = Caller::superuser();
    let timeout = Duration::from_secs(60);
    let inc = json!({"views+": 1});
    let forward = [
        Member::Update("posts", P1, inc.clone()),
        Member::Update("posts", P2, inc.clone()),
    ];
    let backward = [
        Member::Update("posts", P2, inc.clone()),
        Member::Update("posts", P1, inc),
    ];
    let mut work: Vec<LocalBoxFuture<'_, Value>> = Vec::new();
    for n in 0..10 {
        let members = if n % 2 == 0 { &forward } else { &backward };
        work.push(Box::pin(engine.batch(&su, members, Vec::new(), timeout)));
        for _ in 0..3 {
            let single = async {
                let body = json!({"views+": 1})
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                let c = engine.snapshot.get("posts").expect("posts");
                let s = engine.snapshot.clone();
                let updated = super::update(
                    engine.backend(),
                    s,
                    c,
                    su.clone(),
                    P1.into(),
                    body,
                    Vec::new(),
                )
                .await;
                outcome(updated, "a single increment")
            };
            work.push(Box::pin(single));
        }
    }
    for answer in join_all(work).await {
        assert!(answer.get("failed").is_none(), "{answer}");
    }
    let posts = engine.rows("posts").await;
    assert_eq!(posts["items"][0]["views"], json!(40), "p1: {posts}");
    assert_eq!(posts["items"][1]["views"], json!(10), "p2: {posts}");
}

#[test]
fn batches_racing_single_updates_lose_no_increment_on_both_engines() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tmp");
    rt.block_on(racing(&sqlite_engine(&rt, &dir)));
    let Some((_schema, db)) = postgres_db() else {
        return;
    };
    rt.block_on(async { racing(&Engine::setup(db).await).await });
}

/// Truncates refused by a required reference, then with cascades, cleared
/// references and files: answers and tables.
async fn truncating(engine: &Engine) -> Vec<(String, Value)> {
    engine.seed().await;
    let su = Caller::superuser();
    let file = engine.upload("files", "t.txt", b"goes with p3").await;
    let p3 = json!({"id": P3, "owner": ALICE});
    outcome(engine.create_with("posts", &su, p3, vec![file]).await, "p3");
    let truncate = |name: &str| {
        let collection = engine.snapshot.get(name).expect("collection");
        let s = engine.snapshot.clone();
        async move {
            let done = super::truncate(engine.backend(), s, collection).await;
            outcome(done.map(|()| json!("truncated")), "truncate")
        }
    };
    let mut out = Vec::new();
    out.push(("posts with a pin".to_owned(), truncate("posts").await));
    out.push(("tables after the refusal".to_owned(), engine.tables().await));
    out.push(("blobs after the refusal".to_owned(), json!(engine.blobs())));
    out.push(("pins".to_owned(), truncate("pins").await));
    out.push(("posts".to_owned(), truncate("posts").await));
    out.push(("tables after".to_owned(), engine.tables().await));
    out.push(("blobs after".to_owned(), json!(engine.blobs())));
    out.push(("post_stats".to_owned(), truncate("post_stats").await));
    out.push(("users".to_owned(), truncate("users").await));
    let users = engine.rows("users").await["totalItems"].clone();
    out.push(("users left".to_owned(), users));
    out
}

#[test]
fn truncate_with_cascades_leaves_the_same_rows_on_both_engines() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tmp");
    let on_sqlite = rt.block_on(truncating(&sqlite_engine(&rt, &dir)));
    let answer = |label: &str| {
        on_sqlite
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no answer for {label}"))
    };
    assert_eq!(answer("posts with a pin")["status"], json!(400));
    assert_eq!(answer("blobs after the refusal"), json!(1));
    assert_eq!(answer("posts"), json!("truncated"));
    let tables = answer("tables after");
    for (name, left) in [("posts", 0), ("comments", 0), ("notes", 1), ("boards", 1)] {
        assert_eq!(tables[name]["totalItems"], json!(left), "{name}: {tables}");
    }
    assert_eq!(tables["boards"]["items"][0]["posts"], json!([]), "cleared");
    assert_eq!(
        tables["likes"]["totalItems"],
        json!(0),
        "cascaded: {tables}"
    );
    assert_eq!(answer("blobs after"), json!(0), "p3's file removed");
    assert_eq!(answer("post_stats")["status"], json!(400), "a view");
    assert_eq!(answer("users left"), json!(0));
    let Some((_schema, db)) = postgres_db() else {
        return;
    };
    let on_pg = rt.block_on(async { truncating(&Engine::setup(db).await).await });
    same(&on_sqlite, &on_pg);
}

/// A batch whose deadline has passed writes nothing and blames no member.
async fn late(engine: &Engine) {
    engine.seed().await;
    let before = engine.tables().await;
    let member = Member::Update("posts", P1, json!({"views+": 1}));
    let (write, _) = engine
        .prepare(&Caller::superuser(), &member, Vec::new())
        .await
        .expect("prepared");
    let deadline = Instant::now();
    let applied = apply_batch(&engine.db, engine.snapshot.clone(), vec![write], deadline).await;
    assert!(
        matches!(applied, Err(BatchAbort::Timeout)),
        "{:?}",
        applied.err()
    );
    assert_eq!(engine.tables().await, before, "nothing written");
}

#[test]
fn a_batch_past_its_deadline_writes_nothing_on_both_engines() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tmp");
    rt.block_on(late(&sqlite_engine(&rt, &dir)));
    let Some((_schema, db)) = postgres_db() else {
        return;
    };
    rt.block_on(async { late(&Engine::setup(db).await).await });
}

/// How many realtime changes each truncate notes when clients listen.
async fn announced(engine: &Engine) -> Vec<usize> {
    engine.seed().await;
    let mut counts = Vec::new();
    // The pin first: it is a required reference to p2.
    for name in ["comments", "pins", "posts"] {
        let collection = engine.snapshot.get(name).expect("collection");
        let snapshot = engine.snapshot.clone();
        let done = match engine.db.dialect() {
            crate::rules::Dialect::Sqlite => {
                super::truncate::on_sqlite(&engine.db, snapshot, collection, true).await
            }
            crate::rules::Dialect::Postgres => {
                let truncate = move |conn: &mut dyn crate::db::Conn| {
                    super::truncate::on_postgres(conn, &snapshot, &collection, true)
                };
                engine.db.write_conn(truncate).await
            }
        };
        let (_, changes) = done.expect("truncated");
        counts.push(changes.len());
    }
    counts
}

#[test]
fn truncate_notes_a_change_per_deleted_record_on_both_engines() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tmp");
    let on_sqlite = rt.block_on(announced(&sqlite_engine(&rt, &dir)));
    assert_eq!(on_sqlite[..2], [1, 1], "{on_sqlite:?}");
    assert!(
        on_sqlite[2] >= 2,
        "p1, p2 and what they took along: {on_sqlite:?}"
    );
    let Some((_schema, db)) = postgres_db() else {
        return;
    };
    let on_pg = rt.block_on(async { announced(&Engine::setup(db).await).await });
    assert_eq!(on_pg, on_sqlite);
}

/// Sequential batches of 10 creates by a superuser, per batch and per member.
#[test]
#[ignore = "a measurement, not a check"]
fn batch_latency() {
    const BATCHES: usize = 50;
    const MEMBERS: usize = 10;
    async fn measure(engine: &Engine, label: &str) {
        engine.seed().await;
        let su = Caller::superuser();
        let started = Instant::now();
        for b in 0..BATCHES {
            let members: Vec<Member> = (0..MEMBERS)
                .map(|m| {
                    Member::Create("comments", json!({"text": format!("{b}/{m}"), "post": P1}))
                })
                .collect();
            let answer = engine
                .batch(&su, &members, Vec::new(), Duration::from_secs(10))
                .await;
            assert!(answer.is_array(), "{answer}");
        }
        let per_batch = started.elapsed() / BATCHES as u32;
        let per_member = per_batch / MEMBERS as u32;
        println!(
            "{label}: {per_batch:?} per batch of {MEMBERS} creates, {per_member:?} per member"
        );
    }
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tmp");
    rt.block_on(measure(&sqlite_engine(&rt, &dir), "sqlite"));
    if let Some((_schema, db)) = postgres_db() {
        rt.block_on(async { measure(&Engine::setup(db).await, "postgres").await });
    }
}
