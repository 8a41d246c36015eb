//! `ferrobase typegen --lang ts` against the real `pocketbase-typegen`
//! (npm, 1.5.0, reading the same collections with `--json`): type for type
//! the same record fields, select options, response types and collection
//! names. The known, intentional differences are asserted, not ignored:
//! pocketbase-typegen also types hidden fields and passwords (responses never
//! carry them) and gives `AuthSystemFields` a `username` that PocketBase 0.23
//! dropped. Skipped with a loud line when tests/sdk/node_modules lacks it,
//! failing under `CI=true`.

use crate::helpers::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn pocketbase_typegen() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sdk/node_modules/pocketbase-typegen/dist/cli.js");
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "pocketbase-typegen is missing from tests/sdk/node_modules (tests/run.sh runs npm ci there)"
    );
    eprintln!("SKIPPED: run `npm ci` in tests/sdk for pocketbase-typegen");
    None
}

/// Every field type (a password and a hidden field too), a camelCase name,
/// numeric select values, an update-only autodate, a view and a second
/// auth collection.
async fn schema(app: &TestApp) {
    app.create_collection_ok(json!({
        "name": "posts", "type": "base", "listRule": "",
        "fields": [
            {"name": "title", "type": "text", "required": true},
            {"name": "body", "type": "editor"},
            {"name": "views", "type": "number", "required": true},
            {"name": "draft", "type": "bool"},
            {"name": "contact", "type": "email"},
            {"name": "site", "type": "url"},
            {"name": "published", "type": "date", "required": true},
            {"name": "status", "type": "select", "values": ["draft", "live"], "maxSelect": 1},
            {"name": "stars", "type": "select", "values": ["1", "2", "3"], "maxSelect": 1},
            {"name": "labels", "type": "select", "values": ["a", "b"], "maxSelect": 2},
            {"name": "cover", "type": "file", "maxSelect": 1},
            {"name": "gallery", "type": "file", "maxSelect": 3},
            {"name": "author", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1},
            {"name": "readers", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 5},
            {"name": "meta", "type": "json"},
            {"name": "extra", "type": "json"},
            {"name": "where", "type": "geoPoint"},
            {"name": "secret", "type": "password"},
            {"name": "internal", "type": "text", "hidden": true},
            {"name": "created", "type": "autodate", "onCreate": true},
            {"name": "touched", "type": "autodate", "onCreate": false, "onUpdate": true},
        ],
    }))
    .await;
    app.create_collection_ok(json!({
        "name": "blogPosts", "type": "base",
        "fields": [{"name": "headline", "type": "text"}],
    }))
    .await;
    app.create_collection_ok(json!({
        "name": "staff", "type": "auth",
        "fields": [{"name": "badge", "type": "text", "required": true}],
    }))
    .await;
    app.create_collection_ok(json!({
        "name": "post_titles", "type": "view", "listRule": "",
        "viewQuery": "SELECT id, title, views FROM posts",
    }))
    .await;
}

/// What a generated file declares, normalised: per `XxxRecord` its fields
/// (`name?` → type), the select option objects, and the response lines.
#[derive(Debug, Default)]
struct Declared {
    records: BTreeMap<String, BTreeMap<String, String>>,
    options: BTreeMap<String, BTreeSet<String>>,
    option_types: BTreeSet<String>,
    responses: BTreeSet<String>,
    collections: BTreeSet<String>,
}

fn normalise(line: &str) -> String {
    line.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .trim_end_matches([',', ';'])
        .to_owned()
}

