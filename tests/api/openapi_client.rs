//! A client generated from the live document: `openapi-typescript` turns
//! the superuser's document into types, and a small `openapi-fetch` program
//! (fixtures/openapi_fetch_client.ts) compiles with `tsc --strict` against
//! them and then, run by node, creates, reads back and lists a record on
//! the live server. The npm packages come from tests/sdk/node_modules
//! (tests/run.sh runs `npm ci` there); skipped with a loud line when
//! missing, failing under `CI=true`.

use crate::helpers::spawn_app;
use crate::openapi::rich_schema;
use reqwest::Method;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const PROGRAM: &str = include_str!("fixtures/openapi_fetch_client.ts");

fn sdk_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk")
}

/// The node_modules/.bin directory, or `None` (after a loud line) when the
/// tools are not installed here.
fn tools() -> Option<PathBuf> {
    let bin = sdk_dir().join("node_modules/.bin");
    let present = ["tsc", "openapi-typescript"]
        .iter()
        .all(|tool| bin.join(tool).is_file())
        && sdk_dir().join("node_modules/openapi-fetch").is_dir();
    if present {
        return Some(bin);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "tsc, openapi-typescript or openapi-fetch is missing from tests/sdk/node_modules (tests/run.sh runs npm ci there)"
    );
    eprintln!(
        "SKIPPED: run `npm ci` in tests/sdk for openapi-typescript, openapi-fetch and typescript"
    );
    None
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what} runs: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openapi_fetch_client_generated_from_the_document_compiles_strictly_and_runs() {
    let app = spawn_app().await;
    rich_schema(&app).await;
    let doc = app
        .su(Method::GET, "/api/openapi.json", None)
        .await
        .text()
        .await
        .expect("document");
    let Some(bin) = tools() else { return };
    let dir = tempfile::Builder::new()
        .prefix(".typegen-")
        .tempdir_in(sdk_dir())
        .expect("temp dir in tests/sdk (resolves node_modules)");
    std::fs::write(dir.path().join("openapi.json"), doc).expect("write document");
    std::fs::write(dir.path().join("main.ts"), PROGRAM).expect("write program");

    run(
        Command::new(bin.join("openapi-typescript"))
            .current_dir(dir.path())
            .args(["openapi.json", "-o", "api.ts"]),
        "openapi-typescript",
    );
    run(
        Command::new(bin.join("tsc"))
            .current_dir(dir.path())
            .args(["--strict", "--target", "es2022", "--module", "esnext"])
            .args(["--moduleResolution", "bundler", "--lib", "es2022,dom"])
            .args(["--outDir", "out", "main.ts"]),
        "tsc --strict",
    );
    let out = tokio::process::Command::new("node")
        .current_dir(dir.path())
        .arg("out/main.js")
        .env("FB_URL", &app.base)
        .env("FB_TOKEN", &app.superuser_token)
        .output()
        .await
        .expect("node runs");

    assert!(
        out.status.success(),
        "the client failed against the live server:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).expect("the program prints JSON");
    assert_eq!(printed["title"], "typed hello", "{printed}");
    assert_eq!(printed["views"], 7);
    assert_eq!(printed["status"], "live");
    assert_eq!(printed["titles"], serde_json::json!(["typed hello"]));
    assert_eq!(printed["total"], 1);
    assert_eq!(
        printed["envelope"], 404,
        "a missing record comes back as the typed error envelope"
    );
    let stored = app
        .get_record(
            "posts",
            printed["id"].as_str().expect("id"),
            Some(&app.superuser_token),
        )
        .await;
    assert_eq!(stored.status(), 200, "the client's record is really stored");
}
