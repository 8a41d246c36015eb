//! Schema changes run the same on SQLite and on PostgreSQL (the throwaway
//! server of the test command): one script of creates, updates and deletes
//! runs on both, and every definition read back after each step, the rows
//! of the changed table and each refusal are compared between the engines.
//! PostgreSQL's own refusals (inexact retypes, searchable fields, view
//! queries it cannot run) and concurrent changes under the schema lock are
//! tested on PostgreSQL alone.

use serde_json::{Value, json};

use super::super::import;
use super::super::registry::Registry;
use super::super::{Collection, SchemaError};
use super::{create, delete, load_snapshot, read_all, update, validate};
use crate::config::DatabaseConfig;
use crate::db::Db;
use crate::db::postgres::SYSTEM_SCHEMA;
use crate::pg_testing::{PgSchema, server};
use crate::rules::SqlValue;

struct Engine {
    db: Db,
    registry: Registry,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

impl Engine {
    fn sqlite(dir: &std::path::Path, rt: &tokio::runtime::Runtime) -> Self {
        let db = Db::open(dir, &DatabaseConfig::default()).expect("open");
        let registry = Registry::default();
        let snapshot = rt.block_on(db.read(load_snapshot)).expect("snapshot");
        registry.replace(snapshot);
        Self { db, registry }
    }

    /// A PostgreSQL schema with the system tables and the same system
    /// collections as a fresh SQLite data dir (created through the
    /// PostgreSQL create path itself).
    fn postgres(
        schema: &mut PgSchema,
        base: &str,
        system: Vec<Collection>,
        rt: &tokio::runtime::Runtime,
    ) -> Self {
        schema
            .client
            .batch_execute(SYSTEM_SCHEMA)
            .expect("system tables");
        let db = Db::open_postgres(&schema.url(base), &DatabaseConfig::default()).expect("open");
        let registry = Registry::default();
        rt.block_on(super::postgres::commit(&db, &registry, move |conn, _| {
            system
                .iter()
                .try_for_each(|c| super::postgres::create_in(conn, c))
        }))
        .expect("system collections");
        Self { db, registry }
    }

    async fn defs(&self) -> Vec<Collection> {
        let stored = self.db.read_conn(|c| read_all(c)).await.expect("read_all");
        let cached: Vec<Collection> = self
            .registry
            .snapshot()
            .all()
            .iter()
            .map(|c| c.def.clone())
            .collect();
        assert_eq!(stored, cached, "the registry holds what is stored");
        // Times and token secrets differ between the two runs.
        stored
            .into_iter()
            .map(|mut c| {
                c.created.clear();
                c.updated.clear();
                for option in c.options.values_mut() {
                    if let Some(secret) = option.get_mut("secret") {
                        *secret = Value::Null;
                    }
                }
                c
            })
            .collect()
    }

    async fn create(&self, input: Value) -> Result<(), SchemaError> {
        create(&self.db, &self.registry, input).await.map(|_| ())
    }

    async fn update(&self, name: &str, input: Value) -> Result<(), SchemaError> {
        let existing = self.registry.get(name).expect("collection exists");
        update(&self.db, &self.registry, existing, input)
            .await
            .map(|_| ())
    }

    /// The admin panel's check of a create (`name` None) or an update.
    async fn validate(&self, name: Option<&str>, input: Value) -> Result<(), SchemaError> {
        let existing = name.map(|n| self.registry.get(n).expect("collection exists"));
        validate(&self.db, &self.registry, existing, input).await
    }

    async fn delete(&self, name: &str) -> Result<(), SchemaError> {
        let existing = self.registry.get(name).expect("collection exists");
        delete(&self.db, &self.registry, existing).await
    }