fn declared(ts: &str) -> Declared {
    let mut out = Declared::default();
    let mut lines = ts.lines();
    while let Some(line) = lines.next() {
        let line = normalise(line);
        let block_body = |lines: &mut std::str::Lines| -> Vec<String> {
            lines
                .by_ref()
                .map(normalise)
                .take_while(|l| !l.starts_with('}'))
                .collect()
        };
        if let Some(rest) = line.strip_prefix("export type ")
            && let Some((name, after)) = rest.split_once("Record")
            && (after.starts_with('<') || after.starts_with(" ="))
            && rest.ends_with('{')
        {
            let fields = block_body(&mut lines)
                .into_iter()
                .filter_map(|l| {
                    let (k, v) = l.split_once(": ")?;
                    Some((k.to_owned(), v.to_owned()))
                })
                .collect();
            out.records.insert(name.to_owned(), fields);
        } else if let Some(name) = line
            .strip_prefix("export const ")
            .and_then(|r| r.strip_suffix(" = {"))
        {
            let entries: BTreeSet<String> = block_body(&mut lines).into_iter().collect();
            if name == "Collections" {
                out.collections = entries;
            } else {
                out.options.insert(name.to_owned(), entries);
            }
        } else if line.starts_with("export type ") && line.contains("Options = ") {
            out.option_types.insert(line);
        } else if line.starts_with("export type ") && line.contains("Response<") {
            out.responses.insert(line);
        }
    }
    out
}

/// Fields pocketbase-typegen types that ferrobase leaves out on purpose:
/// passwords, token keys and hidden fields never appear in a response.
fn left_out_on_purpose() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    let auth = BTreeSet::from(["password", "tokenKey"]);
    BTreeMap::from([
        ("Posts", BTreeSet::from(["secret?", "internal?"])),
        ("Users", auth.clone()),
        ("Staff", auth.clone()),
        ("Superusers", auth),
        ("Otps", BTreeSet::from(["password", "sentTo?"])),
    ])
}

#[tokio::test]
async fn ferrobase_typegen_matches_pocketbase_typegen_type_for_type() {
    let app = spawn_app().await;
    schema(&app).await;
    let ours = app
        .su(Method::GET, "/api/typegen?lang=ts", None)
        .await
        .text()
        .await
        .expect("body");
    let collections: Value = app
        .su(Method::GET, "/api/collections?perPage=200", None)
        .await
        .json()
        .await
        .expect("collections");
    let Some(cli) = pocketbase_typegen() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("schema.json"),
        collections["items"].to_string(),
    )
    .expect("write schema");
    let out = Command::new("node")
        .arg(cli)
        .args(["--json", "schema.json", "--out", "theirs.ts"])
        .current_dir(dir.path())
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "pocketbase-typegen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = std::fs::read_to_string(dir.path().join("theirs.ts")).expect("written");

    let (ours_d, theirs_d) = (declared(&ours), declared(&theirs));

    assert_eq!(theirs_d.records.len(), 10, "every collection: {theirs}");
    let skipped = left_out_on_purpose();
    for (name, their_fields) in &theirs_d.records {
        let Some(our_fields) = ours_d.records.get(name) else {
            panic!("ferrobase has no {name}Record:\n{ours}");
        };
        let expected_missing = skipped.get(name.as_str()).cloned().unwrap_or_default();
        let missing: BTreeSet<&str> = their_fields
            .keys()
            .filter(|k| !our_fields.contains_key(*k))
            .map(String::as_str)
            .collect();
        assert_eq!(
            missing, expected_missing,
            "{name}: fields only pocketbase-typegen has"
        );
        for (field, ty) in our_fields {
            assert_eq!(
                their_fields.get(field),
                Some(ty),
                "{name}.{field}: ours `{ty}`, pocketbase-typegen's {:?}",
                their_fields.get(field)
            );
        }
    }
    assert_eq!(ours_d.records.len(), theirs_d.records.len());
    assert_eq!(ours_d.options, theirs_d.options, "select option objects");
    assert_eq!(
        ours_d.option_types, theirs_d.option_types,
        "select option types"
    );
    assert_eq!(ours_d.responses, theirs_d.responses, "response types");
    assert_eq!(ours_d.collections, theirs_d.collections, "Collections");
    assert!(
        theirs.contains("\tusername: string\n") && !ours.contains("username"),
        "the one system-field difference: no username since PocketBase 0.23"
    );
}
