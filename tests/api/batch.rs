//! `POST /api/batch`: one transaction for many record writes.

use crate::helpers::{TestApp, spawn_app, status_json};
use reqwest::Method;
use serde_json::{Value, json};

async fn setup() -> TestApp {
    let app = spawn_app().await;
    app.create_collection_ok(json!({
        "name": "notes", "listRule": "", "viewRule": "",
        "fields": [{"name": "title", "type": "text", "required": true}, {"name": "n", "type": "number"}]
    }))
    .await;
    app.su(
        Method::PATCH,
        "/api/settings",
        Some(json!({"batch": {"enabled": true}})),
    )
    .await;
    app
}

async fn count(app: &TestApp) -> i64 {
    let (_, list) = status_json(app.list_records("notes", &[], None).await).await;
    list["totalItems"].as_i64().expect("total")
}

#[tokio::test]
async fn batch_is_refused_while_disabled() {
    let app = spawn_app().await;

    let (status, body) = status_json(
        app.su(Method::POST, "/api/batch", Some(json!({"requests": []})))
            .await,
    )
    .await;

    assert_eq!(status, 403);
    assert_eq!(body["message"], "Batch requests are not allowed.");
}

#[tokio::test]
async fn a_batch_creates_updates_upserts_and_deletes_in_order() {
    let app = setup().await;
    let existing = app
        .create_record_ok("notes", json!({"title": "old", "n": 1}))
        .await;
    let doomed = app
        .create_record_ok("notes", json!({"title": "doomed"}))
        .await;
    let id = existing["id"].as_str().expect("id");

    let (status, body) = status_json(
        app.su(
            Method::POST,
            "/api/batch",
            Some(json!({"requests": [
                {"method": "POST", "url": "/api/collections/notes/records", "body": {"title": "new"}},
                {"method": "PATCH", "url": format!("/api/collections/notes/records/{id}"), "body": {"n+": 41}},
                {"method": "PUT", "url": "/api/collections/notes/records", "body": {"id": "upsertid0000001", "title": "up"}},
                {"method": "DELETE", "url": format!("/api/collections/notes/records/{}", doomed["id"].as_str().expect("id"))}
            ]})),
        )
        .await,
    )
    .await;

    assert_eq!(status, 200, "{body}");
    let statuses: Vec<i64> = body
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["status"].as_i64())
        .collect();
    assert_eq!(statuses, vec![200, 200, 200, 204]);
    assert_eq!(body[1]["body"]["n"], 42);
    assert_eq!(body[2]["body"]["id"], "upsertid0000001");
    assert_eq!(body[3]["body"], Value::Null);
    assert_eq!(count(&app).await, 3, "old, new, up");
}

#[tokio::test]
async fn one_failing_request_rolls_back_the_whole_batch() {
    let app = setup().await;
    let before = count(&app).await;

    let (status, body) = status_json(
        app.su(
            Method::POST,
            "/api/batch",
            Some(json!({"requests": [
                {"method": "POST", "url": "/api/collections/notes/records", "body": {"title": "a"}},
                {"method": "POST", "url": "/api/collections/notes/records", "body": {"title": "b"}},
                {"method": "POST", "url": "/api/collections/notes/records", "body": {"n": 1}}
            ]})),
        )
        .await,
    )
    .await;

    assert_eq!(status, 400);
    assert_eq!(body["message"], "Batch transaction failed.");
    let failure = &body["data"]["requests"]["2"];
    assert_eq!(failure["code"], "batch_request_failed", "{body}");
    assert_eq!(failure["response"]["status"], 400);
    assert_eq!(
        failure["response"]["data"]["title"]["code"],
        "validation_required"
    );
    assert_eq!(count(&app).await, before, "nothing from the batch was kept");
}

#[tokio::test]
async fn each_request_in_a_batch_keeps_its_own_rules() {
    let app = setup().await;
    app.create_collection_ok(json!({"name": "locked", "fields": [{"name": "t", "type": "text"}]}))
        .await;

    let (status, body) = status_json(
        app.request(
            Method::POST,
            "/api/batch",
            None,
            Some(json!({"requests": [{"method": "POST", "url": "/api/collections/locked/records", "body": {"t": "x"}}]})),
        )
        .await,
    )
    .await;
    let (too_many, many) = status_json(
        app.su(
            Method::POST,
            "/api/batch",
            Some(json!({"requests": vec![json!({"method": "GET", "url": "/api/health"}); 51]})),
        )
        .await,
    )
    .await;

    assert_eq!(status, 400);
    assert_eq!(
        body["data"]["requests"]["0"]["response"]["status"], 403,
        "{body}"
    );
    assert_eq!(too_many, 400);
    assert_eq!(
        many["data"]["requests"]["code"], "validation_length_too_long",
        "{many}"
    );
}

