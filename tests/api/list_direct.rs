//! A list that nothing reshapes is written straight from SQLite into JSON
//! (`records/list_json.rs`); `fields=*` takes the `Value` path instead.
//! These tests hold the two byte for byte equal for every field kind, for
//! guests, users and superusers, and hold hidden fields and emails back.

use crate::helpers::{TestApp, spawn_app, status_json};
use reqwest::Method;
use serde_json::{Value, json};

/// The body of a list, the direct way and through `fields=*`, which must agree.
async fn both_ways(
    app: &TestApp,
    coll: &str,
    query: &[(&str, &str)],
    token: Option<&str>,
) -> Value {
    let direct = app.list_records(coll, query, token).await;
    assert_eq!(direct.status(), 200, "{coll} {query:?}");
    assert_eq!(
        direct.headers()["content-type"],
        "application/json",
        "{coll} {query:?}"
    );
    let direct = direct.bytes().await.expect("body");
    let mut with_fields = query.to_vec();
    with_fields.push(("fields", "*"));
    let shaped = app.list_records(coll, &with_fields, token).await;
    assert_eq!(shaped.status(), 200, "{coll} {with_fields:?}");
    let shaped = shaped.bytes().await.expect("body");
    assert_eq!(
        String::from_utf8_lossy(&direct),
        String::from_utf8_lossy(&shaped),
        "{coll} {query:?}: direct and Value path differ"
    );
    serde_json::from_slice(&direct).expect("valid JSON")
}

async fn sign_up(app: &TestApp, email: &str) -> (String, String) {
    let body =
        json!({"email": email, "password": "secret-pass-1", "passwordConfirm": "secret-pass-1"});
    let resp = app
        .request(
            Method::POST,
            "/api/collections/users/records",
            None,
            Some(body),
        )
        .await;
    let (status, user) = status_json(resp).await;
    assert_eq!(status, 200, "sign-up: {user}");
    let token = app.login_as("users", email, "secret-pass-1").await;
    (user["id"].as_str().expect("id").to_owned(), token)
}

#[tokio::test]
async fn every_field_kind_lists_the_same_directly_as_through_the_value_path() {
    let app = spawn_app().await;
    let (alice, alice_token) = sign_up(&app, "alice@example.com").await;
    app.create_collection_ok(json!({
        "name": "kinds", "type": "base", "listRule": "", "viewRule": "",
        "fields": [
            {"name": "title", "type": "text"},
            {"name": "n", "type": "number"},
            {"name": "flag", "type": "bool"},
            {"name": "meta", "type": "json"},
            {"name": "tags", "type": "select", "values": ["a", "b", "c"], "maxSelect": 3},
            {"name": "one", "type": "select", "values": ["a", "b"], "maxSelect": 1},
            {"name": "people", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 5},
            {"name": "when", "type": "date"},
            {"name": "loc", "type": "geoPoint"},
            {"name": "mail", "type": "email"},
            {"name": "link", "type": "url"},
            {"name": "doc", "type": "editor"},
            {"name": "secret", "type": "text", "hidden": true},
            {"name": "made", "type": "autodate", "onCreate": true}
        ]
    }))
    .await;
    let tricky = "quote \" backslash \\ newline \n tab \t bell \u{7} </script> é ✓ 🦀";
    for (title, n, meta) in [
        (
            tricky,
            json!(-1.5),
            json!({"a": [1, 2.5, {"b": null}], "s": "\"x\""}),
        ),
        ("plain", json!(3), json!(null)),
        ("big", json!(1e20), json!("just text")),
        ("", json!(0), json!([true, false])),
    ] {
        app.create_record_ok(
            "kinds",
            json!({
                "title": title, "n": n, "flag": n != json!(0), "meta": meta,
                "tags": ["a", "c"], "one": "b", "people": [alice.clone()],
                "when": "2024-01-02 03:04:05.678Z", "loc": {"lon": 13.4, "lat": 52.5},
                "mail": "x@example.com", "link": "https://example.com/a?b=1&c=2",
                "doc": "<p>hi</p>", "secret": "never for guests"
            }),
        )
        .await;
    }
    app.create_record_ok("kinds", json!({})).await;

    for (token, who) in [
        (None, "guest"),
        (Some(alice_token.as_str()), "user"),
        (Some(app.superuser_token.as_str()), "superuser"),
    ] {
        let page = both_ways(&app, "kinds", &[("sort", "-title,id")], token).await;
        let items = page["items"].as_array().expect("items");
        assert_eq!(items.len(), 5, "{who}: {page}");
        assert_eq!(page["totalItems"], 5, "{who}");
        assert_eq!(items[0]["title"], tricky, "{who}: text survives escaping");
        assert_eq!(items[0]["meta"]["s"], "\"x\"", "{who}: json survives");
        assert_eq!(items[2]["n"], 1e20, "{who}: large number");
        let shows_secret = items.iter().all(|i| i.get("secret").is_some());
        assert_eq!(
            shows_secret,
            who == "superuser",
            "{who}: hidden field: {page}"
        );
        both_ways(
            &app,
            "kinds",
            &[("perPage", "2"), ("page", "2"), ("skipTotal", "1")],
            token,
        )
        .await;
        let empty = both_ways(&app, "kinds", &[("filter", "title = 'none such'")], token).await;
        assert_eq!(empty["items"], json!([]), "{who}: empty page");
    }
}

