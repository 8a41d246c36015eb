//! `GET /api/openapi.json`: the document validates as OpenAPI 3.1 with the
//! real `openapi-spec-validator` (PyPI, installed by tests/run.sh into
//! tests/.venv-openapi; skipped with a loud line when missing, failing under
//! `CI=true`), shows each caller only what its rules could admit, follows
//! schema changes, and describes paths the server really answers.

use crate::helpers::{TestApp, spawn_app, status_json};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

const PASSWORD: &str = "secret-pass-1";

/// The validator program, or `None` (after a loud line) when it is not
/// installed here. Under `CI=true` a missing program fails the test.
pub(crate) fn validator() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/.venv-openapi/bin/openapi-spec-validator");
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "openapi-spec-validator is missing (tests/run.sh installs it into tests/.venv-openapi)"
    );
    eprintln!(
        "SKIPPED: openapi-spec-validator not installed; run tests/run.sh or \
         python3 -m venv tests/.venv-openapi && tests/.venv-openapi/bin/pip install openapi-spec-validator"
    );
    None
}

async fn document(app: &TestApp, token: Option<&str>) -> (u16, Value) {
    status_json(
        app.request(Method::GET, "/api/openapi.json", token, None)
            .await,
    )
    .await
}

pub(crate) async fn sign_up(app: &TestApp, email: &str) -> (String, String) {
    let body = json!({"email": email, "password": PASSWORD, "passwordConfirm": PASSWORD});
    let record = app.create_record_ok("users", body).await;
    let token = app.login_as("users", email, PASSWORD).await;
    (record["id"].as_str().expect("id").to_owned(), token)
}

/// A schema with every field type, a view, a second auth collection and a
/// superusers-only collection that a visible one points to.
pub(crate) async fn rich_schema(app: &TestApp) {
    let ledger = app
        .create_collection_ok(json!({
            "name": "secret_ledger", "type": "base",
            "fields": [{"name": "amount", "type": "number"}],
        }))
        .await;
    app.create_collection_ok(json!({
        "name": "posts", "type": "base",
        "listRule": "", "viewRule": "@request.auth.id != ''", "createRule": null,
        "updateRule": null, "deleteRule": null,
        "fields": [
            {"name": "title", "type": "text", "required": true, "min": 3, "max": 80},
            {"name": "body", "type": "editor"},
            {"name": "views", "type": "number", "min": 0, "max": 1000, "onlyInt": true},
            {"name": "draft", "type": "bool"},
            {"name": "contact", "type": "email"},
            {"name": "site", "type": "url"},
            {"name": "published", "type": "date"},
            {"name": "status", "type": "select", "values": ["draft", "live"], "maxSelect": 1},
            {"name": "labels", "type": "select", "values": ["a", "b", "c"], "maxSelect": 2},
            {"name": "cover", "type": "file", "maxSelect": 1, "maxSize": 1000000},
            {"name": "gallery", "type": "file", "maxSelect": 4, "maxSize": 1000000},
            {"name": "author", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1},
            {"name": "meta", "type": "json"},
            {"name": "where", "type": "geoPoint"},
            {"name": "ledger", "type": "relation", "collectionId": ledger["id"], "maxSelect": 1},
            {"name": "created", "type": "autodate", "onCreate": true},
        ],
    }))
    .await;
    app.create_collection_ok(json!({
        "name": "staff", "type": "auth", "listRule": "id = @request.auth.id",
        "fields": [{"name": "badge", "type": "text"}],
    }))
    .await;
    app.create_collection_ok(json!({
        "name": "post_titles", "type": "view", "listRule": "", "viewRule": "",
        "viewQuery": "SELECT id, title FROM posts",
    }))
    .await;
}

fn validate(program: &Path, doc: &Value, who: &str) {
    validate_file(program, &format!("{who}.json"), &doc.to_string(), who);
}

