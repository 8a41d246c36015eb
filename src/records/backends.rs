//! The read actions answer the same on SQLite and on PostgreSQL (the
//! throwaway server of the test command): collections of every field kind
//! and rule shape are created through `schema::create` on both, the same
//! rows are written with raw SQL, and for every actor × filter × sort ×
//! page the JSON of `list` (and of `view` for every id, a forged one too)
//! must be equal, refusals included, and so must expansions along
//! relations and back-relations.

use super::{
    Caller, ExpandTree, ListQuery, RecordError, expand, list, list_json, list_searched,
    matches_rule, view, view_as_owner,
};
use crate::config::DatabaseConfig;
use crate::db::{Conn, Db, DbError};
use crate::pg_testing::{PgSchema, assert_same_json, server};
use crate::rules::SqlValue;
use crate::schema::{Registry, Snapshot};
use serde_json::{Map, Value, json};
use std::sync::Arc;

pub(super) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

const USERS: &str = "_pb_users_auth_";

/// Collections with every field kind and the rule shapes to compare.
fn collections() -> Vec<Value> {
    let owner_or_public =
        "published = true || owner = @request.auth.id || editors ?= @request.auth.id";
    vec![
        json!({
            "id": "pbc_posts", "name": "posts",
            "listRule": owner_or_public,
            "viewRule": "@request.auth.id != '' && (owner = @request.auth.id || editors.id ?= @request.auth.id || published = true)",
            "fields": [
                {"id": "f_title", "name": "title", "type": "text"},
                {"id": "f_views", "name": "views", "type": "number"},
                {"id": "f_score", "name": "score", "type": "number"},
                {"id": "f_pub", "name": "published", "type": "bool"},
                {"id": "f_meta", "name": "meta", "type": "json"},
                {"id": "f_tags", "name": "tags", "type": "select", "values": ["red", "blue", "banned"], "maxSelect": 3},
                {"id": "f_owner", "name": "owner", "type": "relation", "collectionId": USERS, "maxSelect": 1},
                {"id": "f_editors", "name": "editors", "type": "relation", "collectionId": USERS, "maxSelect": 5},
                {"id": "f_secret", "name": "secret", "type": "text", "hidden": true},
                {"id": "f_when", "name": "when", "type": "date"},
                {"id": "f_geo", "name": "geo", "type": "geoPoint"},
                {"id": "f_created", "name": "created", "type": "autodate", "onCreate": true},
                {"id": "f_updated", "name": "updated", "type": "autodate", "onCreate": true, "onUpdate": true},
            ],
        }),
        json!({
            "id": "pbc_notes", "name": "notes", "listRule": "", "viewRule": null,
            "fields": [
                {"id": "f_ntext", "name": "text", "type": "text"},
                {"id": "f_npost", "name": "post", "type": "relation", "collectionId": "pbc_posts", "maxSelect": 1},
            ],
        }),
        json!({
            "id": "pbc_comments", "name": "comments",
            "listRule": "post.published = true && post.owner.verified = true && post.tags:each != 'banned'",
            "viewRule": "@request.auth.verified = true",
            "fields": [
                {"id": "f_ctext", "name": "text", "type": "text"},
                {"id": "f_cpost", "name": "post", "type": "relation", "collectionId": "pbc_posts", "maxSelect": 1},
            ],
        }),
        json!({
            "id": "pbc_stats", "name": "post_stats", "type": "view",
            "listRule": "", "viewRule": "",
            "viewQuery": "SELECT id, title, views FROM posts",
        }),
    ]
}

/// A post's id, title, views, score, published literal, meta, tags, owner
/// and editors.
type Post<'a> = (
    &'a str,
    &'a str,
    SqlValue,
    SqlValue,
    &'a str,
    Option<&'a str>,
    &'a str,
    &'a str,
    &'a str,
);

