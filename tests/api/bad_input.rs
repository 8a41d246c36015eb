//! Hostile input against one running server: malformed and non-object JSON,
//! wrong types and out-of-range values for every field type, hostile
//! collection, field and index definitions, hostile filters, sorts and
//! pagination, bad ids in paths, garbage tokens, unsupported content types,
//! oversized bodies, wrong methods and unknown paths.
//!
//! Every case must end in its exact status, inside PocketBase's error envelope
//! for 4xx (never a 5xx), and the whole table must leave the records, the
//! schema and the SQLite file as they were. All failing cases are reported
//! together, so one run shows every problem.

use crate::helpers::{SU_EMAIL, SU_PASSWORD, status_json};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ferrobase::{Application, Config};
use reqwest::Method;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};
use std::path::Path;

/// Body limit of the server under test: small, so the 413 cases stay cheap.
const MAX_BODY_BYTES: usize = 256 * 1024;

const GET: Method = Method::GET;
const POST: Method = Method::POST;
const PATCH: Method = Method::PATCH;
const PUT: Method = Method::PUT;
const DELETE: Method = Method::DELETE;

const JSON: Option<&str> = Some("application/json");
const COLLECTIONS: &str = "/api/collections";
const POSTS: &str = "/api/collections/posts";
const RECORDS: &str = "/api/collections/posts/records";
const POST_1: &str = "post00000000001";
const POST_2: &str = "post00000000002";
/// The only record that 200 cases may change.
const SCRATCH: &str = "scratch00000001";
const PERSON_1: &str = "person000000001";
const PERSON_2: &str = "person000000002";
/// PocketBase's fixed id of `_superusers`.
const SUPERUSERS_ID: &str = "pbc_3142635823";

/// A server like `spawn_app`'s, but with a small body limit.
struct Server {
    base: String,
    client: reqwest::Client,
    token: String,
    superuser_id: String,
    data_dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn spawn_small_body_server() -> Server {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::for_tests(data_dir.path());
    config.server.max_body_bytes = MAX_BODY_BYTES;
    let app = Application::build(config).await.expect("app builds");
    let superuser_id = ferrobase::auth::upsert_superuser(app.db(), SU_EMAIL, SU_PASSWORD)
        .await
        .expect("superuser");
    let base = format!("http://127.0.0.1:{}", app.port());
    let task = tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let login = client
        .post(format!(
            "{base}/api/collections/_superusers/auth-with-password"
        ))
        .json(&json!({"identity": SU_EMAIL, "password": SU_PASSWORD}))
        .send()
        .await
        .expect("login request");
    let (status, body) = status_json(login).await;
    assert_eq!(status, 200, "superuser login: {body}");
    let token = body["token"].as_str().expect("token").to_owned();
    Server {
        base,
        client,
        token,
        superuser_id,
        data_dir,
        task,
    }
}

impl Server {
    /// A superuser JSON request during setup and checks.
    async fn su(&self, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("Authorization", &self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        status_json(req.send().await.expect("request sent")).await
    }

    async fn su_ok(&self, method: Method, path: &str, body: Option<&Value>) -> Value {
        let (status, json) = self.su(method.clone(), path, body).await;
        assert_eq!(status, 200, "{method} {path} during setup: {json}");
        json
    }
}

/// Who sends a case.
enum Who {
    Superuser,
    Guest,
    /// A raw `Authorization` header value.
    Header(Vec<u8>),
}

/// One hostile request and what it must get back.
struct Case {
    method: Method,
    path: String,
    who: Who,
    /// Content type (none: no header) and raw bytes.
    body: Option<(Option<&'static str>, Vec<u8>)>,
    headers: Vec<(&'static str, &'static str)>,
    status: u16,
    why: String,
}

fn su(method: Method, path: impl Into<String>) -> Case {
    Case {
        method,
        path: path.into(),
        who: Who::Superuser,
        body: None,
        headers: Vec::new(),
        status: 0,
        why: String::new(),
    }
}

fn guest(method: Method, path: impl Into<String>) -> Case {
    Case {
        who: Who::Guest,
        ..su(method, path)
    }
}

impl Case {
    fn json(self, body: &Value) -> Self {
        self.raw(JSON, body.to_string())
    }

    fn raw(mut self, content_type: Option<&'static str>, bytes: impl Into<Vec<u8>>) -> Self {
        self.body = Some((content_type, bytes.into()));
        self
    }

    fn auth(mut self, header: impl Into<Vec<u8>>) -> Self {
        self.who = Who::Header(header.into());
        self
    }

    fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.push((name, value));
        self
    }

