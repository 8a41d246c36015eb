//! Record CRUD, listing and validation.

use crate::helpers::{TestApp, spawn_app, status_json};
use serde_json::{Value, json};

async fn posts(app: &TestApp) {
    app.create_collection_ok(json!({
        "name": "posts",
        "listRule": "",
        "viewRule": "",
        "fields": [
            {"name": "title", "type": "text", "required": true, "max": 50},
            {"name": "views", "type": "number", "min": 0},
            {"name": "published", "type": "bool"},
            {"name": "status", "type": "select", "values": ["draft", "live"]},
            {"name": "tags", "type": "select", "values": ["a", "b", "c"], "maxSelect": 3},
            {"name": "meta", "type": "json"},
            {"name": "when", "type": "date"},
            {"name": "loc", "type": "geoPoint"},
            {"name": "created", "type": "autodate", "onCreate": true},
            {"name": "updated", "type": "autodate", "onCreate": true, "onUpdate": true}
        ]
    }))
    .await;
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn a_created_record_carries_typed_values_and_collection_keys() {
    let app = spawn_app().await;
    posts(&app).await;

    let rec = app
        .create_record_ok(
            "posts",
            json!({"title": "Hello", "views": "5", "published": true, "tags": ["a", "b", "a"], "meta": {"x": 1},
                   "when": "2024-01-02T03:04:05Z", "loc": {"lon": 23.3, "lat": 42.7}, "unknown": 1}),
        )
        .await;

    assert_eq!(id(&rec).len(), 15);
    assert_eq!(rec["collectionName"], "posts");
    assert_eq!(rec["views"], 5, "numeric strings become numbers");
    assert_eq!(rec["tags"], json!(["a", "b"]), "duplicates removed");
    assert_eq!(rec["meta"], json!({"x": 1}));
    assert_eq!(rec["when"], "2024-01-02 03:04:05.000Z");
    assert_eq!(rec["loc"], json!({"lon": 23.3, "lat": 42.7}));
    assert_eq!(rec["status"], "", "unset single select is empty");
    assert!(rec.get("unknown").is_none(), "unknown keys are ignored");
    assert_eq!(rec["created"], rec["updated"]);
}

#[tokio::test]
async fn a_client_supplied_id_is_kept_and_must_be_unique() {
    let app = spawn_app().await;
    posts(&app).await;

    let rec = app
        .create_record_ok("posts", json!({"id": "abcdefghij12345", "title": "x"}))
        .await;
    let (status, body) = status_json(
        app.create_record("posts", json!({"id": "abcdefghij12345", "title": "y"}))
            .await,
    )
    .await;
    let (short_status, short) = status_json(
        app.create_record("posts", json!({"id": "short", "title": "y"}))
            .await,
    )
    .await;
    let (bad_status, bad) = status_json(
        app.create_record("posts", json!({"id": "ABCDEFGHIJ12345", "title": "y"}))
            .await,
    )
    .await;

    assert_eq!(rec["id"], "abcdefghij12345");
    assert_eq!(status, 400);
    assert_eq!(
        body["data"]["id"]["code"], "validation_not_unique",
        "{body}"
    );
    assert_eq!(short_status, 400);
    assert_eq!(
        short["data"]["id"]["code"], "validation_min_text_constraint",
        "{short}"
    );
    assert_eq!(bad_status, 400);
    assert_eq!(
        bad["data"]["id"]["code"], "validation_invalid_format",
        "{bad}"
    );
}

#[tokio::test]
async fn every_failing_field_is_reported_once_with_its_code() {
    let app = spawn_app().await;
    posts(&app).await;

    let (status, body) = status_json(
        app.create_record("posts", json!({"views": -1, "status": "nope", "tags": ["a", "z"], "when": "someday", "loc": {"lon": 200, "lat": 0}}))
            .await,
    )
    .await;

    assert_eq!(status, 400);
    assert_eq!(body["message"], "Failed to create record.");
    for (field, code) in [
        ("title", "validation_required"),
        ("views", "validation_min_number_constraint"),
        ("status", "validation_invalid_value"),
        ("tags", "validation_invalid_value"),
        ("when", "validation_invalid_date"),
        ("loc", "validation_invalid_longitude"),
    ] {
        assert_eq!(body["data"][field]["code"], code, "field {field} in {body}");
    }
}

#[tokio::test]
async fn values_pocketbase_would_silently_mangle_are_refused() {
    let app = spawn_app().await;
    posts(&app).await;

    for (body, field, why) in [
        (
            json!({"title": "t", "views": "abc"}),
            "views",
            "non-numeric number",
        ),
        (
            json!({"title": "t", "published": "maybe"}),
            "published",
            "non-boolean bool",
        ),
        (
            json!({"title": "t", "when": "not a date"}),
            "when",
            "unparseable date",
        ),
    ] {
        let (status, resp) = status_json(app.create_record("posts", body).await).await;
        assert_eq!(status, 400, "{why}: {resp}");
        assert!(resp["data"][field]["code"].is_string(), "{why}: {resp}");
    }
}

#[tokio::test]
async fn update_is_partial_bumps_updated_and_applies_modifiers() {
    let app = spawn_app().await;
    posts(&app).await;
    let rec = app
        .create_record_ok("posts", json!({"title": "a", "views": 5, "tags": ["a"]}))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;

    let (status, updated) = status_json(
        app.update_record(
            "posts",
            &id(&rec),
            json!({"views+": 2, "tags+": ["c"], "tags-": "a"}),
        )
        .await,
    )
    .await;

    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["title"], "a", "untouched fields stay");
    assert_eq!(updated["views"], 7);
    assert_eq!(updated["tags"], json!(["c"]));
    assert_ne!(updated["updated"], rec["updated"]);
    assert_eq!(
        updated["created"], rec["created"],
        "autodate onCreate is not client-settable"
    );
}