/// The rows of both engines, written with raw SQL (record writes are not
/// ported yet). Booleans as literals, which both engines read.
fn write_rows(c: &mut dyn Conn) -> Result<(), DbError> {
    let t = |s: &str| SqlValue::Text(s.to_owned());
    for (id, email, visible, verified, name) in [
        (
            "u1aaaaaaaaaaaaa",
            "alice@example.com",
            "TRUE",
            "TRUE",
            "alice",
        ),
        (
            "u2bbbbbbbbbbbbb",
            "bob@example.com",
            "FALSE",
            "FALSE",
            "bob",
        ),
        (
            "u3ccccccccccccc",
            "carol@example.com",
            "FALSE",
            "TRUE",
            "carol",
        ),
    ] {
        c.execute(
            &format!(
                "INSERT INTO users (id, email, \"emailVisibility\", verified, name, password, \
                 \"tokenKey\", created, updated) VALUES (?1, ?2, {visible}, {verified}, ?3, 'hash', ?4, \
                 '2024-01-01 00:00:00.000Z', '2024-01-02 00:00:00.000Z')"
            ),
            &[t(id), t(email), t(name), t(&format!("key{id}"))],
        )?;
    }
    let posts: [Post; 6] = [
        (
            "p1",
            "first post",
            SqlValue::Integer(5),
            SqlValue::Real(2.5),
            "TRUE",
            Some(r#"{"color":"blue","n":1.5,"k":[1,2],"z":{"b":1,"a":2}}"#),
            r#"["red"]"#,
            "u1aaaaaaaaaaaaa",
            r#"["u2bbbbbbbbbbbbb"]"#,
        ),
        (
            "p2",
            "second post",
            SqlValue::Integer(1),
            SqlValue::Real(0.1 + 0.2),
            "FALSE",
            Some(r#"{"color":"red","n":1.0}"#),
            r#"["red","blue"]"#,
            "u1aaaaaaaaaaaaa",
            "[]",
        ),
        (
            "p3",
            "Third",
            SqlValue::Integer(12),
            SqlValue::Integer(3),
            "FALSE",
            None,
            "[]",
            "u2bbbbbbbbbbbbb",
            r#"["u1aaaaaaaaaaaaa","u3ccccccccccccc"]"#,
        ),
        (
            "p4",
            "fourth POST",
            SqlValue::Real(7.0),
            SqlValue::Real(-1.25),
            "TRUE",
            Some("[1,2,3]"),
            r#"["banned"]"#,
            "u3ccccccccccccc",
            "[]",
        ),
        (
            "p5",
            "",
            SqlValue::Integer(0),
            SqlValue::Real(1e21),
            "TRUE",
            Some("\"text\""),
            r#"["blue"]"#,
            "",
            "[]",
        ),
        (
            "p6",
            "sixth",
            SqlValue::Integer(5),
            SqlValue::Real(2.5),
            "FALSE",
            Some("null"),
            "[]",
            "u2bbbbbbbbbbbbb",
            r#"["u2bbbbbbbbbbbbb"]"#,
        ),
    ];
    for (n, (id, title, views, score, published, meta, tags, owner, editors)) in
        posts.into_iter().enumerate()
    {
        let created = format!("2024-03-0{} 10:00:00.000Z", n + 1);
        c.execute(
            &format!(
                "INSERT INTO posts (id, title, views, score, published, meta, tags, owner, editors, \
                 secret, \"when\", geo, created, updated) VALUES (?1, ?2, ?3, ?4, {published}, ?5, ?6, \
                 ?7, ?8, ?9, ?10, ?11, ?12, ?12)"
            ),
            &[
                t(id),
                t(title),
                views,
                score,
                meta.map_or(SqlValue::Null, t),
                t(tags),
                t(owner),
                t(editors),
                t(&format!("secret of {id}")),
                t(if n % 2 == 0 { "2023-05-06 07:08:09.123Z" } else { "" }),
                t(&format!(r#"{{"lon":{n}.5,"lat":-{}}}"#, n + 1)),
                t(&created),
            ],
        )?;
    }
    for (id, post) in [("n1", "p1"), ("n2", "p3")] {
        c.execute(
            "INSERT INTO notes (id, text, post) VALUES (?1, ?2, ?3)",
            &[t(id), t(&format!("note {id}")), t(post)],
        )?;
    }
    for (id, post) in [("c1", "p1"), ("c2", "p2"), ("c3", "p4"), ("c4", "p1")] {
        c.execute(
            "INSERT INTO comments (id, text, post) VALUES (?1, ?2, ?3)",
            &[t(id), t(&format!("comment {id}")), t(post)],
        )?;
    }
    Ok(())
}

/// A signed-in user of `users` with the fields rules may read.
pub(super) fn user(id: &str, verified: bool) -> Caller {
    let mut fields = Map::new();
    fields.insert("id".into(), json!(id));
    fields.insert("verified".into(), json!(verified));
    Caller {
        auth: Some((USERS.into(), "users".into(), id.into())),
        auth_fields: fields,
        ..guest()
    }
}

pub(super) fn guest() -> Caller {
    Caller {
        method: "GET".into(),
        context: "default",
        ..Caller::default()
    }
}

pub(super) fn actors() -> [(&'static str, Caller); 4] {
    [
        ("guest", guest()),
        ("alice", user("u1aaaaaaaaaaaaa", true)),
        ("bob", user("u2bbbbbbbbbbbbb", false)),
        ("superuser", Caller::superuser()),
    ]
}

const FILTERS: [&str; 20] = [
    "",
    "title ~ 'post'",
    "views > 2",
    "views = '5'",
    "score >= 1.5",
    "published = true",
    "tags ?= 'red'",
    "tags:each = 'red'",
    "tags:length > 1",
    "owner.name = 'alice'",
    "editors.name ?= 'bob'",
    "meta.color = 'blue'",
    "meta.n = 1",
    "when != ''",
    "created > '2024-03-03'",
    "secret = 'secret of p1'",
    "title = 'a' ||",
    "@request.auth.id != ''",
    "nosuchfield = 1",
    "geo.lat < -3",
];

const SORTS: [&str; 7] = [
    "",
    "-views,id",
    "title",
    "-score,id",
    "owner.name,-created",
    "-created",
    "@rank",
];

/// (page, perPage, skipTotal)
const PAGES: [(&str, &str, &str); 4] = [
    ("1", "2", ""),
    ("2", "2", ""),
    ("1", "100000", "true"),
    ("3", "", ""),
];

/// An answer or refusal as the client sees it (the envelope's status and
/// message; a database error fails the test on the spot).
pub(super) fn outcome(result: Result<Value, RecordError>, what: &str) -> Value {
    match result {
        Ok(v) => v,
        Err(RecordError::Db(e)) => panic!("{what}: database error {e}"),
        Err(e) => {
            let reason = e.to_string();
            let mut envelope = crate::api::ApiError::from(e).envelope();
            envelope["reason"] = json!(reason);
            envelope
        }
    }
}

pub(super) struct Engine {
    pub(super) db: Db,
    pub(super) snapshot: Arc<Snapshot>,
}

impl Engine {
    pub(super) async fn setup(db: Db) -> Self {
        let registry = Registry::default();
        let defs = db
            .read_conn(|c| crate::schema::read_all(c))
            .await
            .expect("collections");
        registry.replace(Snapshot::build(defs).expect("snapshot"));
        for input in collections() {
            crate::schema::create(&db, &registry, input)
                .await
                .expect("collection");
        }
        db.write_conn(write_rows).await.expect("rows");
        Self {
            db,
            snapshot: registry.snapshot(),
        }
    }

    async fn list(&self, name: &str, caller: &Caller, params: &[(&str, &str)]) -> Value {
        let collection = self.snapshot.get(name).expect("collection");
        let params = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let query = match super::parse_list_query(&params) {
            Ok(q) => q,
            Err(e) => return outcome(Err(e), "query"),
        };
        let page = list(
            &self.db,
            self.snapshot.clone(),
            collection,
            caller.clone(),
            query,
        )
        .await;
        outcome(page.map(|p| p.into_value()), &format!("{name} {params:?}"))
    }

    /// A list's items expanded along `paths`.
    async fn expanded(&self, name: &str, caller: &Caller, sort: &str, paths: &str) -> Value {
        let collection = self.snapshot.get(name).expect("collection");
        let query = ListQuery {
            page: 1,
            per_page: 100,
            sort: sort.into(),
            filter: String::new(),
            skip_total: true,
        };
        let page = list(
            &self.db,
            self.snapshot.clone(),
            collection.clone(),
            caller.clone(),
            query,
        )
        .await;
        let tree = ExpandTree::parse(paths).expect("expand paths");
        let items = match page {
            Ok(page) => {
                expand(
                    &self.db,
                    self.snapshot.clone(),
                    collection,
                    caller.clone(),
                    page.items,
                    tree,
                )
                .await
            }
            Err(e) => Err(e),
        };
        outcome(items.map(Value::Array), &format!("expand {name} {paths}"))
    }

    /// Whether record `id` passes `rule` for `caller` (an MFA rule, say).
    async fn matches(&self, name: &str, caller: &Caller, id: &str, rule: &str) -> Value {
        let collection = self.snapshot.get(name).expect("collection");
        let matched = matches_rule(
            &self.db,
            self.snapshot.clone(),
            collection,
            caller.clone(),
            id.into(),
            rule.into(),
        )
        .await;
        outcome(matched.map(Value::Bool), &format!("{name}/{id} {rule}"))
    }

    async fn view(&self, name: &str, caller: &Caller, id: &str) -> Value {
        let collection = self.snapshot.get(name).expect("collection");
        let record = view(
            &self.db,
            self.snapshot.clone(),
            collection,
            caller.clone(),
            id.into(),
        )
        .await;
        outcome(record, &format!("view {name}/{id:?}"))
    }

    /// Every answer of the matrix, labelled.
    async fn answers(&self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for (who, caller) in actors() {
            for filter in FILTERS {
                for sort in SORTS {
                    for (page, per_page, skip) in PAGES {
                        let params = [
                            ("filter", filter),
                            ("sort", sort),
                            ("page", page),
                            ("perPage", per_page),
                            ("skipTotal", skip),
                        ];
                        let label = format!("{who} posts {params:?}");
                        out.push((label, self.list("posts", &caller, &params).await));
                    }
                }
            }
            let long = format!("title = '{}'", "x".repeat(10_000));
            let deep = format!("{}views > 1{}", "(".repeat(64), ")".repeat(64));
            let wide = vec!["views != 3"; 300].join(" && ");
            for (filter, why) in [
                (long, "past the size limit"),
                (deep, "nested"),
                (wide, "wide"),
            ] {
                let params = [("filter", filter.as_str()), ("perPage", "100000")];
                let label = format!("{who} posts {why} filter");
                out.push((label, self.list("posts", &caller, &params).await));
            }
            for name in ["users", "notes", "comments", "post_stats"] {
                for (filter, sort) in [("", "id"), ("id != 'x'", "-id"), ("email ~ 'example'", "")]
                {
                    let params = [("filter", filter), ("sort", sort)];
                    let label = format!("{who} {name} {params:?}");
                    out.push((label, self.list(name, &caller, &params).await));
                }
            }
            for (name, sort, paths) in [
                ("posts", "id", "owner,editors"),
                (
                    "posts",
                    "-id",
                    "notes_via_post,comments_via_post.post.owner",
                ),
                ("users", "id", "posts_via_owner.editors,posts_via_editors"),
                ("comments", "id", "post.owner,post.editors.posts_via_owner"),
                ("notes", "", "post,nosuch"),
            ] {
                let label = format!("{who} expand {name} {paths}");
                out.push((label, self.expanded(name, &caller, sort, paths).await));
            }
            for (name, id, rule) in [
                ("posts", "p2", "owner = @request.auth.id"),
                ("posts", "p3", "editors.verified ?= true && views > 10"),
                ("users", "u2bbbbbbbbbbbbb", "verified = false"),
                ("posts", "p1", "title = 'a' ||"),
            ] {
                let label = format!("{who} rule {name}/{id} {rule:?}");
                out.push((label, self.matches(name, &caller, id, rule).await));
            }
            for id in ["u1aaaaaaaaaaaaa", "u2bbbbbbbbbbbbb", "nosuchuser00000"] {
                let label = format!("{who} as owner users/{id}");
                let users = self.snapshot.get("users").expect("users");
                let record = view_as_owner(&self.db, users, caller.clone(), id.into()).await;
                out.push((label.clone(), outcome(record, &label)));
            }
            for (name, id) in [
                ("posts", "p1"),
                ("posts", "p2"),
                ("posts", "p3"),
                ("posts", "p5"),
                ("posts", "p1' OR '1'='1"),
                ("posts", "p1\0"),
                ("posts", ""),
                ("users", "u1aaaaaaaaaaaaa"),
                ("users", "u2bbbbbbbbbbbbb"),
                ("notes", "n1"),
                ("comments", "c1"),
                ("post_stats", "p4"),
            ] {
                let label = format!("{who} view {name}/{id:?}");
                out.push((label, self.view(name, &caller, id).await));
            }
        }
        out
    }
}

fn sqlite_answers(rt: &tokio::runtime::Runtime) -> Vec<(String, Value)> {
    let dir = tempfile::tempdir().expect("tmp");
    let db = Db::open(dir.path(), &DatabaseConfig::default()).expect("open");
    rt.block_on(async { Engine::setup(db).await.answers().await })
}

#[test]
fn views_and_lists_answer_the_same_on_both_engines() {
    let rt = runtime();
    let on_sqlite = sqlite_answers(&rt);
    let refused = on_sqlite
        .iter()
        .filter(|(_, v)| v.get("status").is_some())
        .count();
    assert!(
        refused > 0 && refused < on_sqlite.len() / 2,
        "the matrix holds answers and refusals ({refused} of {})",
        on_sqlite.len()
    );
    let answer = |label: &str| {
        on_sqlite
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no answer for {label}"))
    };
    let status = |label: &str| answer(label)["status"].as_u64().unwrap_or(200);
    let listed = |label: &str| answer(label)["items"].as_array().map_or(0, Vec::len);
    let all = r#"[("filter", ""), ("sort", ""), ("page", "1"), ("perPage", "100000"), ("skipTotal", "true")]"#;
    let secret = r#"[("filter", "secret = 'secret of p1'"), ("sort", ""), ("page", "1"), ("perPage", "2"), ("skipTotal", "")]"#;
    for (label, want, why) in [
        (
            "guest view posts/\"p1\"",
            404,
            "the view rule needs a signed-in caller",
        ),
        ("bob view posts/\"p1\"", 200, "bob edits p1"),
        ("bob view posts/\"p2\"", 404, "alice's unpublished post"),
        (
            "alice view posts/\"p1' OR '1'='1\"",
            404,
            "a forged id matches nothing",
        ),
        (
            "alice view posts/\"p1\\0\"",
            404,
            "an id with NUL matches nothing",
        ),
        (
            "alice view notes/\"n1\"",
            403,
            "a null view rule: superusers only",
        ),
        ("bob view comments/\"c1\"", 404, "bob is not verified"),
        ("alice view comments/\"c1\"", 200, "alice is verified"),
        (
            &format!("bob posts {secret}"),
            400,
            "a hidden field is not filterable",
        ),
        (
            &format!("superuser posts {secret}"),
            200,
            "superusers filter on anything",
        ),
    ] {
        assert_eq!(status(label), want, "{label}: {why}");
    }
    assert_eq!(
        listed(&format!("guest posts {all}")),
        3,
        "the published posts"
    );
    assert_eq!(
        listed(&format!("bob posts {all}")),
        5,
        "published, owned, edited"
    );
    assert_eq!(listed(&format!("superuser posts {all}")), 6);
    assert!(
        !answer("superuser view posts/\"p1\"")["secret"].is_null()
            && answer("alice view posts/\"p1\"")["secret"].is_null(),
        "hidden fields show to superusers only"
    );
    let posts = answer("superuser expand posts owner,editors");
    assert_eq!(posts[0]["expand"]["owner"]["name"], "alice", "{posts}");
    assert_eq!(posts[2]["expand"]["editors"][1]["id"], "u3ccccccccccccc");
    let back = answer("superuser expand posts notes_via_post,comments_via_post.post.owner");
    assert_eq!(
        back[5]["expand"]["comments_via_post"][1]["expand"]["post"]["expand"]["owner"]["id"],
        "u1aaaaaaaaaaaaa",
        "nested back-relation, in insertion order: {back}"
    );
    let guest = answer("guest expand comments post.owner,post.editors.posts_via_owner");
    assert!(
        guest[0]["expand"].get("post").is_none(),
        "the posts' view rule hides them from guests: {guest}"
    );
    for who in ["guest", "superuser"] {
        assert_eq!(
            status(&format!("{who} posts past the size limit filter")),
            400,
            "a filter past MAX_FILTER_BYTES"
        );
    }
    let owner_rule = r#"rule posts/p2 "owner = @request.auth.id""#;
    assert_eq!(answer(&format!("alice {owner_rule}")), json!(true));
    assert_eq!(answer(&format!("bob {owner_rule}")), json!(false));
    assert_eq!(
        answer("bob as owner users/u2bbbbbbbbbbbbb")["email"],
        "bob@example.com",
        "bob sees his own email"
    );
    assert!(
        answer("alice as owner users/u2bbbbbbbbbbbbb")
            .get("email")
            .is_none(),
        "bob's email is not visible to alice"
    );
    assert_eq!(answer("bob as owner users/nosuchuser00000")["status"], 404);
    let Some(base) = server() else { return };
    let schema = PgSchema::open(&base);
    let url = schema.url(&base);
    crate::dbcopy::initialise(&url).expect("system tables");
    let db = Db::open_postgres(&url, &DatabaseConfig::default()).expect("open");
    let on_pg = rt.block_on(async { Engine::setup(db).await.answers().await });
    assert_same_json(&on_sqlite, &on_pg);
}

#[test]
fn search_is_refused_on_postgres_with_a_clear_400() {
    let rt = runtime();
    let Some(base) = server() else { return };
    let schema = PgSchema::open(&base);
    let url = schema.url(&base);
    crate::dbcopy::initialise(&url).expect("system tables");
    let db = Db::open_postgres(&url, &DatabaseConfig::default()).expect("open");
    rt.block_on(async {
        let engine = Engine::setup(db).await;
        let posts = engine.snapshot.get("posts").expect("posts");
        let query = ListQuery {
            page: 1,
            per_page: 30,
            sort: String::new(),
            filter: String::new(),
            skip_total: false,
        };
        let searched = list_searched(
            &engine.db,
            engine.snapshot.clone(),
            posts.clone(),
            Caller::superuser(),
            query.clone(),
            "post",
        )
        .await;
        let searched = outcome(searched.map(|p| p.into_value()), "search");
        assert_eq!(searched["status"], 400, "{searched}");
        assert!(
            searched.to_string().contains("SQLite-only"),
            "the message says why: {searched}"
        );

        // The direct JSON writer's entry point answers the value path's bytes.
        let plain = list(
            &engine.db,
            engine.snapshot.clone(),
            posts.clone(),
            Caller::superuser(),
            query.clone(),
        )
        .await
        .expect("list");
        let direct = list_json(
            &engine.db,
            engine.snapshot.clone(),
            posts,
            Caller::superuser(),
            query,
            "",
        )
        .await
        .expect("list_json");
        assert_eq!(
            serde_json::from_slice::<Value>(&direct.into_json()).expect("json"),
            plain.into_value()
        );
    });
}
