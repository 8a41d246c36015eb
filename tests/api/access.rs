//! The access matrix: anonymous, user A, user B and a superuser against
//! owner rules, public rules, null rules, relation-based rules and
//! `@request.body` rules, for every action. Every cell is asserted.

use crate::helpers::{TestApp, spawn_app, status_json};
use reqwest::Method;
use serde_json::{Value, json};

struct World {
    app: TestApp,
    alice: (String, String),
    bob: (String, String),
    users_id: String,
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

async fn world() -> World {
    let app = spawn_app().await;
    let alice = sign_up(&app, "alice@example.com").await;
    let bob = sign_up(&app, "bob@example.com").await;
    let (_, users) = status_json(app.su(Method::GET, "/api/collections/users", None).await).await;
    let users_id = users["id"].as_str().expect("id").to_owned();
    World {
        app,
        alice,
        bob,
        users_id,
    }
}

#[derive(Clone, Copy, Debug)]
enum Who {
    Guest,
    Alice,
    Bob,
    Super,
}

impl World {
    fn token(&self, who: Who) -> Option<String> {
        match who {
            Who::Guest => None,
            Who::Alice => Some(self.alice.1.clone()),
            Who::Bob => Some(self.bob.1.clone()),
            Who::Super => Some(self.app.superuser_token.clone()),
        }
    }