    /// `PUT /api/collections/import` with `items`.
    async fn import(&self, items: Value, delete_missing: bool) -> String {
        let Value::Array(items) = items else {
            panic!("a list")
        };
        let items = items
            .into_iter()
            .map(|i| match i {
                Value::Object(m) => m,
                _ => panic!("an object"),
            })
            .collect();
        match import(&self.db, &self.registry, items, delete_missing).await {
            Ok(deleted) => format!("deleted {deleted:?}"),
            Err(import::ImportError::Failed(m)) => {
                format!("failed {}", m.lines().next().unwrap_or(""))
            }
            Err(e) => format!("{e:?}"),
        }
    }

    /// The fields of a collection as the API writes them.
    fn fields(&self, name: &str) -> Vec<Value> {
        let def = self.registry.get(name).expect("collection exists");
        match def.def.to_json().get("fields") {
            Some(Value::Array(fields)) => fields.clone(),
            _ => panic!("fields of {name}"),
        }
    }

    async fn execute(&self, sql: &'static str, params: Vec<SqlValue>) {
        self.db
            .write_conn(move |c| c.execute(sql, &params))
            .await
            .expect(sql);
    }

    /// Rows, with whole reals as integers: a `double precision` column reads
    /// back as a real where SQLite's NUMERIC affinity stores an integer.
    async fn rows(&self, sql: String) -> Vec<Vec<SqlValue>> {
        let rows = self
            .db
            .read_conn(move |c| c.rows(&sql, &[]))
            .await
            .expect("rows");
        rows.into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|v| match v {
                        SqlValue::Real(f) if f.fract() == 0.0 && f.abs() < 1e15 => {
                            SqlValue::Integer(f as i64)
                        }
                        v => v,
                    })
                    .collect()
            })
            .collect()
    }
}

/// A refusal as the client sees its kind: the variant, and for field
/// errors each key with its code (messages carry each engine's wording).
fn refusal(result: Result<(), SchemaError>) -> String {
    fn codes(v: &Value) -> Value {
        match v {
            Value::Object(m) if m.contains_key("code") => m["code"].clone(),
            Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), codes(v))).collect(),
            other => other.clone(),
        }
    }
    match result {
        Ok(()) => "accepted".into(),
        Err(SchemaError::Invalid(e)) => format!("invalid {}", codes(&e.to_json())),
        Err(e) => format!("{e:?}"),
    }
}

fn field(id: &str, name: &str, kind: &str) -> Value {
    json!({"id": id, "name": name, "type": kind})
}

/// Replaces the field `name` of `fields` with `with`.
fn replace_field(fields: &mut [Value], name: &str, with: Value) {
    let slot = fields
        .iter_mut()
        .find(|f| f["name"] == name)
        .expect("field exists");
    *slot = with;
}