#[tokio::test]
async fn listed_users_show_their_email_only_to_themselves_and_superusers() {
    let app = spawn_app().await;
    let (alice, alice_token) = sign_up(&app, "alice@example.com").await;
    let (bob, _) = sign_up(&app, "bob@example.com").await;
    app.update_collection("users", json!({"listRule": ""}))
        .await;

    for (token, who, sees_alice, sees_bob) in [
        (None, "guest", false, false),
        (Some(alice_token.as_str()), "alice", true, false),
        (Some(app.superuser_token.as_str()), "superuser", true, true),
    ] {
        let page = both_ways(&app, "users", &[("sort", "email")], token).await;
        let email_of = |id: &str| {
            page["items"]
                .as_array()
                .expect("items")
                .iter()
                .find(|u| u["id"] == id)
                .map(|u| u.get("email").is_some())
        };
        assert_eq!(
            email_of(&alice),
            Some(sees_alice),
            "{who}: alice's email: {page}"
        );
        assert_eq!(email_of(&bob), Some(sees_bob), "{who}: bob's email: {page}");
        let leaked = page.to_string();
        assert!(
            !leaked.contains("password") && !leaked.contains("tokenKey"),
            "{who}: {page}"
        );
    }
}

#[tokio::test]
async fn a_rule_limited_list_answers_only_the_callers_rows_and_refuses_bad_input() {
    let app = spawn_app().await;
    let (alice, alice_token) = sign_up(&app, "alice@example.com").await;
    let (bob, bob_token) = sign_up(&app, "bob@example.com").await;
    let rule = "owner = @request.auth.id";
    app.create_collection_ok(json!({
        "name": "owned", "type": "base", "listRule": rule, "viewRule": rule,
        "fields": [
            {"name": "title", "type": "text"},
            {"name": "owner", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1}
        ]
    }))
    .await;
    for (i, owner) in [&alice, &bob, &alice].into_iter().enumerate() {
        app.create_record_ok("owned", json!({"title": format!("t{i}"), "owner": owner}))
            .await;
    }

    let alices = both_ways(&app, "owned", &[("sort", "-title")], Some(&alice_token)).await;
    assert_eq!(alices["totalItems"], 2, "{alices}");
    assert!(
        alices["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|i| i["owner"] == alice.as_str())
    );
    let bobs = both_ways(&app, "owned", &[], Some(&bob_token)).await;
    assert_eq!(bobs["totalItems"], 1, "{bobs}");
    let guests = both_ways(&app, "owned", &[], None).await;
    assert_eq!(
        guests["items"],
        json!([]),
        "a guest matches no owner: {guests}"
    );

    let forged = format!("{}x", &alice_token[..alice_token.len() - 1]);
    let (status, body) = status_json(app.list_records("owned", &[], Some(&forged)).await).await;
    assert!(
        status == 401 || status == 200,
        "forged token: {status} {body}"
    );
    if status == 200 {
        assert_eq!(
            body["items"],
            json!([]),
            "a forged token lists as a guest: {body}"
        );
    }
    for (query, expected, why) in [
        (vec![("filter", "title = ")], 400, "unfinished filter"),
        (vec![("sort", "nope")], 400, "unknown sort field"),
        (vec![("perPage", "x")], 400, "non-integer perPage"),
        (vec![("skipTotal", "maybe")], 400, "non-boolean skipTotal"),
        (
            vec![("filter", "@request.auth.id != ''")],
            403,
            "request macro in a user's filter",
        ),
    ] {
        let resp = app.list_records("owned", &query, Some(&alice_token)).await;
        let (status, body) = status_json(resp).await;
        assert_eq!(status, expected, "{why}: {body}");
        assert_eq!(
            body["status"], expected,
            "{why}: the error envelope: {body}"
        );
    }
}