/// Runs openapi-spec-validator on `text` saved as `name` (JSON or YAML).
pub(crate) fn validate_file(program: &Path, name: &str, text: &str, who: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join(name);
    std::fs::write(&file, text).expect("write document");
    let out = std::process::Command::new(program)
        .args(["--schema", "3.1"])
        .arg(&file)
        .output()
        .expect("validator runs");
    assert!(
        out.status.success(),
        "{who}'s {name} is not valid OpenAPI 3.1:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn document_validates_as_openapi_3_1_for_every_caller() {
    let app = spawn_app().await;
    rich_schema(&app).await;
    let (_, user) = sign_up(&app, "val@example.com").await;

    let (su_status, su_doc) = document(&app, Some(&app.superuser_token)).await;
    let (guest_status, guest_doc) = document(&app, None).await;
    let (user_status, user_doc) = document(&app, Some(&user)).await;

    assert_eq!((su_status, guest_status, user_status), (200, 200, 200));
    assert_eq!(su_doc["openapi"], "3.1.0");
    let Some(program) = validator() else { return };
    validate(&program, &su_doc, "superuser");
    validate(&program, &guest_doc, "guest");
    validate(&program, &user_doc, "user");
}

#[tokio::test]
async fn record_schemas_carry_requirements_enums_formats_bounds_and_multipart() {
    let app = spawn_app().await;
    rich_schema(&app).await;

    let (_, doc) = document(&app, Some(&app.superuser_token)).await;

    let schemas = &doc["components"]["schemas"];
    let create = &schemas["posts.Create"];
    assert_eq!(create["required"], json!(["title"]), "{create}");
    let props = &create["properties"];
    assert_eq!(props["title"]["minLength"], 3);
    assert_eq!(props["title"]["maxLength"], 80);
    assert_eq!(props["views"]["type"], "integer");
    assert_eq!(props["views"]["maximum"], 1000.0);
    assert_eq!(props["contact"]["format"], "email");
    assert_eq!(props["site"]["format"], "uri");
    assert_eq!(props["published"]["format"], "date-time");
    assert_eq!(props["status"]["enum"], json!(["draft", "live", ""]));
    assert_eq!(props["labels"]["items"]["enum"], json!(["a", "b", "c"]));
    assert!(props.get("created").is_none(), "autodates are server-set");
    let multipart = &schemas["posts.CreateMultipart"]["properties"];
    assert_eq!(multipart["cover"]["format"], "binary");
    assert_eq!(multipart["gallery"]["items"]["format"], "binary");
    let create_op = &doc["paths"]["/api/collections/posts/records"]["post"];
    assert!(
        create_op["requestBody"]["content"]["multipart/form-data"].is_object(),
        "{create_op}"
    );
    let users = &schemas["users.Record"]["properties"];
    assert!(
        users.get("password").is_none(),
        "passwords never in responses"
    );
    assert!(
        users.get("tokenKey").is_none(),
        "hidden fields never in responses"
    );
    let view_paths = &doc["paths"]["/api/collections/post_titles/records"];
    assert!(view_paths.get("post").is_none(), "views are read-only");
    assert!(doc["paths"]["/api/collections/staff/auth-with-password"].is_object());
    assert!(
        doc["paths"]
            .get("/api/collections/posts/auth-with-password")
            .is_none(),
        "auth flows only for auth collections"
    );
    for name in ["Error", "ListMeta"] {
        assert!(schemas[name].is_object(), "shared schema {name}");
    }
    for name in [
        "filter",
        "sort",
        "expand",
        "fields",
        "page",
        "perPage",
        "skipTotal",
    ] {
        assert!(
            doc["components"]["parameters"][name].is_object(),
            "parameter {name}"
        );
    }
}

#[tokio::test]
async fn guests_and_users_never_see_superuser_only_collections_or_rule_text() {
    let app = spawn_app().await;
    rich_schema(&app).await;
    let (_, user) = sign_up(&app, "peek@example.com").await;
    let (gone_id, gone) = sign_up(&app, "gone@example.com").await;
    assert_eq!(app.delete_record("users", &gone_id).await.status(), 204);
    let (_, ledger) = status_json(
        app.su(Method::GET, "/api/collections/secret_ledger", None)
            .await,
    )
    .await;
    let ledger_id = ledger["id"].as_str().expect("id");

    let (_, su_doc) = document(&app, Some(&app.superuser_token)).await;
    let su_text = su_doc.to_string();

    assert!(
        su_text.contains("secret_ledger"),
        "superusers see everything"
    );
    assert!(
        su_text.contains("@request.auth.id != ''"),
        "superusers see rule text"
    );
    assert!(
        su_text.contains("/api/settings"),
        "superusers see admin endpoints"
    );
    for (who, token) in [
        ("guest", None),
        ("user", Some(user.as_str())),
        ("forged token", Some("eyJhbGciOiJIUzI1NiJ9.e30.forged")),
        ("deleted user's token", Some(gone.as_str())),
        ("huge header", Some(&"x".repeat(8 * 1024))),
    ] {
        let (status, doc) = document(&app, token).await;
        let text = doc.to_string();
        assert_eq!(status, 200, "{who}");
        assert!(
            !text.contains("secret_ledger"),
            "{who} must not learn the name"
        );
        assert!(
            !text.contains(ledger_id),
            "{who} must not learn the id (posts.ledger points to it)"
        );
        assert!(
            !text.contains("_superusers"),
            "{who}: _superusers is superusers-only"
        );
        assert!(
            !text.contains("@request.auth.id"),
            "{who} must not see rule text"
        );
        assert!(
            !text.contains("/api/settings"),
            "{who} sees no admin endpoints"
        );
        let posts = &doc["paths"]["/api/collections/posts/records"];
        assert!(posts["get"].is_object(), "{who}: list is public");
        assert!(
            posts.get("post").is_none(),
            "{who}: create is superusers-only"
        );
        let one = &doc["paths"]["/api/collections/posts/records/{id}"];
        assert!(one["get"].is_object(), "{who}: view has a rule");
        assert!(
            one.get("delete").is_none(),
            "{who}: delete is superusers-only"
        );
    }
}

#[tokio::test]
async fn openapi_public_off_refuses_everyone_but_superusers_in_the_error_envelope() {
    let app = spawn_app().await;
    let (_, user) = sign_up(&app, "closed@example.com").await;
    let (status, _) = status_json(
        app.su(
            Method::PATCH,
            "/api/settings",
            Some(json!({"openapi": {"public": false}})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);

    let (guest_status, guest) = document(&app, None).await;
    let (user_status, _) = document(&app, Some(&user)).await;
    let (su_status, _) = document(&app, Some(&app.superuser_token)).await;

    assert_eq!(guest_status, 403, "{guest}");
    assert_eq!(guest["status"], 403);
    assert!(
        guest["message"].is_string() && guest["data"] == json!({}),
        "{guest}"
    );
    assert_eq!(user_status, 403);
    assert_eq!(su_status, 200);
}

#[tokio::test]
async fn the_document_follows_a_collection_update() {
    let app = spawn_app().await;
    rich_schema(&app).await;
    let (_, before) = document(&app, None).await;
    assert!(before["components"]["schemas"]["posts.Record"]["properties"]["subtitle"].is_null());

    let mut fields = app
        .su(Method::GET, "/api/collections/posts", None)
        .await
        .json::<Value>()
        .await
        .expect("collection json")["fields"]
        .clone();
    fields
        .as_array_mut()
        .expect("fields")
        .push(json!({"name": "subtitle", "type": "text", "max": 20}));
    let updated = app
        .update_collection("posts", json!({"fields": fields, "createRule": ""}))
        .await;
    assert_eq!(updated.status(), 200);
    let (_, after) = document(&app, None).await;

    let subtitle = &after["components"]["schemas"]["posts.Record"]["properties"]["subtitle"];
    assert_eq!(
        subtitle["maxLength"], 20,
        "new field after update: {subtitle}"
    );
    assert!(
        after["paths"]["/api/collections/posts/records"]["post"].is_object(),
        "create opened to everyone now shows"
    );
}

/// Every operation under `prefix` in `doc`, as (method, path with `{id}` filled).
fn operations(doc: &Value, prefix: &str, id: &str) -> Vec<(Method, String)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        if !path.starts_with(prefix) {
            continue;
        }
        for method in item.as_object().expect("path item").keys() {
            let Ok(m) = Method::from_bytes(method.to_ascii_uppercase().as_bytes()) else {
                continue;
            };
            if method == "parameters" {
                continue;
            }
            ops.push((m, path.replace("{id}", id)));
        }
    }
    // Deletes last, so the record stays for the others.
    ops.sort_by_key(|(m, _)| *m == Method::DELETE);
    ops
}

#[tokio::test]
async fn every_described_path_of_a_sample_collection_answers_on_the_server() {
    let app = spawn_app().await;
    rich_schema(&app).await;
    let (user_id, _) = sign_up(&app, "paths@example.com").await;
    let post = app
        .create_record_ok("posts", json!({"title": "hello"}))
        .await;
    let post_id = post["id"].as_str().expect("id");
    let (_, doc) = document(&app, Some(&app.superuser_token)).await;

    let mut tried = 0;
    for (prefix, id) in [
        // The view first: the posts' delete removes the record it shows.
        ("/api/collections/post_titles/", post_id),
        ("/api/collections/posts/", post_id),
        ("/api/collections/users/", user_id.as_str()),
    ] {
        for (method, path) in operations(&doc, prefix, id) {
            let body = (method != Method::GET && method != Method::DELETE).then(|| json!({}));
            let resp = app
                .request(method.clone(), &path, Some(&app.superuser_token), body)
                .await;
            let status = resp.status().as_u16();
            assert!(
                status != 404 && status != 405 && status < 500,
                "{method} {path} answered {status}"
            );
            tried += 1;
        }
    }
    assert!(tried >= 20, "only {tried} operations tried");
}

/// The problems of `instance` against `#/components/schemas/{name}` of `doc`.
fn mismatches(doc: &Value, name: &str, instance: &Value) -> Vec<String> {
    let root = json!({
        "$ref": format!("#/components/schemas/{name}"),
        "components": doc["components"],
    });
    let validator = jsonschema::validator_for(&root).expect("schema compiles");
    validator
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

fn assert_matches(doc: &Value, name: &str, instance: &Value) {
    let errors = mismatches(doc, name, instance);
    assert!(
        errors.is_empty(),
        "{name} does not describe {instance}: {errors:?}"
    );
}

#[tokio::test]
async fn the_server_answers_what_the_document_describes() {
    let app = spawn_app().await;
    rich_schema(&app).await;
    app.update_collection(
        "posts",
        json!({"createRule": "", "updateRule": "", "deleteRule": ""}),
    )
    .await;
    let (user_id, user) = sign_up(&app, "contract@example.com").await;
    let (_, doc) = document(&app, Some(&app.superuser_token)).await;
    let full = json!({
        "title": "a title", "body": "<p>hi</p>", "views": 7, "draft": true,
        "contact": "a@example.com", "site": "https://example.com", "published": "2024-05-01 10:00:00.000Z",
        "status": "live", "labels": ["a", "c"], "author": user_id, "meta": {"x": 1},
        "where": {"lon": 10.5, "lat": -3.25},
    });

    let empty = app
        .create_record_ok("posts", json!({"title": "bare"}))
        .await;
    let filled = app.create_record_ok("posts", full).await;
    let id = filled["id"].as_str().expect("id");
    let (_, viewed) = status_json(
        app.request(
            Method::GET,
            &format!("/api/collections/posts/records/{id}?expand=author"),
            Some(&user),
            None,
        )
        .await,
    )
    .await;
    let (_, list) = status_json(app.list_records("posts", &[], None).await).await;
    let (_, view_list) = status_json(app.list_records("post_titles", &[], None).await).await;
    let (_, auth) = status_json(
        app.request(
            Method::POST,
            "/api/collections/users/auth-with-password",
            None,
            Some(json!({"identity": "contract@example.com", "password": PASSWORD})),
        )
        .await,
    )
    .await;
    let (missing_status, missing) = status_json(app.get_record("posts", "nope", None).await).await;
    let (invalid_status, invalid) = status_json(
        app.request(
            Method::POST,
            "/api/collections/posts/records",
            None,
            Some(json!({"title": "x"})),
        )
        .await,
    )
    .await;

    assert_matches(&doc, "posts.Record", &empty);
    assert_matches(&doc, "posts.Record", &filled);
    assert_matches(&doc, "posts.Record", &viewed);
    assert_matches(&doc, "posts.List", &list);
    assert_matches(&doc, "post_titles.List", &view_list);
    assert_matches(&doc, "users.AuthResponse", &auth);
    assert_eq!((missing_status, invalid_status), (404, 400));
    assert_matches(&doc, "Error", &missing);
    assert_matches(&doc, "Error", &invalid);
    let mut wrong = filled.clone();
    wrong["status"] = json!("archived");
    wrong["views"] = json!("7");
    assert_eq!(
        mismatches(&doc, "posts.Record", &wrong).len(),
        2,
        "the check itself must catch a value outside the enum and a wrong type"
    );
}

/// `search` is described where the caller could use it (a hidden searchable
/// field is for superusers only), and `/aggregate` beside every listable
/// collection; the described aggregate answers as described.
#[tokio::test]
async fn search_and_aggregate_are_described_for_those_who_may_use_them() {
    let app = spawn_app().await;
    app.create_collection_ok(json!({
        "name": "notes", "listRule": "", "viewRule": "",
        "fields": [
            {"name": "title", "type": "text", "searchable": true},
            {"name": "amount", "type": "number"},
        ]
    }))
    .await;
    app.create_collection_ok(json!({
        "name": "vault", "listRule": "", "viewRule": "",
        "fields": [{"name": "secret", "type": "text", "hidden": true, "searchable": true}]
    }))
    .await;
    let search_ref = json!({"$ref": "#/components/parameters/search"});
    let has_search = |doc: &Value, path: &str| {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .is_some_and(|p| p.contains(&search_ref))
    };
    let (_, guest) = document(&app, None).await;
    let (_, su) = document(&app, Some(&app.superuser_token)).await;
    assert!(has_search(&guest, "/api/collections/notes/records"));
    assert!(has_search(&guest, "/api/collections/notes/aggregate"));
    assert!(
        !has_search(&guest, "/api/collections/vault/records"),
        "only a hidden field is searchable: not for guests"
    );
    assert!(has_search(&su, "/api/collections/vault/records"));
    assert!(guest["components"]["parameters"]["search"].is_object());

    app.create_record_ok("notes", json!({"title": "plum", "amount": 2}))
        .await;
    let (status, body) = status_json(
        app.request(
            Method::GET,
            "/api/collections/notes/aggregate?groupBy=title&aggregate=count(),sum(amount)",
            None,
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"items": [{"title": "plum", "count": 1, "sum_amount": 2}]})
    );
}