/// A guest batch of `n` creates into `slow`, whose create rule scans the
/// long `seed` titles with a LIKE that only the last one matches.
fn slow_batch(n: usize) -> Value {
    let requests: Vec<Value> = (0..n)
        .map(|i| json!({"method": "POST", "url": "/api/collections/slow/records", "body": {"title": format!("t{i}")}}))
        .collect();
    json!({ "requests": requests })
}

async fn count_in(app: &TestApp, collection: &str) -> i64 {
    let (_, list) = status_json(app.list_records(collection, &[], None).await).await;
    list["totalItems"].as_i64().expect("total")
}

#[tokio::test]
async fn a_batch_running_past_its_timeout_fails_whole_and_writes_nothing() {
    let app = setup().await;
    app.create_collection_ok(json!({
        "name": "seed", "listRule": "", "viewRule": "",
        "fields": [{"name": "title", "type": "text", "max": 100000}]
    }))
    .await;
    let needle = format!("{}b", "a".repeat(2000));
    let seed: Vec<Value> = (0..60)
        .map(|i| if i < 59 { "a".repeat(3000) } else { needle.clone() })
        .map(|title| json!({"method": "POST", "url": "/api/collections/seed/records", "body": {"title": title}}))
        .collect();
    let settings = json!({"batch": {"enabled": true, "maxRequests": 1000, "timeout": 30}});
    assert_eq!(
        app.su(Method::PATCH, "/api/settings", Some(settings))
            .await
            .status(),
        200
    );
    let (seeded, seed_body) = status_json(
        app.su(Method::POST, "/api/batch", Some(json!({"requests": seed})))
            .await,
    )
    .await;
    assert_eq!(seeded, 200, "{seed_body}");
    app.create_collection_ok(json!({
        "name": "slow", "listRule": "", "viewRule": "",
        "createRule": format!("@collection.seed.title ?~ '{needle}'"),
        "fields": [{"name": "title", "type": "text"}]
    }))
    .await;
    // Calibrate: one slow create alone passes its rule; time it.
    let started = std::time::Instant::now();
    let (single, single_body) = status_json(
        app.request(Method::POST, "/api/batch", None, Some(slow_batch(1)))
            .await,
    )
    .await;
    let per_create = started.elapsed();
    assert_eq!(single, 200, "the rule admits guests, slowly: {single_body}");
    let members = ((3.0 / per_create.as_secs_f64()).ceil() as usize).clamp(4, 1000);
    let settings = json!({"batch": {"timeout": 1}});
    assert_eq!(
        app.su(Method::PATCH, "/api/settings", Some(settings))
            .await
            .status(),
        200
    );

    let started = std::time::Instant::now();
    let (status, body) = status_json(
        app.request(Method::POST, "/api/batch", None, Some(slow_batch(members)))
            .await,
    )
    .await;
    let took = started.elapsed();

    assert_eq!(
        (status, body.clone()),
        (
            400,
            json!({"data": {}, "message": "Batch transaction failed.", "status": 400})
        ),
        "{members} creates of {per_create:?} each must not fit in 1 s"
    );
    assert!(
        took < std::time::Duration::from_millis(2500),
        "the batch was cut at its timeout, not run to the end: {took:?} for {members} members"
    );
    assert_eq!(
        count_in(&app, "slow").await,
        1,
        "only the calibration record exists"
    );
    app.create_record_ok("notes", json!({"title": "after"}))
        .await;
}

/// Posts `requests` as the superuser; returns status and body.
async fn su_batch(app: &TestApp, requests: Value) -> (u16, Value) {
    status_json(
        app.su(
            Method::POST,
            "/api/batch",
            Some(json!({ "requests": requests })),
        )
        .await,
    )
    .await
}

