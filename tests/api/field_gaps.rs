//! Field and collection behaviour checked against PocketBase 0.40.6 side by
//! side (issue 15 item 7): the `field:autogenerate` modifier on text fields,
//! constraints (`min`, `pattern`, domains, …) checked only on non-empty
//! values, and the wording and key of collection-name, unknown-field-type and
//! geoPoint errors.

use crate::helpers::{TestApp, spawn_app, status_json};
use reqwest::Method;
use serde_json::{Value, json};

async fn create(app: &TestApp, collection: &str, body: Value) -> (u16, Value) {
    status_json(app.create_record(collection, body).await).await
}

fn matches(value: &Value, prefix: &str, random_len: usize) -> bool {
    let s = value.as_str().unwrap_or_default();
    s.len() == prefix.len() + random_len
        && s.starts_with(prefix)
        && s[prefix.len()..].chars().all(|c| c.is_ascii_lowercase())
}

#[tokio::test]
async fn the_autogenerate_modifier_appends_a_value_from_the_fields_pattern() {
    let app = spawn_app().await;
    app.create_collection_ok(json!({
        "name": "slugs", "listRule": "", "viewRule": "", "createRule": "", "updateRule": "",
        "fields": [
            {"name": "slug", "type": "text", "autogeneratePattern": "[a-z]{5}"},
            {"name": "plain", "type": "text"},
            {"name": "secret", "type": "text", "hidden": true, "autogeneratePattern": "[a-z]{5}"}
        ]
    }))
    .await;

    for (body, slug_prefix, plain, why) in [
        (
            json!({"slug:autogenerate": "abc-"}),
            Some("abc-"),
            "",
            "prefix plus a generated value",
        ),
        (
            json!({"slug:autogenerate": ""}),
            Some(""),
            "",
            "an empty prefix",
        ),
        (
            json!({}),
            Some(""),
            "",
            "a missing value is generated on create",
        ),
        (
            json!({"slug": ""}),
            Some(""),
            "",
            "an empty value is generated on create",
        ),
        (
            json!({"slug:autogenerate": 5}),
            Some("5"),
            "",
            "a number is cast to text",
        ),
        (
            json!({"slug": "given", "plain:autogenerate": "x"}),
            None,
            "x",
            "no pattern: the value as sent",
        ),
    ] {
        let (status, record) = create(&app, "slugs", body.clone()).await;

        assert_eq!(status, 200, "{why}: {record}");
        match slug_prefix {
            Some(prefix) => assert!(matches(&record["slug"], prefix, 5), "{why}: {record}"),
            None => assert_eq!(record["slug"], "given", "{why}: {record}"),
        }
        assert_eq!(record["plain"], plain, "{why}: {record}");
    }

    let (_, record) = create(&app, "slugs", json!({"slug": "s1"})).await;
    let id = record["id"].as_str().expect("id");
    let (status, updated) = status_json(
        app.request(
            Method::PATCH,
            &format!("/api/collections/slugs/records/{id}"),
            None,
            Some(json!({"slug:autogenerate": "u-", "secret:autogenerate": "guest-"})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert!(
        matches(&updated["slug"], "u-", 5),
        "the modifier works on update: {updated}"
    );
    let stored = app
        .get_record("slugs", id, Some(&app.superuser_token.clone()))
        .await;
    let stored: Value = stored.json().await.expect("json");
    assert!(
        !stored["secret"]
            .as_str()
            .unwrap_or_default()
            .starts_with("guest-"),
        "a guest cannot write a hidden field through the modifier: {stored}"
    );
}

#[tokio::test]
async fn id_autogenerate_prefixes_a_generated_id_on_create_and_is_a_key_change_on_update() {
    let app = spawn_app().await;
    app.create_collection_ok(json!({
        "name": "ids", "listRule": "", "viewRule": "", "createRule": "", "updateRule": "",
        "fields": [
            {"name": "id", "type": "text", "primaryKey": true, "required": true, "system": true,
             "min": 3, "max": 30, "pattern": "^[a-z0-9-]+$", "autogeneratePattern": "[a-z]{6}"},
            {"name": "t", "type": "text"}
        ]
    }))
    .await;

    for (body, prefix, why) in [
        (
            json!({"id:autogenerate": "ord-"}),
            "ord-",
            "prefix plus the id field's pattern",
        ),
        (json!({"id:autogenerate": ""}), "", "an empty prefix"),
        (json!({"id:autogenerate": null}), "", "null is no prefix"),
        (
            json!({"id:autogenerate": 7}),
            "7",
            "a number is cast to text",
        ),
        (
            json!({"id": "given-id", "id:autogenerate": "x-"}),
            "x-",
            "the modifier wins over a plain id, as in PocketBase",
        ),
        (json!({}), "", "no id at all: the field's own pattern"),
    ] {
        let (status, record) = create(&app, "ids", body.clone()).await;
        assert_eq!(status, 200, "{why}: {record}");
        assert!(matches(&record["id"], prefix, 6), "{why}: {record}");
    }

    for (body, why) in [
        (
            json!({"id:autogenerate": "a-very-long-prefix-over-the-max-"}),
            "the result still meets max",
        ),
        (
            json!({"id:autogenerate": "BAD "}),
            "the result still meets the pattern",
        ),
        (
            json!({"id:autogenerate": {"a": 1}}),
            "an object is refused, not dropped",
        ),
        (
            json!({"id:autogenerate": ["a"]}),
            "an array is refused, not dropped",
        ),
    ] {
        let count = || async {
            let (_, list) = status_json(
                app.list_records("ids", &[], Some(&app.superuser_token.clone()))
                    .await,
            )
            .await;
            list["totalItems"].clone()
        };
        let before = count().await;
        let (status, error) = create(&app, "ids", body.clone()).await;
        assert_eq!(status, 400, "{why}: {error}");
        assert!(error["data"]["id"]["code"].is_string(), "{why}: {error}");
        assert_eq!(before, count().await, "{why}: nothing stored");
    }

    let (_, record) = create(&app, "ids", json!({})).await;
    let id = record["id"].as_str().expect("id");
    for body in [
        json!({"id:autogenerate": ""}),
        json!({"id:autogenerate": "a"}),
    ] {
        let (status, error) = status_json(
            app.request(
                Method::PATCH,
                &format!("/api/collections/ids/records/{id}"),
                Some(&app.superuser_token.clone()),
                Some(body.clone()),
            )
            .await,
        )
        .await;
        assert_eq!(status, 400, "{body}: {error}");
        assert_eq!(
            error["data"]["id"]["code"], "validation_pk_change",
            "{body}: {error}"
        );
    }
}

#[tokio::test]
async fn optional_fields_left_empty_skip_their_constraints() {
    let app = spawn_app().await;
    app.create_collection_ok(json!({"name": "opt", "fields": [
        {"name": "n", "type": "number", "min": 1, "max": 5},
        {"name": "t", "type": "text", "min": 3, "pattern": "^x+$"},
        {"name": "ed", "type": "editor"},
        {"name": "u", "type": "url", "onlyDomains": ["a.com"]},
        {"name": "e", "type": "email", "onlyDomains": ["a.com"]},
        {"name": "d", "type": "date", "min": "2020-01-01 00:00:00.000Z"},
        {"name": "s", "type": "select", "values": ["a", "b"], "maxSelect": 2},
        {"name": "r", "type": "relation", "collectionId": "_pb_users_auth_", "minSelect": 1, "maxSelect": 3},
        {"name": "f", "type": "file", "maxSelect": 2},
        {"name": "j", "type": "json"},
        {"name": "g", "type": "geoPoint"}
    ]}))
    .await;

    for (body, why) in [
        (json!({}), "nothing sent"),
        (
            json!({"n": 0, "t": "", "u": "", "e": "", "d": "", "s": [], "r": [], "g": {"lon": 0, "lat": 0}}),
            "zero values sent",
        ),
        (
            json!({"n": null, "t": null, "u": null, "e": null, "d": null, "s": null, "r": null}),
            "nulls sent",
        ),
    ] {
        let (status, record) = create(&app, "opt", body).await;

        assert_eq!(status, 200, "{why}: {record}");
    }
    for (body, key, why) in [
        (json!({"n": 9}), "n", "a number above max"),
        (json!({"n": -1}), "n", "a number below min"),
        (json!({"t": "xx"}), "t", "text under min"),
        (json!({"t": "yyy"}), "t", "text not matching the pattern"),
        (
            json!({"u": "https://b.com"}),
            "u",
            "a url on another domain",
        ),
        (json!({"e": "x@b.com"}), "e", "an email on another domain"),
        (
            json!({"d": "2019-01-01 00:00:00.000Z"}),
            "d",
            "a date before min",
        ),
    ] {
        let (status, answer) = create(&app, "opt", body).await;

        assert_eq!(status, 400, "{why}: {answer}");
        assert!(answer["data"][key].is_object(), "{why}: {answer}");
    }
}

#[tokio::test]
async fn a_duplicate_collection_name_is_reported_on_name() {
    let app = spawn_app().await;
    app.create_collection_ok(json!({"name": "opt"})).await;

    for name in ["opt", "OPT"] {
        let (status, body) = status_json(app.create_collection(json!({"name": name})).await).await;

        assert_eq!(status, 400, "{name}: {body}");
        assert_eq!(
            body["data"],
            json!({"name": {"code": "validation_collection_name_exists", "message": "Collection name must be unique (case insensitive)."}}),
            "{name}: {body}"
        );
    }
}

#[tokio::test]
async fn bad_names_and_unknown_field_types_answer_in_pocketbases_order_and_words() {
    let app = spawn_app().await;
    let invalid =
        json!({"code": "validation_match_invalid", "message": "Must be in a valid format."});

    for (body, message, data, why) in [
        (
            json!({"name": "bad name!"}),
            "Failed to create collection.",
            json!({"name": invalid}),
            "a bad collection name",
        ),
        (
            json!({"name": "bad name!", "fields": [{"name": "x", "type": "nope"}]}),
            "Failed to load the submitted data due to invalid formatting.",
            json!({}),
            "an unknown type wins over a bad name",
        ),
        (
            json!({"name": "okname", "fields": [{"name": "x", "type": "nope"}]}),
            "Failed to load the submitted data due to invalid formatting.",
            json!({}),
            "an unknown type",
        ),
    ] {
        let (status, answer) = status_json(app.create_collection(body).await).await;

        assert_eq!(status, 400, "{why}: {answer}");
        assert_eq!(answer["message"], message, "{why}: {answer}");
        assert_eq!(answer["data"], data, "{why}: {answer}");
    }
    let (_, answer) = status_json(
        app.create_collection(
            json!({"name": "fx", "fields": [{"name": "bad name", "type": "text"}]}),
        )
        .await,
    )
    .await;
    let field_error = answer["data"]["fields"]
        .as_object()
        .and_then(|m| m.values().next())
        .cloned()
        .unwrap_or_default();
    assert_eq!(field_error["name"], invalid, "a bad field name: {answer}");
}

#[tokio::test]
async fn geo_point_messages_end_in_degrees() {
    let app = spawn_app().await;
    app.create_collection_ok(
        json!({"name": "places", "fields": [{"name": "g", "type": "geoPoint"}]}),
    )
    .await;

    for (point, code, message) in [
        (
            json!({"lon": 0, "lat": -100}),
            "validation_invalid_latitude",
            "Latitude must be between -90 and 90 degrees.",
        ),
        (
            json!({"lon": 200, "lat": 0}),
            "validation_invalid_longitude",
            "Longitude must be between -180 and 180 degrees.",
        ),
    ] {
        let (status, answer) = create(&app, "places", json!({"g": point})).await;

        assert_eq!(status, 400, "{point}: {answer}");
        assert_eq!(
            answer["data"]["g"],
            json!({"code": code, "message": message}),
            "{point}: {answer}"
        );
    }
}

#[tokio::test]
async fn the_validate_dry_run_also_reports_a_taken_name() {
    let app = spawn_app().await;
    app.create_collection_ok(json!({"name": "opt"})).await;

    let (status, body) = status_json(
        app.su(
            Method::POST,
            "/api/collections/meta/validate",
            Some(json!({"name": "opt"})),
        )
        .await,
    )
    .await;

    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["data"]["name"]["code"], "validation_collection_name_exists",
        "{body}"
    );
}