    async fn call(
        &self,
        who: Who,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let token = self.token(who);
        status_json(self.app.request(method, path, token.as_deref(), body).await).await
    }
}

/// Runs list/view/create/update/delete for each principal and compares with `expected`:
/// (who, list count, view, create, update, delete).
async fn check_matrix(
    w: &World,
    collection: &str,
    record: &str,
    create_body: &dyn Fn(Who) -> Value,
    expected: &[(Who, i64, u16, u16, u16, u16)],
) {
    let mut failures = Vec::new();
    for &(who, list, view, create, update, delete) in expected {
        let base = format!("/api/collections/{collection}/records");
        let (s, body) = w.call(who, Method::GET, &base, None).await;
        let count = if s == 200 {
            body["totalItems"].as_i64().unwrap_or(-1)
        } else {
            -(s as i64)
        };
        if count != list {
            failures.push(format!(
                "{who:?} list {collection}: got {count}, expected {list}: {body}"
            ));
        }
        let (s, body) = w
            .call(who, Method::GET, &format!("{base}/{record}"), None)
            .await;
        if s != view {
            failures.push(format!(
                "{who:?} view {collection}: got {s}, expected {view}: {body}"
            ));
        }
        let (s, body) = w
            .call(who, Method::POST, &base, Some(create_body(who)))
            .await;
        if s != create {
            failures.push(format!(
                "{who:?} create {collection}: got {s}, expected {create}: {body}"
            ));
        }
        let (s, body) = w
            .call(
                who,
                Method::PATCH,
                &format!("{base}/{record}"),
                Some(json!({})),
            )
            .await;
        if s != update {
            failures.push(format!(
                "{who:?} update {collection}: got {s}, expected {update}: {body}"
            ));
        }
        // Delete last and on a fresh record each time, so earlier cells don't change later ones.
        let victim = w
            .app
            .create_record_ok(collection, create_body(Who::Alice))
            .await;
        let victim_id = victim["id"].as_str().expect("id");
        let (s, body) = w
            .call(who, Method::DELETE, &format!("{base}/{victim_id}"), None)
            .await;
        if s != delete {
            failures.push(format!(
                "{who:?} delete {collection}: got {s}, expected {delete}: {body}"
            ));
        }
        if s == 204 {
            // Keep list counts stable for the next principal.
        } else {
            w.app.delete_record(collection, victim_id).await;
        }
        // Undo creates so list counts stay comparable.
        let (_, all) = w
            .call(
                Who::Super,
                Method::GET,
                &format!("{base}?perPage=500&sort=-@rowid"),
                None,
            )
            .await;
        for item in all["items"].as_array().into_iter().flatten() {
            let id = item["id"].as_str().unwrap_or_default();
            if id != record && !item["keep"].as_bool().unwrap_or(false) {
                w.app.delete_record(collection, id).await;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} cells failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn owner_rules_admit_only_the_owner_and_superusers() {
    let w = world().await;
    let rule = "owner = @request.auth.id";
    w.app
        .create_collection_ok(json!({
            "name": "notes",
            "listRule": rule, "viewRule": rule, "updateRule": rule, "deleteRule": rule,
            "createRule": "@request.auth.id != '' && @request.body.owner = @request.auth.id",
            "fields": [
                {"name": "owner", "type": "relation", "collectionId": w.users_id},
                {"name": "keep", "type": "bool"}
            ]
        }))
        .await;
    let note = w
        .app
        .create_record_ok("notes", json!({"owner": w.alice.0, "keep": true}))
        .await;
    let alice_id = w.alice.0.clone();
    let bob_id = w.bob.0.clone();
    let body = move |who: Who| match who {
        Who::Bob => json!({"owner": bob_id}),
        _ => json!({"owner": alice_id}),
    };

    check_matrix(
        &w,
        "notes",
        note["id"].as_str().expect("id"),
        &body,
        &[
            (Who::Guest, 0, 404, 400, 404, 404),
            (Who::Alice, 1, 200, 200, 200, 204),
            (Who::Bob, 0, 404, 200, 404, 404),
            (Who::Super, 1, 200, 200, 200, 204),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_user_cannot_create_a_record_owned_by_someone_else() {
    let w = world().await;
    w.app
        .create_collection_ok(json!({
            "name": "notes",
            "createRule": "@request.auth.id != '' && @request.body.owner = @request.auth.id",
            "fields": [{"name": "owner", "type": "relation", "collectionId": w.users_id}]
        }))
        .await;

    let (status, body) = w
        .call(
            Who::Bob,
            Method::POST,
            "/api/collections/notes/records",
            Some(json!({"owner": w.alice.0})),
        )
        .await;
    let (_, all) = w
        .call(
            Who::Super,
            Method::GET,
            "/api/collections/notes/records",
            None,
        )
        .await;

    assert_eq!(status, 400, "{body}");
    assert_eq!(body["message"], "Failed to create record.");
    assert_eq!(
        all["totalItems"], 0,
        "the refused create left nothing behind"
    );
}

#[tokio::test]
async fn public_and_locked_rules_behave_as_documented() {
    let w = world().await;
    w.app
        .create_collection_ok(json!({
            "name": "board", "listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": "",
            "fields": [{"name": "keep", "type": "bool"}]
        }))
        .await;
    w.app
        .create_collection_ok(
            json!({"name": "vault", "fields": [{"name": "keep", "type": "bool"}]}),
        )
        .await;
    let post = w.app.create_record_ok("board", json!({"keep": true})).await;
    let secret = w.app.create_record_ok("vault", json!({"keep": true})).await;
    let body = |_: Who| json!({});

    check_matrix(
        &w,
        "board",
        post["id"].as_str().expect("id"),
        &body,
        &[
            (Who::Guest, 1, 200, 200, 200, 204),
            (Who::Alice, 1, 200, 200, 200, 204),
            (Who::Bob, 1, 200, 200, 200, 204),
            (Who::Super, 1, 200, 200, 200, 204),
        ],
    )
    .await;
    check_matrix(
        &w,
        "vault",
        secret["id"].as_str().expect("id"),
        &body,
        &[
            (Who::Guest, -403, 403, 403, 403, 403),
            (Who::Alice, -403, 403, 403, 403, 403),
            (Who::Bob, -403, 403, 403, 403, 403),
            (Who::Super, 1, 200, 200, 200, 204),
        ],
    )
    .await;
}

#[tokio::test]
async fn relation_based_rules_follow_team_membership() {
    let w = world().await;
    let teams = w
        .app
        .create_collection_ok(json!({
            "name": "teams", "listRule": "", "viewRule": "",
            "fields": [{"name": "members", "type": "relation", "collectionId": w.users_id, "maxSelect": 10}]
        }))
        .await;
    let team = w
        .app
        .create_record_ok("teams", json!({"members": [w.alice.0]}))
        .await;
    let rule = "team.members ?= @request.auth.id";
    w.app
        .create_collection_ok(json!({
            "name": "projects",
            "listRule": rule, "viewRule": rule, "updateRule": rule, "deleteRule": rule, "createRule": "@request.auth.id != ''",
            "fields": [
                {"name": "team", "type": "relation", "collectionId": teams["id"]},
                {"name": "keep", "type": "bool"}
            ]
        }))
        .await;
    let project = w
        .app
        .create_record_ok("projects", json!({"team": team["id"], "keep": true}))
        .await;
    let team_id = team["id"].clone();
    let body = move |_: Who| json!({"team": team_id});

    check_matrix(
        &w,
        "projects",
        project["id"].as_str().expect("id"),
        &body,
        &[
            (Who::Guest, 0, 404, 400, 404, 404),
            (Who::Alice, 1, 200, 200, 200, 204),
            (Who::Bob, 0, 404, 200, 404, 404),
            (Who::Super, 1, 200, 200, 200, 204),
        ],
    )
    .await;
}

#[tokio::test]
async fn expand_follows_relations_and_respects_the_view_rule() {
    let w = world().await;
    let people = w
        .app
        .create_collection_ok(json!({"name": "people", "listRule": "", "viewRule": "", "fields": [{"name": "name", "type": "text"}]}))
        .await;
    let secrets = w
        .app
        .create_collection_ok(json!({"name": "secrets", "fields": [{"name": "v", "type": "text"}]}))
        .await;
    w.app
        .create_collection_ok(json!({
            "name": "books", "listRule": "", "viewRule": "",
            "fields": [
                {"name": "title", "type": "text"},
                {"name": "author", "type": "relation", "collectionId": people["id"]},
                {"name": "fans", "type": "relation", "collectionId": people["id"], "maxSelect": 5},
                {"name": "secret", "type": "relation", "collectionId": secrets["id"]}
            ]
        }))
        .await;
    let ann = w
        .app
        .create_record_ok("people", json!({"name": "ann"}))
        .await;
    let ben = w
        .app
        .create_record_ok("people", json!({"name": "ben"}))
        .await;
    let s = w.app.create_record_ok("secrets", json!({"v": "x"})).await;
    let book = w
        .app
        .create_record_ok("books", json!({"title": "T", "author": ann["id"], "fans": [ben["id"], ann["id"]], "secret": s["id"]}))
        .await;
    let book_id = book["id"].as_str().expect("id");

    let (status, guest) = w
        .call(
            Who::Guest,
            Method::GET,
            &format!("/api/collections/books/records/{book_id}?expand=author,fans,secret,nope,author.nope"),
            None,
        )
        .await;
    let (_, su) = w
        .call(
            Who::Super,
            Method::GET,
            &format!("/api/collections/books/records/{book_id}?expand=secret"),
            None,
        )
        .await;
    let (_, back) = w
        .call(
            Who::Guest,
            Method::GET,
            &format!(
                "/api/collections/people/records/{}?expand=books_via_author",
                ann["id"].as_str().expect("id")
            ),
            None,
        )
        .await;
    let (_, none) = w
        .call(
            Who::Guest,
            Method::GET,
            &format!("/api/collections/books/records/{book_id}?expand=nope"),
            None,
        )
        .await;

    assert_eq!(status, 200);
    assert_eq!(guest["expand"]["author"]["name"], "ann", "{guest}");
    let fans: Vec<&str> = guest["expand"]["fans"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(
        fans,
        vec!["ben", "ann"],
        "multi relations keep the id order"
    );
    assert!(
        guest["expand"].get("secret").is_none(),
        "a superusers-only collection is silently left out"
    );
    assert_eq!(su["expand"]["secret"]["v"], "x", "superusers see it");
    assert_eq!(
        back["expand"]["books_via_author"][0]["title"], "T",
        "{back}"
    );
    assert!(
        none.get("expand").is_none(),
        "an unknown path is dropped and nothing is expanded: {none}"
    );
}

#[tokio::test]
async fn collection_joins_match_conditions_on_the_same_row() {
    let w = world().await;
    let projects = w
        .app
        .create_collection_ok(json!({"name": "projects", "listRule": "", "viewRule": "", "fields": [{"name": "title", "type": "text"}]}))
        .await;
    w.app
        .create_collection_ok(json!({
            "name": "memberships", "listRule": "", "viewRule": "",
            "fields": [
                {"name": "user", "type": "relation", "collectionId": w.users_id},
                {"name": "project", "type": "relation", "collectionId": projects["id"]}
            ]
        }))
        .await;
    let rule = "@collection.memberships.user ?= @request.auth.id && @collection.memberships.project ?= project";
    w.app
        .create_collection_ok(json!({
            "name": "docs", "listRule": rule, "viewRule": rule,
            "fields": [{"name": "project", "type": "relation", "collectionId": projects["id"]}]
        }))
        .await;
    let p1 = w
        .app
        .create_record_ok("projects", json!({"title": "p1"}))
        .await;
    let p2 = w
        .app
        .create_record_ok("projects", json!({"title": "p2"}))
        .await;
    w.app
        .create_record_ok(
            "memberships",
            json!({"user": w.alice.0, "project": p1["id"]}),
        )
        .await;
    w.app
        .create_record_ok("memberships", json!({"user": w.bob.0, "project": p2["id"]}))
        .await;
    let doc = w
        .app
        .create_record_ok("docs", json!({"project": p1["id"]}))
        .await;
    let doc_path = format!(
        "/api/collections/docs/records/{}",
        doc["id"].as_str().expect("id")
    );

    let (_, alice_list) = w
        .call(
            Who::Alice,
            Method::GET,
            "/api/collections/docs/records",
            None,
        )
        .await;
    let (_, bob_list) = w
        .call(Who::Bob, Method::GET, "/api/collections/docs/records", None)
        .await;
    let (bob_view, _) = w.call(Who::Bob, Method::GET, &doc_path, None).await;
    let (equals_status, equals) = status_json(
        w.app
            .update_collection(
                "docs",
                json!({"listRule": "@collection.memberships.user = @request.auth.id"}),
            )
            .await,
    )
    .await;

    assert_eq!(
        alice_list["totalItems"], 1,
        "alice is a member of p1: {alice_list}"
    );
    assert_eq!(
        bob_list["totalItems"], 0,
        "bob's membership is for p2; the two conditions must hold on one row: {bob_list}"
    );
    assert_eq!(bob_view, 404);
    assert_eq!(
        equals_status, 400,
        "non-any operators on @collection are refused at save time: {equals}"
    );
    assert_eq!(
        equals["data"]["listRule"]["code"],
        "validation_invalid_rule"
    );
}
