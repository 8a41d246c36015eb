//! Durability and schema changes on real data: what survives a restart, what
//! a field rename, retype, addition or removal does to existing rows (also on
//! ten thousand of them), that a refused schema change touches nothing, and
//! what deleting a record does to the records that reference it.

use crate::helpers::{TestApp, spawn_app, spawn_app_in, status_json};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::Path;

const RECORD_COUNT: usize = 10_000;
const REQUIRED_REFERENCE_MESSAGE: &str = "Failed to delete record. Make sure that the record is not part of a required relation reference.";

/// Every collection definition, as the collections API lists them.
async fn all_collections(app: &TestApp) -> Value {
    let (status, body) = status_json(
        app.su(Method::GET, "/api/collections?perPage=1000", None)
            .await,
    )
    .await;
    assert_eq!(status, 200, "collections list: {body}");
    body["items"].clone()
}

/// Every record of `collection` (at most 1000), ordered by id.
async fn all_records(app: &TestApp, collection: &str) -> Vec<Value> {
    let token = app.superuser_token.clone();
    let (status, body) = status_json(
        app.list_records(
            collection,
            &[("perPage", "1000"), ("sort", "id")],
            Some(&token),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "list {collection}: {body}");
    body["items"].as_array().expect("items").clone()
}

/// A record as the superuser sees it, or `None` when it is gone.
async fn find_record(app: &TestApp, collection: &str, id: &str) -> Option<Value> {
    let token = app.superuser_token.clone();
    let (status, body) = status_json(app.get_record(collection, id, Some(&token)).await).await;
    match status {
        200 => Some(body),
        404 => None,
        other => panic!("view {collection}/{id}: {other} {body}"),
    }
}

/// Column names of `table`, read straight from SQLite.
fn table_columns(dir: &Path, table: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open_with_flags(
        dir.join("data.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("data.db opens read-only");
    let mut stmt = conn
        .prepare("SELECT name FROM pragma_table_info(?1)")
        .expect("table_info prepares");
    stmt.query_map([table], |r| r.get(0))
        .expect("table_info runs")
        .collect::<Result<_, _>>()
        .expect("column names")
}

/// The field called `name` in a collection's `fields`.
fn field<'a>(fields: &'a Value, name: &str) -> &'a Value {
    fields
        .as_array()
        .expect("fields")
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("field {name}"))
}

/// The field called `name` in a collection's `fields`, for editing.
fn field_mut<'a>(fields: &'a mut Value, name: &str) -> &'a mut Value {
    fields
        .as_array_mut()
        .expect("fields")
        .iter_mut()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("field {name}"))
}

/// Record id number `i`: 15 characters of [a-z0-9], sorting like `i`.
fn record_id(i: usize) -> String {
    format!("r{i:014}")
}

