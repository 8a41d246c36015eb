//! View collections (`type: "view"`): created, changed and deleted through
//! the collections API with the query checked first, fields inferred as
//! PocketBase infers them, and a read-only records API that still applies the
//! view's list/view rules and hides hidden source fields.

use crate::helpers::{TestApp, spawn_app, status_json};
use reqwest::Method;
use serde_json::{Value, json};

/// Signs up a user in `users` and returns (id, token).
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

struct World {
    app: TestApp,
    alice: (String, String),
    bob: (String, String),
    users_id: String,
    posts_id: String,
}

/// `posts` (title, views, author → users, tags select) with three posts:
/// two by alice (views 1 and 5), one by bob (views 3).
async fn world() -> World {
    let app = spawn_app().await;
    let alice = sign_up(&app, "alice@example.com").await;
    let bob = sign_up(&app, "bob@example.com").await;
    let (_, users) = status_json(app.su(Method::GET, "/api/collections/users", None).await).await;
    let users_id = users["id"].as_str().expect("id").to_owned();
    let posts = app
        .create_collection_ok(json!({
            "name": "posts", "type": "base", "listRule": "", "viewRule": "",
            "fields": [
                {"name": "title", "type": "text", "max": 50},
                {"name": "views", "type": "number"},
                {"name": "author", "type": "relation", "collectionId": users_id, "maxSelect": 1},
                {"name": "tags", "type": "select", "values": ["a", "b"], "maxSelect": 2},
            ]
        }))
        .await;
    for (title, views, author) in [
        ("one", 1, &alice.0),
        ("two", 5, &alice.0),
        ("three", 3, &bob.0),
    ] {
        app.create_record_ok(
            "posts",
            json!({"title": title, "views": views, "author": author, "tags": ["a"]}),
        )
        .await;
    }
    World {
        app,
        alice,
        bob,
        users_id,
        posts_id: posts["id"].as_str().expect("id").to_owned(),
    }
}

fn field<'a>(collection: &'a Value, name: &str) -> &'a Value {
    collection["fields"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["name"] == name))
        .unwrap_or_else(|| panic!("field {name} missing in {collection}"))
}

fn ids(page: &Value) -> Vec<String> {
    let mut ids: Vec<String> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_view_collection_gets_fields_inferred_from_its_query() {
    let w = world().await;

    let view = w
        .app
        .create_collection_ok(json!({
            "name": "post_view", "type": "view",
            "viewQuery": "SELECT p.id, p.title, p.views AS hits, p.author, p.tags, p.id AS post, \
                          upper(p.title) AS shout, CAST(p.views AS INTEGER) AS whole FROM posts p",
            "fields": [{"name": "ignored", "type": "text"}],
        }))
        .await;

    assert_eq!(view["type"], "view", "{view}");
    assert!(
        view["viewQuery"]
            .as_str()
            .is_some_and(|q| q.contains("FROM posts p")),
        "{view}"
    );
    let names: Vec<&str> = view["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| f["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "id", "title", "hits", "author", "tags", "post", "shout", "whole"
        ],
        "submitted fields are ignored"
    );
    for (name, ty, why) in [
        ("id", "text", "id is the text primary key"),
        ("title", "text", "a source column keeps its type"),
        ("hits", "number", "an aliased source column keeps its type"),
        ("author", "relation", "a relation stays a relation"),
        ("tags", "select", "a select stays a select"),
        (
            "post",
            "relation",
            "a collection's id under another name is a relation to it",
        ),
        ("shout", "json", "an expression is json"),
        ("whole", "number", "CAST AS INTEGER is a number"),
    ] {
        assert_eq!(field(&view, name)["type"], ty, "{name}: {why}");
    }
    assert_eq!(field(&view, "id")["primaryKey"], true);
    let clone_id = field(&view, "title")["id"].as_str().expect("id");
    assert!(
        clone_id.len() == 11
            && clone_id.starts_with("_clone_")
            && clone_id[7..].chars().all(|c| c.is_ascii_alphanumeric()),
        "a copied field gets PocketBase's _clone_XXXX id shape: {clone_id}"
    );
    assert_eq!(field(&view, "title")["max"], 50, "options come along");
    assert_eq!(field(&view, "author")["collectionId"], w.users_id.as_str());
    assert_eq!(field(&view, "tags")["values"], json!(["a", "b"]));
    assert_eq!(field(&view, "post")["collectionId"], w.posts_id.as_str());
    assert_eq!(field(&view, "post")["maxSelect"], 1);
    assert_eq!(field(&view, "whole")["onlyInt"], true);
    for key in [
        "createRule",
        "updateRule",
        "deleteRule",
        "listRule",
        "viewRule",
    ] {
        assert_eq!(view[key], Value::Null, "{key} defaults to null");
    }
    assert_eq!(view["indexes"], json!([]));
    let (status, again) = status_json(
        w.app
            .su(Method::GET, "/api/collections/post_view", None)
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        again["fields"], view["fields"],
        "what is stored is what was answered"
    );
}