    fn gives(mut self, status: u16, why: impl Into<String>) -> Self {
        self.status = status;
        self.why = why.into();
        self
    }
}

fn record(id: &str) -> String {
    format!("{RECORDS}/{id}")
}

fn with_query(path: &str, params: &[(&str, &str)]) -> String {
    format!(
        "{path}?{}",
        serde_urlencoded::to_string(params).expect("query encodes")
    )
}

/// A valid create body with `key` set to `value`.
fn post_with(key: &str, value: Value) -> Value {
    let mut body = json!({"title": "valid title"});
    body[key] = value;
    body
}

/// `levels` nested arrays around `1`.
fn nested_arrays(levels: usize) -> String {
    format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
}

/// A filter nested `levels` parentheses deep.
fn nested_filter(levels: usize) -> String {
    format!("{}views > 0{}", "(".repeat(levels), ")".repeat(levels))
}

fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// What is wrong with an error body, if anything: it must be exactly
/// `{"data": {…}, "message": "<non-empty>", "status": <http status>}`.
fn envelope_problem(status: u16, body: &Value) -> Option<String> {
    let Some(obj) = body.as_object() else {
        return Some("body is not the JSON error envelope".to_owned());
    };
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    if keys != ["data", "message", "status"] {
        return Some(format!("envelope keys are {keys:?}"));
    }
    if !obj["data"].is_object() {
        return Some("`data` is not an object".to_owned());
    }
    if obj["message"].as_str().is_none_or(|m| m.trim().is_empty()) {
        return Some("`message` is not a non-empty string".to_owned());
    }
    if obj["status"].as_u64() != Some(u64::from(status)) {
        return Some(format!("`status` is {}, not {status}", obj["status"]));
    }
    None
}

/// Sends one case; returns a description of what went wrong, if anything.
async fn run(server: &Server, case: &Case) -> Option<String> {
    let mut req = server
        .client
        .request(case.method.clone(), format!("{}{}", server.base, case.path));
    match &case.who {
        Who::Superuser => req = req.header("Authorization", &server.token),
        Who::Guest => {}
        Who::Header(raw) => {
            let value = HeaderValue::from_bytes(raw).expect("a sendable header value");
            req = req.header("Authorization", value);
        }
    }
    for (name, value) in &case.headers {
        req = req.header(*name, *value);
    }
    if let Some((content_type, bytes)) = &case.body {
        if let Some(ct) = content_type {
            req = req.header("Content-Type", *ct);
        }
        req = req.body(bytes.clone());
    }
    let resp = match req.send().await {
        Ok(resp) => resp,
        Err(e) => return Some(format!("request failed: {e}")),
    };
    let (status, body) = status_json(resp).await;
    let mut problems = Vec::new();
    if status >= 500 {
        problems.push(format!("server error {status}"));
    } else if status != case.status {
        problems.push(format!("status {status}, expected {}", case.status));
    }
    match status {
        200 => {}
        204 if body.is_null() => {}
        204 => problems.push("204 with a body".to_owned()),
        _ => problems.extend(envelope_problem(status, &body)),
    }
    if problems.is_empty() {
        return None;
    }
    Some(format!(
        "{} {} ({}): {}; body: {}",
        case.method,
        clip(&case.path, 120),
        case.why,
        problems.join(", "),
        clip(&body.to_string(), 300)
    ))
}

/// What the table needs to know about the seeded data.
struct Seeded {
    posts_fields: Value,
    /// Auth token of an ordinary (non-superuser) account.
    member_token: String,
}

/// Creates `people`, `posts` and an auth collection `members`, with a few records.
async fn seed(server: &Server) -> Seeded {
    let people = server
        .su_ok(
            POST,
            COLLECTIONS,
            Some(&json!({
                "name": "people",
                "listRule": "",
                "viewRule": "",
                "fields": [{"name": "name", "type": "text"}]
            })),
        )
        .await;
    let posts = server
        .su_ok(
            POST,
            COLLECTIONS,
            Some(&json!({
                "name": "posts",
                "listRule": "",
                "viewRule": "",
                "fields": [
                    {"name": "title", "type": "text", "required": true, "max": 100},
                    {"name": "views", "type": "number", "min": 0},
                    {"name": "flag", "type": "bool"},
                    {"name": "status", "type": "select", "values": ["draft", "published"], "maxSelect": 1},
                    {"name": "tags", "type": "select", "values": ["a", "b", "c"], "maxSelect": 3},
                    {"name": "meta", "type": "json", "maxSize": 2000},
                    {"name": "when", "type": "date"},
                    {"name": "mail", "type": "email"},
                    {"name": "site", "type": "url"},
                    {"name": "author", "type": "relation", "collectionId": people["id"], "maxSelect": 1},
                    {"name": "loc", "type": "geoPoint"}
                ]
            })),
        )
        .await;
    // Two people share a name, so a unique index on `name` cannot be built.
    for id in [PERSON_1, PERSON_2] {
        let body = json!({"id": id, "name": "Ann"});
        server
            .su_ok(POST, "/api/collections/people/records", Some(&body))
            .await;
    }
    for (id, title) in [(POST_1, "first"), (POST_2, "second"), (SCRATCH, "scratch")] {
        let body = json!({
            "id": id, "title": title, "views": 3, "flag": true, "status": "draft",
            "tags": ["a", "b"], "meta": {"k": [1, 2]}, "when": "2024-05-06 07:08:09.000Z",
            "mail": "ann@example.com", "site": "https://example.com/x", "author": PERSON_1,
            "loc": {"lon": 13.4, "lat": 52.5}
        });
        server.su_ok(POST, RECORDS, Some(&body)).await;
    }
    let members = json!({"name": "members", "type": "auth", "listRule": "", "viewRule": ""});
    server.su_ok(POST, COLLECTIONS, Some(&members)).await;
    let member = json!({"email": "member@example.com", "password": "member-pass-1",
                        "passwordConfirm": "member-pass-1"});
    server
        .su_ok(POST, "/api/collections/members/records", Some(&member))
        .await;
    let login = server
        .client
        .post(format!(
            "{}/api/collections/members/auth-with-password",
            server.base
        ))
        .json(&json!({"identity": "member@example.com", "password": "member-pass-1"}))
        .send()
        .await
        .expect("member login");
    let (status, body) = status_json(login).await;
    assert_eq!(status, 200, "member login: {body}");
    Seeded {
        posts_fields: posts["fields"].clone(),
        member_token: body["token"].as_str().expect("token").to_owned(),
    }
}

/// Record counts, the collection list and every record except the scratch one.
async fn state_of(server: &Server) -> Value {
    let mut out = json!({});
    for name in ["posts", "people", "members", "_superusers"] {
        let path = with_query(
            &format!("{COLLECTIONS}/{name}/records"),
            &[("perPage", "1000"), ("sort", "id")],
        );
        let page = server.su_ok(GET, &path, None).await;
        out[name] = json!({
            "totalItems": page["totalItems"],
            "items": page["items"]
                .as_array()
                .expect("items")
                .iter()
                .filter(|r| r["id"] != SCRATCH)
                .cloned()
                .collect::<Vec<_>>(),
        });
    }
    let collections = with_query(COLLECTIONS, &[("perPage", "1000")]);
    out["collections"] = server.su_ok(GET, &collections, None).await;
    out
}

/// What differs between two [`state_of`] results, briefly.
fn changes(before: &Value, after: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for name in ["posts", "people", "members", "_superusers"] {
        let (b, a) = (&before[name], &after[name]);
        if b["totalItems"] != a["totalItems"] {
            out.push(format!(
                "{name}: {} records before, {} after",
                b["totalItems"], a["totalItems"]
            ));
        } else if b["items"] != a["items"] {
            out.push(format!(
                "{name}: record contents changed: {}",
                clip(&a["items"].to_string(), 600)
            ));
        }
    }
    let by_name = |state: &Value| -> Vec<(String, Value)> {
        state["collections"]["items"]
            .as_array()
            .expect("collections")
            .iter()
            .map(|c| (c["name"].as_str().unwrap_or_default().to_owned(), c.clone()))
            .collect()
    };
    let (b, a) = (by_name(before), by_name(after));
    for (name, def) in &a {
        match b.iter().find(|(n, _)| n == name) {
            None => out.push(format!("collection {name} appeared")),
            Some((_, old)) if old != def => out.push(format!(
                "collection {name} changed: {}",
                clip(&def.to_string(), 600)
            )),
            Some(_) => {}
        }
    }
    for (name, _) in &b {
        if !a.iter().any(|(n, _)| n == name) {
            out.push(format!("collection {name} disappeared"));
        }
    }
    out
}

fn integrity_check(dir: &Path) -> String {
    let conn = rusqlite::Connection::open_with_flags(
        dir.join("data.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("data.db opens read-only");
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check runs")
}

/// A token with `alg: none` claiming to be the superuser.
fn unsigned_superuser_token(superuser_id: &str) -> String {
    let part = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.",
        part(json!({"alg": "none", "typ": "JWT"})),
        part(json!({
            "collectionId": SUPERUSERS_ID, "exp": 4_102_444_800_i64, "id": superuser_id,
            "refreshable": true, "type": "auth"
        }))
    )
}

/// A well-formed HS256 token for the superuser, signed with a guessed key.
fn guessed_key_superuser_token(superuser_id: &str) -> String {
    let claims = json!({
        "collectionId": SUPERUSERS_ID, "exp": 4_102_444_800_i64, "id": superuser_id,
        "refreshable": true, "type": "auth"
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"secret"),
    )
    .expect("token signs")
}

fn malformed_json_cases() -> Vec<Case> {
    let deep_array = format!("{{\"meta\": {}}}", nested_arrays(20_000));
    let deep_object = format!(
        "{{\"meta\": {}1{}}}",
        "{\"a\": ".repeat(20_000),
        "}".repeat(20_000)
    );
    let mut cases: Vec<Case> = [
        ("{", "unterminated object"),
        ("{\"title\": \"x\",}", "trailing comma"),
        ("{'title': 'x'}", "single quotes"),
        ("{title: \"x\"}", "unquoted key"),
        ("{\"title\": \"x\"}}", "extra closing brace"),
        ("{\"title\": \"x\"} {\"title\": \"y\"}", "two objects"),
        ("{\"title\": \"x", "unterminated string"),
        ("{\"title\": \"a\nb\"}", "raw control character in a string"),
        ("{\"title\": NaN}", "NaN literal"),
        ("{\"title\": undefined}", "undefined literal"),
        ("{\"views\": 1e400}", "number out of range"),
        ("{\"title\": \"\\ud800\"}", "lone surrogate escape"),
        ("\u{feff}{\"title\": \"x\"}", "byte order mark"),
        ("{\"title\": \"x\" /* c */}", "comment"),
        ("\0", "NUL byte"),
        (deep_array.as_str(), "arrays nested 20000 deep"),
        (deep_object.as_str(), "objects nested 20000 deep"),
    ]
    .into_iter()
    .map(|(body, why)| {
        su(POST, RECORDS)
            .raw(JSON, body)
            .gives(400, format!("malformed JSON: {why}"))
    })
    .collect();
    cases.push(
        su(POST, RECORDS)
            .raw(JSON, b"{\"title\": \"\xff\xfe\"}".to_vec())
            .gives(400, "malformed JSON: invalid UTF-8"),
    );
    cases
}

fn non_object_json_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for body in [
        "[]",
        "[{\"title\": \"x\"}]",
        "\"title\"",
        "42",
        "null",
        "true",
    ] {
        cases.push(
            su(POST, RECORDS)
                .raw(JSON, body)
                .gives(400, format!("record create with non-object JSON {body}")),
        );
    }
    // `null` is not here: PocketBase reads a JSON `null` body as `{}`, and so
    // do we (an update with nothing to change answers 200).
    for body in ["[1, 2]", "\"x\""] {
        cases.push(
            su(PATCH, record(POST_1))
                .raw(JSON, body)
                .gives(400, format!("record update with non-object JSON {body}")),
        );
    }
    for (path, method) in [
        (COLLECTIONS, POST),
        (POSTS, PATCH),
        ("/api/settings", PATCH),
        ("/api/collections/_superusers/auth-with-password", POST),
    ] {
        cases.push(
            su(method.clone(), path)
                .raw(JSON, "[\"name\", \"x\"]")
                .gives(400, format!("{method} {path} with a JSON array")),
        );
        cases.push(
            su(method, path)
                .raw(JSON, "{")
                .gives(400, "unterminated object"),
        );
    }
    cases
}

/// Every field type gets values of the wrong type or out of range.
fn field_value_cases() -> Vec<Case> {
    let long = |n: usize| json!("x".repeat(n));
    let table: Vec<(&str, Value, &str)> = vec![
        ("title", json!({"a": 1}), "object for text"),
        ("title", json!(["a", "b"]), "array for text"),
        ("title", json!(""), "blank required text"),
        ("title", Value::Null, "null required text"),
        ("title", long(101), "one char over max"),
        ("title", long(100_000), "100k chars"),
        ("title", json!("é".repeat(101)), "101 two-byte chars"),
        ("views", json!("abc"), "text for number"),
        ("views", json!("12abc"), "number with trailing text"),
        ("views", json!("NaN"), "NaN text"),
        ("views", json!("1e400"), "infinite text"),
        ("views", json!([1]), "array for number"),
        ("views", json!({"n": 1}), "object for number"),
        ("views", json!(-1), "below min 0"),
        ("views", json!(-0.5), "fraction below min 0"),
        ("flag", json!("maybe"), "text for bool"),
        ("flag", json!(2), "2 for bool"),
        ("flag", json!([]), "array for bool"),
        ("flag", json!({}), "object for bool"),
        ("status", json!("nope"), "unknown select value"),
        ("status", json!("DRAFT"), "select values are case-sensitive"),
        ("status", json!("draft "), "trailing space"),
        (
            "status",
            json!(["draft", "published"]),
            "two values for single select",
        ),
        ("status", json!({}), "object for select"),
        ("tags", json!(["a", "z"]), "unknown multi select value"),
        ("tags", json!("z"), "unknown value as a single string"),
        (
            "tags",
            json!(["a", "b", "c", "d"]),
            "four values, maxSelect 3",
        ),
        ("tags", json!([1, 2]), "numbers for select"),
        ("tags", json!([["a"]]), "nested array"),
        ("tags", json!([null]), "null item"),
        ("tags", json!({"a": true}), "object for multi select"),
        ("meta", long(3000), "over the json maxSize"),
        ("when", json!("not a date"), "text for date"),
        ("when", json!("2024-13-01"), "month 13"),
        ("when", json!("2024-02-30"), "30 February"),
        ("when", json!("2024-01-01 25:00:00"), "hour 25"),
        ("when", json!("0000-00-00"), "zero date"),
        ("when", json!(20_240_101), "number for date"),
        ("when", json!({}), "object for date"),
        ("mail", json!("not-an-email"), "no @"),
        ("mail", json!("a@"), "no domain"),
        ("mail", json!("@example.com"), "no local part"),
        ("mail", json!("a@@example.com"), "two @"),
        ("mail", json!("a b@example.com"), "space"),
        ("mail", json!(["a@example.com"]), "array for email"),
        ("mail", json!({}), "object for email"),
        ("site", json!("not a url"), "text for url"),
        ("site", json!("javascript:alert(1)"), "javascript: scheme"),
        ("site", json!("http://"), "scheme only"),
        ("site", json!("//example.com/x"), "no scheme"),
        ("site", json!("http://exa mple.com"), "space in host"),
        ("site", json!([]), "array for url"),
        ("author", json!("nonexistent0001"), "unknown relation id"),
        ("author", json!("' OR 1=1 --"), "SQL as relation id"),
        ("author", json!("../people"), "path as relation id"),
        ("author", json!(7), "number as relation id"),
        (
            "author",
            json!([PERSON_1, PERSON_2]),
            "two ids for a single relation",
        ),
        ("author", json!({"id": PERSON_1}), "object for relation"),
        ("loc", json!({"lon": 181, "lat": 0}), "longitude over 180"),
        (
            "loc",
            json!({"lon": -180.0001, "lat": 0}),
            "longitude under -180",
        ),
        ("loc", json!({"lon": 0, "lat": 91}), "latitude over 90"),
        ("loc", json!({"lon": 0, "lat": -90.5}), "latitude under -90"),
        ("loc", json!({"lon": "10", "lat": 0}), "text longitude"),
        ("loc", json!({"lon": 0, "lat": [1]}), "array latitude"),
        ("loc", json!("52.5,13.4"), "text for geoPoint"),
        ("loc", json!([13.4, 52.5]), "array for geoPoint"),
        ("loc", json!(5), "number for geoPoint"),
        ("id", json!("short"), "id too short"),
        ("id", json!("UPPERCASE000001"), "upper-case id"),
        ("id", json!("../../etc/passw"), "path as id"),
        ("id", json!("x".repeat(5000)), "5000-char id"),
        ("id", json!(123), "number as id"),
        ("id", json!(POST_1), "duplicate id"),
        ("views+", json!("abc"), "text added to a number"),
        ("views-", json!({}), "object subtracted from a number"),
        ("tags+", json!(["zz"]), "unknown value appended"),
        ("tags+", json!(5), "number appended to a select"),
    ];
    let mut cases: Vec<Case> = table
        .into_iter()
        .map(|(key, value, why)| {
            let shown = clip(&value.to_string(), 40);
            su(POST, RECORDS)
                .json(&post_with(key, value))
                .gives(400, format!("create with {key} = {shown}: {why}"))
        })
        .collect();
    cases.push(
        su(POST, RECORDS)
            .json(&json!({"views": 1}))
            .gives(400, "create without the required title"),
    );
    for (body, why) in [
        (json!({"views": "abc"}), "text for number"),
        (json!({"title": ""}), "blanking a required text"),
        (json!({"id": "changed00000001"}), "changing the primary key"),
        (json!({"loc": {"lon": 500, "lat": 0}}), "longitude 500"),
        (json!({"author": "nonexistent0001"}), "unknown relation id"),
        (json!({"when": "yesterday"}), "text for date"),
    ] {
        cases.push(
            su(PATCH, record(POST_1))
                .json(&body)
                .gives(400, format!("update: {why}")),
        );
    }
    cases.push(
        su(PATCH, record("doesnotexist123"))
            .json(&json!({"title": "x"}))
            .gives(404, "update of a missing record"),
    );
    cases
}

/// Requests the server must accept (200) without touching anything but the scratch record.
fn accepted_cases() -> Vec<Case> {
    let deep = format!("{{\"meta\": {}}}", nested_arrays(100));
    vec![
        su(PATCH, record(SCRATCH))
            .json(&json!({
                "title": "scratch", "nope": 1, "collectionId": "x", "collectionName": "y",
                "expand": {"a": 1}, "__proto__": {"admin": true}, "constructor": 1
            }))
            .gives(200, "unknown and reserved keys are ignored"),
        su(PATCH, record(SCRATCH))
            .json(&json!({"title": "é".repeat(100)}))
            .gives(200, "max counts characters, not bytes"),
        su(PATCH, record(SCRATCH))
            .raw(JSON, deep)
            .gives(200, "JSON nested 100 deep is fine"),
        su(PATCH, record(SCRATCH))
            .json(&json!({"title": "'; DROP TABLE posts; --"}))
            .gives(200, "SQL in a value is stored as text"),
        su(PATCH, record(SCRATCH))
            .json(&json!({"title": "Robert\"); DROP TABLE people;--"}))
            .gives(200, "quotes in a value are stored as text"),
        su(PATCH, record(SCRATCH))
            .json(&json!({"title": "a\u{0}b"}))
            .gives(200, "an escaped NUL is an ordinary character"),
        su(PATCH, record(SCRATCH))
            .json(&json!({"views+": 1, "views-": 1}))
            .gives(200, "modifiers that cancel out"),
        su(PATCH, record(SCRATCH))
            .raw(
                Some("application/x-www-form-urlencoded"),
                "title=scratch&nope=1",
            )
            .gives(200, "url-encoded form with an unknown key"),
        su(PATCH, record(SCRATCH))
            .raw(
                Some("application/json; charset=utf-8"),
                "{\"title\": \"scratch\"}",
            )
            .gives(200, "JSON with a charset parameter"),
        su(PATCH, record(SCRATCH))
            .raw(JSON, "  ")
            .gives(200, "a blank body is an empty update"),
    ]
}

fn collection_name_cases() -> Vec<Case> {
    let names = [
        ("posts; DROP TABLE people", "SQL statement"),
        ("people--", "comment marker"),
        ("a'b", "single quote"),
        ("a\"b", "double quote"),
        ("a`b", "backtick"),
        ("a]b", "bracket"),
        ("a b", "space"),
        (" posts2", "leading space"),
        ("posts2\n", "trailing newline"),
        ("名前", "non-ASCII"),
        ("emoji😀", "emoji"),
        ("x.y", "dot"),
        ("x-y", "dash"),
        ("../people", "path traversal"),
        ("%s", "format directive"),
        ("a\u{0}b", "NUL"),
        ("sqlite_master", "SQLite catalogue"),
        ("SQLITE_MASTER", "SQLite catalogue, upper case"),
        ("sqlite_sequence", "SQLite internal table"),
        ("sqlite_stat1", "SQLite internal prefix"),
        ("_collections", "our system table"),
        ("_COLLECTIONS", "our system table, upper case"),
        ("_params", "our system table"),
        ("_migrations", "our system table"),
        ("_fb_rebuild_x", "our internal prefix"),
        ("_superusers", "existing system collection"),
        ("people", "existing collection"),
        ("POSTS", "existing collection, other case"),
        ("idx_email_pbc_3142635823", "name of an existing index"),
        ("", "blank"),
    ];
    let long_100 = "a".repeat(101);
    let long_1000 = "a".repeat(1000);
    let mut cases: Vec<Case> = names
        .into_iter()
        .map(|(name, why)| (name.to_owned(), why))
        .chain([(long_100, "101 chars"), (long_1000, "1000 chars")])
        .map(|(name, why)| {
            su(POST, COLLECTIONS)
                .json(&json!({"name": name}))
                .gives(400, format!("collection name {:?}: {why}", clip(&name, 30)))
        })
        .collect();
    for (body, why) in [
        (json!({"name": 123}), "number as name"),
        (json!({"name": null}), "null name"),
        (json!({"name": ["posts2"]}), "array as name"),
        (json!({}), "no name"),
        (json!({"name": "typed_a", "type": "view"}), "view type"),
        (json!({"name": "typed_b", "type": "graph"}), "unknown type"),
        (
            json!({"name": "typed_c", "type": "BASE"}),
            "type is case-sensitive",
        ),
        (json!({"name": "typed_d", "type": 1}), "number as type"),
        (
            json!({"name": "ided_a", "id": "'; DROP TABLE posts; --"}),
            "SQL as id",
        ),
        (
            json!({"name": "ided_b", "id": SUPERUSERS_ID}),
            "existing id",
        ),
        (
            json!({"name": "ruled_a", "listRule": "1=1; DROP TABLE posts"}),
            "SQL statement as rule",
        ),
        (json!({"name": "ruled_b", "listRule": 5}), "number as rule"),
        (
            json!({"name": "ruled_c", "listRule": "(((("}),
            "unbalanced rule",
        ),
        (
            json!({"name": "ruled_d", "listRule": "nope = 1"}),
            "rule on an unknown field",
        ),
        (
            json!({"name": "wide", "fields": (0..2100)
                .map(|i| json!({"name": format!("f{i}"), "type": "text"}))
                .collect::<Vec<_>>()}),
            "2100 fields, more columns than SQLite allows",
        ),
    ] {
        cases.push(
            su(POST, COLLECTIONS)
                .json(&body)
                .gives(400, format!("collection create: {why}")),
        );
    }
    cases
}

fn field_definition_cases() -> Vec<Case> {
    let names = [
        ("a b", "space"),
        ("a;b", "semicolon"),
        ("a'b", "single quote"),
        ("a\"b", "double quote"),
        ("DROP TABLE posts;--", "SQL statement"),
        ("名前", "non-ASCII"),
        ("a-b", "dash"),
        ("", "blank"),
        ("collectionId", "reserved response key"),
        ("expand", "reserved response key"),
        ("id", "the primary key name on a plain text field"),
        ("ID", "the primary key name in another case"),
    ];
    let long_100 = "f".repeat(101);
    let long_1000 = "f".repeat(1000);
    let mut cases: Vec<Case> = names
        .into_iter()
        .map(|(name, why)| (name.to_owned(), why))
        .chain([(long_100, "101 chars"), (long_1000, "1000 chars")])
        .map(|(name, why)| {
            let body =
                json!({"name": "hostile_fields", "fields": [{"name": name, "type": "text"}]});
            su(POST, COLLECTIONS)
                .json(&body)
                .gives(400, format!("field name {:?}: {why}", clip(&name, 30)))
        })
        .collect();
    let definitions = [
        (json!("text"), "field as a string"),
        (json!(5), "field as a number"),
        (Value::Null, "null field"),
        (json!({"name": "a", "type": "nope"}), "unknown type"),
        (
            json!({"name": "a", "type": "TEXT"}),
            "type is case-sensitive",
        ),
        (json!({"name": "a", "type": 5}), "number as type"),
        (json!({"name": "a"}), "no type"),
        (
            json!({"name": "a", "type": "text", "id": "x'; DROP TABLE posts"}),
            "SQL as field id",
        ),
        (
            json!({"name": "a", "type": "relation"}),
            "relation without a target",
        ),
        (
            json!({"name": "a", "type": "relation", "collectionId": "nope"}),
            "relation to an unknown collection",
        ),
        (
            json!({"name": "a", "type": "relation", "collectionId": "' OR 1=1 --"}),
            "SQL as relation target",
        ),
        (
            json!({"name": "a", "type": "select"}),
            "select without values",
        ),
        (
            json!({"name": "a", "type": "select", "values": [1, 2]}),
            "numbers as select values",
        ),
        (
            json!({"name": "a", "type": "select", "values": ["x"], "maxSelect": -1}),
            "negative maxSelect",
        ),
        (
            json!({"name": "a", "type": "select", "values": ["x"], "maxSelect": "3"}),
            "text maxSelect",
        ),
        (
            json!({"name": "a", "type": "text", "pattern": "("}),
            "invalid regex",
        ),
        (json!({"name": "a", "type": "text", "min": "3"}), "text min"),
        (
            json!({"name": "a", "type": "text", "min": -1}),
            "negative min",
        ),
        (
            json!({"name": "a", "type": "text", "min": 5, "max": 2}),
            "min above max",
        ),
        (
            json!({"name": "a", "type": "number", "min": 5, "max": 1}),
            "number min above max",
        ),
        (
            json!({"name": "a", "type": "bool", "required": "yes"}),
            "text for required",
        ),
    ];
    for (field, why) in definitions {
        let body = json!({"name": "hostile_fields", "fields": [field]});
        cases.push(
            su(POST, COLLECTIONS)
                .json(&body)
                .gives(400, format!("field definition: {why}")),
        );
    }
    for (fields, why) in [
        (json!("title"), "fields as a string"),
        (json!({"name": "a", "type": "text"}), "fields as an object"),
        (
            json!([{"name": "a", "type": "text"}, {"name": "A", "type": "text"}]),
            "names differing only in case",
        ),
        (
            json!([{"id": "text1", "name": "a", "type": "text"}, {"id": "text1", "name": "b", "type": "text"}]),
            "duplicate field ids",
        ),
    ] {
        let body = json!({"name": "hostile_fields", "fields": fields});
        cases.push(
            su(POST, COLLECTIONS)
                .json(&body)
                .gives(400, format!("fields: {why}")),
        );
    }
    cases.push(
        su(POST, COLLECTIONS)
            .json(&json!({"name": "hostile_auth", "type": "auth", "fields": [{"name": "EMAIL", "type": "text"}]}))
            .gives(400, "auth field named like the system email field in another case"),
    );
    cases
}

fn index_cases() -> Vec<Case> {
    let long_name = format!("CREATE INDEX {} ON hostile_idx (a)", "i".repeat(5000));
    let indexes = [
        ("DROP TABLE posts", "DROP TABLE"),
        (
            "CREATE INDEX i1 ON hostile_idx (a); DROP TABLE posts",
            "second statement",
        ),
        ("CREATE INDEX i2 ON hostile_idx (lower(a))", "expression"),
        (
            "CREATE INDEX i3 ON hostile_idx (a) WHERE a = 1",
            "arbitrary WHERE",
        ),
        (
            "CREATE INDEX i4 ON hostile_idx (a) WHERE 1=1 OR a != ''",
            "tautology WHERE",
        ),
        (
            "CREATE INDEX `i5\"x` ON hostile_idx (a)",
            "quote in the name",
        ),
        ("CREATE INDEX i6 ON hostile_idx (nope)", "unknown column"),
        ("CREATE INDEX i7 ON hostile_idx ()", "no columns"),
        (
            "CREATE INDEX i8 ON hostile_idx (a",
            "unbalanced parenthesis",
        ),
        ("CREATE INDEX i9 ON hostile_idx (a) -- x", "comment"),
        (
            "CREATE INDEX i10 ON hostile_idx (a COLLATE BINARY)",
            "other collation",
        ),
        (
            "CREATE INDEX i11 ON hostile_idx ('a')",
            "string literal column",
        ),
        ("CREATE TABLE t (a)", "CREATE TABLE"),
        ("SELECT 1", "SELECT"),
        ("", "blank"),
        (long_name.as_str(), "5000-char index name"),
        (
            "CREATE INDEX idx_email_pbc_3142635823 ON hostile_idx (a)",
            "name of another collection's index",
        ),
        (
            "CREATE INDEX people ON hostile_idx (a)",
            "name of an existing table",
        ),
        (
            "CREATE INDEX sqlite_autoindex_x ON hostile_idx (a)",
            "SQLite's reserved index prefix",
        ),
    ];
    let mut cases: Vec<Case> = indexes
        .into_iter()
        .map(|(index, why)| {
            let body = json!({
                "name": "hostile_idx",
                "fields": [{"name": "a", "type": "text"}],
                "indexes": [index]
            });
            su(POST, COLLECTIONS)
                .json(&body)
                .gives(400, format!("index {:?}: {why}", clip(index, 40)))
        })
        .collect();
    for (indexes, why) in [
        (json!([5]), "number as index"),
        (json!([null]), "null index"),
        (
            json!("CREATE INDEX i ON hostile_idx (a)"),
            "indexes as a string",
        ),
        (
            json!([
                "CREATE INDEX dup ON hostile_idx (a)",
                "CREATE INDEX dup ON hostile_idx (a)"
            ]),
            "the same name twice",
        ),
    ] {
        let body = json!({"name": "hostile_idx", "fields": [{"name": "a", "type": "text"}], "indexes": indexes});
        cases.push(
            su(POST, COLLECTIONS)
                .json(&body)
                .gives(400, format!("indexes: {why}")),
        );
    }
    cases
}

/// Hostile changes to existing collections.
fn collection_update_cases(posts_fields: &Value) -> Vec<Case> {
    let mut id_as_number = posts_fields.clone();
    id_as_number[0]["type"] = json!("number");
    let mut title_as_views = posts_fields.clone();
    title_as_views[1]["name"] = json!("VIEWS");
    let mut cases: Vec<Case> = [
        (
            json!({"name": "sqlite_master"}),
            "rename to the SQLite catalogue",
        ),
        (
            json!({"name": "people"}),
            "rename to an existing collection",
        ),
        (json!({"name": "a b"}), "rename with a space"),
        (json!({"type": "auth"}), "type change"),
        (json!({"fields": "x"}), "fields as a string"),
        (json!({"fields": id_as_number}), "system id field retyped"),
        (
            json!({"fields": title_as_views}),
            "field renamed onto another in another case",
        ),
        (
            json!({"indexes": ["DROP TABLE people"]}),
            "DROP TABLE as index",
        ),
        (
            json!({"indexes": ["CREATE INDEX ix ON posts (nope)"]}),
            "index on an unknown column",
        ),
        (json!({"listRule": "(((("}), "unbalanced rule"),
        (json!({"createRule": {"a": 1}}), "object as rule"),
    ]
    .into_iter()
    .map(|(body, why)| {
        su(PATCH, POSTS)
            .json(&body)
            .gives(400, format!("posts update: {why}"))
    })
    .collect();
    cases.extend([
        su(PATCH, "/api/collections/people")
            .json(&json!({"listRule": "nope = 1"}))
            .gives(400, "rule on an unknown field"),
        su(PATCH, "/api/collections/people")
            .json(&json!({"indexes": ["CREATE UNIQUE INDEX idx_dup ON people (name)"]}))
            .gives(400, "unique index over duplicate values"),
        su(PATCH, "/api/collections/_superusers")
            .json(&json!({"name": "admins"}))
            .gives(400, "renaming a system collection"),
        su(PATCH, "/api/collections/nope")
            .json(&json!({"name": "x"}))
            .gives(404, "update of a missing collection"),
        su(DELETE, "/api/collections/_superusers").gives(400, "deleting a system collection"),
        su(DELETE, "/api/collections/people").gives(400, "deleting a referenced collection"),
        su(DELETE, "/api/collections/nope").gives(404, "deleting a missing collection"),
    ]);
    cases
}

fn filter_and_sort_cases() -> Vec<Case> {
    let long = format!("title = '{}'", "x".repeat(5000));
    let many = ["views = 1"; 201].join(" || ");
    let nested_33 = nested_filter(33);
    let nested_1000 = nested_filter(1000);
    let rejected = [
        ("title = 'x' || 1=1 --", "SQL comment marker"),
        ("'; DROP TABLE posts; --", "SQL statement"),
        ("title = 'x'; DROP TABLE posts", "second statement"),
        ("title = 'x' /* c */", "block comment"),
        ("((title = 'x')", "unbalanced open"),
        ("title = 'x'))", "unbalanced close"),
        ("(", "lone open"),
        (")", "lone close"),
        ("title =", "missing operand"),
        ("= 'x'", "missing left operand"),
        ("title == 'x'", "double equals"),
        ("title ~~ 'x'", "unknown operator"),
        ("title = 'x' &&", "dangling &&"),
        ("title = 'x' AND views > 1", "SQL keyword"),
        ("title = \"x", "unterminated text"),
        ("nope = 1", "unknown field"),
        ("title = 'x' || nope = 1", "unknown field after ||"),
        ("sqlite_master.name != ''", "SQLite catalogue"),
        ("meta.a'b = 1", "quote in a JSON path"),
        ("1e3 = 1", "exponent number"),
        ("title = 0x41", "hex number"),
        ("unknownfn(title) = 1", "unknown function"),
        (long.as_str(), "5000 chars"),
        (many.as_str(), "201 comparisons"),
        (nested_33.as_str(), "nested 33 deep"),
        (nested_1000.as_str(), "nested 1000 deep"),
    ];
    let mut cases: Vec<Case> = rejected
        .into_iter()
        .map(|(filter, why)| {
            guest(GET, with_query(RECORDS, &[("filter", filter)]))
                .gives(400, format!("filter {:?}: {why}", clip(filter, 40)))
        })
        .collect();
    for (filter, status, why) in [
        (
            "@request.auth.id = ''",
            403,
            "guests may not filter by @request",
        ),
        (
            "@collection.people.name = 'x'",
            403,
            "guests may not filter by @collection",
        ),
        (
            "title = 'x' || 1=1",
            200,
            "a tautology is still only a bound filter",
        ),
        (
            "title = '\\'; DROP TABLE posts; --'",
            200,
            "SQL inside a text literal",
        ),
        (
            "title = 'x' // comment",
            200,
            "line comments are part of the language",
        ),
    ] {
        cases.push(
            guest(GET, with_query(RECORDS, &[("filter", filter)]))
                .gives(status, format!("filter {filter:?}: {why}")),
        );
    }
    let many_args = format!("strftime('%Y', when{}) = '2024'", ", 'x'".repeat(300));
    for (filter, status, why) in [
        ("author.name = 'Ann'", 200, "a relation path"),
        (
            "geoDistance(loc.lon, loc.lat, 13.4, 52.5) < 10",
            200,
            "geoDistance over a geoPoint field is a valid filter",
        ),
        ("author.nope = 1", 400, "unknown field behind a relation"),
        ("author.name.x.y = 1", 400, "path through a text field"),
        (
            "author.author.author.author.author.author.author.name = 'x'",
            400,
            "relation path through a non-relation",
        ),
        (
            "posts_via_author.title != ''",
            400,
            "back-relation that does not exist",
        ),
        ("meta.k.0 = 1", 200, "a JSON path"),
        (
            "meta.k.99999999999999999999999 = 1",
            200,
            "a huge JSON array index matches nothing",
        ),
        ("title:nope = 1", 400, "unknown modifier"),
        (
            "geoDistance(loc.lon, loc.lat) > 1",
            400,
            "geoDistance with two arguments",
        ),
        ("strftime() = ''", 400, "strftime without arguments"),
        (
            many_args.as_str(),
            200,
            "extra strftime arguments are bound modifiers",
        ),
        (
            "@request.headers.x = 'y'",
            403,
            "guests may not filter by request headers",
        ),
    ] {
        cases.push(
            guest(GET, with_query(RECORDS, &[("filter", filter)]))
                .gives(status, format!("filter {:?}: {why}", clip(filter, 40))),
        );
    }
    cases.push(
        guest(GET, format!("{RECORDS}?filter=%FF%FE")).gives(400, "filter that is not UTF-8"),
    );
    let nine = ["title"; 9].join(",");
    let long_sort = "t".repeat(300);
    for (sort, status, why) in [
        ("nope", 400, "unknown field"),
        ("-nope", 400, "unknown field descending"),
        ("title;DROP TABLE posts", 400, "SQL statement"),
        ("title DESC", 400, "SQL direction keyword"),
        ("title,", 400, "empty item"),
        ("(title)", 400, "parentheses"),
        ("@random()", 400, "call syntax"),
        ("meta.a'b", 400, "quote in a JSON path"),
        (nine.as_str(), 400, "nine sort fields"),
        (long_sort.as_str(), 400, "300-char field"),
        ("@request.auth.id", 403, "guests may not sort by @request"),
    ] {
        cases.push(
            guest(GET, with_query(RECORDS, &[("sort", sort)]))
                .gives(status, format!("sort {:?}: {why}", clip(sort, 40))),
        );
    }
    cases.push(
        su(GET, with_query(COLLECTIONS, &[("page", "abc")]))
            .gives(400, "collections list with a text page"),
    );
    for (filter, sort, why) in [
        (
            "fields ~ 'x'",
            "",
            "collections can't be filtered by fields",
        ),
        ("'; DROP TABLE _collections; --", "", "SQL statement"),
        ("", "fields", "collections can't be sorted by fields"),
        ("", "name;DROP TABLE _collections", "SQL in sort"),
    ] {
        cases.push(
            su(
                GET,
                with_query(COLLECTIONS, &[("filter", filter), ("sort", sort)]),
            )
            .gives(400, format!("collections list: {why}")),
        );
    }
    cases
}

fn pagination_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (key, value, status, why) in [
        ("page", "abc", 400, "text page"),
        ("page", "1.5", 400, "fractional page"),
        ("page", "1e2", 400, "exponent page"),
        ("page", "0x10", 400, "hex page"),
        ("page", "99999999999999999999", 400, "page over i64"),
        ("perPage", "abc", 400, "text perPage"),
        ("perPage", "10.5", 400, "fractional perPage"),
        ("perPage", "99999999999999999999", 400, "perPage over i64"),
        ("page", "-1", 200, "negative page means the first"),
        ("page", "0", 200, "page 0 means the first"),
        (
            "page",
            "9223372036854775807",
            200,
            "last i64 page is just empty",
        ),
        ("perPage", "-5", 200, "negative perPage means the default"),
        ("perPage", "100000", 200, "perPage is clamped"),
        ("skipTotal", "maybe", 400, "skipTotal must be a boolean"),
        (
            "expand",
            "author.nope.x",
            200,
            "unknown expand paths are ignored",
        ),
        ("fields", ",,,", 200, "empty fields list"),
        (
            "expand",
            "author,author,,author.author.author.author.author.author.author",
            200,
            "repeated and deep expands",
        ),
        (
            "expand",
            "posts_via_author",
            200,
            "expand of a back-relation that does not exist",
        ),
        (
            "fields",
            "title:excerpt(99999999999999999999999,true)",
            400,
            "excerpt length past any integer",
        ),
        (
            "fields",
            "*,expand.author.name:excerpt(-1)",
            400,
            "negative excerpt length",
        ),
    ] {
        cases.push(
            guest(GET, with_query(RECORDS, &[(key, value)]))
                .gives(status, format!("{key}={value}: {why}")),
        );
    }
    cases
}

fn path_cases() -> Vec<Case> {
    let long_id = "a".repeat(5000);
    let longer_id = "a".repeat(20_000);
    let mut cases: Vec<Case> = [
        "..%2F..%2Fetc%2Fpasswd",
        "%27%20OR%20%271%27%3D%271",
        long_id.as_str(),
        longer_id.as_str(),
        "%00",
        "%FF",
        "post00000000001%00",
        "POST00000000001",
        "post00000000001%20",
        "%2e%2e%2fpeople",
    ]
    .into_iter()
    .map(|id| guest(GET, record(id)).gives(404, format!("record id {:?}", clip(id, 30))))
    .collect();
    cases.extend([
        su(PATCH, record("..%2Fpost00000000001"))
            .json(&json!({"title": "x"}))
            .gives(404, "update through a traversal id"),
        su(DELETE, record("%27%3B%20DROP%20TABLE%20posts%3B%20--"))
            .gives(404, "delete with SQL as id"),
        su(DELETE, record("nonexistent0001")).gives(404, "delete of a missing record"),
    ]);
    let long_name = "c".repeat(5000);
    for name in [
        "..%2Fposts",
        "posts%27--",
        "sqlite_master",
        "_collections",
        "%FF",
        "posts%00",
        long_name.as_str(),
    ] {
        cases.push(guest(GET, format!("{COLLECTIONS}/{name}/records")).gives(
            404,
            format!("collection {:?} in a record path", clip(name, 30)),
        ));
    }
    cases.extend([
        su(GET, format!("{COLLECTIONS}/sqlite_master"))
            .gives(404, "SQLite catalogue as collection"),
        su(GET, format!("{COLLECTIONS}/%FF")).gives(404, "non-UTF-8 collection"),
        su(DELETE, format!("{COLLECTIONS}/..%2Fposts")).gives(404, "delete through traversal"),
        guest(GET, format!("{COLLECTIONS}/_superusers/records"))
            .gives(403, "superusers are listed by superusers only"),
        guest(GET, format!("{COLLECTIONS}/{SUPERUSERS_ID}/records")).gives(403, "the same, by id"),
    ]);
    cases
}

fn authorization_cases(server: &Server) -> Vec<Case> {
    let unsigned = unsigned_superuser_token(&server.superuser_id);
    let guessed = guessed_key_superuser_token(&server.superuser_id);
    let tampered = format!("{}x", server.token);
    let garbage: Vec<(Vec<u8>, &str)> = vec![
        (b"garbage".to_vec(), "garbage"),
        (b"Bearer garbage".to_vec(), "Bearer garbage"),
        (b"Bearer ".to_vec(), "empty Bearer"),
        (b"bearer a.b.c".to_vec(), "three dots of nothing"),
        (b"Basic YWRtaW46cGFzcw==".to_vec(), "Basic credentials"),
        (unsigned.into_bytes(), "unsigned (alg none) superuser token"),
        (
            guessed.into_bytes(),
            "superuser token signed with a guessed key",
        ),
        (tampered.into_bytes(), "tampered superuser token"),
        ("x".repeat(8000).into_bytes(), "8000-byte token"),
        (b"\xff\xfe".to_vec(), "non-UTF-8 bytes"),
    ];
    let mut cases = Vec::new();
    for (header, why) in &garbage {
        cases.push(
            guest(GET, RECORDS)
                .auth(header.clone())
                .gives(200, format!("public list with {why}: treated as a guest")),
        );
        cases.push(
            guest(GET, COLLECTIONS)
                .auth(header.clone())
                .gives(401, format!("superuser route with {why}")),
        );
    }
    cases.extend([
        guest(GET, "/api/health")
            .auth("garbage")
            .gives(200, "health with garbage"),
        guest(GET, COLLECTIONS).gives(401, "superuser route without a token"),
        guest(GET, "/api/settings")
            .auth("garbage")
            .gives(401, "settings with garbage"),
        guest(DELETE, POSTS)
            .auth("garbage")
            .gives(401, "collection delete with garbage"),
        guest(POST, COLLECTIONS)
            .auth("garbage")
            .json(&json!({"name": "pwned"}))
            .gives(401, "collection create with garbage"),
        guest(PATCH, POSTS)
            .json(&json!({"name": "pwned"}))
            .gives(401, "collection update as a guest"),
        guest(DELETE, format!("{POSTS}/truncate")).gives(401, "truncate as a guest"),
        guest(POST, RECORDS)
            .json(&json!({"title": "pwned"}))
            .gives(403, "create rule is superusers-only"),
        guest(POST, RECORDS)
            .auth("Bearer garbage")
            .json(&json!({"title": "pwned"}))
            .gives(403, "garbage does not lift the create rule"),
        guest(PATCH, record(POST_1))
            .json(&json!({"title": "pwned"}))
            .gives(403, "update rule is superusers-only"),
        guest(DELETE, record(POST_1)).gives(403, "delete rule is superusers-only"),
        guest(GET, COLLECTIONS)
            .auth(format!("BEARER {}", server.token))
            .gives(200, "the Bearer prefix is case-insensitive"),
    ]);
    cases
}

/// An ordinary account may not do what only superusers may.
fn member_cases(member_token: &str) -> Vec<Case> {
    let bearer = format!("Bearer {member_token}");
    vec![
        guest(GET, COLLECTIONS)
            .auth(member_token)
            .gives(403, "collections list as a member"),
        guest(PATCH, POSTS)
            .auth(bearer.clone())
            .json(&json!({"listRule": null}))
            .gives(403, "collection update as a member"),
        guest(GET, "/api/settings")
            .auth(member_token)
            .gives(403, "settings as a member"),
        guest(POST, RECORDS)
            .auth(member_token)
            .json(&json!({"title": "by a member"}))
            .gives(403, "create rule is superusers-only, also for members"),
        guest(GET, format!("{COLLECTIONS}/_superusers/records"))
            .auth(bearer.clone())
            .gives(403, "superusers list as a member"),
        guest(POST, "/api/collections/_superusers/auth-refresh")
            .auth(bearer.clone())
            .gives(403, "refreshing as a superuser with a member token"),
        guest(
            GET,
            with_query(RECORDS, &[("filter", "@request.auth.id != ''")]),
        )
        .auth(bearer)
        .gives(403, "members may not filter by @request"),
        guest(GET, RECORDS)
            .auth(member_token)
            .gives(200, "a member may use the public list"),
    ]
}

fn content_type_cases() -> Vec<Case> {
    let valid = "{\"title\": \"typed\"}";
    let mut cases: Vec<Case> = [
        (Some("application/xml"), "<title>x</title>", "XML"),
        (
            Some("APPLICATION/XML"),
            "<title>x</title>",
            "XML, upper case",
        ),
        (Some("text/html"), "<b>x</b>", "HTML"),
        (Some("application/octet-stream"), valid, "octet-stream"),
        (Some("image/png"), valid, "PNG"),
        (Some("text/csv"), "title\nx", "CSV"),
        (
            Some("text/plain"),
            valid,
            "text/plain (PocketBase: unsupported)",
        ),
        (
            None,
            valid,
            "a body without Content-Type (PocketBase: unsupported)",
        ),
        (
            Some("multipart/form-data"),
            "--x\r\n",
            "multipart without a boundary",
        ),
    ]
    .into_iter()
    .map(|(content_type, body, why)| {
        su(POST, RECORDS)
            .raw(content_type, body)
            .gives(400, format!("Content-Type: {why}"))
    })
    .collect();
    cases.extend([
        su(PATCH, POSTS)
            .raw(Some("text/csv"), "name\nx")
            .gives(400, "collection update as CSV"),
        su(POST, COLLECTIONS)
            .raw(Some("application/xml"), "<name>x</name>")
            .gives(400, "collection create as XML"),
        su(POST, RECORDS)
            .raw(
                Some("application/x-www-form-urlencoded"),
                "title=x&views=abc",
            )
            .gives(400, "url-encoded form with a bad number"),
        su(POST, RECORDS)
            .raw(
                Some("application/x-www-form-urlencoded"),
                format!("title={}", "x".repeat(101)),
            )
            .gives(400, "url-encoded form with a too-long title"),
    ]);
    cases
}

fn body_limit_cases() -> Vec<Case> {
    let huge = json!({"title": "x".repeat(MAX_BODY_BYTES + 1024)});
    [
        (POST, RECORDS.to_owned()),
        (PATCH, record(POST_1)),
        (POST, COLLECTIONS.to_owned()),
        (PATCH, POSTS.to_owned()),
        (PATCH, "/api/settings".to_owned()),
        (
            POST,
            "/api/collections/_superusers/auth-with-password".to_owned(),
        ),
    ]
    .into_iter()
    .map(|(method, path)| {
        let why = format!("{method} {path} over the body limit");
        su(method, path).json(&huge).gives(413, why)
    })
    .collect()
}

fn method_and_path_cases() -> Vec<Case> {
    let unknown = Method::from_bytes(b"FOO").expect("extension method");
    let propfind = Method::from_bytes(b"PROPFIND").expect("extension method");
    let mut cases: Vec<Case> = [
        (PUT, record(POST_1)),
        (POST, record(POST_1)),
        (PUT, RECORDS.to_owned()),
        (PATCH, RECORDS.to_owned()),
        (DELETE, RECORDS.to_owned()),
        (PUT, COLLECTIONS.to_owned()),
        (PATCH, COLLECTIONS.to_owned()),
        (DELETE, COLLECTIONS.to_owned()),
        (PUT, POSTS.to_owned()),
        (POST, "/api/health".to_owned()),
        (DELETE, "/api/health".to_owned()),
        (PUT, "/api/settings".to_owned()),
        (DELETE, "/api/settings".to_owned()),
        (GET, format!("{POSTS}/truncate")),
        (POST, format!("{POSTS}/truncate")),
        (
            GET,
            "/api/collections/_superusers/auth-with-password".to_owned(),
        ),
        (Method::TRACE, RECORDS.to_owned()),
        (unknown, RECORDS.to_owned()),
        (propfind, COLLECTIONS.to_owned()),
    ]
    .into_iter()
    .map(|(method, path)| {
        let why = format!("wrong method {method} on {path}");
        su(method, path).gives(404, why)
    })
    .collect();
    for path in [
        "/api/nothing",
        "/api/",
        "/api",
        "/API/health",
        "/api/admins",
        "/api/%00",
        "/api/collections/posts/records/",
        "/api/collections/posts/records/post00000000001/extra",
        "/api/collections/posts/nothing",
        "/api/collections//records",
        "/nothing",
    ] {
        cases.push(su(GET, path).gives(404, format!("unknown path {path}")));
    }
    cases.push(
        guest(Method::OPTIONS, RECORDS)
            .header("Origin", "https://evil.example")
            .header("Access-Control-Request-Method", "DELETE")
            .header("Access-Control-Request-Headers", "x-evil, authorization")
            .gives(204, "CORS preflight from any origin"),
    );
    cases
}

fn auth_endpoint_cases() -> Vec<Case> {
    let login = "/api/collections/_superusers/auth-with-password";
    vec![
        su(PATCH, "/api/settings")
            .json(&json!({"meta": {"appName": ""}}))
            .gives(400, "blank application name"),
        su(PATCH, "/api/settings")
            .json(&json!({"meta": "x"}))
            .gives(400, "settings section as a string"),
        guest(POST, login)
            .json(&json!({"identity": "' OR 1=1 --", "password": "x"}))
            .gives(400, "SQL as identity"),
        guest(POST, login)
            .json(&json!({"identity": SU_EMAIL, "password": "' OR ''='"}))
            .gives(400, "SQL as password"),
        guest(POST, login)
            .json(&json!({"identity": {"$ne": null}, "password": {"$ne": null}}))
            .gives(400, "operator objects as credentials"),
        guest(POST, login)
            .json(&json!({}))
            .gives(400, "no credentials"),
        guest(POST, "/api/collections/posts/auth-with-password")
            .json(&json!({"identity": "a", "password": "b"}))
            .gives(404, "login on a base collection"),
        guest(POST, "/api/collections/nope/auth-with-password")
            .json(&json!({"identity": "a", "password": "b"}))
            .gives(404, "login on a missing collection"),
        guest(POST, "/api/collections/_superusers/auth-refresh")
            .auth("garbage")
            .gives(401, "refresh with garbage"),
    ]
}

#[tokio::test]
async fn hostile_requests_get_exact_4xx_envelopes_and_change_nothing() {
    // Arrange
    let server = spawn_small_body_server().await;
    let seeded = seed(&server).await;
    let before = state_of(&server).await;
    let mut cases = Vec::new();
    cases.extend(malformed_json_cases());
    cases.extend(non_object_json_cases());
    cases.extend(field_value_cases());
    cases.extend(accepted_cases());
    cases.extend(collection_name_cases());
    cases.extend(field_definition_cases());
    cases.extend(index_cases());
    cases.extend(collection_update_cases(&seeded.posts_fields));
    cases.extend(filter_and_sort_cases());
    cases.extend(pagination_cases());
    cases.extend(path_cases());
    cases.extend(authorization_cases(&server));
    cases.extend(member_cases(&seeded.member_token));
    cases.extend(content_type_cases());
    cases.extend(body_limit_cases());
    cases.extend(method_and_path_cases());
    cases.extend(auth_endpoint_cases());
    assert!(cases.len() >= 120, "only {} cases", cases.len());

    // Act
    let mut failures = Vec::new();
    for case in &cases {
        failures.extend(run(&server, case).await);
    }
    let after = state_of(&server).await;
    let integrity = integrity_check(server.data_dir.path());

    // Assert
    let server_errors = failures
        .iter()
        .filter(|f| f.contains(": server error ") || f.contains("): server error"))
        .count();
    let state_changes = changes(&before, &after);
    println!(
        "bad inputs tried: {}, 5xx: {server_errors}, state changed: {}",
        cases.len(),
        state_changes.len()
    );
    failures.extend(state_changes);
    if integrity != "ok" {
        failures.push(format!("PRAGMA integrity_check: {integrity}"));
    }
    assert!(
        failures.is_empty(),
        "{} of {} hostile cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