/// What the script saw: each step's label with its outcome and the
/// definitions (and rows) after it.
type Trace = Vec<(&'static str, String, Vec<Collection>, Vec<Vec<SqlValue>>)>;

async fn script(e: &Engine) -> Trace {
    let mut trace = Trace::new();
    let rows = |table: &str| format!("SELECT * FROM {} ORDER BY id", crate::db::ident(table));
    let posts_rows = "SELECT id, title, views, cat FROM posts ORDER BY id".to_owned();
    macro_rules! step {
        ($label:expr, $result:expr, $rows:expr) => {{
            let outcome = refusal($result);
            trace.push(($label, outcome, e.defs().await, e.rows($rows).await));
        }};
    }

    let posts = json!({
        "id": "pbc_posts", "name": "posts", "listRule": "", "viewRule": "title != ''",
        "fields": [
            field("f_title", "title", "text"),
            field("f_views", "views", "number"),
            {"id": "f_cat", "name": "cat", "type": "select", "values": ["a", "b"], "maxSelect": 1},
        ],
        "indexes": [
            "CREATE UNIQUE INDEX idx_posts_title ON posts (title)",
            "CREATE INDEX idx_posts_views ON posts (views)",
        ],
    });
    step!(
        "create base",
        e.create(posts.clone()).await,
        posts_rows.clone()
    );
    e.execute(
        "INSERT INTO posts (id, title, views, cat) VALUES (?1, ?2, ?3, ?4), (?5, ?6, ?7, ?8), \
         (?9, ?10, ?11, ?12)",
        [
            "p1", "one", "1", "a", "p2", "two", "2.5", "", "p3", "three", "1", "b",
        ]
        .map(|s| SqlValue::Text(s.into()))
        .into_iter()
        .enumerate()
        .map(|(i, v)| match (i % 4, v) {
            (2, SqlValue::Text(n)) => SqlValue::Real(n.parse().expect("number")),
            (_, v) => v,
        })
        .collect(),
    )
    .await;
    step!(
        "same name again",
        e.create(json!({"name": "POSTS"})).await,
        posts_rows.clone()
    );
    step!(
        "same id again",
        e.create(json!({"id": "pbc_posts", "name": "other"})).await,
        posts_rows.clone()
    );
    step!(
        "index name taken",
        e.create(
            json!({"name": "other", "fields": [field("f_x", "x", "text")],
                        "indexes": ["CREATE INDEX idx_posts_views ON other (x)"]})
        )
        .await,
        posts_rows.clone()
    );
    step!(
        "create auth",
        e.create(json!({"id": "pbc_members", "name": "members", "type": "auth"}))
            .await,
        rows("members")
    );
    step!(
        "create view",
        e.create(
            json!({"id": "pbc_titles", "name": "post_titles", "type": "view",
                        "listRule": "", "viewQuery": "SELECT id, title, views FROM posts"})
        )
        .await,
        rows("post_titles")
    );

    step!(
        "change the view's query",
        e.update(
            "post_titles",
            json!({"viewQuery": "SELECT id, views, title AS heading FROM posts"})
        )
        .await,
        "SELECT id, views, heading FROM post_titles ORDER BY id".to_owned()
    );
    let mut fields = e.fields("posts");
    fields.push(field("f_draft", "draft", "bool"));
    step!(
        "validate an update",
        e.validate(Some("posts"), json!({"fields": fields})).await,
        posts_rows.clone()
    );
    step!(
        "validate a create with a taken name",
        e.validate(None, json!({"name": "post_titles"})).await,
        posts_rows.clone()
    );
    step!(
        "validate a unique index the rows break",
        e.validate(
            Some("posts"),
            json!({"indexes": ["CREATE UNIQUE INDEX idx_views ON posts (views)"]})
        )
        .await,
        posts_rows.clone()
    );

    let mut fields = e.fields("posts");
    replace_field(&mut fields, "views", field("f_views", "hits", "number"));
    step!(
        "rename a column a view uses",
        e.update(
            "posts",
            json!({"fields": fields, "indexes": [
                "CREATE UNIQUE INDEX idx_posts_title ON posts (title)",
                "CREATE INDEX idx_posts_views ON posts (hits)",
            ]})
        )
        .await,
        posts_rows.clone()
    );

    let mut fields = e.fields("posts");
    replace_field(
        &mut fields,
        "cat",
        json!({"id": "f_cat", "name": "category", "type": "select", "values": ["a", "b"], "maxSelect": 2}),
    );
    fields.push(field("f_body", "body", "text"));
    let renamed = "SELECT id, title, views, category, body FROM posts ORDER BY id".to_owned();
    step!(
        "add, rename, single to multi",
        e.update(
            "posts",
            json!({"fields": fields, "updateRule": "@request.auth.id != ''"})
        )
        .await,
        renamed.clone()
    );
    step!(
        "unique index the rows break",
        e.update(
            "posts",
            json!({"indexes": [
                "CREATE UNIQUE INDEX idx_posts_title ON posts (title)",
                "CREATE UNIQUE INDEX idx_posts_body ON posts (body)",
            ]})
        )
        .await,
        renamed.clone()
    );
    step!(
        "delete a table a view uses",
        e.delete("posts").await,
        renamed.clone()
    );
    step!(
        "delete the view",
        e.delete("post_titles").await,
        renamed.clone()
    );

    let articles_rows = "SELECT id, title, views, category FROM articles ORDER BY id".to_owned();
    let mut fields = e.fields("posts");
    fields.retain(|f| f["name"] != "body");
    step!(
        "rename table, drop a column, swap two names",
        e.update(
            "posts",
            json!({"name": "articles", "fields": fields.iter().map(|f| {
            let mut f = f.clone();
            if f["name"] == "title" { f["name"] = json!("category") }
            else if f["name"] == "category" { f["name"] = json!("title") }
            f
        }).collect::<Vec<_>>(), "indexes": ["CREATE INDEX idx_articles_views ON articles (views)"]})
        )
        .await,
        articles_rows.clone()
    );
    step!(
        "create with a relation",
        e.create(json!({"id": "pbc_comments", "name": "comments", "fields": [
            {"id": "f_post", "name": "post", "type": "relation", "collectionId": "pbc_posts", "maxSelect": 1},
        ]}))
        .await,
        rows("comments")
    );
    step!(
        "delete a referenced collection",
        e.delete("articles").await,
        articles_rows.clone()
    );
    step!(
        "delete the referrer",
        e.delete("comments").await,
        articles_rows.clone()
    );
    e.execute(
        "INSERT INTO _mfas (id, \"collectionRef\", \"recordRef\", method) VALUES \
         ('m1', 'pbc_members', 'r1', 'password'), ('m2', 'other', 'r1', 'password')",
        vec![],
    )
    .await;
    step!(
        "delete an auth collection with its records' auth state",
        e.delete("members").await,
        "SELECT id FROM _mfas ORDER BY id".to_owned()
    );
    step!(
        "delete",
        e.delete("articles").await,
        "SELECT id FROM _collections ORDER BY id".to_owned()
    );
    trace
}

#[test]
fn schema_changes_read_back_the_same_on_both_engines() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tmp");
    let sqlite = Engine::sqlite(dir.path(), &rt);
    let system = rt.block_on(sqlite.defs());
    let on_sqlite = rt.block_on(script(&sqlite));
    let outcomes: Vec<_> = on_sqlite
        .iter()
        .map(|(l, o, ..)| (*l, o.as_str()))
        .collect();
    for (label, want) in [
        ("create base", "accepted"),
        (
            "same name again",
            "invalid {\"name\":\"validation_collection_name_exists\"}",
        ),
        (
            "same id again",
            "invalid {\"id\":\"validation_not_unique\"}",
        ),
        (
            "index name taken",
            "invalid {\"indexes\":{\"0\":\"validation_duplicated_index_name\"}}",
        ),
        (
            "rename a column a view uses",
            "ViewDependency { view: \"post_titles\", deleting: false }",
        ),
        ("add, rename, single to multi", "accepted"),
        (
            "unique index the rows break",
            "invalid {\"fields\":\"validation_invalid_schema\"}",
        ),
        (
            "delete a table a view uses",
            "ViewDependency { view: \"post_titles\", deleting: true }",
        ),
        ("rename table, drop a column, swap two names", "accepted"),
        ("delete a referenced collection", "Referenced(\"comments\")"),
        (
            "delete an auth collection with its records' auth state",
            "accepted",
        ),
        ("delete", "accepted"),
    ] {
        assert!(
            outcomes.contains(&(label, want)),
            "{label}: want {want}, got {outcomes:?}"
        );
    }
    let defs_after = |label: &str| &on_sqlite.iter().find(|(l, ..)| *l == label).expect(label).2;
    for label in [
        "validate an update",
        "validate a create with a taken name",
        "validate a unique index the rows break",
        "rename a column a view uses",
    ] {
        assert_eq!(
            defs_after(label),
            defs_after("change the view's query"),
            "{label} changes nothing"
        );
    }
    let (.., mfas) = on_sqlite
        .iter()
        .find(|(l, ..)| l.starts_with("delete an auth collection"))
        .expect("step");
    assert_eq!(
        mfas,
        &vec![vec![SqlValue::Text("m2".into())]],
        "only m1 goes"
    );
    let (_, _, _, retyped) = on_sqlite
        .iter()
        .find(|(l, ..)| *l == "add, rename, single to multi")
        .expect("step");
    let text = |s: &str| SqlValue::Text(s.into());
    assert_eq!(
        retyped,
        &vec![
            vec![
                text("p1"),
                text("one"),
                SqlValue::Integer(1),
                text("[\"a\"]"),
                text("")
            ],
            vec![
                text("p2"),
                text("two"),
                SqlValue::Real(2.5),
                text("[]"),
                text("")
            ],
            vec![
                text("p3"),
                text("three"),
                SqlValue::Integer(1),
                text("[\"b\"]"),
                text("")
            ],
        ],
        "a single value becomes a one-element list, '' an empty one"
    );
    let Some(url) = server() else { return };
    let mut schema = PgSchema::open(&url);
    let pg = Engine::postgres(&mut schema, &url, system, &rt);
    let on_pg = rt.block_on(script(&pg));
    assert_eq!(on_pg.len(), on_sqlite.len());
    for (s, p) in on_sqlite.iter().zip(&on_pg) {
        assert_eq!(s.1, p.1, "{}: outcome", s.0);
        let names =
            |defs: &[Collection]| defs.iter().map(|c| c.name.to_string()).collect::<Vec<_>>();
        assert_eq!(names(&s.2), names(&p.2), "{}: collections", s.0);
        for (a, b) in s.2.iter().zip(&p.2) {
            assert_eq!(a, b, "{}: definition of {}", s.0, a.name);
        }
        assert_eq!(s.3, p.3, "{}: rows", s.0);
    }
}