#[tokio::test]
async fn a_member_breaking_a_unique_index_fails_with_its_field_error_and_writes_nothing() {
    let app = setup().await;
    app.create_collection_ok(json!({
        "name": "tags", "listRule": "",
        "fields": [{"name": "slug", "type": "text"}],
        "indexes": ["CREATE UNIQUE INDEX idx_tags_slug ON tags (slug)"]
    }))
    .await;
    app.create_record_ok("tags", json!({"slug": "taken"})).await;
    let create = |slug: &str| json!({"method": "POST", "url": "/api/collections/tags/records", "body": {"slug": slug}});

    for (requests, failing, why) in [
        (
            json!([create("fresh"), create("taken")]),
            "1",
            "duplicate of a stored record",
        ),
        (
            json!([create("twin"), create("twin")]),
            "1",
            "duplicate inside the batch",
        ),
        (
            json!([create("a"), {"method": "PUT", "url": "/api/collections/tags/records", "body": {"slug": "taken"}}]),
            "1",
            "upsert creating a duplicate",
        ),
    ] {
        let (status, body) = su_batch(&app, requests).await;

        assert_eq!(status, 400, "{why}: {body}");
        assert_eq!(body["message"], "Batch transaction failed.", "{why}");
        let member = &body["data"]["requests"][failing];
        assert_eq!(member["code"], "batch_request_failed", "{why}: {body}");
        assert_eq!(
            member["response"]["status"], 400,
            "{why}: the single request's 400: {body}"
        );
        assert_eq!(
            member["response"]["data"]["slug"]["code"], "validation_not_unique",
            "{why}: {body}"
        );
        assert_eq!(count_in(&app, "tags").await, 1, "{why}: nothing written");
    }
}

#[tokio::test]
async fn a_member_with_a_missing_relation_fails_like_the_single_request() {
    let app = setup().await;
    let notes = app
        .su(Method::GET, "/api/collections/notes", None)
        .await
        .json::<Value>()
        .await
        .expect("json");
    app.create_collection_ok(json!({
        "name": "links", "listRule": "",
        "fields": [{"name": "note", "type": "relation", "collectionId": notes["id"], "maxSelect": 1}]
    }))
    .await;
    let body = json!({"note": "missingrecord01"});
    let (single_status, single) = status_json(app.create_record("links", body.clone()).await).await;

    let (status, batch) = su_batch(
        &app,
        json!([{"method": "POST", "url": "/api/collections/links/records", "body": body}]),
    )
    .await;

    assert_eq!(single_status, 400, "{single}");
    assert_eq!(status, 400, "{batch}");
    assert_eq!(
        batch["data"]["requests"]["0"]["response"], single,
        "same answer as alone"
    );
    assert_eq!(count_in(&app, "links").await, 0);
}

#[tokio::test]
async fn members_that_collide_with_earlier_members_fail_with_a_4xx() {
    let app = setup().await;
    let note = app.create_record_ok("notes", json!({"title": "x"})).await;
    let id = note["id"].as_str().expect("id").to_owned();
    let notes = app
        .su(Method::GET, "/api/collections/notes", None)
        .await
        .json::<Value>()
        .await
        .expect("json");
    app.create_collection_ok(json!({
        "name": "links", "listRule": "",
        "fields": [{"name": "note", "type": "relation", "collectionId": notes["id"], "maxSelect": 1}]
    }))
    .await;
    let url = format!("/api/collections/notes/records/{id}");
    let new_with_id = json!({"method": "POST", "url": "/api/collections/notes/records", "body": {"id": "sameid000000001", "title": "t"}});

    for (requests, why) in [
        (
            json!([{"method": "DELETE", "url": url}, {"method": "PATCH", "url": url, "body": {"title": "y"}}]),
            "update of a record deleted earlier",
        ),
        (
            json!([{"method": "DELETE", "url": url}, {"method": "DELETE", "url": url}]),
            "second delete of the same record",
        ),
        (
            json!([new_with_id, new_with_id]),
            "two creates with the same id",
        ),
        (
            json!([{"method": "DELETE", "url": url}, {"method": "POST", "url": "/api/collections/links/records", "body": {"note": id}}]),
            "relation to a record deleted earlier",
        ),
    ] {
        let (status, body) = su_batch(&app, requests).await;

        assert_eq!(status, 400, "{why}: {body}");
        let member = &body["data"]["requests"]["1"];
        let inner = member["response"]["status"].as_u64().unwrap_or_default();
        assert!(
            (400..500).contains(&inner),
            "{why}: member answer must be a 4xx: {body}"
        );
        assert_eq!(count_in(&app, "notes").await, 1, "{why}: nothing written");
    }
}

