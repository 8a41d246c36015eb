//! `GET /api/typegen?lang=ts` and `ferrobase typegen`: the TypeScript
//! compiles under `tsc --strict` against the official `pocketbase` npm
//! package (tests/sdk/node_modules, installed by tests/run.sh; skipped with
//! a loud line when missing, failing under `CI=true`), types selects as
//! literal unions, is superuser-only, and the CLI prints the same text.

use crate::helpers::{TestApp, spawn_app, status_json};
use reqwest::Method;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

fn sdk_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk")
}

/// tsc from tests/sdk, or `None` (after a loud line) when not installed.
fn tsc() -> Option<PathBuf> {
    let path = sdk_dir().join("node_modules/.bin/tsc");
    if path.is_file() && sdk_dir().join("node_modules/pocketbase").is_dir() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "tsc or pocketbase is missing from tests/sdk/node_modules (tests/run.sh runs npm ci there)"
    );
    eprintln!("SKIPPED: run `npm ci` in tests/sdk for typescript and pocketbase");
    None
}

async fn schema(app: &TestApp) {
    app.create_collection_ok(json!({
        "name": "posts", "type": "base", "listRule": "",
        "fields": [
            {"name": "title", "type": "text", "required": true},
            {"name": "body", "type": "editor"},
            {"name": "views", "type": "number"},
            {"name": "draft", "type": "bool"},
            {"name": "contact", "type": "email"},
            {"name": "site", "type": "url"},
            {"name": "published", "type": "date"},
            {"name": "status", "type": "select", "values": ["draft", "live", "it's \"quoted\""], "maxSelect": 1},
            {"name": "labels", "type": "select", "values": ["a", "b"], "maxSelect": 2},
            {"name": "cover", "type": "file", "maxSelect": 1},
            {"name": "author", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1},
            {"name": "meta", "type": "json"},
            {"name": "where", "type": "geoPoint"},
        ],
    }))
    .await;
    app.create_collection_ok(json!({
        "name": "post_titles", "type": "view", "listRule": "",
        "viewQuery": "SELECT id, title FROM posts",
    }))
    .await;
}

/// Uses the generated types the way an app would, including one line
/// that must not compile.
const USAGE: &str = r#"import PocketBase from 'pocketbase'
import { Collections } from './pocketbase-types'
import type { TypedPocketBase, PostsResponse, PostsStatusOptions, UsersResponse, PostTitlesResponse } from './pocketbase-types'

const pb = new PocketBase('http://127.0.0.1:1') as TypedPocketBase

export async function main(): Promise<string> {
  const post = await pb.collection('posts').getOne<PostsResponse<{ x: number }, { author: UsersResponse }>>('id')
  const status: PostsStatusOptions = post.status
  const labels: ('a' | 'b')[] = post.labels
  const x: number | null = post.meta === null ? null : post.meta.x
  const email: string = post.expand.author.email
  const lon: number = post.where.lon
  const list = await pb.collection('posts').getList(1, 20)
  const title: string = list.items[0].title
  const view: PostTitlesResponse = await pb.collection('post_titles').getOne('id')
  const name: Collections = Collections.PostTitles
  // @ts-expect-error: not one of the select's values
  const bad: PostsStatusOptions = 'nope'
  return [status, labels, x, email, lon, title, view.title, name, bad].join()
}
"#;

#[tokio::test]
async fn generated_typescript_compiles_strictly_with_the_official_sdk() {
    let app = spawn_app().await;
    schema(&app).await;

    let resp = app.su(Method::GET, "/api/typegen?lang=ts", None).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.expect("body");

    assert!(
        text.contains("export type TypedPocketBase = PocketBase & {"),
        "{text}"
    );
    assert!(
        text.contains(
            r#"export const PostsStatusOptions = {
	"draft": "draft",
	"live": "live",
	"it's \"quoted\"": "it's \"quoted\"",
} as const
export type PostsStatusOptions = typeof PostsStatusOptions[keyof typeof PostsStatusOptions]"#
        ),
        "{text}"
    );
    let Some(tsc) = tsc() else { return };
    let dir = tempfile::Builder::new()
        .prefix(".typegen-")
        .tempdir_in(sdk_dir())
        .expect("temp dir in tests/sdk (resolves node_modules)");
    std::fs::write(dir.path().join("pocketbase-types.ts"), &text).expect("write types");
    std::fs::write(dir.path().join("usage.ts"), USAGE).expect("write usage");
    let out = Command::new(tsc)
        .args([
            "--noEmit", "--strict", "--target", "es2022", "--module", "esnext",
        ])
        .args(["--moduleResolution", "bundler", "--lib", "es2022,dom"])
        .arg(dir.path().join("usage.ts"))
        .output()
        .expect("tsc runs");
    assert!(
        out.status.success(),
        "tsc failed:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn typegen_is_for_superusers_and_refuses_unknown_languages() {
    let app = spawn_app().await;

    let (guest, guest_body) = status_json(
        app.request(Method::GET, "/api/typegen?lang=ts", None, None)
            .await,
    )
    .await;
    let (forged, _) = status_json(
        app.request(Method::GET, "/api/typegen", Some("not.a.token"), None)
            .await,
    )
    .await;
    let body = json!({"email": "typer@example.com", "password": "secret-pass-1", "passwordConfirm": "secret-pass-1"});
    app.create_record_ok("users", body).await;
    let user = app
        .login_as("users", "typer@example.com", "secret-pass-1")
        .await;
    let (user_status, _) = status_json(
        app.request(Method::GET, "/api/typegen?lang=ts", Some(&user), None)
            .await,
    )
    .await;
    let (malformed, _) =
        status_json(app.su(Method::GET, "/api/typegen?lang=%ZZ&&=", None).await).await;
    let (bad, bad_body) =
        status_json(app.su(Method::GET, "/api/typegen?lang=cobol", None).await).await;

    assert_eq!(guest, 401, "{guest_body}");
    assert_eq!(guest_body["status"], 401);
    assert_eq!(forged, 401);
    assert_eq!(user_status, 403, "records are not superusers");
    assert!(
        malformed == 400 || malformed == 200,
        "malformed query: {malformed}, never a 5xx"
    );
    assert_eq!(bad, 400, "{bad_body}");
    assert_eq!(bad_body["data"]["lang"]["code"], "validation_in_invalid");
}

#[tokio::test]
async fn the_cli_prints_what_the_api_serves_and_refuses_a_missing_data_dir() {
    let app = spawn_app().await;
    schema(&app).await;
    let served = app
        .su(Method::GET, "/api/typegen?lang=ts", None)
        .await
        .text()
        .await
        .expect("body");
    let out_dir = tempfile::tempdir().expect("temp dir");
    let out_file = out_dir.path().join("types.ts");

    let run = Command::new(env!("CARGO_BIN_EXE_ferrobase"))
        .arg("typegen")
        .arg("--lang=ts")
        .arg("--out")
        .arg(&out_file)
        .arg("--dir")
        .arg(&app.data_dir)
        .output()
        .expect("cli runs");
    let missing = Command::new(env!("CARGO_BIN_EXE_ferrobase"))
        .args(["typegen", "--dir"])
        .arg(out_dir.path().join("nowhere"))
        .output()
        .expect("cli runs");

    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(std::fs::read_to_string(&out_file).expect("written"), served);
    assert!(!missing.status.success(), "a missing data dir is an error");
    assert!(
        !out_dir.path().join("nowhere").exists(),
        "and is not created"
    );
}