/// A PostgreSQL engine with the system collections of a fresh SQLite data
/// dir, or `None` without a test server.
fn postgres_only(rt: &tokio::runtime::Runtime) -> Option<(Engine, PgSchema)> {
    let url = server()?;
    let dir = tempfile::tempdir().expect("tmp");
    let system = rt.block_on(Engine::sqlite(dir.path(), rt).defs());
    let mut schema = PgSchema::open(&url);
    let pg = Engine::postgres(&mut schema, &url, system, rt);
    Some((pg, schema))
}

#[test]
fn postgres_refuses_what_it_cannot_do_exactly_and_changes_nothing() {
    let rt = runtime();
    let Some((e, _schema)) = postgres_only(&rt) else {
        return;
    };
    rt.block_on(async {
        e.create(json!({"id": "pbc_posts", "name": "posts", "fields": [
            field("f_title", "title", "text"),
            field("f_views", "views", "number"),
            {"id": "f_tags", "name": "tags", "type": "select", "values": ["a", "b"], "maxSelect": 2},
        ]}))
        .await
        .expect("create");
        e.execute(
            "INSERT INTO posts (id, title, views, tags) VALUES (?1, ?2, ?3, ?4)",
            vec![
                SqlValue::Text("p1".into()),
                SqlValue::Text("one".into()),
                SqlValue::Real(0.1),
                SqlValue::Text("[\"a\",\"b\"]".into()),
            ],
        )
        .await;
        let rows = || e.rows("SELECT id, title, views, tags FROM posts".into());
        let (defs, stored) = (e.defs().await, rows().await);

        let mut number_to_text = e.fields("posts");
        replace_field(&mut number_to_text, "views", field("f_views", "views", "text"));
        let mut list_to_single = e.fields("posts");
        replace_field(
            &mut list_to_single,
            "tags",
            json!({"id": "f_tags", "name": "tags", "type": "select", "values": ["a", "b"], "maxSelect": 1}),
        );
        let mut searchable = e.fields("posts");
        replace_field(
            &mut searchable,
            "title",
            json!({"id": "f_title", "name": "title", "type": "text", "searchable": true}),
        );
        for (input, want, why) in [
            (
                json!({"fields": number_to_text}),
                r#"invalid {"fields":{"2":{"type":"validation_field_type_change_postgres"}}}"#,
                "a number written as text has other digits on PostgreSQL",
            ),
            (
                json!({"fields": list_to_single}),
                r#"invalid {"fields":{"3":{"type":"validation_field_type_change_postgres"}}}"#,
                "a list cut to its last element",
            ),
            (
                json!({"fields": searchable}),
                r#"invalid {"fields":{"1":{"searchable":"validation_searchable_postgres"}}}"#,
                "full-text search is SQLite's FTS5",
            ),
        ] {
            assert_eq!(refusal(e.update("posts", input).await), want, "{why}");
            assert_eq!(e.defs().await, defs, "{why}: definitions unchanged");
            assert_eq!(rows().await, stored, "{why}: rows unchanged");
        }

        for (input, want, why) in [
            (
                json!({"name": "notes", "fields": [
                    {"name": "body", "type": "editor", "searchable": true},
                ]}),
                r#"invalid {"fields":{"1":{"searchable":"validation_searchable_postgres"}}}"#,
                "a searchable field at create",
            ),
            (
                json!({"name": "firsts", "type": "view",
                       "viewQuery": "SELECT id, instr(title, 'o') AS pos FROM posts"}),
                r#"invalid {"viewQuery":"validation_invalid_view_query"}"#,
                "a view query only SQLite can run",
            ),
            (
                json!({"name": "roles", "type": "view",
                       "viewQuery": "SELECT oid::text AS id, rolname AS r FROM pg_roles"}),
                r#"invalid {"viewQuery":"validation_invalid_view_query"}"#,
                "PostgreSQL's catalog: SQLite must accept the query first",
            ),
            (
                json!({"name": "params", "type": "view",
                       "viewQuery": "SELECT id, value AS v FROM _params"}),
                r#"invalid {"viewQuery":"validation_invalid_view_query"}"#,
                "a system table that is no collection (the sealed settings)",
            ),
            (
                json!({"name": "posts_pkey"}),
                r#"invalid {"name":"validation_collection_name_exists"}"#,
                "a name PostgreSQL's primary key index of posts has",
            ),
        ] {
            assert_eq!(refusal(e.create(input).await), want, "{why}");
            assert_eq!(e.defs().await, defs, "{why}: nothing saved");
        }
        let message = match e
            .create(json!({"name": "firsts", "type": "view",
                           "viewQuery": "SELECT id, instr(title, 'o') AS pos FROM posts"}))
            .await
        {
            Err(SchemaError::Invalid(errors)) => errors.to_json().to_string(),
            other => panic!("{other:?}"),
        };
        assert!(message.contains("PostgreSQL cannot run it"), "{message}");
        let views = e
            .rows("SELECT viewname::text FROM pg_views WHERE schemaname = current_schema()".into())
            .await;
        assert!(views.is_empty(), "no view left behind: {views:?}");
    });
}