#[tokio::test]
async fn changing_the_id_on_update_is_refused() {
    let app = spawn_app().await;
    posts(&app).await;
    let rec = app.create_record_ok("posts", json!({"title": "a"})).await;

    let (status, body) = status_json(
        app.update_record("posts", &id(&rec), json!({"id": "zzzzzzzzzzzzzzz"}))
            .await,
    )
    .await;

    assert_eq!(status, 400);
    assert_eq!(body["data"]["id"]["code"], "validation_pk_change");
}

#[tokio::test]
async fn list_paginates_sorts_and_skips_totals() {
    let app = spawn_app().await;
    posts(&app).await;
    for i in 0..25 {
        app.create_record_ok("posts", json!({"title": format!("t{i:02}"), "views": i}))
            .await;
    }

    let (_, page3) = status_json(
        app.list_records(
            "posts",
            &[("page", "3"), ("perPage", "10"), ("sort", "-views")],
            None,
        )
        .await,
    )
    .await;
    let (_, past) = status_json(
        app.list_records("posts", &[("page", "9"), ("perPage", "10")], None)
            .await,
    )
    .await;
    let (_, skipped) = status_json(
        app.list_records("posts", &[("skipTotal", "1"), ("perPage", "5")], None)
            .await,
    )
    .await;
    let (_, filtered) = status_json(
        app.list_records(
            "posts",
            &[("filter", "views >= 20 && title ~ 't2'"), ("sort", "views")],
            None,
        )
        .await,
    )
    .await;

    assert_eq!(page3["totalItems"], 25);
    assert_eq!(page3["totalPages"], 3);
    assert_eq!(page3["items"].as_array().map(Vec::len), Some(5));
    assert_eq!(page3["items"][0]["views"], 4, "sorted by -views");
    assert_eq!(past["items"], json!([]), "a page past the end is empty");
    assert_eq!(past["totalItems"], 25, "with real totals");
    assert_eq!(
        (skipped["totalItems"].clone(), skipped["totalPages"].clone()),
        (json!(-1), json!(-1))
    );
    assert_eq!(
        filtered["items"].as_array().map(Vec::len),
        Some(5),
        "{filtered}"
    );
}

#[tokio::test]
async fn fields_limits_the_keys_of_each_item() {
    let app = spawn_app().await;
    posts(&app).await;
    app.create_record_ok("posts", json!({"title": "x"})).await;

    let (_, body) = status_json(
        app.list_records("posts", &[("fields", "id,title")], None)
            .await,
    )
    .await;

    let item = body["items"][0].as_object().expect("item");
    let mut keys: Vec<&String> = item.keys().collect();
    keys.sort();
    assert_eq!(keys, vec!["id", "title"]);
    assert_eq!(body["page"], 1, "pagination keys are kept");
}

#[tokio::test]
async fn a_missing_record_is_404_and_delete_is_204() {
    let app = spawn_app().await;
    posts(&app).await;
    let rec = app.create_record_ok("posts", json!({"title": "x"})).await;

    let deleted = app.delete_record("posts", &id(&rec)).await;
    let (status, body) = status_json(app.get_record("posts", &id(&rec), None).await).await;

    assert_eq!(deleted.status(), 204);
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"data": {}, "message": "The requested resource wasn't found.", "status": 404})
    );
}

#[tokio::test]
async fn null_rules_admit_superusers_only() {
    let app = spawn_app().await;
    app.create_collection_ok(json!({"name": "secret", "fields": [{"name": "t", "type": "text"}]}))
        .await;

    let (status, body) = status_json(app.list_records("secret", &[], None).await).await;
    let (create_status, _) = status_json(
        app.request(
            reqwest::Method::POST,
            "/api/collections/secret/records",
            None,
            Some(json!({"t": "x"})),
        )
        .await,
    )
    .await;

    assert_eq!(status, 403);
    assert_eq!(body["message"], "Only superusers can perform this action.");
    assert_eq!(create_status, 403);
}