#[tokio::test]
async fn restart_keeps_every_collection_and_record() {
    // Arrange
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_in(dir.path()).await;
    let authors = app
        .create_collection_ok(json!({
            "name": "authors",
            "type": "auth",
            "listRule": "",
            "viewRule": "id = @request.auth.id",
            "fields": [{"name": "nick", "type": "text", "max": 50}]
        }))
        .await;
    app.create_collection_ok(json!({
        "name": "books",
        "listRule": "",
        "viewRule": "status = 'published'",
        "createRule": "@request.auth.id != ''",
        "fields": [
            {"name": "title", "type": "text", "required": true, "max": 200, "pattern": "^[^<]*$"},
            {"name": "slug", "type": "text", "presentable": true},
            {"name": "body", "type": "editor"},
            {"name": "price", "type": "number", "min": 0},
            {"name": "inStock", "type": "bool"},
            {"name": "contact", "type": "email"},
            {"name": "homepage", "type": "url"},
            {"name": "published", "type": "date"},
            {"name": "status", "type": "select", "values": ["draft", "published"]},
            {"name": "genres", "type": "select", "values": ["sf", "crime", "poetry"], "maxSelect": 3},
            {"name": "author", "type": "relation", "collectionId": authors["id"], "maxSelect": 1},
            {"name": "editors", "type": "relation", "collectionId": authors["id"], "maxSelect": 5},
            {"name": "meta", "type": "json"},
            {"name": "place", "type": "geoPoint"},
            {"name": "secret", "type": "password", "hidden": true},
            {"name": "cover", "type": "file", "maxSelect": 2},
            {"name": "created", "type": "autodate", "onCreate": true},
            {"name": "updated", "type": "autodate", "onCreate": true, "onUpdate": true}
        ],
        "indexes": ["CREATE UNIQUE INDEX idx_books_slug ON books (slug) WHERE slug != ''"]
    }))
    .await;
    let ann = app
        .create_record_ok(
            "authors",
            json!({"email": "ann@example.com", "password": "secret-123", "passwordConfirm": "secret-123",
                   "nick": "Ann", "emailVisibility": true}),
        )
        .await;
    let bob = app
        .create_record_ok(
            "authors",
            json!({"email": "bob@example.com", "password": "secret-456", "passwordConfirm": "secret-456",
                   "nick": "Bób ✓"}),
        )
        .await;
    for book in [
        json!({"title": "Dune", "slug": "dune", "body": "<p>Spice & \"sand\"</p>\n", "price": 9.99,
               "inStock": true, "contact": "x@example.com", "homepage": "https://example.com/dune?a=1#b",
               "published": "1965-08-01", "status": "published", "genres": ["sf", "poetry"],
               "author": ann["id"], "editors": [bob["id"], ann["id"]],
               "meta": {"pages": 412, "isbn": null, "tags": ["a", {"b": [1.5, -2]}]},
               "place": {"lon": -122.41, "lat": 37.77}, "secret": "hunter2"}),
        json!({"title": "Ünïcödé – 日本語 'quotes'", "price": 9_007_199_254_740_991_i64, "meta": "just a string",
               "status": "draft", "author": bob["id"]}),
        json!({"title": "Blank"}),
    ] {
        app.create_record_ok("books", book).await;
    }
    let collections_before = all_collections(&app).await;
    let authors_before = all_records(&app, "authors").await;
    let books_before = all_records(&app, "books").await;

    // Act
    app.stop().await;
    let app = spawn_app_in(dir.path()).await;

    // Assert
    assert_eq!(
        all_collections(&app).await,
        collections_before,
        "collection definitions must survive a restart unchanged"
    );
    assert_eq!(
        all_records(&app, "authors").await,
        authors_before,
        "auth records must survive unchanged"
    );
    assert_eq!(
        all_records(&app, "books").await,
        books_before,
        "records of every field type must survive unchanged"
    );
    assert_eq!(books_before.len(), 3, "all three books were listed");
    let token = app
        .login_as("authors", "bob@example.com", "secret-456")
        .await;
    assert!(
        !token.is_empty(),
        "password hashes survive: bob can still log in"
    );
}

#[tokio::test]
async fn renaming_a_field_on_ten_thousand_records_keeps_all_other_values() {
    if crate::helpers::sqlite_only("inserts its rows through data.db") {
        return;
    }
    // Arrange: the collection is made through the API, the rows go straight into SQLite.
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_in(dir.path()).await;
    let items = app
        .create_collection_ok(json!({
            "name": "items",
            "fields": [
                {"name": "title", "type": "text"},
                {"name": "views", "type": "number"},
                {"name": "flag", "type": "bool"},
                {"name": "score", "type": "number"},
                {"name": "note", "type": "text"},
                {"name": "meta", "type": "json"}
            ]
        }))
        .await;
    app.stop().await;
    insert_items(dir.path());
    let app = spawn_app_in(dir.path()).await;
    let mut fields = items["fields"].clone();
    let note_id = field_mut(&mut fields, "note")["id"].clone();
    field_mut(&mut fields, "note")["name"] = json!("remark");
    field_mut(&mut fields, "score")["type"] = json!("text");
    fields
        .as_array_mut()
        .expect("fields")
        .push(json!({"name": "extra", "type": "text"}));

    // Act
    let (status, updated) = status_json(
        app.update_collection("items", json!({"fields": fields}))
            .await,
    )
    .await;

    // Assert
    assert_eq!(
        status, 200,
        "rename, retype and add in one update: {updated}"
    );
    assert_eq!(
        field(&updated["fields"], "remark")["id"],
        note_id,
        "the renamed field keeps its id"
    );
    let token = app.superuser_token.clone();
    let mut problems = Vec::new();
    let mut seen = 0;
    for page in 1..=RECORD_COUNT / 1000 {
        let page = page.to_string();
        let (status, body) = status_json(
            app.list_records(
                "items",
                &[("perPage", "1000"), ("page", &page), ("sort", "id")],
                Some(&token),
            )
            .await,
        )
        .await;
        assert_eq!(status, 200, "page {page}: {body}");
        assert_eq!(body["totalItems"], json!(RECORD_COUNT), "totalItems");
        for item in body["items"].as_array().expect("items") {
            let i = seen;
            seen += 1;
            let expected = json!({
                "collectionId": items["id"], "collectionName": "items", "id": record_id(i),
                "title": format!("title {i}"), "views": i, "flag": i % 3 == 0,
                "score": (i * 7).to_string(), "remark": format!("note {i}"),
                "meta": {"i": i, "tags": ["x", i % 5]}, "extra": ""
            });
            if item != &expected && problems.len() < 5 {
                problems.push(format!("record {i}: got {item}, expected {expected}"));
            }
        }
    }
    assert_eq!(seen, RECORD_COUNT, "every record is listed");
    assert!(
        problems.is_empty(),
        "records changed:\n{}",
        problems.join("\n")
    );
}