#[test]
fn concurrent_schema_changes_all_land_on_postgres() {
    let rt = runtime();
    let Some((e, _schema)) = postgres_only(&rt) else {
        return;
    };
    concurrent_changes(e, &rt);
}

/// On SQLite the writer serialises the changes; the registry must still end
/// on the last commit's snapshot whatever order the answers come back in.
#[test]
fn concurrent_schema_changes_all_land_on_sqlite() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tmp");
    for _ in 0..5 {
        let round = tempfile::tempdir_in(dir.path()).expect("round");
        concurrent_changes(Engine::sqlite(round.path(), &rt), &rt);
    }
}

/// Four creates and two updates at once; every one lands, in the stored
/// definitions and in the registry.
fn concurrent_changes(e: Engine, rt: &tokio::runtime::Runtime) {
    let e = std::sync::Arc::new(e);
    rt.block_on(async {
        for name in ["c0", "c1"] {
            e.create(json!({"id": format!("pbc_{name}"), "name": name}))
                .await
                .expect("create");
        }
        let mut tasks = Vec::new();
        for i in 0..4 {
            let e = e.clone();
            tasks.push(tokio::spawn(async move {
                e.create(json!({"id": format!("pbc_n{i}"), "name": format!("n{i}"),
                                "fields": [field("f_a", "a", "text")]}))
                    .await
            }));
        }
        for name in ["c0", "c1"] {
            let e = e.clone();
            let mut fields = e.fields(name);
            fields.push(field("f_added", "added", "number"));
            tasks.push(tokio::spawn(async move {
                e.update(name, json!({"fields": fields})).await
            }));
        }
        for t in tasks {
            t.await.expect("task").expect("schema change");
        }
        // `defs` also checks that the registry holds the last commit's snapshot.
        let defs = e.defs().await;
        for name in ["n0", "n1", "n2", "n3"] {
            assert!(
                defs.iter().any(|c| c.name.as_str() == name),
                "{name} was lost"
            );
        }
        for name in ["c0", "c1"] {
            let c = defs.iter().find(|c| c.name.as_str() == name).expect(name);
            assert!(
                c.field("added").is_some(),
                "{name}: the added field was lost"
            );
            e.rows(format!("SELECT added FROM {name}")).await;
        }
    });
}

