//! `POST /api/sql`: PocketBase's answer shape for reads and writes, 401/403
//! before anything runs for every token that is not a live superuser's, and
//! the console's refusals (ATTACH, PRAGMA writes, transaction control,
//! load_extension), limits (rows, bytes, query timeout) and value encoding.

use crate::helpers::{TestApp, spawn_app, spawn_app_configured, status_json};
use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const FAILED: &str = "Failed to execute query. Raw error:\n";

async fn sql(app: &TestApp, token: Option<&str>, query: &str) -> (u16, Value) {
    let body = json!({ "query": query });
    status_json(
        app.request(Method::POST, "/api/sql", token, Some(body))
            .await,
    )
    .await
}

async fn su_sql(app: &TestApp, query: &str) -> (u16, Value) {
    let token = app.superuser_token.clone();
    sql(app, Some(&token), query).await
}

/// Whether a table named `name` exists, asked as the superuser.
async fn has_table(app: &TestApp, name: &str) -> bool {
    let (status, body) = su_sql(
        app,
        &format!("select count(*) from sqlite_master where type = 'table' and name = '{name}'"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["rows"][0][0] != json!("0")
}

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

/// The superuser token with its payload re-encoded (same signature).
fn forged_payload(token: &str, edit: impl FnOnce(&mut Value)) -> String {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&engine.decode(parts[1]).expect("b64")).expect("claims");
    edit(&mut claims);
    let payload = engine.encode(serde_json::to_vec(&claims).expect("json"));
    format!("{}.{payload}.{}", parts[0], parts[2])
}

#[tokio::test]
async fn a_superuser_read_answers_in_pocketbases_shape() {
    let app = spawn_app().await;

    let (status, body) = su_sql(&app, "select 1").await;
    let (_, aliased) = su_sql(&app, "select 'x' as id, null as n").await;
    let (_, last) = su_sql(&app, "select 1;select 2").await;

    assert_eq!(status, 200, "{body}");
    assert!(body["execTime"].is_u64(), "{body}");
    assert_eq!(body["affectedRows"], 0);
    assert_eq!(
        body["columns"],
        json!([{"name": "1", "type": "", "nullable": true}])
    );
    assert_eq!(body["rows"], json!([["1"]]), "values come back as strings");
    assert_eq!(aliased["rows"], json!([["x", null]]), "NULL stays null");
    assert_eq!(
        last["rows"],
        json!([["2"]]),
        "only the last statement's rows"
    );
}

#[tokio::test]
async fn writes_commit_together_or_not_at_all() {
    let app = spawn_app().await;

    let (single, single_body) = su_sql(&app, "create table t_single(id int primary key)").await;
    let (multi, multi_body) = su_sql(
        &app,
        "create table t_multi(id int primary key);insert into t_multi(id) values (1)",
    )
    .await;
    let (bad, bad_body) = su_sql(
        &app,
        "create table t_rollback(id int primary key);insert into t_rollback(id) values (1);invalid",
    )
    .await;

    assert_eq!(single, 200, "{single_body}");
    assert_eq!(single_body["affectedRows"], 0);
    assert_eq!(single_body["columns"], json!([]));
    assert_eq!(single_body["rows"], json!([]));
    assert!(has_table(&app, "t_single").await);
    assert_eq!(multi, 200, "{multi_body}");
    assert_eq!(multi_body["affectedRows"], 1, "{multi_body}");
    let (_, last) = su_sql(
        &app,
        "create table t_last(a); insert into t_last values (1),(2),(3); update t_last set a = 0 where a < 3",
    )
    .await;
    assert_eq!(
        last["affectedRows"], 2,
        "PocketBase reports the last change, not the sum: {last}"
    );
    assert_eq!(bad, 400, "{bad_body}");
    let message = bad_body["message"].as_str().expect("message");
    assert!(message.starts_with(FAILED), "{message}");
    assert!(message.contains("SQL logic error"), "{message}");
    assert_eq!(bad_body["data"], json!({}));
    assert!(
        !has_table(&app, "t_rollback").await,
        "the failed query's first statements are rolled back"
    );
}

#[tokio::test]
async fn no_token_but_a_live_superusers_runs_anything() {
    let app = spawn_app().await;
    let (user_id, user_token) = sign_up(&app, "alice@example.com").await;
    let (_, impersonated) = status_json(
        app.su(
            Method::POST,
            &format!("/api/collections/users/impersonate/{user_id}"),
            Some(json!({})),
        )
        .await,
    )
    .await;
    let impersonated = impersonated["token"].as_str().expect("token").to_owned();
    let su = app.superuser_token.clone();
    let bad_signature = format!("{}x", &su[..su.len() - 1]);
    let extended = forged_payload(&su, |c| c["exp"] = json!(4_102_444_800u64));
    let as_user = forged_payload(&su, |c| c["id"] = json!(user_id));
    let expired = forged_payload(&su, |c| c["exp"] = json!(1));
    // A correctly signed token that expired a minute ago, made with the
    // superuser's real key (read through the console itself).
    let (_, key) = su_sql(
        &app,
        "select s.id, s.tokenKey || json_extract(c.options, '$.authToken.secret'), c.id \
         from _superusers s, _collections c where c.name = '_superusers' limit 1",
    )
    .await;
    let row = &key["rows"][0];
    let (su_id, su_key, su_collection) = (
        row[0].as_str().expect("id"),
        row[1].as_str().expect("key"),
        row[2].as_str().expect("collection"),
    );
    let signed_expired =
        ferrobase::auth::token::issue_auth(su_collection, su_id, su_key, -60).expect("sign");
    let signed_valid =
        ferrobase::auth::token::issue_auth(su_collection, su_id, su_key, 60).expect("sign");
    let (control, control_body) = sql(&app, Some(&signed_valid), "select 1").await;
    assert_eq!(
        control, 200,
        "the minted key is the real one: {control_body}"
    );
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#);
    let alg_none = format!("{header}.{}.", su.split('.').nth(1).expect("payload"));

    for (token, expected, why) in [
        (None, 401, "guest"),
        (Some(user_token.as_str()), 403, "a user"),
        (
            Some(impersonated.as_str()),
            403,
            "a user token a superuser impersonated",
        ),
        (Some(bad_signature.as_str()), 401, "tampered signature"),
        (
            Some(extended.as_str()),
            401,
            "superuser token with a later exp",
        ),
        (
            Some(as_user.as_str()),
            401,
            "superuser token re-pointed at a user",
        ),
        (
            Some(expired.as_str()),
            401,
            "superuser token with exp in the past",
        ),
        (
            Some(signed_expired.as_str()),
            401,
            "correctly signed, expired",
        ),
        (Some(alg_none.as_str()), 401, "alg none"),
        (Some("Bearer garbage"), 401, "garbage"),
    ] {
        let (status, body) = sql(&app, token, "create table pwned(x)").await;

        assert_eq!(status, expected, "{why}: {body}");
        assert_eq!(body["data"], json!({}), "{why}");
        assert!(!has_table(&app, "pwned").await, "{why}: nothing ran");
    }
}

#[tokio::test]
async fn a_deleted_superusers_token_runs_nothing() {
    let app = spawn_app().await;
    let (status, second) = status_json(
        app.su(
            Method::POST,
            "/api/collections/_superusers/records",
            Some(json!({"email": "second@example.com", "password": "Passw0rd!123", "passwordConfirm": "Passw0rd!123"})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{second}");
    let token = app
        .login_as("_superusers", "second@example.com", "Passw0rd!123")
        .await;
    let id = second["id"].as_str().expect("id");
    let deleted = app
        .su(
            Method::DELETE,
            &format!("/api/collections/_superusers/records/{id}"),
            None,
        )
        .await;
    assert_eq!(deleted.status(), 204);

    let (status, body) = sql(&app, Some(&token), "create table pwned(x)").await;

    assert_eq!(status, 401, "{body}");
    assert!(!has_table(&app, "pwned").await);
}

#[tokio::test]
async fn the_query_is_required_and_at_most_5000_characters() {
    let app = spawn_app().await;
    let at_limit = format!("select '{}' as id", "a".repeat(4985));
    let over = "a".repeat(5001);
    let wide = format!("select '{}' as id", "é".repeat(4985));

    for (body, expected, why) in [
        (json!({"query": ""}), 400, "empty"),
        (json!({"query": "   "}), 400, "blank"),
        (json!({}), 400, "missing"),
        (json!({"query": over}), 400, "5001 characters"),
        (json!({"query": 5}), 400, "not a string"),
        (json!({"query": at_limit}), 200, "exactly 5000 characters"),
        (json!({"query": wide}), 200, "5000 characters, more bytes"),
    ] {
        let (status, answer) =
            status_json(app.su(Method::POST, "/api/sql", Some(body)).await).await;
        assert_eq!(status, expected, "{why}: {answer}");
        if why == "empty" || why == "5001 characters" {
            assert!(
                answer["data"]["query"]["code"].is_string(),
                "{why}: {answer}"
            );
        }
    }
}

#[tokio::test]
async fn the_console_refuses_what_reaches_past_the_database() {
    let app = spawn_app().await;
    let outside = app.data_dir.join("outside.db");
    let outside = outside.display();
    let attach = format!("attach database '{outside}' as other");
    let vacuum_into = format!("vacuum into '{outside}'");
    let attach_create = format!("create table x(a); attach '{outside}' as o");

    for (query, why) in [
        (attach.as_str(), "ATTACH on the read side"),
        (attach_create.as_str(), "ATTACH inside a write"),
        (vacuum_into.as_str(), "VACUUM INTO writes a file anywhere"),
        ("pragma journal_mode = off", "PRAGMA write (read side)"),
        (
            "create table y(a); pragma foreign_keys = off",
            "PRAGMA write (write side)",
        ),
        ("pragma writable_schema = 1", "writable_schema"),
        (
            "pragma wal_checkpoint",
            "side-effect pragma without a value",
        ),
        ("select load_extension('/tmp/evil.so')", "load_extension"),
        (
            "create table z(a); commit; drop table _collections",
            "COMMIT mid-query",
        ),
        ("select 1; begin", "a transaction left open on the reader"),
        (
            "insert into _params(id) values ('x'); savepoint s",
            "SAVEPOINT",
        ),
        (
            "create temp trigger tt after insert on _params begin select 1; end",
            "TEMP trigger on the shared writer",
        ),
        ("create temp table tt(a)", "TEMP table"),
    ] {
        let (status, body) = su_sql(&app, query).await;

        assert_eq!(status, 400, "{why}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(FAILED), "{why}: {message}");
    }
    assert!(
        !std::path::Path::new(&outside.to_string()).exists(),
        "no file was written"
    );
    assert!(
        has_table(&app, "_collections").await,
        "COMMIT did not sneak a drop through"
    );
    assert!(!has_table(&app, "z").await, "the refused write rolled back");
    let (status, body) = su_sql(&app, "create table after_refusals(a)").await;
    assert_eq!(status, 200, "the writer is usable afterwards: {body}");
}

#[tokio::test]
async fn reading_pragmas_and_the_schema_is_allowed() {
    let app = spawn_app().await;

    for (query, why) in [
        (
            "pragma table_info(_collections)",
            "introspection with an argument",
        ),
        ("pragma journal_mode", "reading a setting"),
        (
            "select * from pragma_table_info('_collections')",
            "table-valued pragma",
        ),
        ("select name from sqlite_master", "the schema table"),
    ] {
        let (status, body) = su_sql(&app, query).await;
        assert_eq!(status, 200, "{why}: {body}");
    }
}

#[tokio::test]
async fn large_results_are_capped_and_values_encoded_safely() {
    let app = spawn_app().await;
    let many = "with recursive c(x) as (select 1 union all select x + 1 from c where x < 5000) \
                select x from c";

    let (status, rows) = su_sql(&app, many).await;
    let (_, blobs) = su_sql(
        &app,
        "select x'00ff41', x'e282ac', 1.5, 1234567.5, 9223372036854775807, '\"<tag>\"'",
    )
    .await;
    let (huge, huge_body) = su_sql(
        &app,
        "with recursive c(x) as (select 1 union all select x + 1 from c where x < 100) \
         select randomblob(500000) from c",
    )
    .await;

    assert_eq!(status, 200, "{rows}");
    assert_eq!(
        rows["rows"].as_array().map(Vec::len),
        Some(1000),
        "PocketBase's 1000-row cap"
    );
    assert_eq!(
        blobs["rows"][0],
        json!([
            "\u{0}\u{fffd}A",
            "€",
            "1.5",
            "1.2345675e+06",
            "9223372036854775807",
            "\"<tag>\""
        ]),
        "{blobs}"
    );
    assert_eq!(huge, 400, "50 MB of values is refused: {huge_body}");
}

#[tokio::test]
async fn a_runaway_query_stops_at_the_query_timeout() {
    let app = spawn_app_configured(|c| c.database.query_timeout_ms = 300).await;
    let runaway = "with recursive c(x) as (select 1 union all select x + 1 from c \
                   where x < 1000000000) select count(*) from c";
    let runaway_write = format!("create table slow as {runaway}");

    for (query, why) in [(runaway, "read"), (runaway_write.as_str(), "write")] {
        let started = Instant::now();
        let (status, body) = su_sql(&app, query).await;

        assert_eq!(status, 400, "{why}: {body}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{why}: stopped near the limit"
        );
    }
    assert!(
        !has_table(&app, "slow").await,
        "the interrupted write left nothing"
    );
    let (status, body) = su_sql(&app, "create table after_timeout(a)").await;
    assert_eq!(status, 200, "the writer is usable afterwards: {body}");
}

#[tokio::test]
async fn a_console_write_to_a_collection_table_is_seen_by_the_records_api() {
    let app = spawn_app().await;
    app.create_collection_ok(json!({
        "name": "notes", "listRule": "", "fields": [{"name": "text", "type": "text"}],
    }))
    .await;

    let (status, body) = su_sql(
        &app,
        "insert into notes(id, text) values ('abcdefghijklmno', 'from sql')",
    )
    .await;
    let (_, list) = status_json(app.list_records("notes", &[], None).await).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["affectedRows"], 1);
    assert_eq!(list["items"][0]["text"], "from sql", "{list}");
}

#[tokio::test]
async fn a_superuser_outside_superuser_ips_runs_nothing() {
    let app = spawn_app().await;
    let (status, body) = status_json(
        app.su(
            Method::PATCH,
            "/api/settings",
            Some(json!({"superuserIPs": ["10.9.8.7"]})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = su_sql(&app, "create table pwned(x)").await;

    assert_eq!(status, 403, "{body}");
    // The console is closed to this superuser now: look in the file itself.
    let db = rusqlite::Connection::open_with_flags(
        app.data_dir.join("data.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open read-only");
    let tables: i64 = db
        .query_row(
            "select count(*) from sqlite_master where name = 'pwned'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(tables, 0, "nothing ran");
}