/// Inserts [`RECORD_COUNT`] rows into `items` in one transaction.
fn insert_items(dir: &Path) {
    let mut conn = rusqlite::Connection::open(dir.join("data.db")).expect("data.db opens");
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .expect("busy timeout");
    let tx = conn.transaction().expect("transaction");
    {
        let mut stmt = tx
            .prepare(
                "INSERT INTO items (id, title, views, flag, score, note, meta) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .expect("insert prepares");
        for i in 0..RECORD_COUNT {
            let n = i64::try_from(i).expect("small number");
            let meta = json!({"i": i, "tags": ["x", i % 5]}).to_string();
            stmt.execute(rusqlite::params![
                record_id(i),
                format!("title {i}"),
                n,
                i % 3 == 0,
                n * 7,
                format!("note {i}"),
                meta
            ])
            .expect("row inserts");
        }
    }
    tx.commit().expect("rows commit");
}

#[tokio::test]
async fn removing_a_field_keeps_the_other_columns() {
    if crate::helpers::sqlite_only("reads the table through data.db") {
        return;
    }
    // Arrange
    let app = spawn_app().await;
    let notes = app
        .create_collection_ok(json!({
            "name": "notes",
            "fields": [
                {"name": "text", "type": "text"},
                {"name": "stars", "type": "number"},
                {"name": "done", "type": "bool"},
                {"name": "labels", "type": "select", "values": ["x", "y"], "maxSelect": 2},
                {"name": "extra", "type": "json"}
            ]
        }))
        .await;
    for i in 0..20 {
        app.create_record_ok(
            "notes",
            json!({"text": format!("note {i}"), "stars": i, "done": i % 2 == 0,
                   "labels": if i % 2 == 0 { json!(["x", "y"]) } else { json!(["y"]) },
                   "extra": {"n": i}}),
        )
        .await;
    }
    let before = all_records(&app, "notes").await;
    let kept: Vec<Value> = notes["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter(|f| f["name"] != "stars")
        .cloned()
        .collect();

    // Act
    let (status, updated) = status_json(
        app.update_collection("notes", json!({"fields": kept}))
            .await,
    )
    .await;

    // Assert
    assert_eq!(status, 200, "removing a field: {updated}");
    assert!(
        !updated["fields"].to_string().contains("\"stars\""),
        "the collection no longer lists the field: {updated}"
    );
    assert!(
        !table_columns(&app.data_dir, "notes").contains(&"stars".to_owned()),
        "the column is gone from the table"
    );
    let expected: Vec<Value> = before
        .into_iter()
        .map(|mut r| {
            r.as_object_mut().expect("record").remove("stars");
            r
        })
        .collect();
    assert_eq!(
        all_records(&app, "notes").await,
        expected,
        "every other value of every record is unchanged"
    );
}

#[tokio::test]
async fn a_failed_schema_change_leaves_table_and_data_unchanged() {
    if crate::helpers::sqlite_only("reads the table's columns through data.db") {
        return;
    }
    // Arrange: duplicate skus, so a unique index on sku cannot be built.
    let app = spawn_app().await;
    let inventory = app
        .create_collection_ok(json!({
            "name": "inventory",
            "listRule": "",
            "fields": [
                {"name": "sku", "type": "text"},
                {"name": "qty", "type": "number"},
                {"name": "tags", "type": "select", "values": ["a", "b"], "maxSelect": 2}
            ],
            "indexes": ["CREATE INDEX idx_inventory_qty ON inventory (qty)"]
        }))
        .await;
    for (sku, qty) in [("A-1", 5), ("A-1", 7), ("B-2", 0)] {
        app.create_record_ok("inventory", json!({"sku": sku, "qty": qty, "tags": ["a"]}))
            .await;
    }
    let mut reshaped = inventory["fields"].clone();
    field_mut(&mut reshaped, "qty")["name"] = json!("quantity");
    field_mut(&mut reshaped, "sku")["type"] = json!("number");
    reshaped
        .as_array_mut()
        .expect("fields")
        .push(json!({"name": "added", "type": "bool"}));
    let collection_before = all_collections(&app).await;
    let records_before = all_records(&app, "inventory").await;
    let columns_before = table_columns(&app.data_dir, "inventory");

    for (change, why) in [
        (
            json!({"fields": reshaped, "indexes": ["CREATE INDEX idx_bad ON inventory (nope)"]}),
            "an index on an unknown column",
        ),
        (
            json!({"fields": reshaped, "indexes": ["CREATE UNIQUE INDEX idx_sku ON inventory (sku)"]}),
            "a unique index over duplicate values, after the rebuild",
        ),
        (
            json!({"name": "renamed", "indexes": ["CREATE UNIQUE INDEX idx_sku ON inventory (sku)"]}),
            "a unique index over duplicate values, with a table rename",
        ),
    ] {
        // Act
        let (status, body) = status_json(app.update_collection("inventory", change).await).await;

        // Assert
        assert_eq!(status, 400, "{why} is refused: {body}");
        assert_eq!(
            all_collections(&app).await,
            collection_before,
            "after {why}: the collection definition is unchanged"
        );
        assert_eq!(
            table_columns(&app.data_dir, "inventory"),
            columns_before,
            "after {why}: the table keeps its columns"
        );
        assert_eq!(
            all_records(&app, "inventory").await,
            records_before,
            "after {why}: the records are unchanged"
        );
    }
}

/// `people` plus `posts` whose relation fields (to people) are given by
/// `relations`; returns the posts collection.
async fn people_and_posts(app: &TestApp, relations: Value) -> Value {
    let people = app
        .create_collection_ok(
            json!({"name": "people", "fields": [{"name": "name", "type": "text"}]}),
        )
        .await;
    let mut fields = vec![json!({"name": "title", "type": "text"})];
    for (name, options) in relations.as_object().expect("relations") {
        let mut field = json!({"name": name, "type": "relation", "collectionId": people["id"]});
        for (k, v) in options.as_object().expect("options") {
            field[k] = v.clone();
        }
        fields.push(field);
    }
    app.create_collection_ok(json!({"name": "posts", "fields": fields}))
        .await
}

async fn person(app: &TestApp, name: &str) -> String {
    let record = app.create_record_ok("people", json!({"name": name})).await;
    record["id"].as_str().expect("id").to_owned()
}

async fn post(app: &TestApp, body: Value) -> String {
    let record = app.create_record_ok("posts", body).await;
    record["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn a_required_relation_blocks_deleting_its_target() {
    // Arrange
    let app = spawn_app().await;
    people_and_posts(
        &app,
        json!({
            "author": {"required": true, "maxSelect": 1},
            "reviewers": {"required": true, "maxSelect": 3}
        }),
    )
    .await;
    let ann = person(&app, "Ann").await;
    let bob = person(&app, "Bob").await;
    let cid = person(&app, "Cid").await;
    post(
        &app,
        json!({"title": "by ann", "author": ann, "reviewers": [bob]}),
    )
    .await;
    post(
        &app,
        json!({"title": "reviewed by cid only", "author": bob, "reviewers": [cid]}),
    )
    .await;
    let posts_before = all_records(&app, "posts").await;

    for (target, why) in [
        (&ann, "the only author of a post"),
        (&cid, "the only reviewer of a post"),
    ] {
        // Act
        let (status, body) = status_json(app.delete_record("people", target).await).await;

        // Assert
        assert_eq!(status, 400, "deleting {why}: {body}");
        assert_eq!(
            body,
            json!({"data": {}, "message": REQUIRED_REFERENCE_MESSAGE, "status": 400}),
            "deleting {why}: PocketBase's message"
        );
        assert!(
            find_record(&app, "people", target).await.is_some(),
            "{why} still exists"
        );
        assert_eq!(
            all_records(&app, "posts").await,
            posts_before,
            "after deleting {why} was refused, posts are unchanged"
        );
    }
}

#[tokio::test]
async fn cascade_delete_removes_referencing_records() {
    // Arrange: comments -> posts -> people, every link cascading.
    let app = spawn_app().await;
    let posts = people_and_posts(
        &app,
        json!({
            "author": {"cascadeDelete": true, "maxSelect": 1},
            "coauthors": {"cascadeDelete": true, "maxSelect": 5}
        }),
    )
    .await;
    app.create_collection_ok(json!({
        "name": "comments",
        "fields": [
            {"name": "text", "type": "text"},
            {"name": "post", "type": "relation", "collectionId": posts["id"], "cascadeDelete": true, "maxSelect": 1}
        ]
    }))
    .await;
    let ann = person(&app, "Ann").await;
    let bob = person(&app, "Bob").await;
    let cid = person(&app, "Cid").await;
    let anns_first = post(&app, json!({"title": "ann 1", "author": ann})).await;
    let anns_second = post(&app, json!({"title": "ann 2", "author": ann})).await;
    let bobs = post(&app, json!({"title": "bob", "author": bob})).await;
    let shared = post(
        &app,
        json!({"title": "shared", "author": bob, "coauthors": [ann, cid]}),
    )
    .await;
    let only_ann = post(
        &app,
        json!({"title": "only ann", "author": cid, "coauthors": [ann]}),
    )
    .await;
    let on_anns = app
        .create_record_ok("comments", json!({"text": "on ann 1", "post": anns_first}))
        .await;
    let on_bobs = app
        .create_record_ok("comments", json!({"text": "on bob", "post": bobs}))
        .await;

    // Act
    let (status, body) = status_json(app.delete_record("people", &ann).await).await;

    // Assert
    assert_eq!(status, 204, "deleting ann: {body}");
    for (collection, id, why) in [
        (
            "posts",
            anns_first.as_str(),
            "ann's first post (single cascade)",
        ),
        (
            "posts",
            anns_second.as_str(),
            "ann's second post (single cascade)",
        ),
        (
            "comments",
            on_anns["id"].as_str().expect("id"),
            "the comment on ann's post (cascade of a cascade)",
        ),
        (
            "posts",
            only_ann.as_str(),
            "the post whose only coauthor was ann (multi cascade, list emptied)",
        ),
    ] {
        assert!(
            find_record(&app, collection, id).await.is_none(),
            "{why} is deleted"
        );
    }
    for (collection, id, why) in [
        ("people", bob.as_str(), "bob"),
        ("people", cid.as_str(), "cid"),
        ("posts", bobs.as_str(), "bob's post"),
        (
            "comments",
            on_bobs["id"].as_str().expect("id"),
            "the comment on bob's post",
        ),
    ] {
        assert!(
            find_record(&app, collection, id).await.is_some(),
            "{why} is kept"
        );
    }
    let shared_after = find_record(&app, "posts", &shared).await;
    assert_eq!(
        shared_after.map(|p| p["coauthors"].clone()),
        Some(json!([cid])),
        "a multi cascade only deletes a record whose list becomes empty; \
         the shared post stays with its other coauthor (PocketBase's deleteRefRecords)"
    );
}

#[tokio::test]
async fn non_required_references_are_cleared_on_delete() {
    // Arrange
    let app = spawn_app().await;
    people_and_posts(
        &app,
        json!({"author": {"maxSelect": 1}, "reviewers": {"maxSelect": 3}}),
    )
    .await;
    let ann = person(&app, "Ann").await;
    let bob = person(&app, "Bob").await;
    let by_ann = post(
        &app,
        json!({"title": "by ann", "author": ann, "reviewers": [ann, bob]}),
    )
    .await;
    let by_bob = post(
        &app,
        json!({"title": "by bob", "author": bob, "reviewers": [ann]}),
    )
    .await;
    let untouched = post(
        &app,
        json!({"title": "untouched", "author": bob, "reviewers": [bob]}),
    )
    .await;
    let before = all_records(&app, "posts").await;

    // Act
    let (status, body) = status_json(app.delete_record("people", &ann).await).await;

    // Assert
    assert_eq!(status, 204, "deleting ann: {body}");
    assert!(
        find_record(&app, "people", &ann).await.is_none(),
        "ann is gone"
    );
    let expected: Vec<Value> = before
        .into_iter()
        .map(|mut p| {
            if p["id"] == by_ann.as_str() {
                p["author"] = json!("");
                p["reviewers"] = json!([bob]);
            } else if p["id"] == by_bob.as_str() {
                p["reviewers"] = json!([]);
            }
            p
        })
        .collect();
    assert_eq!(
        all_records(&app, "posts").await,
        expected,
        "ann's id is removed from single and multi references; everything else, \
         including the post {untouched} that never named her, is unchanged"
    );
}

#[tokio::test]
async fn a_second_server_on_the_same_data_dir_is_refused_until_the_first_stops() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let first = spawn_app_in(tmp.path()).await;

    let second = ferrobase::Application::build(ferrobase::Config::for_tests(tmp.path())).await;
    let refused = match second {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a second server must not start on a locked data dir"),
    };
    first.stop().await;
    let restarted = spawn_app_in(tmp.path()).await;
    let (status, _) = status_json(restarted.su(Method::GET, "/api/health", None).await).await;

    assert!(refused.contains("already running"), "{refused}");
    assert_eq!(
        status, 200,
        "the lock is released when the first server stops"
    );
}