#[tokio::test]
async fn aggregate_views_count_as_integers() {
    // total() is SQLite's; PostgreSQL gets an aggregate of that name
    // (schema/view_postgres.sql), so the same query runs on both engines.
    let w = world().await;

    let view = w
        .app
        .create_collection_ok(json!({
            "name": "author_stats", "type": "view", "listRule": "",
            "viewQuery": "SELECT author AS id, count(*) AS posts, total(views) AS views, sum(views) AS raw FROM posts GROUP BY author",
        }))
        .await;

    assert_eq!(field(&view, "posts")["type"], "number");
    assert_eq!(field(&view, "posts")["onlyInt"], true);
    assert_eq!(field(&view, "views")["type"], "number");
    assert_eq!(
        field(&view, "raw")["type"],
        "json",
        "sum() is an expression like any other"
    );
    let (status, one) = status_json(w.app.get_record("author_stats", &w.alice.0, None).await).await;
    assert_eq!(status, 403, "viewRule null: superusers only ({one})");
    let (status, page) = status_json(
        w.app
            .list_records(
                "author_stats",
                &[("filter", &format!("id = '{}'", w.alice.0))],
                None,
            )
            .await,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"][0]["posts"], 2, "{page}");
    assert_eq!(page["items"][0]["views"], 6, "{page}");
}

/// SQLite's `total()` over no rows is 0, not NULL as `sum()` gives, on both
/// engines (PocketBase view queries use it; the JS SDK suite's does).
#[tokio::test]
async fn total_over_no_rows_is_zero_and_sums_fractions() {
    let w = world().await;
    w.app
        .create_record_ok(
            "posts",
            json!({"title": "half", "views": 6.5, "author": &w.alice.0}),
        )
        .await;
    w.app
        .create_collection_ok(json!({
            "name": "big_posts", "type": "view", "listRule": "",
            "viewQuery": "SELECT u.id, count(p.id) AS posts, total(p.views) AS views \
                          FROM users u LEFT JOIN posts p ON p.author = u.id AND p.views > 4 GROUP BY u.id",
        }))
        .await;
    let views_of = |user: &str| {
        let filter = format!("id = '{user}'");
        let app = &w.app;
        async move {
            let (status, page) = status_json(
                app.list_records("big_posts", &[("filter", &filter)], None)
                    .await,
            )
            .await;
            assert_eq!(status, 200, "{page}");
            (
                page["items"][0]["posts"].clone(),
                page["items"][0]["views"].clone(),
            )
        }
    };
    assert_eq!(views_of(&w.alice.0).await, (json!(2), json!(11.5)));
    assert_eq!(
        views_of(&w.bob.0).await,
        (json!(0), json!(0)),
        "no rows: 0, not null"
    );
}

#[tokio::test]
async fn a_view_query_that_is_not_one_plain_select_is_refused_and_nothing_runs() {
    let w = world().await;
    for (query, why) in [
        ("", "empty"),
        ("   ;  ", "only a separator"),
        ("DELETE FROM posts", "a delete"),
        ("UPDATE posts SET title = 'x'", "an update"),
        (
            "INSERT INTO posts (id) VALUES ('aaaaaaaaaaaaaaa')",
            "an insert",
        ),
        (
            "SELECT id FROM posts; DROP TABLE posts",
            "a second statement",
        ),
        (
            "SELECT id FROM posts; DELETE FROM posts;",
            "a second statement with separators",
        ),
        (
            "SELECT id FROM posts) UNION SELECT id FROM (SELECT 'x' AS id",
            "escaping the wrapper",
        ),
        (
            "WITH x AS (DELETE FROM posts RETURNING id) SELECT id FROM x",
            "a writing CTE",
        ),
        (
            "WITH x AS (SELECT 1) DELETE FROM posts",
            "a CTE in front of a delete",
        ),
        ("PRAGMA table_info(posts)", "a read-only pragma"),
        ("PRAGMA writable_schema = ON", "a writing pragma"),
        ("ATTACH DATABASE '/tmp/x.db' AS x", "attach"),
        (
            "SELECT load_extension('/tmp/evil.so') AS id",
            "load_extension",
        ),
        (
            "SELECT id, load_extension('/tmp/evil.so') AS x FROM posts",
            "load_extension as a column",
        ),
        ("VACUUM INTO '/tmp/copy.db'", "vacuum into"),
        ("SELECT title FROM posts", "no id column"),
        ("SELECT * FROM posts", "a wildcard"),
        ("SELECT p.* FROM posts p", "a table wildcard"),
        ("SELECT id FROM nowhere", "a missing table"),
        ("SELECT id, nope FROM posts", "a missing column"),
        ("SELECT id, title, title FROM posts", "a duplicated column"),
        ("SELEC id FROM posts", "a syntax error"),
    ] {
        let (status, body) = status_json(
            w.app
                .create_collection(json!({"name": "bad_view", "type": "view", "viewQuery": query}))
                .await,
        )
        .await;
        assert_eq!(status, 400, "{query:?} ({why}): {body}");
        let code = &body["data"]["viewQuery"]["code"];
        assert!(
            code == "validation_invalid_view_query" || code == "validation_required",
            "{query:?} ({why}) is reported on viewQuery: {body}"
        );
    }
    let (status, _) = status_json(
        w.app
            .su(Method::GET, "/api/collections/bad_view", None)
            .await,
    )
    .await;
    assert_eq!(status, 404, "no collection was stored");
    let (_, page) = status_json(w.app.list_records("posts", &[], None).await).await;
    assert_eq!(page["totalItems"], 3, "posts untouched: {page}");
    assert!(
        page["items"]
            .as_array()
            .is_some_and(|i| i.iter().all(|r| r["title"] != "x"))
    );
}

#[tokio::test]
async fn a_missing_id_column_gets_pocketbases_exact_message() {
    let w = world().await;

    let (status, body) = status_json(
        w.app
            .create_collection(
                json!({"name": "v", "type": "view", "viewQuery": "SELECT title FROM posts"}),
            )
            .await,
    )
    .await;

    assert_eq!(status, 400);
    assert_eq!(body["message"], "Failed to create collection.");
    assert_eq!(
        body["data"]["viewQuery"]["message"],
        "Invalid query - missing required id column (you can use `(ROW_NUMBER() OVER()) as id` if you don't have one).",
        "{body}"
    );
}

#[tokio::test]
async fn a_view_refuses_write_rules_and_indexes() {
    let w = world().await;
    for (extra, key) in [
        (json!({"createRule": ""}), "createRule"),
        (json!({"updateRule": "id != ''"}), "updateRule"),
        (json!({"deleteRule": ""}), "deleteRule"),
        (
            json!({"indexes": ["CREATE INDEX idx_v ON v (title)"]}),
            "indexes",
        ),
    ] {
        let mut body =
            json!({"name": "v", "type": "view", "viewQuery": "SELECT id, title FROM posts"});
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        let (status, resp) = status_json(w.app.create_collection(body).await).await;
        assert_eq!(status, 400, "{key}: {resp}");
        assert!(
            resp["data"][key]["code"].is_string(),
            "{key} reported: {resp}"
        );
    }
    w.app
        .create_collection_ok(
            json!({"name": "v", "type": "view", "viewQuery": "SELECT id, title FROM posts"}),
        )
        .await;
    let (status, resp) = status_json(
        w.app
            .update_collection("v", json!({"createRule": ""}))
            .await,
    )
    .await;
    assert_eq!(
        status, 400,
        "an update may not add a write rule either: {resp}"
    );
    assert_eq!(
        resp["data"]["createRule"]["code"], "validation_nil",
        "{resp}"
    );
    let (status, resp) =
        status_json(w.app.update_collection("v", json!({"type": "base"})).await).await;
    assert_eq!(status, 400, "the type stays: {resp}");
}

#[tokio::test]
async fn changing_the_query_recreates_the_view_with_new_fields() {
    let w = world().await;
    w.app
        .create_collection_ok(json!({"name": "v", "type": "view", "listRule": "", "viewQuery": "SELECT id, title FROM posts"}))
        .await;

    let (status, updated) = status_json(
        w.app
            .update_collection(
                "v",
                json!({"viewQuery": "SELECT id, views FROM posts WHERE views > 2"}),
            )
            .await,
    )
    .await;

    assert_eq!(status, 200, "{updated}");
    let names: Vec<&str> = updated["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(names, ["id", "views"]);
    let (_, page) = status_json(w.app.list_records("v", &[], None).await).await;
    assert_eq!(page["totalItems"], 2, "{page}");
    assert!(page["items"][0].get("title").is_none(), "{page}");
    let (status, resp) = status_json(
        w.app
            .update_collection("v", json!({"viewQuery": "DELETE FROM posts"}))
            .await,
    )
    .await;
    assert_eq!(status, 400, "{resp}");
    let (_, page) = status_json(w.app.list_records("v", &[], None).await).await;
    assert_eq!(
        page["totalItems"], 2,
        "the refused change left the view as it was: {page}"
    );
    let (status, renamed) =
        status_json(w.app.update_collection("v", json!({"name": "v2"})).await).await;
    assert_eq!(status, 200, "{renamed}");
    let (status, _) = status_json(w.app.list_records("v2", &[], None).await).await;
    assert_eq!(status, 200, "the renamed view answers");
}

#[tokio::test]
async fn deleting_a_view_drops_it_and_frees_its_name() {
    let w = world().await;
    w.app
        .create_collection_ok(
            json!({"name": "v", "type": "view", "viewQuery": "SELECT id FROM posts"}),
        )
        .await;

    let resp = w.app.su(Method::DELETE, "/api/collections/v", None).await;

    assert_eq!(resp.status(), 204);
    w.app
        .create_collection_ok(json!({"name": "v", "type": "base"}))
        .await;
}

#[tokio::test]
async fn view_records_are_read_only_for_everyone() {
    let w = world().await;
    w.app
        .create_collection_ok(json!({"name": "v", "type": "view", "listRule": "", "viewRule": "", "viewQuery": "SELECT id, title FROM posts"}))
        .await;
    let (_, page) = status_json(w.app.list_records("v", &[], None).await).await;
    let id = page["items"][0]["id"].as_str().expect("id").to_owned();
    let path = format!("/api/collections/v/records/{id}");
    for token in [
        None,
        Some(w.alice.1.as_str()),
        Some(w.app.superuser_token.as_str()),
    ] {
        for (method, path, body) in [
            (
                Method::POST,
                "/api/collections/v/records",
                Some(json!({"title": "x"})),
            ),
            (Method::PATCH, path.as_str(), Some(json!({"title": "x"}))),
            (Method::DELETE, path.as_str(), None),
        ] {
            let (status, resp) =
                status_json(w.app.request(method.clone(), path, token, body).await).await;
            assert_eq!(status, 400, "{method} {path} as {token:?}: {resp}");
            assert_eq!(resp["message"], "Unsupported collection type.", "{resp}");
        }
    }
    let (status, resp) = status_json(
        w.app
            .su(Method::DELETE, "/api/collections/v/truncate", None)
            .await,
    )
    .await;
    assert_eq!(status, 400, "{resp}");
    assert_eq!(
        resp["message"],
        "View collections cannot be truncated since they don't store their own records."
    );
    w.app
        .su(
            Method::PATCH,
            "/api/settings",
            Some(json!({"batch": {"enabled": true}})),
        )
        .await;
    let (status, resp) = status_json(
        w.app
            .su(
                Method::POST,
                "/api/batch",
                Some(json!({"requests": [
                    {"method": "POST", "url": "/api/collections/v/records", "body": {"title": "x"}}
                ]})),
            )
            .await,
    )
    .await;
    assert_eq!(status, 400, "a batch cannot write to a view either: {resp}");
    let (_, page) = status_json(w.app.list_records("posts", &[], None).await).await;
    assert_eq!(page["totalItems"], 3, "nothing changed: {page}");
    assert!(
        page["items"]
            .as_array()
            .is_some_and(|i| i.iter().all(|r| r["title"] != "x"))
    );
}

#[tokio::test]
async fn view_records_support_filter_sort_fields_and_expand() {
    let w = world().await;
    w.app
        .create_collection_ok(json!({
            "name": "v", "type": "view", "listRule": "", "viewRule": "",
            "viewQuery": "SELECT id, title, views AS hits, author FROM posts",
        }))
        .await;

    let (status, page) = status_json(
        w.app
            .list_records(
                "v",
                &[
                    ("filter", "hits >= 3"),
                    ("sort", "-hits"),
                    ("fields", "id,title,expand"),
                    ("expand", "author"),
                ],
                Some(&w.app.superuser_token),
            )
            .await,
    )
    .await;

    assert_eq!(status, 200, "{page}");
    let titles: Vec<&str> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|r| r["title"].as_str())
        .collect();
    assert_eq!(titles, ["two", "three"], "filtered and sorted: {page}");
    assert!(
        page["items"][0].get("hits").is_none(),
        "fields= picks columns: {page}"
    );
    assert_eq!(
        page["items"][0]["expand"]["author"]["id"],
        w.alice.0.as_str(),
        "expand through the view's relation: {page}"
    );
    let (status, page) = status_json(
        w.app
            .list_records(
                "v",
                &[("filter", "author.email = 'bob@example.com'")],
                Some(&w.app.superuser_token),
            )
            .await,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        page["totalItems"], 1,
        "a filter can walk the view's relation: {page}"
    );
    let id = page["items"][0]["id"].as_str().expect("id").to_owned();
    let (status, one) = status_json(w.app.get_record("v", &id, None).await).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["title"], "three");
    assert_eq!(one["collectionName"], "v");
    for (sort, why) in [("@random", "random"), ("-@rowid", "rowid: a view has none")] {
        let (status, resp) =
            status_json(w.app.list_records("v", &[("sort", sort)], None).await).await;
        assert!(
            status == 200 || status == 400,
            "sort {sort} ({why}) is an answer, not an error: {status} {resp}"
        );
    }
}