/// Imports, as the admin panel sends them, with their outcome and the
/// definitions after each.
async fn import_script(e: &Engine) -> Vec<(String, Vec<Collection>)> {
    let mut trace = Vec::new();
    let first = json!([
        {"id": "pbc_posts", "name": "posts", "listRule": "", "fields": [
            field("f_title", "title", "text"), field("f_views", "views", "number"),
        ], "indexes": ["CREATE INDEX idx_posts_views ON posts (views)"]},
        {"id": "pbc_top", "name": "top", "type": "view",
         "viewQuery": "SELECT id, title FROM posts WHERE views > 10"},
        {"id": "pbc_notes", "name": "notes", "fields": [
            {"id": "f_post", "name": "post", "type": "relation", "collectionId": "pbc_posts", "maxSelect": 1},
        ]},
    ]);
    trace.push((e.import(first, false).await, e.defs().await));
    let refused = json!([
        {"id": "pbc_posts", "name": "posts", "fields": [field("f_title", "heading", "text")]},
    ]);
    trace.push((e.import(refused, true).await, e.defs().await));
    let second = json!([
        {"id": "pbc_posts", "name": "articles", "fields": [
            field("f_title", "heading", "text"), field("f_views", "views", "number"),
            field("f_more", "more", "bool"),
        ], "indexes": []},
    ]);
    trace.push((e.import(second, true).await, e.defs().await));
    trace
}