#[tokio::test]
async fn an_expression_rule_filters_rows_for_guests() {
    let app = spawn_app().await;
    app.create_collection_ok(json!({
        "name": "articles", "listRule": "public = true", "viewRule": "public = true",
        "fields": [{"name": "public", "type": "bool"}]
    }))
    .await;
    let open = app
        .create_record_ok("articles", json!({"public": true}))
        .await;
    let hidden = app
        .create_record_ok("articles", json!({"public": false}))
        .await;

    let (_, list) = status_json(app.list_records("articles", &[], None).await).await;
    let view_hidden = app.get_record("articles", &id(&hidden), None).await;
    let view_open = app.get_record("articles", &id(&open), None).await;

    assert_eq!(list["totalItems"], 1, "{list}");
    assert_eq!(
        view_hidden.status(),
        404,
        "a record hidden by the rule looks missing"
    );
    assert_eq!(view_open.status(), 200);
}

#[tokio::test]
async fn guests_may_not_filter_by_request_macros() {
    let app = spawn_app().await;
    posts(&app).await;

    let (status, body) = status_json(
        app.list_records("posts", &[("filter", "@request.auth.id != ''")], None)
            .await,
    )
    .await;

    assert_eq!(status, 403);
    assert_eq!(body["message"], "Only superusers can filter by @request.");
}

#[tokio::test]
async fn relations_must_point_at_existing_records() {
    let app = spawn_app().await;
    let people = app
        .create_collection_ok(
            json!({"name": "people", "fields": [{"name": "name", "type": "text"}]}),
        )
        .await;
    app.create_collection_ok(json!({"name": "books", "fields": [{"name": "author", "type": "relation", "collectionId": people["id"]}]})).await;
    let alice = app
        .create_record_ok("people", json!({"name": "alice"}))
        .await;

    let ok = app
        .create_record_ok("books", json!({"author": id(&alice)}))
        .await;
    let (status, body) = status_json(
        app.create_record("books", json!({"author": "nosuchrecord123"}))
            .await,
    )
    .await;

    assert_eq!(ok["author"], id(&alice));
    assert_eq!(status, 400);
    assert_eq!(
        body["data"]["author"]["code"],
        "validation_missing_rel_records"
    );
}

#[tokio::test]
async fn sorted_pages_cut_one_ordering_into_disjoint_pages_under_every_sort_shape() {
    // A page of a sorted table is read as "sort the rowids, then read those
    // rows" (records/list.rs): the pages must still be slices of one order.
    let app = spawn_app().await;
    posts(&app).await;
    for i in 0..23 {
        let title = format!("t{}", i % 4);
        app.create_record_ok("posts", json!({"title": title, "views": i % 5}))
            .await;
    }
    // (sort, filter, key the order must follow, how many match)
    let cases: [(&str, &str, &[&str], usize); 5] = [
        ("-views,id", "", &["-views", "id"], 23),
        ("views,-title,id", "", &["views", "-title", "id"], 23),
        ("title,id", "views >= 2", &["title", "id"], 13),
        ("-id", "title != 't1'", &["-id"], 17),
        (
            "-views,title,-id",
            "views < 4 && title ~ 't'",
            &["-views", "title", "-id"],
            19,
        ),
    ];
    for (sort, filter, keys, matching) in cases {
        let mut seen: Vec<Value> = Vec::new();
        for page in 1..=6 {
            let page = page.to_string();
            let query = [
                ("sort", sort),
                ("filter", filter),
                ("perPage", "4"),
                ("page", &page),
            ];
            let (status, body) = status_json(app.list_records("posts", &query, None).await).await;
            assert_eq!(status, 200, "{sort} {filter}: {body}");
            assert_eq!(body["totalItems"], matching, "{sort} {filter}");
            seen.extend(body["items"].as_array().expect("items").iter().cloned());
        }
        assert_eq!(seen.len(), matching, "{sort} {filter}: every match once");
        let ids: std::collections::HashSet<_> = seen.iter().map(|r| r["id"].clone()).collect();
        assert_eq!(
            ids.len(),
            matching,
            "{sort} {filter}: no record on two pages"
        );
        let key = |r: &Value| -> Vec<String> {
            keys.iter()
                .map(|k| {
                    let v = &r[k.trim_start_matches('-')];
                    v.as_i64().map_or_else(
                        || v.as_str().unwrap_or("").to_owned(),
                        |n| format!("{n:05}"),
                    )
                })
                .collect()
        };
        for pair in seen.windows(2) {
            let (a, b) = (key(&pair[0]), key(&pair[1]));
            let ordered = keys
                .iter()
                .zip(a.iter().zip(&b))
                .find(|(_, (x, y))| x != y)
                .is_none_or(|(k, (x, y))| if k.starts_with('-') { x > y } else { x < y });
            assert!(ordered, "{sort} {filter}: {a:?} then {b:?}");
        }
    }
}
