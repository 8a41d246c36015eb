//! Schemathesis (PyPI, installed by tests/run.sh into
//! tests/.venv-schemathesis; skipped with a loud line when missing, failing
//! under `CI=true`) sends property-based requests generated from the
//! superuser's document, and from a guest's and a user's own filtered
//! documents with their credentials, to a live server: no 5xx, every status
//! and every response body as documented. Also regression tests for what it found.

use crate::helpers::{TestApp, spawn_app};
use crate::openapi::rich_schema;
use reqwest::Method;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// Generated cases per operation and phase; with ~120 operations the run
/// takes about a minute on two cores.
const MAX_EXAMPLES: u32 = 20;
/// Per operation and phase for the guest's and the user's documents (fewer
/// operations, two runs).
const PUBLIC_MAX_EXAMPLES: u32 = 15;
/// A fixed seed keeps the run reproducible; change it to explore.
const SEED: u32 = 1;

/// The `st` program, or `None` (after a loud line) when it is not
/// installed here. Under `CI=true` a missing program fails the test.
fn schemathesis() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/.venv-schemathesis/bin/st");
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "schemathesis is missing (tests/run.sh installs it into tests/.venv-schemathesis)"
    );
    eprintln!(
        "SKIPPED: schemathesis not installed; run tests/run.sh or \
         python3 -m venv tests/.venv-schemathesis && tests/.venv-schemathesis/bin/pip install schemathesis==4.32.5"
    );
    None
}

async fn superuser_document(app: &TestApp) -> Value {
    let resp = app.su(Method::GET, "/api/openapi.json", None).await;
    assert_eq!(resp.status(), 200);
    resp.json().await.expect("document is JSON")
}

/// `fields` narrows a response below the documented `required` list (its
/// description says so), so generated cases leave it empty; and the
/// superuser's own record is not updated, which would end the session the
/// run signs its requests with.
const CONFIG: &str = r#"[parameters]
"query.fields" = ""
"#;

/// Runs schemathesis on `doc` against `app`, signing with `token` when
/// given; panics with its report on any failure.
async fn run_schemathesis(app: &TestApp, doc: &Value, token: Option<&str>, max_examples: u32) {
    let Some(st) = schemathesis() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("openapi.json"), doc.to_string()).expect("write document");
    std::fs::write(dir.path().join("schemathesis.toml"), CONFIG).expect("write config");

    let mut cmd = tokio::process::Command::new(st);
    cmd.current_dir(dir.path())
        .args(["--config-file", "schemathesis.toml", "run", "openapi.json"])
        .args(["--url", &app.base]);
    if let Some(token) = token {
        cmd.args(["-H", &format!("Authorization: {token}")]);
    }
    let out = cmd
        .args([
            "--checks",
            "not_a_server_error,response_schema_conformance,status_code_conformance",
        ])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", &max_examples.to_string()])
        .args(["--seed", &SEED.to_string()])
        // One worker: Python 3.11's `ast` is not thread-safe for hypothesis.
        .args(["--workers", "1", "--request-timeout", "10"])
        .args(["--generation-database", "none", "--no-color"])
        .args(["--exclude-operation-id", "_superusers.update"])
        .output()
        .await
        .expect("schemathesis runs");

    let report = String::from_utf8_lossy(&out.stdout);
    let summary = report.lines().rev().take(30).collect::<Vec<_>>();
    eprintln!(
        "{}",
        summary.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("passed"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_requests_get_no_server_errors_and_documented_answers() {
    let app = spawn_app().await;
    rich_schema(&app).await;
    let body = json!({"email": "fuzz@example.com", "password": "secret-pass-1", "passwordConfirm": "secret-pass-1"});
    app.create_record_ok("users", body).await;
    let doc = superuser_document(&app).await;

    run_schemathesis(&app, &doc, Some(&app.superuser_token), MAX_EXAMPLES).await;
}

/// A guest's and a user's own (filtered) documents, each exercised with
/// that caller's credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_and_user_requests_get_no_server_errors_and_answers_their_documents_describe() {
    let app = spawn_app().await;
    rich_schema(&app).await;
    let body = json!({"email": "fuzzer@example.com", "password": "secret-pass-1", "passwordConfirm": "secret-pass-1"});
    app.create_record_ok("users", body).await;
    let user = app
        .login_as("users", "fuzzer@example.com", "secret-pass-1")
        .await;

    for token in [None, Some(user.as_str())] {
        let resp = app
            .request(Method::GET, "/api/openapi.json", token, None)
            .await;
        assert_eq!(resp.status(), 200);
        let doc: Value = resp.json().await.expect("document is JSON");
        run_schemathesis(&app, &doc, token, PUBLIC_MAX_EXAMPLES).await;
    }
}

/// What schemathesis found in the document, checked without it.
#[tokio::test]
async fn the_document_describes_what_the_server_really_answers() {
    let app = spawn_app().await;
    rich_schema(&app).await;
    let record = app
        .create_record_ok("posts", json!({"title": "hello"}))
        .await;
    let doc = superuser_document(&app).await;

    let schema = &doc["components"]["schemas"]["posts.Record"];
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .expect("the record schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&record)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "a record with unset email, url and date and PocketBase's date layout: {errors:?}\n{record}"
    );
    let paths = &doc["paths"];
    for (answer, documented, why) in [
        (
            "403",
            &paths["/api/batch"]["post"],
            "batch turned off in the settings",
        ),
        ("401", &paths["/api/files/token"]["post"], "no token"),
        (
            "403",
            &paths["/api/collections/users/request-otp"]["post"],
            "OTP turned off for the collection",
        ),
        (
            "403",
            &paths["/api/collections/users/request-email-change"]["post"],
            "a superuser's token on a users route",
        ),
    ] {
        assert!(
            documented["responses"].get(answer).is_some(),
            "{answer} ({why}) must be documented: {documented}"
        );
    }
    let event = &paths["/api/realtime"]["get"]["responses"]["200"]["content"]["text/event-stream"]
        ["schema"];
    assert_eq!(event["type"], "object", "each event is an object: {event}");
}