#[test]
fn imports_read_back_the_same_on_both_engines() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tmp");
    let sqlite = Engine::sqlite(dir.path(), &rt);
    let system = rt.block_on(sqlite.defs());
    let on_sqlite = rt.block_on(import_script(&sqlite));
    let outcomes: Vec<&str> = on_sqlite.iter().map(|(o, _)| o.as_str()).collect();
    assert_eq!(outcomes[0], "deleted []");
    assert!(
        outcomes[1].starts_with("failed "),
        "a view reads the renamed column: {outcomes:?}"
    );
    assert_eq!(
        on_sqlite[1].1, on_sqlite[0].1,
        "a refused import changes nothing"
    );
    assert_eq!(
        outcomes[2],
        r#"deleted ["pbc_top", "_pb_users_auth_", "pbc_notes"]"#
    );
    let Some(url) = server() else { return };
    let mut schema = PgSchema::open(&url);
    let pg = Engine::postgres(&mut schema, &url, system, &rt);
    let on_pg = rt.block_on(import_script(&pg));
    for (i, (s, p)) in on_sqlite.iter().zip(&on_pg).enumerate() {
        assert_eq!(s.0, p.0, "import {i}: outcome");
        assert_eq!(s.1, p.1, "import {i}: definitions");
    }
}
