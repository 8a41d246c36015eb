//! Full-text search (`?search=` on the list endpoint, Ferrobase only): the
//! `searchable` option, the list rule and hidden fields applied to search,
//! random queries checked against a model for every actor, a corpus of
//! FTS5 syntax that must never be a 500, and the index following updates,
//! deletes, cascades, truncation and field changes.

use crate::helpers::{TestApp, TestBackend, spawn_app, status_json};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as PropConfig, TestRunner};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;

pub const VOCAB: [&str; 6] = ["apple", "apricot", "banana", "cherry", "damson", "elder"];
pub const KINDS: [&str; 3] = ["a", "b", "c"];

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Who {
    Guest,
    Alice,
    Bob,
    Super,
}

pub const EVERYONE: [Who; 4] = [Who::Guest, Who::Alice, Who::Bob, Who::Super];

/// One record of the model.
#[derive(Clone, Debug)]
pub struct Doc {
    pub id: String,
    pub owner: Who,
    pub title: Vec<&'static str>,
    pub note: Vec<&'static str>,
    pub kind: &'static str,
    pub amount: i64,
}

/// A server with users alice and bob and a `docs` collection that only the
/// owner (and superusers) may list; `title` is searchable, `note` is
/// searchable but hidden.
pub struct World {
    pub app: TestApp,
    pub alice: (String, String),
    pub bob: (String, String),
    pub docs: Vec<Doc>,
}

impl World {
    pub fn token(&self, who: Who) -> Option<String> {
        match who {
            Who::Guest => None,
            Who::Alice => Some(self.alice.1.clone()),
            Who::Bob => Some(self.bob.1.clone()),
            Who::Super => Some(self.app.superuser_token.clone()),
        }
    }

    /// The records `who` may list.
    pub fn visible(&self, who: Who) -> impl Iterator<Item = &Doc> {
        self.docs
            .iter()
            .filter(move |d| who == Who::Super || (who != Who::Guest && d.owner == who))
    }

    /// Lists `docs` as `who` and returns (status, body).
    pub async fn list(&self, who: Who, query: &[(&str, &str)]) -> (u16, Value) {
        let token = self.token(who);
        let mut q = vec![("perPage", "1000")];
        q.extend_from_slice(query);
        status_json(self.app.list_records("docs", &q, token.as_deref()).await).await
    }
}

