//! `GET /api/typegen?lang=dart` and `ferrobase typegen --lang dart`: the
//! Dart file for a schema with every field type and hostile names parses
//! with zero ERROR/MISSING nodes under tree-sitter's Dart grammar
//! (tests/dart, installed by tests/run.sh; skipped with a loud line when
//! missing, failing under `CI=true`). No Dart SDK is reachable from the test
//! machines, so the output is syntax-checked, not compiled. Also: typed
//! fields per field type, escaped identifiers, superusers only, and the CLI
//! (`--dir` and `--url`) prints what the API serves.

use crate::helpers::{TestApp, spawn_app, status_json};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

fn dart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dart")
}

/// Whether the parser is installed; `false` after a loud line, and a
/// failure under `CI=true`.
fn parser_installed() -> bool {
    let ok = dart_dir().join("node_modules/web-tree-sitter").is_dir()
        && dart_dir()
            .join("node_modules/tree-sitter-wasms/out/tree-sitter-dart.wasm")
            .is_file();
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "tests/dart/node_modules is missing (tests/run.sh runs npm ci there)"
        );
        eprintln!("SKIPPED: Dart syntax check; run `npm ci --ignore-scripts` in tests/dart");
    }
    ok
}

/// The parser's report for `text`: (parsed cleanly, JSON report).
fn parse_dart(text: &str) -> (bool, Value) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("pocketbase_types.dart");
    std::fs::write(&file, text).expect("write dart");
    let out = Command::new("node")
        .arg(dart_dir().join("parse.mjs"))
        .arg(&file)
        .output()
        .expect("node runs");
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "parser output: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), report)
}

/// Every field type, plus names that are Dart keywords, start with a digit
/// or `_`, clash with generated members or types, or with each other.
async fn hostile_schema(app: &TestApp) {
    app.create_collection_ok(json!({
        "name": "posts", "type": "base", "listRule": "",
        "fields": [
            {"name": "title", "type": "text", "required": true},
            {"name": "body", "type": "editor"},
            {"name": "views", "type": "number", "onlyInt": true},
            {"name": "price", "type": "number"},
            {"name": "draft", "type": "bool"},
            {"name": "contact", "type": "email"},
            {"name": "site", "type": "url"},
            {"name": "published", "type": "date"},
            {"name": "status", "type": "select", "maxSelect": 1,
             "values": ["draft", "it's $x", "a b", "a-b", "", "1", "naïve", "null", "values", "PostsStatus", "String"]},
            {"name": "labels", "type": "select", "values": ["a", "b"], "maxSelect": 2},
            {"name": "cover", "type": "file", "maxSelect": 1},
            {"name": "gallery", "type": "file", "maxSelect": 4},
            {"name": "author", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1},
            {"name": "readers", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 9},
            {"name": "meta", "type": "json"},
            {"name": "where", "type": "geoPoint"},
            {"name": "secret", "type": "text", "hidden": true},
            {"name": "created", "type": "autodate", "onCreate": true},
            {"name": "class", "type": "text"},
            {"name": "is", "type": "bool"},
            {"name": "1abc", "type": "text"},
            {"name": "_private", "type": "text"},
            {"name": "hashCode", "type": "number"},
            {"name": "toJson", "type": "text"},
            {"name": "String", "type": "text"},
            {"name": "DateTime", "type": "date"},
            {"name": "PostsRecord", "type": "text"},
        ],
    }))
    .await;
    for name in [
        "class",
        "1st_things",
        "_private_stuff",
        "post_titles",
        "postTitles",
        "Collections",
    ] {
        app.create_collection_ok(json!({"name": name, "type": "base",
            "fields": [{"name": "value", "type": "text"}]}))
            .await;
    }
    // `date` + `time` would name its enum DateTime, shadowing dart:core.
    app.create_collection_ok(json!({"name": "date", "type": "base",
        "fields": [{"name": "time", "type": "select", "values": ["x"], "maxSelect": 1}]}))
        .await;
    app.create_collection_ok(json!({"name": "staff", "type": "auth",
        "fields": [{"name": "badge", "type": "text"}]}))
        .await;
    app.create_collection_ok(json!({"name": "post_view", "type": "view", "listRule": "",
        "viewQuery": "SELECT id, title FROM posts"}))
        .await;
}

async fn served(app: &TestApp) -> String {
    let resp = app.su(Method::GET, "/api/typegen?lang=dart", None).await;
    assert_eq!(resp.status(), 200);
    resp.text().await.expect("body")
}