#[tokio::test]
async fn view_rules_decide_who_sees_which_rows() {
    let w = world().await;
    w.app
        .create_collection_ok(json!({
            "name": "mine", "type": "view",
            "listRule": "author = @request.auth.id", "viewRule": null,
            "viewQuery": "SELECT id, title, author FROM posts",
        }))
        .await;
    let (_, all) = status_json(
        w.app
            .list_records("mine", &[], Some(&w.app.superuser_token))
            .await,
    )
    .await;
    assert_eq!(all["totalItems"], 3, "superusers see every row: {all}");
    let bob_post = all["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|r| r["author"] == w.bob.0.as_str())
        .expect("bob's post")["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let (status, guest) = status_json(w.app.list_records("mine", &[], None).await).await;
    assert_eq!(
        (status, guest["totalItems"].clone()),
        (200, json!(0)),
        "guest: {guest}"
    );
    let (_, alice) = status_json(w.app.list_records("mine", &[], Some(&w.alice.1)).await).await;
    assert_eq!(alice["totalItems"], 2, "alice sees her two posts: {alice}");
    let (_, bob) = status_json(w.app.list_records("mine", &[], Some(&w.bob.1)).await).await;
    assert_eq!(ids(&bob), vec![bob_post.clone()], "bob sees his one post");
    let (_, alice_filtered) = status_json(
        w.app
            .list_records(
                "mine",
                &[("filter", &format!("author = '{}'", w.bob.0))],
                Some(&w.alice.1),
            )
            .await,
    )
    .await;
    assert_eq!(
        alice_filtered["totalItems"], 0,
        "a filter cannot widen the rule: {alice_filtered}"
    );
    for token in [None, Some(w.alice.1.as_str()), Some(w.bob.1.as_str())] {
        let (status, _) = status_json(w.app.get_record("mine", &bob_post, token).await).await;
        assert_eq!(status, 403, "viewRule null: superusers only ({token:?})");
    }
    let (status, _) = status_json(
        w.app
            .get_record("mine", &bob_post, Some(&w.app.superuser_token))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = status_json(
        w.app
            .update_collection("mine", json!({"listRule": "nope = 1"}))
            .await,
    )
    .await;
    assert_eq!(status, 400, "rules are checked against the view's fields");
}

#[tokio::test]
async fn hidden_source_fields_stay_hidden_in_a_view_even_when_renamed() {
    if crate::helpers::sqlite_only(
        "the view query's unquoted tokenKey is folded to lower case by PostgreSQL",
    ) {
        return;
    }
    let w = world().await;
    for query in [
        "SELECT id, email, password AS pw, tokenKey AS tk FROM users",
        "SELECT id, email, password AS pw, tokenKey AS tk FROM _superusers",
    ] {
        let name = if query.contains("_superusers") {
            "admins_view"
        } else {
            "users_view"
        };
        let view = w
            .app
            .create_collection_ok(json!({"name": name, "type": "view", "listRule": "", "viewRule": "", "viewQuery": query}))
            .await;
        assert_eq!(field(&view, "pw")["hidden"], true, "{view}");
        assert_eq!(field(&view, "tk")["hidden"], true, "{view}");

        for token in [None, Some(w.alice.1.as_str())] {
            let (status, page) = status_json(w.app.list_records(name, &[], token).await).await;
            assert_eq!(status, 200, "{page}");
            let text = page.to_string();
            assert!(
                !text.contains("\"pw\"") && !text.contains("\"tk\"") && !text.contains("$argon2"),
                "{name} as {token:?} leaks: {text}"
            );
            for filter in ["pw != ''", "tk != ''", "pw ~ '$'", "tk ~ 'a'"] {
                let (status, resp) =
                    status_json(w.app.list_records(name, &[("filter", filter)], token).await).await;
                assert_eq!(
                    status, 400,
                    "{name}: filter {filter:?} as {token:?} must not reach a hidden field: {resp}"
                );
            }
            let (status, resp) =
                status_json(w.app.list_records(name, &[("sort", "tk")], token).await).await;
            assert_eq!(
                status, 400,
                "{name}: no sort by a hidden field as {token:?}: {resp}"
            );
        }
        let (_, page) = status_json(
            w.app
                .list_records(name, &[], Some(&w.app.superuser_token))
                .await,
        )
        .await;
        assert!(
            !page.to_string().contains("$argon2"),
            "password hashes never leave the server: {page}"
        );
    }
}

#[tokio::test]
async fn deleting_a_collection_a_view_reads_is_refused() {
    let w = world().await;
    w.app
        .create_collection_ok(json!({"name": "v", "type": "view", "listRule": "", "viewQuery": "SELECT id, title FROM posts"}))
        .await;
    w.app
        .create_collection_ok(json!({"name": "vv", "type": "view", "listRule": "", "viewQuery": "SELECT id, title FROM v"}))
        .await;

    for (name, why) in [
        ("posts", "a table a view reads"),
        ("v", "a view another view reads"),
    ] {
        let (status, resp) = status_json(
            w.app
                .su(Method::DELETE, &format!("/api/collections/{name}"), None)
                .await,
        )
        .await;
        assert_eq!(status, 400, "{name} ({why}): {resp}");
        assert_eq!(resp["message"], "Failed to delete collection.", "{resp}");
    }

    for name in ["posts", "v", "vv"] {
        let (status, page) = status_json(w.app.list_records(name, &[], None).await).await;
        assert_eq!(
            (status, page["totalItems"].clone()),
            (200, json!(3)),
            "{name} still answers: {page}"
        );
    }
    let resp = w.app.su(Method::DELETE, "/api/collections/vv", None).await;
    assert_eq!(resp.status(), 204, "the last view in the chain can go");
    let resp = w.app.su(Method::DELETE, "/api/collections/v", None).await;
    assert_eq!(resp.status(), 204, "then the view it read");
    let resp = w
        .app
        .su(Method::DELETE, "/api/collections/posts", None)
        .await;
    assert_eq!(resp.status(), 204, "then the table");
}

#[tokio::test]
async fn a_schema_change_that_would_break_a_view_is_refused_and_others_keep_it_working() {
    if crate::helpers::sqlite_only(
        "retypes a number field to text, which PostgreSQL refuses (add a field instead)",
    ) {
        return;
    }
    let w = world().await;
    w.app
        .create_collection_ok(json!({"name": "v", "type": "view", "listRule": "", "viewQuery": "SELECT id, title, views FROM posts"}))
        .await;
    let (_, posts) = status_json(w.app.su(Method::GET, "/api/collections/posts", None).await).await;
    let mut fields = posts["fields"].as_array().expect("fields").clone();

    // Adding a field rebuilds the posts table: the view comes back with it.
    fields.push(json!({"name": "extra", "type": "text"}));
    let (status, resp) = status_json(
        w.app
            .update_collection("posts", json!({"fields": fields}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "adding a field: {resp}");
    let (status, page) = status_json(w.app.list_records("v", &[], None).await).await;
    assert_eq!(
        (status, page["totalItems"].clone()),
        (200, json!(3)),
        "{page}"
    );

    // Retyping a column the view reads changes the view's field too.
    let views = fields
        .iter_mut()
        .find(|f| f["name"] == "views")
        .expect("views");
    *views = json!({"id": views["id"], "name": "views", "type": "text"});
    let (status, resp) = status_json(
        w.app
            .update_collection("posts", json!({"fields": fields}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "retyping a field: {resp}");
    let (_, v) = status_json(w.app.su(Method::GET, "/api/collections/v", None).await).await;
    assert_eq!(
        field(&v, "views")["type"],
        "text",
        "the view's field follows its source: {v}"
    );

    for (change, why) in [
        (json!({"name": "articles"}), "renaming the collection"),
        (
            json!({"fields": fields.iter().map(|f| if f["name"] == "title" { json!({"id": f["id"], "name": "headline", "type": "text"}) } else { f.clone() }).collect::<Vec<_>>()}),
            "renaming a field the view reads",
        ),
        (
            json!({"fields": fields.iter().filter(|f| f["name"] != "title").cloned().collect::<Vec<_>>()}),
            "removing a field the view reads",
        ),
    ] {
        let (status, resp) = status_json(w.app.update_collection("posts", change).await).await;
        assert_eq!(status, 400, "{why}: {resp}");
        assert!(
            resp["message"].as_str().is_some_and(|m| m.contains('v')),
            "{why}: the message names the view: {resp}"
        );
        let (status, page) = status_json(w.app.list_records("v", &[], None).await).await;
        assert_eq!(
            (status, page["totalItems"].clone()),
            (200, json!(3)),
            "after {why}: {page}"
        );
        let (_, posts) =
            status_json(w.app.su(Method::GET, "/api/collections/posts", None).await).await;
        assert!(
            field(&posts, "title")["type"] == "text",
            "after {why}: posts unchanged"
        );
    }
}

#[tokio::test]
async fn a_view_of_a_view_keeps_the_source_field_types() {
    let w = world().await;
    w.app
        .create_collection_ok(json!({"name": "v", "type": "view", "viewQuery": "SELECT id, title, author FROM posts"}))
        .await;

    let vv = w
        .app
        .create_collection_ok(json!({"name": "vv", "type": "view", "viewQuery": "SELECT id, title AS t, author AS who FROM v"}))
        .await;

    assert_eq!(field(&vv, "t")["type"], "text", "{vv}");
    assert_eq!(field(&vv, "who")["type"], "relation", "{vv}");
    assert_eq!(
        field(&vv, "who")["collectionId"],
        w.users_id.as_str(),
        "{vv}"
    );
}

#[tokio::test]
async fn dry_run_view_answers_fields_and_a_sample_without_storing_anything() {
    let w = world().await;

    let (status, body) = status_json(
        w.app
            .su(
                Method::POST,
                "/api/collections/meta/dry-run-view",
                Some(json!({"query": "SELECT id, title, views AS hits FROM posts ORDER BY views"})),
            )
            .await,
    )
    .await;

    assert_eq!(status, 200, "{body}");
    let names: Vec<&str> = body["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(names, ["id", "title", "hits"]);
    assert_eq!(body["sample"].as_array().map(Vec::len), Some(3), "{body}");
    assert_eq!(body["sample"][0]["title"], "one", "{body}");
    assert_eq!(body["sample"][0]["hits"], 1, "{body}");
    let (_, list) = status_json(
        w.app
            .su(Method::GET, "/api/collections?perPage=100", None)
            .await,
    )
    .await;
    assert!(
        !list.to_string().contains("temp_view_"),
        "nothing stored: {list}"
    );
}

#[tokio::test]
async fn a_dry_run_of_sqlite_only_sql_is_a_400_on_postgres_and_stores_nothing() {
    let w = world().await;
    let query = "SELECT id, title FROM posts WHERE title GLOB 'o*'";

    let (status, body) = status_json(
        w.app
            .su(
                Method::POST,
                "/api/collections/meta/dry-run-view",
                Some(json!({ "query": query })),
            )
            .await,
    )
    .await;

    if crate::helpers::TestBackend::current() == crate::helpers::TestBackend::Sqlite {
        assert_eq!(status, 200, "SQLite runs GLOB: {body}");
        return;
    }
    assert_eq!(status, 400, "PostgreSQL refuses GLOB, never a 500: {body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Invalid view query.")),
        "{body}"
    );
    let (_, list) = status_json(
        w.app
            .su(Method::GET, "/api/collections?perPage=100", None)
            .await,
    )
    .await;
    assert!(!list.to_string().contains("temp_view_"), "nothing stored");
}

#[tokio::test]
async fn dry_run_view_refuses_what_a_view_would_refuse_and_only_superusers_may_call_it() {
    let w = world().await;
    let long = format!("SELECT id FROM posts WHERE title != '{}'", "x".repeat(5000));
    for (body, message, why) in [
        (
            json!({}),
            "An error occurred while validating the submitted data.",
            "no query",
        ),
        (
            json!({"query": ""}),
            "An error occurred while validating the submitted data.",
            "empty",
        ),
        (
            json!({"query": long}),
            "An error occurred while validating the submitted data.",
            "over 5000 bytes",
        ),
        (
            json!({"query": 5}),
            "An error occurred while loading the submitted data.",
            "not a string",
        ),
        (
            json!({"query": "DELETE FROM posts"}),
            "Invalid view query.",
            "a write",
        ),
        (
            json!({"query": "SELECT id FROM posts; DROP TABLE posts"}),
            "Invalid view query.",
            "two statements",
        ),
        (
            json!({"query": "PRAGMA table_info(posts)"}),
            "Invalid view query.",
            "a pragma",
        ),
        (
            json!({"query": "SELECT title FROM posts"}),
            "Invalid view query.",
            "no id",
        ),
        (
            json!({"query": "SELECT author AS id FROM posts"}),
            "Invalid view query.",
            "repeated ids",
        ),
        (
            json!({"query": "SELECT '' AS id"}),
            "Invalid view query.",
            "an empty id",
        ),
    ] {
        let (status, resp) = status_json(
            w.app
                .su(
                    Method::POST,
                    "/api/collections/meta/dry-run-view",
                    Some(body),
                )
                .await,
        )
        .await;
        assert_eq!(status, 400, "{why}: {resp}");
        assert!(
            resp["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(message)),
            "{why}: {resp}"
        );
    }
    for (token, expected) in [(None, 401), (Some(w.alice.1.as_str()), 403)] {
        let resp = w
            .app
            .request(
                Method::POST,
                "/api/collections/meta/dry-run-view",
                token,
                Some(json!({"query": "SELECT id FROM posts"})),
            )
            .await;
        assert_eq!(resp.status().as_u16(), expected, "{token:?}");
    }
    let (_, page) = status_json(w.app.list_records("posts", &[], None).await).await;
    assert_eq!(page["totalItems"], 3, "{page}");
}

#[tokio::test]
async fn the_scaffolds_include_a_blank_view() {
    let app = spawn_app().await;

    let (status, body) = status_json(
        app.su(Method::GET, "/api/collections/meta/scaffolds", None)
            .await,
    )
    .await;

    assert_eq!(status, 200, "{body}");
    let view = &body["view"];
    assert_eq!(view["type"], "view", "{body}");
    assert_eq!(view["viewQuery"], "", "{view}");
    assert_eq!(view["fields"], json!([]), "{view}");
    assert_eq!(view["name"], "", "{view}");
    for key in [
        "listRule",
        "viewRule",
        "createRule",
        "updateRule",
        "deleteRule",
    ] {
        assert_eq!(view[key], Value::Null, "{key}");
    }
}

#[tokio::test]
async fn files_shown_through_a_view_are_served_from_their_source_record() {
    let app = spawn_app().await;
    app.create_collection_ok(json!({
        "name": "docs", "type": "base",
        "fields": [
            {"name": "title", "type": "text"},
            {"name": "main", "type": "file", "maxSelect": 1, "maxSize": 1000},
            {"name": "more", "type": "file", "maxSelect": 3, "maxSize": 1000},
        ]
    }))
    .await;
    let part = |name: &str, body: &str| {
        reqwest::multipart::Part::bytes(body.as_bytes().to_vec()).file_name(name.to_owned())
    };
    let form = reqwest::multipart::Form::new()
        .text("title", "one")
        .part("main", part("main.txt", "main body"))
        .part("more", part("a.txt", "first extra"))
        .part("more", part("b.txt", "second extra"));
    let token = app.superuser_token.clone();
    let (status, doc) = status_json(
        app.send_form(
            Method::POST,
            "/api/collections/docs/records",
            Some(&token),
            form,
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{doc}");
    app.create_collection_ok(json!({
        "name": "shelf", "type": "view", "listRule": "", "viewRule": "",
        "viewQuery": "SELECT (ROW_NUMBER() OVER()) AS id, title, main AS cover, more AS extras FROM docs",
    }))
    .await;
    let (_, page) = status_json(app.list_records("shelf", &[], None).await).await;
    let row = &page["items"][0];
    let view_id = row["id"].as_str().expect("id");

    let cover = row["cover"].as_str().expect("cover name");
    let extra = row["extras"][1].as_str().expect("second extra name");
    for (name, body) in [(cover, "main body"), (extra, "second extra")] {
        let resp = app
            .request(
                Method::GET,
                &format!("/api/files/shelf/{view_id}/{name}"),
                None,
                None,
            )
            .await;
        assert_eq!(resp.status(), 200, "{name}");
        assert_eq!(resp.text().await.expect("body"), body, "{name}");
    }
    for (record, name, why) in [
        (view_id, "nope.txt", "a name no row shows"),
        ("999", cover, "a row the view does not have"),
    ] {
        let resp = app
            .request(
                Method::GET,
                &format!("/api/files/shelf/{record}/{name}"),
                None,
                None,
            )
            .await;
        assert_eq!(resp.status(), 404, "{why}");
    }
}

#[tokio::test]
async fn a_protected_file_through_a_view_obeys_the_views_rule_on_the_views_row() {
    let app = spawn_app().await;
    let (_, users) = status_json(app.su(Method::GET, "/api/collections/users", None).await).await;
    let alice = sign_up(&app, "alice@example.com").await;
    app.create_collection_ok(json!({
        "name": "docs", "type": "base",
        "fields": [
            {"name": "owner", "type": "relation", "collectionId": users["id"], "maxSelect": 1},
            {"name": "secret", "type": "file", "maxSelect": 1, "maxSize": 1000, "protected": true},
        ]
    }))
    .await;
    let form = reqwest::multipart::Form::new()
        .text("owner", alice.0.clone())
        .part(
            "secret",
            reqwest::multipart::Part::bytes(b"alice only".to_vec()).file_name("s.txt"),
        );
    let token = app.superuser_token.clone();
    let (status, doc) = status_json(
        app.send_form(
            Method::POST,
            "/api/collections/docs/records",
            Some(&token),
            form,
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{doc}");
    // The view's ids differ from the source's: the rule must run on the view's row.
    app.create_collection_ok(json!({
        "name": "vault", "type": "view", "listRule": "owner = @request.auth.id", "viewRule": "owner = @request.auth.id",
        "viewQuery": "SELECT 'v' || id AS id, owner, secret FROM docs",
    }))
    .await;
    let view_id = format!("v{}", doc["id"].as_str().expect("id"));
    let name = doc["secret"].as_str().expect("name");
    let file_token = |token: String| {
        let app = &app;
        async move {
            let (_, body) = status_json(
                app.request(Method::POST, "/api/files/token", Some(&token), None)
                    .await,
            )
            .await;
            body["token"].as_str().expect("file token").to_owned()
        }
    };
    let alice_file = file_token(alice.1.clone()).await;
    let bob = sign_up(&app, "bob@example.com").await;
    let bob_file = file_token(bob.1.clone()).await;

    for (token, expected, who) in [
        (None, 404, "guest"),
        (Some(bob_file), 404, "bob"),
        (Some(alice_file), 200, "alice"),
    ] {
        let query = token.map(|t| format!("?token={t}")).unwrap_or_default();
        let resp = app
            .request(
                Method::GET,
                &format!("/api/files/vault/{view_id}/{name}{query}"),
                None,
                None,
            )
            .await;
        assert_eq!(resp.status().as_u16(), expected, "{who}");
    }
}

#[tokio::test]
async fn a_view_that_reads_itself_is_refused_and_the_old_view_stays() {
    let w = world().await;
    w.app
        .create_collection_ok(json!({"name": "v", "type": "view", "listRule": "", "viewQuery": "SELECT id, title FROM posts"}))
        .await;

    let (status, body) = status_json(
        w.app
            .update_collection("v", json!({"viewQuery": "SELECT id, title FROM v"}))
            .await,
    )
    .await;

    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["data"]["viewQuery"]["code"], "validation_invalid_view_query",
        "{body}"
    );
    let (status, page) = status_json(w.app.list_records("v", &[], None).await).await;
    assert_eq!(
        (status, page["totalItems"].clone()),
        (200, json!(3)),
        "{page}"
    );
}