async fn sign_up(app: &TestApp, email: &str) -> (String, String) {
    let (status, body) = status_json(
        app.request(
            Method::POST,
            "/api/collections/users/records",
            None,
            Some(json!({"email": email, "password": "secret-pass-1", "passwordConfirm": "secret-pass-1"})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "sign-up: {body}");
    let token = app.login_as("users", email, "secret-pass-1").await;
    (body["id"].as_str().expect("id").to_owned(), token)
}

fn words() -> impl Strategy<Value = Vec<&'static str>> {
    prop::collection::vec(prop::sample::select(VOCAB.to_vec()), 0..4)
}

fn doc_strategy() -> impl Strategy<Value = Doc> {
    (
        prop::sample::select(vec![Who::Alice, Who::Bob]),
        words(),
        words(),
        prop::sample::select(KINDS.to_vec()),
        -50i64..500,
    )
        .prop_map(|(owner, title, note, kind, amount)| Doc {
            id: String::new(),
            owner,
            title,
            note,
            kind,
            amount,
        })
}

/// Builds the world with `count` random records drawn from `runner`.
pub async fn world(runner: &mut TestRunner, count: usize) -> World {
    let app = spawn_app().await;
    let alice = sign_up(&app, "alice@example.com").await;
    let bob = sign_up(&app, "bob@example.com").await;
    let (_, users) = status_json(app.su(Method::GET, "/api/collections/users", None).await).await;
    let rule = "owner = @request.auth.id";
    // Full-text search is SQLite-only: on PostgreSQL (the aggregate tests
    // share this world) the fields are plain text.
    let searchable = TestBackend::current() == TestBackend::Sqlite;
    app.create_collection_ok(json!({
        "name": "docs",
        "listRule": rule, "viewRule": rule,
        "fields": [
            {"name": "owner", "type": "relation", "collectionId": users["id"], "maxSelect": 1},
            {"name": "title", "type": "text", "searchable": searchable, "searchWeight": 4},
            {"name": "note", "type": "text", "hidden": true, "searchable": searchable},
            {"name": "kind", "type": "select", "values": KINDS, "maxSelect": 1},
            {"name": "amount", "type": "number", "onlyInt": true},
            {"name": "created", "type": "autodate", "onCreate": true},
        ]
    }))
    .await;
    let mut docs = Vec::new();
    let strategy = prop::collection::vec(doc_strategy(), count);
    let generated = strategy
        .new_tree(runner)
        .expect("records generate")
        .current();
    for mut doc in generated {
        let owner = if doc.owner == Who::Alice {
            &alice.0
        } else {
            &bob.0
        };
        let saved = app
            .create_record_ok(
                "docs",
                json!({"owner": owner, "title": doc.title.join(" "), "note": doc.note.join(" "),
                       "kind": doc.kind, "amount": doc.amount}),
            )
            .await;
        doc.id = saved["id"].as_str().expect("id").to_owned();
        docs.push(doc);
    }
    World {
        app,
        alice,
        bob,
        docs,
    }
}

pub fn ids(body: &Value) -> BTreeSet<String> {
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect()
}

/// A random search: wanted words (or prefixes), an excluded word, a kind filter.
#[derive(Clone, Debug)]
struct Case {
    who: Who,
    wanted: Vec<(&'static str, bool)>,
    excluded: Option<&'static str>,
    kind: Option<&'static str>,
}

impl Case {
    fn text(&self) -> String {
        let mut parts: Vec<String> = self
            .wanted
            .iter()
            .map(|(w, prefix)| {
                if *prefix {
                    format!("{}*", &w[..2])
                } else {
                    w.to_string()
                }
            })
            .collect();
        if let Some(x) = self.excluded {
            parts.push(format!("-{x}"));
        }
        parts.join(" ")
    }

    fn admits(&self, doc: &Doc) -> bool {
        // Hidden `note` is searched only for superusers.
        let mut words: Vec<&str> = doc.title.clone();
        if self.who == Who::Super {
            words.extend(&doc.note);
        }
        let has = |w: &str, prefix: bool| {
            words.iter().any(|x| {
                if prefix {
                    x.starts_with(&w[..2])
                } else {
                    *x == w
                }
            })
        };
        self.wanted.iter().all(|(w, p)| has(w, *p))
            && self.excluded.is_none_or(|x| !has(x, false))
            && self.kind.is_none_or(|k| doc.kind == k)
    }
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (
        prop::sample::select(EVERYONE.to_vec()),
        prop::collection::vec((prop::sample::select(VOCAB.to_vec()), any::<bool>()), 1..3),
        prop::option::of(prop::sample::select(VOCAB.to_vec())),
        prop::option::of(prop::sample::select(KINDS.to_vec())),
    )
        .prop_map(|(who, wanted, excluded, kind)| Case {
            who,
            wanted,
            excluded,
            kind,
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_returns_exactly_the_matching_records_each_actor_may_list() {
    let mut runner = TestRunner::new(PropConfig {
        cases: 48,
        failure_persistence: None,
        ..PropConfig::default()
    });
    let w = world(&mut runner, 30).await;
    let handle = tokio::runtime::Handle::current();

    let result = runner.run(&case_strategy(), |case| {
        tokio::task::block_in_place(|| {
            handle.block_on(async {
                let text = case.text();
                let filter = case
                    .kind
                    .map(|k| format!("kind = '{k}'"))
                    .unwrap_or_default();
                let (status, body) = w
                    .list(case.who, &[("search", &text), ("filter", &filter)])
                    .await;
                prop_assert_eq!(status, 200, "search {:?}: {}", text, body);
                let want: BTreeSet<String> = w
                    .visible(case.who)
                    .filter(|d| case.admits(d))
                    .map(|d| d.id.clone())
                    .collect();
                prop_assert_eq!(ids(&body), want, "{:?} searching {:?}", case.who, text);
                Ok(())
            })
        })
    });

    if let Err(e) = result {
        panic!("{e}");
    }
}

#[tokio::test]
async fn searchable_option_round_trips_and_is_refused_on_non_text_fields() {
    let app = spawn_app().await;
    let created = app
        .create_collection_ok(json!({"name": "posts", "fields": [
            {"name": "title", "type": "text", "searchable": true, "searchWeight": 2.5},
            {"name": "plain", "type": "text"},
        ]}))
        .await;
    let fields = created["fields"].as_array().expect("fields");
    let title = fields.iter().find(|f| f["name"] == "title").expect("title");
    let plain = fields.iter().find(|f| f["name"] == "plain").expect("plain");
    assert_eq!(title["searchable"], json!(true), "{title}");
    assert_eq!(title["searchWeight"], json!(2.5), "{title}");
    assert!(
        plain.get("searchable").is_none(),
        "a field without the option keeps PocketBase's shape: {plain}"
    );

    for (field, why) in [
        (
            json!({"name": "n", "type": "number", "searchable": true}),
            "number",
        ),
        (
            json!({"name": "b", "type": "bool", "searchable": true}),
            "bool",
        ),
        (
            json!({"name": "t", "type": "text", "searchable": true, "searchWeight": 0}),
            "zero weight",
        ),
        (
            json!({"name": "t", "type": "text", "searchable": true, "searchWeight": -1}),
            "negative weight",
        ),
        (
            json!({"name": "t", "type": "text", "searchable": "yes"}),
            "not a bool",
        ),
    ] {
        let (status, body) = status_json(
            app.create_collection(json!({"name": "bad", "fields": [field]}))
                .await,
        )
        .await;
        assert_eq!(status, 400, "{why} must be refused: {body}");
    }
}

#[tokio::test]
async fn a_hidden_searchable_field_is_searched_only_for_superusers() {
    let mut runner = TestRunner::deterministic();
    let w = world(&mut runner, 0).await;
    let doc = w
        .app
        .create_record_ok(
            "docs",
            json!({"owner": w.alice.0, "title": "public words", "note": "classified"}),
        )
        .await;

    let (status, body) = w.list(Who::Alice, &[("search", "classified")]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        ids(&body).len(),
        0,
        "the owner cannot search a hidden field"
    );
    let (_, body) = w.list(Who::Alice, &[("search", "public")]).await;
    assert_eq!(ids(&body).len(), 1, "the owner finds the visible words");
    let (_, body) = w.list(Who::Super, &[("search", "classified")]).await;
    assert_eq!(
        ids(&body).into_iter().collect::<Vec<_>>(),
        vec![doc["id"].as_str().expect("id").to_owned()],
        "superusers search hidden fields"
    );
}

#[tokio::test]
async fn fts5_syntax_in_a_search_answers_200_or_400_never_500() {
    let mut runner = TestRunner::deterministic();
    let w = world(&mut runner, 5).await;
    let long = "a".repeat(10 * 1024);
    let many = "word ".repeat(100);
    let corpus = [
        "\"",
        "\"\"",
        "*",
        "a*b*",
        "NEAR(",
        "NEAR(apple banana, 2)",
        "AND OR NOT",
        "apple AND",
        "NOT apple",
        "^apple",
        ":",
        "title:apple",
        "c0:apple",
        "{c0 c1} : apple",
        "c1 : apple",
        "(",
        "((apple",
        "apple))",
        "a\0b",
        "\0",
        "-",
        "--apple",
        "-\"",
        "\u{1F600}",
        "\u{1F600} apple",
        "שלום עולם",
        "مرحبا بالعالم",
        "apple\u{202E}elppa",
        "'",
        "';--",
        "\\",
        "+apple",
        "apple\"*\"",
        "\u{FEFF}",
        "\u{0301}",
        "\r\n\t",
        "%",
        "_",
        long.as_str(),
        many.as_str(),
    ];
    for who in [Who::Guest, Who::Alice, Who::Super] {
        for input in corpus {
            let (status, body) = w.list(who, &[("search", input)]).await;
            assert!(
                status == 200 || status == 400,
                "{who:?} searching {:?} got {status}: {body}",
                input.chars().take(40).collect::<String>()
            );
            if status == 400 {
                assert_eq!(body["status"], 400, "the error envelope: {body}");
                assert!(
                    body["data"]["search"].is_object(),
                    "a search field error: {body}"
                );
            }
        }
    }
    // Sorting by rank without a search, and search on a collection without
    // searchable fields, are field errors too.
    let (status, _) = w.list(Who::Super, &[("sort", "@rank")]).await;
    assert_eq!(status, 400, "sort=@rank needs a search");
    let (status, body) = status_json(
        w.app
            .list_records(
                "users",
                &[("search", "alice")],
                Some(&w.app.superuser_token),
            )
            .await,
    )
    .await;
    assert_eq!(status, 400, "users has no searchable field: {body}");
}

#[tokio::test]
async fn sort_by_rank_orders_by_bm25_with_field_weights() {
    let mut runner = TestRunner::deterministic();
    let w = world(&mut runner, 0).await;
    let owner = w.alice.0.clone();
    let in_note = w
        .app
        .create_record_ok(
            "docs",
            json!({"owner": owner, "title": "cherry pie", "note": "cherry cherry cherry"}),
        )
        .await;
    let in_title = w
        .app
        .create_record_ok(
            "docs",
            json!({"owner": owner, "title": "cherry cherry cherry"}),
        )
        .await;
    let weak = w
        .app
        .create_record_ok(
            "docs",
            json!({"owner": owner, "title": "cherry and a great many other words about fruit"}),
        )
        .await;

    let (status, body) = w
        .list(Who::Super, &[("search", "cherry"), ("sort", "@rank")])
        .await;
    assert_eq!(status, 200, "{body}");
    let order: Vec<&str> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["id"].as_str().expect("id"))
        .collect();
    assert_eq!(order.len(), 3, "{body}");
    assert_eq!(
        order[0], in_title["id"],
        "title (weight 4) ranks first: {body}"
    );
    assert_eq!(
        order[2], weak["id"],
        "the long, diluted title ranks last: {body}"
    );
    assert_eq!(order[1], in_note["id"], "{body}");

    let (_, body) = w
        .list(
            Who::Super,
            &[("search", "cherry"), ("sort", "-@rank"), ("perPage", "1")],
        )
        .await;
    assert_eq!(
        body["items"][0]["id"], weak["id"],
        "-@rank reverses: {body}"
    );
    assert_eq!(body["totalItems"], 3, "paging keeps the total: {body}");
}

async fn hits(w: &World, text: &str) -> BTreeSet<String> {
    let (status, body) = w.list(Who::Super, &[("search", text)]).await;
    assert_eq!(status, 200, "search {text:?}: {body}");
    ids(&body)
}

#[tokio::test]
async fn the_index_follows_updates_deletes_cascades_truncation_and_field_changes() {
    let mut runner = TestRunner::deterministic();
    let w = world(&mut runner, 0).await;
    let app = &w.app;
    let (_, docs_def) = status_json(app.su(Method::GET, "/api/collections/docs", None).await).await;
    app.create_collection_ok(json!({"name": "comments", "fields": [
        {"name": "doc", "type": "relation", "collectionId": docs_def["id"], "cascadeDelete": true, "maxSelect": 1},
        {"name": "body", "type": "text", "searchable": true},
    ]}))
    .await;
    let doc = app
        .create_record_ok("docs", json!({"owner": w.alice.0, "title": "apple"}))
        .await;
    let doc_id = doc["id"].as_str().expect("id").to_owned();
    let comment = app
        .create_record_ok("comments", json!({"doc": doc_id, "body": "zebra"}))
        .await;

    // Update: the old word is gone, the new one found.
    let r = app
        .update_record("docs", &doc_id, json!({"title": "banana"}))
        .await;
    assert_eq!(r.status(), 200);
    assert!(hits(&w, "apple").await.is_empty(), "old text still indexed");
    assert_eq!(hits(&w, "banana").await.len(), 1, "new text not indexed");

    // Field rename (a table rebuild renumbers rowids) and a new field.
    let mut fields = docs_def["fields"].as_array().expect("fields").clone();
    for f in fields.iter_mut() {
        if f["name"] == "title" {
            f["name"] = json!("heading");
        }
    }
    fields.push(json!({"name": "extra", "type": "text"}));
    let (status, body) = status_json(
        app.update_collection("docs", json!({"fields": fields}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "rename: {body}");
    assert_eq!(
        hits(&w, "banana").await.len(),
        1,
        "index lost after a rename"
    );
    let second = app
        .create_record_ok(
            "docs",
            json!({"owner": w.alice.0, "heading": "banana split"}),
        )
        .await;
    assert_eq!(
        hits(&w, "banana").await.len(),
        2,
        "new rows after the rebuild"
    );

    // Delete with cascade: the comment's index entry goes with it.
    let r = app.delete_record("docs", &doc_id).await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        hits(&w, "banana").await.into_iter().collect::<Vec<_>>(),
        vec![second["id"].as_str().expect("id").to_owned()]
    );
    let (status, body) = status_json(
        app.list_records(
            "comments",
            &[("search", "zebra")],
            Some(&app.superuser_token),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["totalItems"], 0, "cascaded {comment}: {body}");

    // Truncate.
    let r = app
        .su(Method::DELETE, "/api/collections/docs/truncate", None)
        .await;
    assert_eq!(r.status(), 204);
    assert!(
        hits(&w, "banana").await.is_empty(),
        "truncate left index rows"
    );

    // Turning the option off drops the index: search is refused.
    for f in fields.iter_mut() {
        if let Some(obj) = f.as_object_mut() {
            obj.remove("searchable");
        }
    }
    let (status, body) = status_json(
        app.update_collection("docs", json!({"fields": fields}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = w.list(Who::Super, &[("search", "banana")]).await;
    assert_eq!(status, 400, "no searchable fields left");
}

/// Runs the binary off the runtime, so a just-stopped server can finish
/// releasing the data dir lock meanwhile.
async fn ferrobase(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ferrobase"));
    command.args(args).arg("--dir").arg(dir);
    tokio::task::spawn_blocking(move || command.output().expect("ferrobase runs"))
        .await
        .expect("join")
}

#[tokio::test]
async fn search_reindex_rebuilds_a_lost_index_from_the_table() {
    let tmp = crate::helpers::DataDir::new();
    let app = crate::helpers::spawn_app_in(tmp.path()).await;
    let def = app
        .create_collection_ok(json!({"name": "notes", "listRule": "", "fields": [
            {"name": "body", "type": "text", "searchable": true},
        ]}))
        .await;
    for body in ["alpha beta", "beta gamma", "gamma delta"] {
        app.create_record_ok("notes", json!({"body": body})).await;
    }
    app.stop().await;
    // Lose the index rows behind the triggers' back.
    let fts = format!("_fts_{}", def["id"].as_str().expect("id"));
    let conn = rusqlite::Connection::open(tmp.path().join("data.db")).expect("open");
    conn.execute_batch(&format!("DELETE FROM \"{fts}\""))
        .expect("emptied");
    drop(conn);

    let unknown = ferrobase(tmp.path(), &["search", "reindex", "--collection", "nope"]).await;
    let plain = ferrobase(tmp.path(), &["search", "reindex", "--collection", "users"]).await;
    let done = ferrobase(tmp.path(), &["search", "reindex", "--collection", "notes"]).await;

    assert!(
        !unknown.status.success(),
        "an unknown collection is an error"
    );
    assert!(!plain.status.success(), "users has no searchable field");
    let out = String::from_utf8_lossy(&done.stdout);
    assert!(
        done.status.success(),
        "{out} {}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(out.contains("Reindexed notes: 3 record(s)"), "{out}");
    let wal = std::fs::metadata(tmp.path().join("data.db-wal")).map_or(0, |m| m.len());
    assert_eq!(wal, 0, "the rebuild's WAL is checkpointed and truncated");
    let app = crate::helpers::spawn_app_in(tmp.path()).await;
    let (status, body) =
        status_json(app.list_records("notes", &[("search", "beta")], None).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["totalItems"], 2, "the rebuilt index answers: {body}");
}

#[tokio::test]
async fn search_combines_with_fields_marks_expand_paging_and_skip_total() {
    let mut runner = TestRunner::deterministic();
    let w = world(&mut runner, 0).await;
    let long = format!("{} cherry {}", "filler ".repeat(40), "words ".repeat(40));
    for title in ["Cherry pie", "cherry cherry", long.as_str(), "banana"] {
        w.app
            .create_record_ok(
                "docs",
                json!({"owner": w.alice.0, "title": title, "note": "cherry secret"}),
            )
            .await;
    }

    let (status, body) = w
        .list(
            Who::Alice,
            &[
                ("search", "cherry"),
                ("sort", "@rank"),
                ("fields", "id,title:highlight,owner,expand.owner.email"),
                ("expand", "owner"),
                ("perPage", "2"),
                ("page", "1"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["totalItems"], 3, "{body}");
    let first = &body["items"][0];
    assert_eq!(
        first["title"], "<mark>cherry</mark> <mark>cherry</mark>",
        "{body}"
    );
    assert_eq!(
        first["expand"]["owner"]["email"], "alice@example.com",
        "{body}"
    );
    assert!(
        first.get("note").is_none(),
        "fields keeps only what was asked"
    );

    let (status, body) = w
        .list(
            Who::Alice,
            &[
                ("search", "cherry"),
                ("filter", "title ~ 'filler'"),
                ("fields", "title:snippet"),
                ("skipTotal", "1"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["totalItems"], -1, "{body}");
    let snippet = body["items"][0]["title"].as_str().expect("snippet");
    assert!(snippet.contains("<mark>cherry</mark>"), "{snippet}");
    assert!(
        snippet.len() < 200 && snippet.contains('…'),
        "a short excerpt: {snippet}"
    );

    let (status, body) = w
        .list(
            Who::Alice,
            &[("search", "cherry"), ("fields", "note:highlight")],
        )
        .await;
    assert_eq!(
        status, 400,
        "a hidden field is not marked for a user: {body}"
    );
    let (status, body) = w
        .list(
            Who::Super,
            &[("search", "cherry"), ("fields", "note:highlight")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["items"][0]["note"], "<mark>cherry</mark> secret",
        "{body}"
    );

    // Marked text is HTML: markup stored in a record comes back escaped,
    // with the marks the only tags.
    w.app
        .create_record_ok(
            "docs",
            json!({"owner": w.alice.0, "title": "<img src=x onerror=alert(1)> plum & \"pie\"", "note": "x"}),
        )
        .await;
    for modifier in ["highlight", "snippet"] {
        let fields = format!("title:{modifier}");
        let (status, body) = w
            .list(
                Who::Alice,
                &[("search", "plum"), ("fields", fields.as_str())],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let title = body["items"][0]["title"].as_str().expect("title");
        assert!(
            title.contains(
                "&lt;img src=x onerror=alert(1)&gt; <mark>plum</mark> &amp; &quot;pie&quot;"
            ),
            "{modifier}: {title}"
        );
        assert!(!title.contains("<img"), "{modifier}: {title}");
    }
}

#[tokio::test]
async fn invalid_utf8_in_a_search_is_not_a_500_and_views_refuse_search() {
    let mut runner = TestRunner::deterministic();
    let w = world(&mut runner, 3).await;
    for raw in ["%FF", "%C3%28", "%00", "apple%FFbanana", "%E2%82", "%"] {
        let r = w
            .app
            .su(
                Method::GET,
                &format!("/api/collections/docs/records?search={raw}"),
                None,
            )
            .await;
        let status = r.status().as_u16();
        assert!(status == 200 || status == 400, "search={raw} got {status}");
    }
    w.app
        .create_collection_ok(json!({"name": "doc_view", "type": "view", "listRule": "",
            "viewQuery": "SELECT id, title FROM docs"}))
        .await;
    let (status, body) = status_json(
        w.app
            .list_records("doc_view", &[], Some(&w.app.superuser_token))
            .await,
    )
    .await;
    assert_eq!(
        status, 200,
        "a view over a searchable collection lists: {body}"
    );
    assert_eq!(body["totalItems"], 3, "{body}");
    let (status, body) = status_json(
        w.app
            .list_records(
                "doc_view",
                &[("search", "apple")],
                Some(&w.app.superuser_token),
            )
            .await,
    )
    .await;
    assert_eq!(status, 400, "views have no index: {body}");
}

/// For each vocabulary word: the search hits equal the table's own answer
/// (`~` scans the stored text; no word of `VOCAB` contains another).
async fn assert_index_agrees(w: &World, fields: [&str; 2], when: &str) {
    for word in VOCAB {
        let scan = format!("{} ~ '{word}' || {} ~ '{word}'", fields[0], fields[1]);
        let (_, table) = w.list(Who::Super, &[("filter", &scan)]).await;
        let (status, found) = w.list(Who::Super, &[("search", word)]).await;
        assert_eq!(status, 200, "{found}");
        assert_eq!(ids(&found), ids(&table), "{word:?} after {when}");
    }
}

#[tokio::test]
async fn random_writes_batches_and_a_rebuild_keep_the_index_equal_to_the_table() {
    let mut runner = TestRunner::deterministic();
    let w = world(&mut runner, 6).await;
    let app = &w.app;
    app.su(
        Method::PATCH,
        "/api/settings",
        Some(json!({"batch": {"enabled": true}})),
    )
    .await;
    let ops = prop::collection::vec((0u8..4, words(), 0usize..64), 24)
        .new_tree(&mut runner)
        .expect("ops")
        .current();
    let mut live: Vec<String> = w.docs.iter().map(|d| d.id.clone()).collect();
    let url = |id: &str| format!("/api/collections/docs/records/{id}");
    for (i, (op, text, pick)) in ops.into_iter().enumerate() {
        let text = text.join(" ");
        let target = (!live.is_empty()).then(|| live[pick % live.len()].clone());
        match (op, target) {
            (0, _) | (_, None) => {
                let r = app
                    .create_record_ok("docs", json!({"owner": w.alice.0, "title": text}))
                    .await;
                live.push(r["id"].as_str().expect("id").to_owned());
            }
            (1, Some(id)) => {
                // Half the updates leave the searchable text as it is.
                let body = if pick % 2 == 0 {
                    json!({"title": text, "note": text})
                } else {
                    json!({"amount": pick})
                };
                let r = app.update_record("docs", &id, body).await;
                assert_eq!(r.status(), 200);
            }
            (2, Some(id)) => {
                assert_eq!(app.delete_record("docs", &id).await.status(), 204);
                live.retain(|x| *x != id);
            }
            (_, Some(id)) => {
                // A batch: one create, one update, one delete; every other
                // batch fails on its last request and must leave no trace.
                let fail = i % 2 == 0;
                let last = if fail {
                    json!({"method": "POST", "url": "/api/collections/docs/records", "body": {"amount": "x"}})
                } else {
                    json!({"method": "DELETE", "url": url(&id)})
                };
                let (status, body) = status_json(
                    app.su(Method::POST, "/api/batch", Some(json!({"requests": [
                        {"method": "POST", "url": "/api/collections/docs/records",
                         "body": {"owner": w.bob.0, "title": text, "id": format!("batch{i:010}")}},
                        {"method": "PATCH", "url": url(&id), "body": {"note": text}},
                        last,
                    ]})))
                    .await,
                )
                .await;
                if fail {
                    assert_eq!(status, 400, "{body}");
                } else {
                    assert_eq!(status, 200, "{body}");
                    live.retain(|x| *x != id);
                    live.push(format!("batch{i:010}"));
                }
            }
        }
        if i % 6 == 5 {
            assert_index_agrees(&w, ["title", "note"], &format!("op {i}")).await;
        }
    }

    // A field rename rebuilds the table (new rowids): the index follows.
    let (_, def) = status_json(app.su(Method::GET, "/api/collections/docs", None).await).await;
    let mut fields = def["fields"].as_array().expect("fields").clone();
    for f in fields.iter_mut().filter(|f| f["name"] == "note") {
        f["name"] = json!("remark");
    }
    let (status, body) = status_json(
        app.update_collection("docs", json!({"fields": fields}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_index_agrees(&w, ["title", "remark"], "a field rename").await;
}

/// Writes that arrive together are committed in one writer group, whose
/// index writes are held until just before its commit (`search::held`):
/// creates, updates and deletes of the same group land in order, and a
/// failing batch in the middle of a group takes its index writes with it.
#[tokio::test]
async fn concurrent_writes_committed_in_one_group_keep_the_index_equal_to_the_table() {
    let mut runner = TestRunner::deterministic();
    let w = world(&mut runner, 12).await;
    let app = &w.app;
    app.su(
        Method::PATCH,
        "/api/settings",
        Some(json!({"batch": {"enabled": true}})),
    )
    .await;
    let url = |id: &str| format!("/api/collections/docs/records/{id}");
    let commits_before = group_counters(app).await;
    for round in 0..3 {
        let ids: Vec<String> = w.docs.iter().map(|d| d.id.clone()).collect();
        let mut writes = Vec::new();
        for i in 0..24 {
            let text = format!("{} {}", VOCAB[(i + round) % 6], VOCAB[(i * 5 + round) % 6]);
            let id = format!("grp{round}x{i:010}");
            let request = match i % 4 {
                0 => (
                    Method::POST,
                    "/api/collections/docs/records".to_owned(),
                    json!({"id": id, "owner": w.alice.0, "title": text}),
                ),
                // Each round rewrites the text of the same seeded records.
                1 => (
                    Method::PATCH,
                    url(&ids[i / 4]),
                    json!({"title": text, "note": text}),
                ),
                // A create, then an update of the record it just created, in one group.
                2 => (
                    Method::POST,
                    "/api/batch".to_owned(),
                    json!({"requests": [
                        {"method": "POST", "url": "/api/collections/docs/records",
                         "body": {"id": id, "owner": w.bob.0, "title": "elder"}},
                        {"method": "PATCH", "url": url(&id), "body": {"title": text}},
                    ]}),
                ),
                // A batch whose last request fails: its create must leave no trace.
                _ => (
                    Method::POST,
                    "/api/batch".to_owned(),
                    json!({"requests": [
                        {"method": "POST", "url": "/api/collections/docs/records",
                         "body": {"id": id, "owner": w.bob.0, "title": text}},
                        {"method": "POST", "url": "/api/collections/docs/records",
                         "body": {"amount": "x"}},
                    ]}),
                ),
            };
            writes.push(request);
        }
        let answers = futures_util::future::join_all(writes.into_iter().map(
            |(method, path, body)| async move { app.su(method, &path, Some(body)).await.status() },
        ))
        .await;
        for (i, status) in answers.iter().enumerate() {
            let want = if i % 4 == 3 { 400 } else { 200 };
            assert_eq!(status.as_u16(), want, "write {i} of round {round}");
        }
        // A delete of every other record created this round, all at once.
        let deletes = (0..24).step_by(8).map(|i| {
            let path = url(&format!("grp{round}x{i:010}"));
            async move { app.su(Method::DELETE, &path, None).await.status() }
        });
        for status in futures_util::future::join_all(deletes).await {
            assert_eq!(status.as_u16(), 204);
        }
        assert_index_agrees(&w, ["title", "note"], &format!("round {round}")).await;
        let (_, failed) = w.list(Who::Super, &[("filter", "id ~ 'grp%'")]).await;
        assert_eq!(failed["totalItems"], json!(9 * (round + 1)), "{failed}");
    }
    // The writes really shared groups (else this test proves nothing new).
    let (commits, writes) = group_counters(app).await;
    let (commits, writes) = (commits - commits_before.0, writes - commits_before.1);
    assert!(
        writes > commits,
        "{writes} writes in {commits} group commits"
    );
}

/// `ferrobase_db_group_commits` and `ferrobase_db_grouped_writes` from `/api/metrics`.
async fn group_counters(app: &TestApp) -> (u64, u64) {
    let text = app
        .su(Method::GET, "/api/metrics", None)
        .await
        .text()
        .await
        .expect("metrics");
    let read = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{name} in {text}")) as u64
    };
    (
        read("ferrobase_db_group_commits_total"),
        read("ferrobase_db_grouped_writes_total"),
    )
}

#[tokio::test]
async fn a_trigram_field_finds_substrings_and_folds_diacritics() {
    let app = crate::helpers::spawn_app().await;
    app.create_collection_ok(json!({"name": "parts", "listRule": "", "fields": [
        {"name": "code", "type": "text", "searchable": true, "searchTrigram": true},
    ]}))
    .await;
    for code in ["XJ-4410-Crème", "AB-9921", "xj-5000"] {
        app.create_record_ok("parts", json!({"code": code})).await;
    }
    for (text, want, why) in [
        ("441", 1, "a substring inside a code"),
        ("xj-", 2, "case folded, punctuation kept"),
        ("creme", 1, "diacritics folded"),
        (
            "99 21",
            0,
            "words are ANDed substrings; `99` is too short for a trigram",
        ),
        (
            "xj-*",
            2,
            "a star is harmless (every trigram match is a substring)",
        ),
        ("xj", 0, "terms under three characters find nothing"),
        ("\"b-99\"", 1, "a quoted substring"),
    ] {
        let (status, body) =
            status_json(app.list_records("parts", &[("search", text)], None).await).await;
        assert!(
            status == 200 || status == 400,
            "{text:?} -> {status} {body}"
        );
        if status == 200 {
            assert_eq!(body["totalItems"], want, "{text:?}: {why}: {body}");
        }
    }
}

#[tokio::test]
async fn renaming_and_deleting_a_collection_carries_or_drops_its_index() {
    let mut runner = TestRunner::deterministic();
    let w = world(&mut runner, 0).await;
    let app = &w.app;
    app.create_record_ok("docs", json!({"owner": w.alice.0, "title": "kiwi tart"}))
        .await;

    let (status, body) = status_json(
        app.update_collection("docs", json!({"name": "papers"}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    app.create_record_ok("papers", json!({"owner": w.alice.0, "title": "kiwi jam"}))
        .await;
    let (status, found) = status_json(
        app.list_records("papers", &[("search", "kiwi")], Some(&app.superuser_token))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(
        found["totalItems"], 2,
        "old and new rows after the rename: {found}"
    );

    let r = app
        .su(Method::DELETE, "/api/collections/papers", None)
        .await;
    assert_eq!(r.status(), 204);
    let (_, leftovers) = status_json(
        app.su(
            Method::POST,
            "/api/sql",
            Some(json!({"query": "SELECT count(*) FROM sqlite_master WHERE name LIKE '_fts_%'"})),
        )
        .await,
    )
    .await;
    assert_eq!(
        leftovers["rows"][0][0], "0",
        "index and triggers dropped: {leftovers}"
    );
}

#[tokio::test]
async fn an_imported_collection_with_searchable_fields_is_searchable() {
    let app = crate::helpers::spawn_app().await;
    let (status, body) = status_json(
        app.su(
            Method::PUT,
            "/api/collections/import",
            Some(json!({"deleteMissing": false, "collections": [
                {"name": "faq", "type": "base", "listRule": "", "fields": [
                    {"name": "question", "type": "text", "searchable": true, "searchWeight": 3},
                    {"name": "answer", "type": "editor", "searchable": true},
                ]}
            ]})),
        )
        .await,
    )
    .await;
    assert!(status == 204 || status == 200, "{status}: {body}");
    app.create_record_ok(
        "faq",
        json!({"question": "How do I reset?", "answer": "<p>Use the reset link</p>"}),
    )
    .await;

    let (status, body) = status_json(
        app.list_records("faq", &[("search", "reset link"), ("sort", "@rank")], None)
            .await,
    )
    .await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["totalItems"], 1, "{body}");
}

#[tokio::test]
async fn rows_inserted_by_raw_sql_are_indexed_in_the_same_commit() {
    let mut runner = TestRunner::deterministic();
    let w = world(&mut runner, 0).await;
    let app = &w.app;
    app.create_record_ok("docs", json!({"owner": w.alice.0, "title": "quince tart"}))
        .await;

    let (status, body) = status_json(
        app.su(
            Method::POST,
            "/api/sql",
            Some(json!({"query": format!(
                "INSERT INTO docs (id, owner, title) VALUES ('rawquince000001', '{}', 'quince jam'), \
                 ('rawquince000002', '{}', 'plum jam')", w.alice.0, w.alice.0)})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");

    for (text, want, why) in [
        ("quince", 2, "the API's row and the console's"),
        ("jam", 2, "both console rows"),
        ("plum", 1, "the second console row"),
    ] {
        let (status, found) = status_json(
            app.list_records("docs", &[("search", text)], Some(&app.superuser_token))
                .await,
        )
        .await;
        assert_eq!(status, 200, "{found}");
        assert_eq!(found["totalItems"], want, "{text:?}: {why}: {found}");
    }
    assert_index_agrees(&w, ["title", "note"], "after a raw INSERT").await;
}

/// The `searchFields` of collection `name` and the fields marked `searchable`.
async fn search_lists(app: &TestApp, name: &str) -> (Value, Vec<String>) {
    let (status, c) = status_json(
        app.su(Method::GET, &format!("/api/collections/{name}"), None)
            .await,
    )
    .await;
    assert_eq!(status, 200, "{c}");
    let marked = c["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter(|f| f["searchable"] == true)
        .map(|f| f["name"].as_str().expect("name").to_owned())
        .collect();
    (c["searchFields"].clone(), marked)
}

#[tokio::test]
async fn the_collection_level_search_list_sets_and_mirrors_the_field_option() {
    let app = spawn_app().await;
    let (status, body) = status_json(
        app.su(
            Method::POST,
            "/api/collections",
            Some(json!({"name": "faq", "listRule": "", "searchFields": ["question", "answer"],
                "fields": [{"name": "question", "type": "text"}, {"name": "answer", "type": "editor"},
                           {"name": "votes", "type": "number"}]})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["searchFields"],
        json!(["question", "answer"]),
        "{body}"
    );
    app.create_record_ok(
        "faq",
        json!({"question": "How to reset?", "answer": "Use the link"}),
    )
    .await;

    let (status, found) =
        status_json(app.list_records("faq", &[("search", "link")], None).await).await;
    assert_eq!(
        (status, found["totalItems"].clone()),
        (200, json!(1)),
        "{found}"
    );

    let (status, body) = status_json(
        app.update_collection("faq", json!({"searchFields": ["question"]}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        search_lists(&app, "faq").await,
        (json!(["question"]), vec!["question".to_owned()]),
        "one list, derived from the fields"
    );
    let (status, found) =
        status_json(app.list_records("faq", &[("search", "link")], None).await).await;
    assert_eq!(
        (status, found["totalItems"].clone()),
        (200, json!(0)),
        "answer left the index: {found}"
    );
    let (_, found) = status_json(app.list_records("faq", &[("search", "reset")], None).await).await;
    assert_eq!(found["totalItems"], 1, "{found}");

    let (status, body) = status_json(
        app.update_collection("faq", json!({"searchFields": []}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.get("searchFields").is_none(),
        "an empty list is not written: {body}"
    );
    let (status, _) =
        status_json(app.list_records("faq", &[("search", "reset")], None).await).await;
    assert_eq!(status, 400, "no searchable field left");
}

#[tokio::test]
async fn bad_search_lists_are_400_field_errors_and_change_nothing() {
    let app = spawn_app().await;
    let (status, body) = status_json(
        app.su(
            Method::POST,
            "/api/collections",
            Some(json!({"name": "faq", "listRule": "", "fields": [
                {"name": "question", "type": "text", "searchable": true, "searchWeight": 3},
                {"name": "votes", "type": "number"}]})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let before = search_lists(&app, "faq").await;

    for (patch, code, why) in [
        (
            json!({"searchFields": ["nope"]}),
            Some("validation_unknown_search_field"),
            "unknown field",
        ),
        (
            json!({"searchFields": ["votes"]}),
            Some("validation_not_searchable"),
            "a number field",
        ),
        (json!({"searchFields": "question"}), None, "not an array"),
        (json!({"searchFields": [1]}), None, "not names"),
        (
            json!({"searchFields": [], "fields": [
                {"name": "question", "type": "text", "searchable": true},
                {"name": "votes", "type": "number"}]}),
            Some("validation_search_fields_mismatch"),
            "fields and list disagree",
        ),
    ] {
        let (status, body) = status_json(app.update_collection("faq", patch.clone()).await).await;
        assert_eq!(status, 400, "{patch} ({why}): {body}");
        assert_eq!(body["status"], 400, "PocketBase's envelope: {body}");
        if let Some(code) = code {
            assert_eq!(body["data"]["searchFields"]["code"], code, "{why}: {body}");
        }
    }

    let after = search_lists(&app, "faq").await;
    assert_eq!(
        after.0,
        json!(["question"]),
        "still the one searchable field"
    );
    assert_eq!(after.1, before.1, "nothing changed");
    let (_, c) = status_json(app.su(Method::GET, "/api/collections/faq", None).await).await;
    let weight = c["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .find(|f| f["name"] == "question")
        .expect("question")["searchWeight"]
        .clone();
    assert_eq!(
        weight, 3,
        "a listed, already searchable field keeps its weight: {c}"
    );

    let (status, body) = status_json(
        app.su(
            Method::POST,
            "/api/collections",
            Some(
                json!({"name": "v", "type": "view", "listRule": "", "searchFields": ["question"],
                "viewQuery": "SELECT id, question FROM faq"}),
            ),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400, "views have no index: {body}");
    assert_eq!(
        body["data"]["searchFields"]["code"], "validation_not_searchable",
        "{body}"
    );
}

#[tokio::test]
async fn a_hidden_field_listed_as_searchable_stays_superuser_only_and_users_cannot_edit_the_list() {
    let app = spawn_app().await;
    let (status, body) = status_json(
        app.su(
            Method::POST,
            "/api/collections",
            Some(
                json!({"name": "memos", "listRule": "", "searchFields": ["title", "secret"],
                "fields": [{"name": "title", "type": "text"},
                           {"name": "secret", "type": "text", "hidden": true}]}),
            ),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    app.create_record_ok(
        "memos",
        json!({"title": "lunch plans", "secret": "payroll"}),
    )
    .await;
    let (_, user) = sign_up(&app, "mallory@example.com").await;

    for (token, who) in [(None, "guest"), (Some(user.as_str()), "user")] {
        let (status, body) = status_json(
            app.list_records("memos", &[("search", "payroll")], token)
                .await,
        )
        .await;
        assert_eq!(status, 200, "{who}: {body}");
        assert_eq!(
            body["totalItems"], 0,
            "{who} must not find words of a hidden field: {body}"
        );
        let (status, body) = status_json(
            app.list_records(
                "memos",
                &[("search", "lunch"), ("fields", "id,secret:highlight")],
                token,
            )
            .await,
        )
        .await;
        assert_eq!(status, 400, "{who} cannot mark a hidden field: {body}");
        let r = app
            .request(
                Method::PATCH,
                "/api/collections/memos",
                token,
                Some(json!({"searchFields": ["title"]})),
            )
            .await;
        assert!(
            [401, 403].contains(&r.status().as_u16()),
            "{who} cannot edit the list: {}",
            r.status()
        );
    }
    let (_, found) = status_json(
        app.list_records(
            "memos",
            &[("search", "payroll")],
            Some(&app.superuser_token),
        )
        .await,
    )
    .await;
    assert_eq!(found["totalItems"], 1, "superusers search it: {found}");
    assert_eq!(
        search_lists(&app, "memos").await.0,
        json!(["title", "secret"])
    );
}

/// Runs `query` in the SQL console as the superuser; panics unless it is a 200.
async fn console(app: &TestApp, query: &str) -> Value {
    let (status, body) = status_json(
        app.su(Method::POST, "/api/sql", Some(json!({ "query": query })))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{query}: {body}");
    body
}

/// What `search` finds in `docs`, as the superuser, for each word.
async fn totals(app: &TestApp, words: &[&str]) -> Vec<i64> {
    let mut out = Vec::new();
    for word in words {
        let (status, found) = status_json(
            app.list_records("docs", &[("search", word)], Some(&app.superuser_token))
                .await,
        )
        .await;
        assert_eq!(status, 200, "{found}");
        out.push(found["totalItems"].as_i64().expect("total"));
    }
    out
}

#[tokio::test]
async fn rows_updated_and_deleted_by_raw_sql_leave_the_index_in_the_same_commit() {
    let mut runner = TestRunner::deterministic();
    let w = world(&mut runner, 0).await;
    let app = &w.app;
    for title in ["quince tart", "plum jam", "fig roll"] {
        app.create_record_ok("docs", json!({"owner": w.alice.0, "title": title}))
            .await;
    }

    console(
        app,
        "UPDATE docs SET title = 'pear tart' WHERE title = 'quince tart'",
    )
    .await;
    console(app, "delete from DOCS where title = 'plum jam'").await;

    assert_eq!(
        totals(app, &["quince", "pear", "tart", "plum", "fig"]).await,
        [0, 1, 1, 0, 1],
        "quince/pear/tart/plum/fig after the console's update and delete"
    );
}

#[tokio::test]
async fn raw_sql_that_reuses_a_rowid_or_names_one_is_caught_up() {
    let mut runner = TestRunner::deterministic();
    let w = world(&mut runner, 0).await;
    let app = &w.app;
    for title in ["quince tart", "plum jam", "fig roll"] {
        app.create_record_ok("docs", json!({"owner": w.alice.0, "title": title}))
            .await;
    }
    let owner = &w.alice.0;

    // The last row goes and the new one takes its rowid.
    console(
        app,
        &format!(
            "DELETE FROM docs WHERE title = 'fig roll'; \
             INSERT INTO docs (id, owner, title) VALUES ('rawmedlar000001', '{owner}', 'medlar jelly')"
        ),
    )
    .await;
    // A rowid in a gap, below the index's last one.
    console(app, "DELETE FROM docs WHERE title = 'plum jam'").await;
    let gap = console(app, "SELECT min(rowid) + 1 FROM docs").await;
    let gap = gap["rows"][0][0].as_str().expect("rowid").to_owned();
    console(
        app,
        &format!(
            "INSERT INTO docs (rowid, id, owner, title) VALUES ({gap}, 'rawsloe00000001', '{owner}', 'sloe gin')"
        ),
    )
    .await;

    assert_eq!(
        totals(app, &["fig", "medlar", "plum", "sloe", "quince"]).await,
        [0, 1, 0, 1, 1],
        "fig/medlar/plum/sloe/quince"
    );
}

#[tokio::test]
async fn raw_sql_through_a_trigger_of_the_users_own_is_caught_up_too() {
    let mut runner = TestRunner::deterministic();
    let w = world(&mut runner, 0).await;
    let app = &w.app;
    app.create_record_ok("docs", json!({"owner": w.alice.0, "title": "quince tart"}))
        .await;
    // A write to a table the statement does not name.
    console(
        app,
        "CREATE TABLE side (x TEXT); \
         CREATE TRIGGER side_ai AFTER INSERT ON side BEGIN \
           UPDATE docs SET title = new.x; END;",
    )
    .await;

    console(app, "INSERT INTO side VALUES ('medlar jelly')").await;

    assert_eq!(
        totals(app, &["quince", "medlar"]).await,
        [0, 1],
        "the trigger's update of docs is indexed"
    );
}

#[tokio::test]
async fn raw_sql_that_drops_a_searchable_table_is_not_refused_by_the_catch_up() {
    let mut runner = TestRunner::deterministic();
    let w = world(&mut runner, 0).await;
    let app = &w.app;
    app.create_record_ok("docs", json!({"owner": w.alice.0, "title": "quince tart"}))
        .await;
    // A trigger of the user's own makes the catch-up look at every table.
    console(
        app,
        "CREATE TABLE side (x TEXT); \
         CREATE TRIGGER side_ai AFTER INSERT ON side BEGIN SELECT 1; END;",
    )
    .await;

    let body = console(app, "DELETE FROM docs; DROP TABLE docs").await;

    assert!(body.get("affectedRows").is_some(), "{body}");
}

#[tokio::test]
async fn a_create_refused_by_its_rule_after_the_insert_leaves_nothing_in_the_index() {
    let app = spawn_app().await;
    let notes = app
        .create_collection_ok(json!({
            "name": "notes", "listRule": "", "createRule": "title != 'blocked words'",
            "fields": [{"name": "title", "type": "text", "searchable": true}]
        }))
        .await;
    let (_, user) = sign_up(&app, "eve@example.com").await;

    let mut refused = 0;
    for title in ["blocked words", "kept words", "blocked words", "more kept"] {
        let r = app
            .request(
                Method::POST,
                "/api/collections/notes/records",
                Some(&user),
                Some(json!({"title": title})),
            )
            .await;
        if r.status() != 200 {
            assert_eq!(r.status(), 400, "{title:?}");
            refused += 1;
        }
    }
    assert_eq!(refused, 2, "the rule refuses both blocked titles");

    for (text, want) in [("blocked", 0), ("words", 1), ("kept", 2)] {
        let (status, found) = status_json(
            app.list_records("notes", &[("search", text)], Some(&app.superuser_token))
                .await,
        )
        .await;
        assert_eq!(status, 200, "{found}");
        assert_eq!(found["totalItems"], want, "{text:?}: {found}");
    }
    let docsize = format!("_fts_{}_docsize", notes["id"].as_str().expect("id"));
    let (_, rows) = status_json(
        app.su(
            Method::POST,
            "/api/sql",
            Some(json!({"query": format!("SELECT count(*) FROM {docsize}")})),
        )
        .await,
    )
    .await;
    assert_eq!(
        rows["rows"][0][0], "2",
        "one index row per kept record: {rows}"
    );
}

#[tokio::test]
async fn a_database_indexed_by_triggers_is_upgraded_at_start_up() {
    let tmp = crate::helpers::DataDir::new();
    let app = crate::helpers::spawn_app_in(tmp.path()).await;
    let notes = app
        .create_collection_ok(json!({
            "name": "notes", "listRule": "",
            "fields": [{"name": "title", "type": "text", "searchable": true}]
        }))
        .await;
    app.create_record_ok("notes", json!({"title": "old words"}))
        .await;
    app.stop().await;
    // The triggers that earlier versions created with the index.
    let id = notes["id"].as_str().expect("id");
    let conn = rusqlite::Connection::open(tmp.path().join("data.db")).expect("open");
    conn.execute_batch(&format!(
        "CREATE TRIGGER _fts_{id}_ai AFTER INSERT ON notes BEGIN \
         INSERT INTO _fts_{id} (rowid, c0) VALUES (new.rowid, new.title); END; \
         CREATE TRIGGER _fts_{id}_au AFTER UPDATE OF title ON notes BEGIN \
         DELETE FROM _fts_{id} WHERE rowid = old.rowid; \
         INSERT INTO _fts_{id} (rowid, c0) VALUES (new.rowid, new.title); END; \
         CREATE TRIGGER _fts_{id}_ad AFTER DELETE ON notes BEGIN \
         DELETE FROM _fts_{id} WHERE rowid = old.rowid; END;"
    ))
    .expect("old triggers");
    drop(conn);

    let app = crate::helpers::spawn_app_in(tmp.path()).await;
    app.create_record_ok("notes", json!({"title": "new words"}))
        .await;

    let (_, found) = status_json(
        app.list_records("notes", &[("search", "words")], None)
            .await,
    )
    .await;
    assert_eq!(found["totalItems"], 2, "{found}");
    let (_, rows) = status_json(
        app.su(
            Method::POST,
            "/api/sql",
            Some(json!({"query": format!(
                "SELECT (SELECT count(*) FROM _fts_{id}_docsize), \
                 (SELECT count(*) FROM sqlite_schema WHERE type = 'trigger')")})),
        )
        .await,
    )
    .await;
    assert_eq!(
        rows["rows"][0],
        json!(["2", "0"]),
        "indexed once, triggers gone: {rows}"
    );
}
