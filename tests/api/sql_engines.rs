//! `POST /api/sql` on both engines (the PostgreSQL step runs this module):
//! who may run anything, what one query answers, and, on PostgreSQL, a
//! read-only console in PostgreSQL's dialect whose refusals (writes, other
//! statements, several statements, functions reaching past the database)
//! are 400s in the envelope that change nothing.

use crate::helpers::{TestApp, TestBackend, spawn_app, spawn_app_configured, status_json};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn on_postgres() -> bool {
    TestBackend::current() == TestBackend::Postgres
}

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

/// How many `notes` rows there are, through the records API.
async fn notes(app: &TestApp) -> u64 {
    let (status, body) = status_json(
        app.su(Method::GET, "/api/collections/notes/records", None)
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["totalItems"].as_u64().expect("total")
}

async fn app_with_notes() -> TestApp {
    let app = spawn_app().await;
    app.create_collection_ok(json!({
        "name": "notes", "listRule": "", "viewRule": "",
        "fields": [{"name": "text", "type": "text"}, {"name": "n", "type": "number"}],
    }))
    .await;
    for (text, n) in [("one", 1.5), ("two", 2.0)] {
        app.create_record_ok("notes", json!({"text": text, "n": n}))
            .await;
    }
    app
}

#[tokio::test]
async fn a_superuser_read_answers_in_the_consoles_shape_on_both_engines() {
    let app = app_with_notes().await;

    let (status, body) = su_sql(&app, "select text, n from notes order by text").await;

    assert_eq!(status, 200, "{body}");
    assert!(body["execTime"].is_u64(), "{body}");
    assert_eq!(body["affectedRows"], 0);
    let names: Vec<&str> = body["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["text", "n"], "{body}");
    assert_eq!(
        body["rows"],
        json!([["one", "1.5"], ["two", "2"]]),
        "{body}"
    );
    let (_, nulls) = su_sql(&app, "select 'x' as id, null as n").await;
    assert_eq!(nulls["rows"], json!([["x", null]]), "NULL stays null");
    if on_postgres() {
        assert_eq!(
            body["columns"][1]["type"], "float8",
            "PostgreSQL's type names: {body}"
        );
    }
}

#[tokio::test]
async fn guests_users_and_forged_tokens_run_nothing() {
    let app = app_with_notes().await;
    let (status, user) = status_json(
        app.request(
            Method::POST,
            "/api/collections/users/records",
            None,
            Some(json!({"email": "u@example.com", "password": "secret-pass-1", "passwordConfirm": "secret-pass-1"})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{user}");
    let user_token = app
        .login_as("users", "u@example.com", "secret-pass-1")
        .await;
    let su = app.superuser_token.clone();
    let forged = format!("{}x", &su[..su.len() - 1]);
    let none_alg = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJpZCI6ImFueSIsInR5cGUiOiJhdXRoIn0.";

    for (token, want, why) in [
        (None, 401, "a guest"),
        (Some(user_token.as_str()), 403, "a user"),
        (Some(forged.as_str()), 401, "a changed signature"),
        (Some(none_alg), 401, "alg none"),
        (Some("garbage"), 401, "not a JWT"),
    ] {
        let (status, body) = sql(&app, token, "delete from notes").await;
        assert_eq!(status, want, "{why}: {body}");
        assert_eq!(body["status"], want, "the envelope: {body}");
    }
    assert_eq!(notes(&app).await, 2, "nothing deleted");
}

#[tokio::test]
async fn on_postgres_writes_other_statements_and_reaching_functions_are_400s() {
    if !on_postgres() {
        return;
    }
    let app = app_with_notes().await;
    for (query, why) in [
        ("delete from notes", "a write keyword"),
        ("DROP TABLE notes", "a schema change"),
        ("update notes set text = 'x'", "an update"),
        (
            "with gone as (delete from notes returning *) select * from gone",
            "a write inside WITH",
        ),
        ("select 1; delete from notes", "two statements"),
        ("begin; delete from notes; commit", "transaction control"),
        ("set statement_timeout = 0", "a setting"),
        ("copy notes to stdout", "copy"),
        ("select pg_read_file('/etc/passwd')", "a server file"),
        (
            "select set_config('search_path', 'nowhere', false)",
            "session state",
        ),
        ("select pg_advisory_lock(1)", "a session lock"),
        ("select nextval('x')", "a sequence"),
        ("select * from nosuchtable", "an unknown table"),
        ("select 'unterminated", "a syntax error"),
    ] {
        let (status, body) = su_sql(&app, query).await;
        assert_eq!(status, 400, "{why}: {query:?} -> {body}");
        assert_eq!(body["status"], 400, "the envelope: {body}");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("Failed to execute query.")),
            "{why}: {body}"
        );
    }
    let (_, refused) = su_sql(&app, "insert into notes (id) values ('x')").await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap_or("")
            .contains("read-only on PostgreSQL"),
        "the refusal says why: {refused}"
    );
    assert_eq!(notes(&app).await, 2, "nothing changed");
    let (status, body) = su_sql(&app, "select current_setting('search_path')").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = su_sql(&app, "select count(*) from notes").await;
    assert_eq!((status, &body["rows"]), (200, &json!([["2"]])), "{body}");
}

#[tokio::test]
async fn huge_queries_are_400s_and_rows_are_capped_on_both_engines() {
    let app = app_with_notes().await;
    let huge = format!("select '{}'", "a".repeat(6000));
    let (status, body) = su_sql(&app, &huge).await;
    assert_eq!(status, 400, "past 5000 characters: {body}");
    assert_eq!(
        body["data"]["query"]["code"], "validation_length_too_long",
        "{body}"
    );

    let (status, body) = su_sql(&app, "").await;
    assert_eq!(status, 400, "empty: {body}");

    let series = if on_postgres() {
        "select g from generate_series(1, 5000) as g"
    } else {
        "with recursive c(g) as (select 1 union all select g + 1 from c where g < 5000) select g from c"
    };
    let (status, body) = su_sql(&app, series).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["rows"].as_array().map(Vec::len),
        Some(1000),
        "capped rows"
    );
}

#[tokio::test]
async fn a_runaway_query_stops_at_the_query_timeout_on_both_engines() {
    let app = spawn_app_configured(|c| c.database.query_timeout_ms = 300).await;
    let slow = if on_postgres() {
        "select pg_sleep(5)"
    } else {
        "with recursive c(g) as (select 1 union all select g + 1 from c) select count(*) from c"
    };
    let started = Instant::now();

    let (status, body) = su_sql(&app, slow).await;

    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("query timeout"),
        "{body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "stopped in time"
    );
    let (status, _) = su_sql(&app, "select 1").await;
    assert_eq!(status, 200, "the console still answers afterwards");
}
