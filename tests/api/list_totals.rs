//! List totals are memoised per reader connection and data version
//! (`db/memo.rs`): these tests hold them exact. Each caller sees the total of
//! what its rule lets it list, on every repeat of the same request, and a
//! change shows at once, whether it came through the API, a rule change, or
//! another process writing the database file directly.

use crate::helpers::{TestApp, spawn_app, status_json};
use reqwest::Method;
use serde_json::json;

const OWNER_RULE: &str = "owner = @request.auth.id";

async fn sign_up(app: &TestApp, email: &str) -> (String, String) {
    let body =
        json!({"email": email, "password": "secret-pass-1", "passwordConfirm": "secret-pass-1"});
    let (status, user) = status_json(
        app.request(
            Method::POST,
            "/api/collections/users/records",
            None,
            Some(body),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "sign-up: {user}");
    let token = app.login_as("users", email, "secret-pass-1").await;
    (user["id"].as_str().expect("id").to_owned(), token)
}

/// `totalItems` of `notes` for `token` with `filter`, asked four times (more
/// than there are readers, so memoised answers are read back too); every
/// answer must agree and the page must hold the first items.
async fn total(app: &TestApp, token: Option<&str>, filter: &str, why: &str) -> i64 {
    let mut seen = Vec::new();
    for _ in 0..4 {
        let query = [("filter", filter), ("perPage", "2"), ("sort", "-n,id")];
        let (status, page) = status_json(app.list_records("notes", &query, token).await).await;
        assert_eq!(status, 200, "{why}: {page}");
        let total = page["totalItems"].as_i64().expect("totalItems");
        let shown = page["items"].as_array().expect("items").len() as i64;
        assert_eq!(
            shown,
            total.min(2),
            "{why}: the page agrees with the total: {page}"
        );
        seen.push(total);
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "{why}: {seen:?}");
    seen[0]
}

#[tokio::test]
async fn each_caller_gets_the_total_its_rule_allows_and_every_change_shows_at_once() {
    if crate::helpers::sqlite_only("writes past the server through data.db") {
        return;
    }
    let app = spawn_app().await;
    let (alice, alice_token) = sign_up(&app, "alice@example.com").await;
    let (bob, bob_token) = sign_up(&app, "bob@example.com").await;
    let (_, users) = status_json(app.su(Method::GET, "/api/collections/users", None).await).await;
    app.create_collection_ok(json!({
        "name": "notes",
        "listRule": OWNER_RULE, "viewRule": OWNER_RULE,
        "fields": [
            {"name": "owner", "type": "relation", "collectionId": users["id"]},
            {"name": "n", "type": "number"}
        ]
    }))
    .await;
    for n in 0..5 {
        app.create_record_ok("notes", json!({"owner": alice, "n": n}))
            .await;
    }
    for n in 0..3 {
        app.create_record_ok("notes", json!({"owner": bob, "n": n}))
            .await;
    }
    // A token in alice's shape signed for nobody: a guest, whatever it claims.
    let forged = format!("{}x", &alice_token[..alice_token.len() - 1]);
    let su = app.superuser_token.clone();
    let callers: [(&str, Option<&str>, [i64; 2]); 5] = [
        ("guest", None, [0, 0]),
        ("forged", Some(&forged), [0, 0]),
        ("alice", Some(&alice_token), [5, 2]),
        ("bob", Some(&bob_token), [3, 0]),
        ("superuser", Some(&su), [8, 2]),
    ];
    for (who, token, [all, n_ge_3]) in callers {
        assert_eq!(total(&app, token, "", who).await, all, "{who}: no filter");
        let why = format!("{who}: n >= 3");
        assert_eq!(total(&app, token, "n >= 3", &why).await, n_ge_3, "{why}");
    }

    // Through the API: alice gains one, bob loses one.
    app.create_record_ok("notes", json!({"owner": alice, "n": 9}))
        .await;
    let by_n = [("sort", "n")];
    let (_, bobs) = status_json(app.list_records("notes", &by_n, Some(&bob_token)).await).await;
    let bobs_first = bobs["items"][0]["id"].as_str().expect("id").to_owned();
    assert_eq!(app.delete_record("notes", &bobs_first).await.status(), 204);
    let after_api = [
        ("alice", Some(alice_token.as_str()), 6),
        ("bob", Some(bob_token.as_str()), 2),
        ("superuser", Some(su.as_str()), 8),
        ("guest", None, 0),
    ];
    for (who, token, expected) in after_api {
        let why = format!("{who} after an API create and delete");
        assert_eq!(total(&app, token, "", &why).await, expected, "{why}");
    }

    // Another process writes the file: no write of ours announces it.
    let direct = rusqlite::Connection::open(app.data_dir.join("data.db")).expect("open data.db");
    direct
        .execute(
            "UPDATE notes SET owner = ?1 WHERE owner = ?2",
            [&bob, &alice],
        )
        .expect("direct update");
    drop(direct);
    let after_direct = [
        ("alice", Some(alice_token.as_str()), 0),
        ("bob", Some(bob_token.as_str()), 8),
        ("superuser", Some(su.as_str()), 8),
    ];
    for (who, token, expected) in after_direct {
        let why = format!("{who} after another process's write");
        assert_eq!(total(&app, token, "", &why).await, expected, "{why}");
    }

    // A rule change is a new statement, never the old one's total.
    let changed = app
        .update_collection("notes", json!({"listRule": "n >= 1"}))
        .await;
    assert_eq!(changed.status(), 200, "rule change");
    let guest = total(&app, None, "", "guest under the public rule").await;
    assert_eq!(guest, 7, "every note but alice's n = 0 (bob's was deleted)");
}

#[tokio::test]
async fn a_view_whose_query_is_not_deterministic_is_counted_afresh_every_time() {
    if crate::helpers::sqlite_only("its view query uses SQLite's random() arithmetic") {
        return;
    }
    let app = spawn_app().await;
    app.create_collection_ok(json!({
        "name": "dice", "listRule": "", "viewRule": "",
        "fields": [{"name": "n", "type": "number"}]
    }))
    .await;
    let requests: Vec<serde_json::Value> = (0..200)
        .map(
            |n| json!({"method": "POST", "url": "/api/collections/dice/records", "body": {"n": n}}),
        )
        .collect();
    app.su(
        Method::PATCH,
        "/api/settings",
        Some(json!({"batch": {"enabled": true, "maxRequests": 200}})),
    )
    .await;
    let (status, body) = status_json(
        app.su(
            Method::POST,
            "/api/batch",
            Some(json!({"requests": requests})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = status_json(
        app.su(
            Method::POST,
            "/api/collections",
            Some(json!({
                "name": "half", "type": "view", "listRule": "", "viewRule": "",
                "viewQuery": "SELECT id, n FROM dice WHERE abs(random()) % 2 = 0"
            })),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let mut totals = std::collections::BTreeSet::new();
    for _ in 0..8 {
        let (status, page) =
            status_json(app.list_records("half", &[("perPage", "1")], None).await).await;
        assert_eq!(status, 200, "{page}");
        totals.insert(page["totalItems"].as_i64().expect("totalItems"));
    }
    // Each count draws 200 coins: eight equal totals would mean a stale memo
    // (chance otherwise: far below one in a million).
    assert!(totals.len() > 1, "the same total 8 times: {totals:?}");
}