#[tokio::test]
async fn dart_for_every_field_type_and_hostile_names_parses_cleanly() {
    let app = spawn_app().await;
    hostile_schema(&app).await;

    let text = served(&app).await;

    for line in [
        "import 'package:pocketbase/pocketbase.dart';",
        "class PostsRecord {",
        "  factory PostsRecord.fromRecord(RecordModel record) => PostsRecord.fromJson({",
        "  factory PostsRecord.fromJson(Map<String, dynamic> json) => PostsRecord(",
        "  Map<String, dynamic> toJson() => {",
        "  final String id;",
        "  final String title;",
        "  final int views;",
        "  final double price;",
        "  final bool draft;",
        "  final DateTime? published;",
        "  final PostsStatus? status;",
        "  final List<PostsLabels> labels;",
        "  final String cover;",
        "  final List<String> gallery;",
        "  final String author;",
        "  final List<String> readers;",
        "  final dynamic meta;",
        "  final GeoPoint where;",
        "  final DateTime? created;",
        "  final String $class;",
        "  final bool $is;",
        "  final String $1abc;",
        "  final String $_private;",
        "  final double $hashCode;",
        "  final String $toJson;",
        "  final String $String;",
        "  final DateTime? $DateTime;",
        "  final String $PostsRecord;",
        "        '1abc': $1abc,",
        "  it_s__x('it\\'s \\$x'),",
        "  a_b('a b'),",
        "  a_b$2('a-b'),",
        "  $(''),",
        "  $1('1'),",
        "  na_ve('naïve'),",
        "  $null('null'),",
        "  $values('values'),",
        "  PostsStatus$2('PostsStatus'),",
        "  $String('String');",
        "class ClassRecord {",
        "class $1stThingsRecord {",
        "class PrivateStuffRecord {",
        "class PostTitlesRecord {",
        "class PostTitlesRecord$2 {",
        "class CollectionsRecord {",
        "enum DateTime$2 {",
        "  static const String $class = 'class';",
        "  static const String Collections$2 = 'Collections';",
        "  final String name;",
        "class StaffRecord {",
        "  final bool emailVisibility;",
        "class PostViewRecord {",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(!text.contains("secret"), "hidden fields stay out");
    assert!(!text.contains("password"), "passwords stay out");
    assert_eq!(
        text,
        served(&app).await,
        "the same schema gives the same file"
    );
    if !parser_installed() {
        return;
    }
    let (clean, report) = parse_dart(&text);
    assert!(clean, "tree-sitter found syntax errors: {report}\n{text}");
    assert!(report["nodes"].as_u64() > Some(1000), "{report}");
}

#[tokio::test]
async fn the_parser_check_catches_a_syntax_error() {
    if !parser_installed() {
        return;
    }
    let (clean, report) = parse_dart("class A {\n  final String x\n}\n");
    assert!(!clean, "a missing semicolon must fail the check: {report}");
    assert_eq!(report["problems"][0]["row"], 2, "{report}");
}

#[tokio::test]
async fn dart_typegen_is_for_superusers_only() {
    let app = spawn_app().await;
    let body = json!({"email": "dart@example.com", "password": "secret-pass-1", "passwordConfirm": "secret-pass-1"});
    app.create_record_ok("users", body).await;
    let user = app
        .login_as("users", "dart@example.com", "secret-pass-1")
        .await;

    let (guest, guest_body) = status_json(
        app.request(Method::GET, "/api/typegen?lang=dart", None, None)
            .await,
    )
    .await;
    let (forged, _) = status_json(
        app.request(
            Method::GET,
            "/api/typegen?lang=dart",
            Some("eyJhbGciOiJIUzI1NiJ9.e30.forged"),
            None,
        )
        .await,
    )
    .await;
    let (user_status, _) = status_json(
        app.request(Method::GET, "/api/typegen?lang=dart", Some(&user), None)
            .await,
    )
    .await;
    let (upper, upper_body) =
        status_json(app.su(Method::GET, "/api/typegen?lang=DART", None).await).await;

    assert_eq!(guest, 401, "{guest_body}");
    assert_eq!(forged, 401);
    assert_eq!(user_status, 403);
    assert_eq!(upper, 400, "{upper_body}");
    assert_eq!(upper_body["data"]["lang"]["code"], "validation_in_invalid");
}

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ferrobase"))
        .args(args)
        .env_remove("TYPEGEN_TOKEN")
        .output()
        .expect("cli runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_reads_the_data_dir_or_a_server_and_prints_what_the_api_serves() {
    let app = spawn_app().await;
    hostile_schema(&app).await;
    let expected = served(&app).await;
    let out_dir = tempfile::tempdir().expect("temp dir");
    let from_dir = out_dir.path().join("from_dir.dart");
    let from_url = out_dir.path().join("from_url.dart");
    let dir = app.data_dir.to_str().expect("utf-8 path").to_owned();
    let su = app.superuser_token.clone();
    let base = app.base.clone();
    let body = json!({"email": "cli@example.com", "password": "secret-pass-1", "passwordConfirm": "secret-pass-1"});
    app.create_record_ok("users", body).await;
    let user = app
        .login_as("users", "cli@example.com", "secret-pass-1")
        .await;
    let out = |p: &Path| p.to_str().expect("utf-8 path").to_owned();
    let (fd, fu) = (out(&from_dir), out(&from_url));

    let (by_dir, by_url, no_token, as_user, both) = tokio::task::spawn_blocking(move || {
        (
            cli(&["typegen", "--lang", "dart", "--out", &fd, "--dir", &dir]),
            cli(&[
                "typegen",
                "--lang=dart",
                "--out",
                &fu,
                "--url",
                &base,
                "--token",
                &su,
            ]),
            cli(&["typegen", "--lang=dart", "--url", &base]),
            cli(&["typegen", "--lang=dart", "--url", &base, "--token", &user]),
            cli(&[
                "typegen",
                "--lang=dart",
                "--url",
                &base,
                "--token",
                &su,
                "--dir",
                &dir,
            ]),
        )
    })
    .await
    .expect("cli thread");

    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(by_dir.status.success(), "{}", stderr(&by_dir));
    assert!(by_url.status.success(), "{}", stderr(&by_url));
    assert_eq!(
        std::fs::read_to_string(&from_dir).expect("written"),
        expected
    );
    assert_eq!(
        std::fs::read_to_string(&from_url).expect("written"),
        expected
    );
    assert!(!no_token.status.success());
    assert!(stderr(&no_token).contains("token"), "{}", stderr(&no_token));
    assert!(
        !as_user.status.success(),
        "a record token is not a superuser's"
    );
    assert!(stderr(&as_user).contains("403"), "{}", stderr(&as_user));
    assert!(!both.status.success(), "--url and --dir are exclusive");
}