#[tokio::test]
async fn each_member_answers_with_its_own_fields_and_expand_as_if_sent_alone() {
    let app = setup().await;
    let (_, notes) = status_json(app.su(Method::GET, "/api/collections/notes", None).await).await;
    let notes_id = notes["id"].clone();
    app.create_collection_ok(json!({
        "name": "pins", "listRule": "", "viewRule": "",
        "fields": [{"name": "note", "type": "relation", "collectionId": notes_id, "maxSelect": 1},
                   {"name": "label", "type": "text"}]
    }))
    .await;
    let note = app
        .create_record_ok("notes", json!({"title": "pinned"}))
        .await;
    let note_id = note["id"].as_str().expect("id");

    let (status, body) = su_batch(
        &app,
        json!([
            {"method": "POST", "url": "/api/collections/notes/records?fields=id%2Ctitle", "body": {"title": "a"}},
            {"method": "POST", "url": "/api/collections/notes/records?fields=title:excerpt(2)", "body": {"title": "hello"}},
            {"method": "POST", "url": "/api/collections/pins/records?expand=note&fields=label,expand.note.title",
             "body": {"note": note_id, "label": "l"}},
            {"method": "PUT", "url": "/api/collections/notes/records?fields=n", "body": {"title": "b", "n": 3}},
            {"method": "POST", "url": "/api/collections/notes/records?fields=", "body": {"title": "c"}},
        ]),
    )
    .await;

    assert_eq!(status, 200, "{body}");
    let bodies: Vec<&Value> = body
        .as_array()
        .expect("answers")
        .iter()
        .map(|a| &a["body"])
        .collect();
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(bodies[0]),
        ["id", "title"],
        "percent-decoded fields: {body}"
    );
    assert_eq!(
        bodies[1],
        &json!({"title": "he"}),
        "field modifiers: {body}"
    );
    assert_eq!(
        bodies[2],
        &json!({"label": "l", "expand": {"note": {"title": "pinned"}}}),
        "expand then fields: {body}"
    );
    assert_eq!(bodies[3], &json!({"n": 3}), "an upsert too: {body}");
    assert!(
        bodies[4]["id"].is_string(),
        "an empty fields is no selection: {body}"
    );
}

#[tokio::test]
async fn a_member_url_with_a_broken_escape_fails_the_batch_and_writes_nothing() {
    let app = setup().await;

    for url in [
        "/api/collections/notes/records?x=%ZZ",
        "/api/collections/notes/records?fields=id%2",
        "/api/collections/notes/records?fields=a,,b(",
    ] {
        let before = count(&app).await;
        let (status, body) = su_batch(
            &app,
            json!([
                {"method": "POST", "url": "/api/collections/notes/records", "body": {"title": "first"}},
                {"method": "POST", "url": url, "body": {"title": "second"}},
            ]),
        )
        .await;
        assert_eq!(status, 400, "{url}: {body}");
        assert_eq!(
            body["data"]["requests"]["1"]["response"]["status"], 400,
            "{url}: {body}"
        );
        assert_eq!(count(&app).await, before, "{url}: nothing written");
    }
}

#[tokio::test]
async fn a_members_request_query_is_its_own_not_the_batchs() {
    let app = setup().await;
    app.create_collection_ok(json!({
        "name": "gated", "listRule": "", "viewRule": "", "createRule": "@request.query.ok = '1'",
        "fields": [{"name": "t", "type": "text"}]
    }))
    .await;
    let send = |path: &'static str, url: &'static str| {
        let app = &app;
        async move {
            status_json(
                app.request(
                    Method::POST,
                    path,
                    None,
                    Some(json!({"requests": [
                        {"method": "POST", "url": url, "body": {"t": "x"}}
                    ]})),
                )
                .await,
            )
            .await
        }
    };

    for (path, url, expected, why) in [
        (
            "/api/batch",
            "/api/collections/gated/records?ok=1",
            200,
            "its own query passes",
        ),
        (
            "/api/batch",
            "/api/collections/gated/records?ok=%31",
            200,
            "percent-decoded",
        ),
        (
            "/api/batch?ok=1",
            "/api/collections/gated/records",
            400,
            "the batch's query is not the member's",
        ),
        (
            "/api/batch",
            "/api/collections/gated/records?ok=2",
            400,
            "a wrong value",
        ),
    ] {
        let (status, body) = send(path, url).await;
        assert_eq!(status, expected, "{why}: {body}");
    }
}
