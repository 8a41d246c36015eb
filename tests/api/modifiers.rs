//! Field modifiers (`f+`, `+f`, `f-`) against `@request.body.*` rules: a rule
//! sees the value each field will have after every modifier is applied, under
//! the plain field name, so no modifier form gets a value past a rule that
//! the plain key would have been refused by. Covers create and update, JSON
//! and multipart bodies, and batch sub-requests; every refusal must leave the
//! stored data untouched.

use crate::helpers::{TestApp, spawn_app, status_json};
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

const PASSWORD: &str = "member-pass-123";
const WALLETS: &str = "/api/collections/wallets/records";

/// Two users (alice, bob) and `wallets`: owner (single relation to users),
/// shared (multi relation to users), credits (number), roles (multi select),
/// docs (up to 5 files). Everyone may list and view.
struct World {
    app: TestApp,
    alice: String,
    alice_token: String,
    bob: String,
}

async fn sign_up(app: &TestApp, email: &str) -> (String, String) {
    let (status, body) = status_json(
        app.request(
            Method::POST,
            "/api/collections/users/records",
            None,
            Some(json!({"email": email, "password": PASSWORD, "passwordConfirm": PASSWORD})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "sign-up: {body}");
    let token = app.login_as("users", email, PASSWORD).await;
    (body["id"].as_str().expect("id").to_owned(), token)
}

async fn world() -> World {
    let app = spawn_app().await;
    let (alice, alice_token) = sign_up(&app, "alice@example.com").await;
    let (bob, _) = sign_up(&app, "bob@example.com").await;
    app.create_collection_ok(json!({
        "name": "wallets", "listRule": "", "viewRule": "",
        "fields": [
            {"name": "owner", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1},
            {"name": "shared", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 5},
            {"name": "credits", "type": "number"},
            {"name": "roles", "type": "select", "values": ["user", "editor", "admin"], "maxSelect": 3},
            {"name": "docs", "type": "file", "maxSelect": 5, "maxSize": 1000}
        ]
    }))
    .await;
    World {
        app,
        alice,
        alice_token,
        bob,
    }
}

impl World {
    async fn set_rules(&self, rules: Value) {
        let (status, body) = status_json(self.app.update_collection("wallets", rules).await).await;
        assert_eq!(status, 200, "rules: {body}");
    }

    /// A wallet of alice's with credits 10, roles [user] and one file.
    async fn alices_wallet(&self) -> Value {
        let form = Form::new()
            .text("owner", self.alice.clone())
            .text("credits", "10")
            .text("roles", "user")
            .part("docs", Part::bytes(b"x".to_vec()).file_name("a.txt"));
        let (status, body) = status_json(
            self.app
                .send_form(Method::POST, WALLETS, Some(&self.app.superuser_token), form)
                .await,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn stored(&self, id: &str) -> Value {
        let (status, body) = status_json(self.app.get_record("wallets", id, None).await).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn count(&self) -> i64 {
        let (_, list) = status_json(self.app.list_records("wallets", &[], None).await).await;
        list["totalItems"].as_i64().expect("total")
    }

    async fn patch_as_alice(&self, id: &str, body: Value) -> (u16, Value) {
        let token = self.alice_token.clone();
        status_json(
            self.app
                .request(
                    Method::PATCH,
                    &format!("{WALLETS}/{id}"),
                    Some(&token),
                    Some(body),
                )
                .await,
        )
        .await
    }

    async fn post_as_alice(&self, body: Value) -> (u16, Value) {
        let token = self.alice_token.clone();
        status_json(
            self.app
                .request(Method::POST, WALLETS, Some(&token), Some(body))
                .await,
        )
        .await
    }
}

/// Replaces the `ALICE`/`BOB` placeholders of a case body with real ids.
fn with_ids(body: &Value, w: &World) -> Value {
    let text = body
        .to_string()
        .replace("ALICE", &w.alice)
        .replace("BOB", &w.bob);
    serde_json::from_str(&text).expect("json")
}

/// (body rule, submitted body, why): each body would be refused by the rule
/// if the rule saw the value the field ends up with.
fn update_cases(doc: &str) -> Vec<(&'static str, Value, String)> {
    vec![
        (
            "@request.body.credits:isset = false",
            json!({"credits+": 1000000}),
            "number append past :isset".into(),
        ),
        (
            "@request.body.credits:isset = false",
            json!({"credits-": 5}),
            "number subtract past :isset".into(),
        ),
        (
            "@request.body.credits:changed = false",
            json!({"credits+": 1000000}),
            "number append past :changed".into(),
        ),
        (
            "(@request.body.credits:isset = false || @request.body.credits <= 100)",
            json!({"credits": 50, "credits+": 1000000}),
            "plain key checked, modifier added on top (= form)".into(),
        ),
        (
            "@request.body.roles:isset = false",
            json!({"roles+": ["admin"]}),
            "select append past :isset".into(),
        ),
        (
            "@request.body.roles:isset = false",
            json!({"+roles": ["admin"]}),
            "select prepend past :isset".into(),
        ),
        (
            "@request.body.roles:changed = false",
            json!({"roles-": ["user"]}),
            "select subtract past :changed".into(),
        ),
        (
            "(@request.body.roles:isset = false || @request.body.roles:length <= 1)",
            json!({"roles+": ["admin"]}),
            "select append past :length".into(),
        ),
        (
            "(@request.body.roles:isset = false || @request.body.roles:each != 'admin')",
            json!({"roles": ["user"], "roles+": ["admin"]}),
            "select append past :each".into(),
        ),
        (
            "@request.body.shared:isset = false",
            json!({"shared+": ["BOB"]}),
            "multi relation append past :isset".into(),
        ),
        (
            "@request.body.shared:isset = false",
            json!({"+shared": "BOB"}),
            "multi relation prepend past :isset".into(),
        ),
        (
            "(@request.body.owner:isset = false || @request.body.owner = @request.auth.id)",
            json!({"owner": "ALICE", "owner+": "BOB"}),
            "single relation: the appended id wins and must be the one checked".into(),
        ),
        (
            "@request.body.docs:isset = false",
            json!({"docs-": [doc]}),
            "file removal past :isset".into(),
        ),
    ]
}

#[tokio::test]
async fn update_modifiers_are_resolved_before_the_update_rule_sees_the_body() {
    let w = world().await;
    let wallet = w.alices_wallet().await;
    let id = wallet["id"].as_str().expect("id");
    let doc = wallet["docs"][0].as_str().expect("doc").to_owned();

    for (fragment, body, why) in update_cases(&doc) {
        w.set_rules(json!({"updateRule": format!("owner = @request.auth.id && {fragment}")}))
            .await;
        let body = with_ids(&body, &w);

        let (status, response) = w.patch_as_alice(id, body.clone()).await;

        assert_eq!(
            status, 404,
            "{why}: {body} under `{fragment}` must fail the update rule: {response}"
        );
        assert_eq!(
            w.stored(id).await,
            wallet,
            "{why}: a refused update must change nothing"
        );
    }
}

/// Builds a fresh multipart body (a `Form` is consumed when sent).
type MakeForm = fn() -> Form;

#[tokio::test]
async fn multipart_update_modifiers_are_resolved_before_the_update_rule() {
    let w = world().await;
    let wallet = w.alices_wallet().await;
    let id = wallet["id"].as_str().expect("id");
    let token = w.alice_token.clone();
    let forms: Vec<(&str, MakeForm, &str)> = vec![
        (
            "@request.body.credits:isset = false",
            || Form::new().text("credits+", "1000000"),
            "number append as a text part",
        ),
        (
            "@request.body.roles:isset = false",
            || Form::new().text("roles+", "admin"),
            "select append as a text part",
        ),
        (
            "@request.body.docs:isset = false",
            || Form::new().part("docs+", Part::bytes(b"y".to_vec()).file_name("b.txt")),
            "file append upload",
        ),
        (
            "@request.body.docs:isset = false",
            || Form::new().part("+docs", Part::bytes(b"y".to_vec()).file_name("b.txt")),
            "file prepend upload",
        ),
        (
            "(@request.body.docs:isset = false || @request.body.docs:length <= 1)",
            || Form::new().part("docs+", Part::bytes(b"y".to_vec()).file_name("b.txt")),
            "file append past :length",
        ),
    ];

    for (fragment, form, why) in forms {
        w.set_rules(json!({"updateRule": format!("owner = @request.auth.id && {fragment}")}))
            .await;

        let (status, response) = status_json(
            w.app
                .send_form(
                    Method::PATCH,
                    &format!("{WALLETS}/{id}"),
                    Some(&token),
                    form(),
                )
                .await,
        )
        .await;

        assert_eq!(status, 404, "{why} under `{fragment}`: {response}");
        assert_eq!(w.stored(id).await, wallet, "{why}: nothing may change");
    }
}

#[tokio::test]
async fn create_modifiers_are_resolved_before_the_create_rule_sees_the_body() {
    let w = world().await;
    for (fragment, body, why) in [
        (
            "@request.body.shared:isset = false",
            json!({"owner": "ALICE", "shared+": ["BOB"]}),
            "multi relation append",
        ),
        (
            "@request.body.shared:isset = false",
            json!({"owner": "ALICE", "+shared": ["BOB"]}),
            "multi relation prepend",
        ),
        (
            "@request.body.owner = @request.auth.id",
            json!({"owner": "ALICE", "owner+": "BOB"}),
            "single relation: the appended id wins",
        ),
        (
            "@request.body.credits:isset = false",
            json!({"owner": "ALICE", "credits+": 1000000}),
            "number append",
        ),
        (
            "@request.body.roles:isset = false",
            json!({"owner": "ALICE", "+roles": ["admin"]}),
            "select prepend",
        ),
        (
            "(@request.body.roles:isset = false || @request.body.roles:each != 'admin')",
            json!({"owner": "ALICE", "roles": ["user"], "roles+": ["admin"]}),
            "select append past :each",
        ),
    ] {
        w.set_rules(json!({"createRule": format!("@request.auth.id != '' && {fragment}")}))
            .await;
        let body = with_ids(&body, &w);

        let (status, response) = w.post_as_alice(body.clone()).await;

        assert_eq!(
            status, 400,
            "{why}: {body} under `{fragment}` must fail the create rule: {response}"
        );
        assert_eq!(w.count().await, 0, "{why}: a refused create stores nothing");
    }
}

#[tokio::test]
async fn multipart_create_modifiers_are_resolved_before_the_create_rule() {
    let w = world().await;
    let token = w.alice_token.clone();
    w.set_rules(json!({"createRule": "@request.auth.id != '' && @request.body.owner = @request.auth.id && @request.body.docs:isset = false"}))
        .await;

    for (form, why) in [
        (
            Form::new()
                .text("owner", w.alice.clone())
                .text("owner+", w.bob.clone()),
            "single relation append as a text part",
        ),
        (
            Form::new()
                .text("owner", w.alice.clone())
                .part("docs+", Part::bytes(b"y".to_vec()).file_name("b.txt")),
            "file append upload",
        ),
    ] {
        let (status, response) = status_json(
            w.app
                .send_form(Method::POST, WALLETS, Some(&token), form)
                .await,
        )
        .await;

        assert_eq!(status, 400, "{why}: {response}");
        assert_eq!(w.count().await, 0, "{why}: nothing stored");
    }
}

#[tokio::test]
async fn a_modifier_in_a_batch_request_cannot_slip_past_the_rules() {
    let w = world().await;
    let wallet = w.alices_wallet().await;
    let id = wallet["id"].as_str().expect("id");
    w.app
        .su(
            Method::PATCH,
            "/api/settings",
            Some(json!({"batch": {"enabled": true}})),
        )
        .await;
    w.set_rules(json!({
        "updateRule": "owner = @request.auth.id && @request.body.credits:isset = false",
        "createRule": "@request.auth.id != '' && @request.body.owner = @request.auth.id"
    }))
    .await;
    let token = w.alice_token.clone();

    for (request, why) in [
        (
            json!({"method": "PATCH", "url": format!("{WALLETS}/{id}"), "body": {"credits+": 1000000}}),
            "update with a number modifier",
        ),
        (
            json!({"method": "POST", "url": WALLETS, "body": {"owner": w.alice, "owner+": w.bob}}),
            "create with a single relation modifier",
        ),
    ] {
        let (status, response) = status_json(
            w.app
                .request(
                    Method::POST,
                    "/api/batch",
                    Some(&token),
                    Some(json!({"requests": [request]})),
                )
                .await,
        )
        .await;

        assert_eq!(status, 400, "{why}: {response}");
        assert_eq!(w.stored(id).await, wallet, "{why}: nothing may change");
        assert_eq!(w.count().await, 1, "{why}: nothing created");
    }
}

#[tokio::test]
async fn modifiers_still_work_where_the_rules_allow_them() {
    let w = world().await;
    let wallet = w.alices_wallet().await;
    let id = wallet["id"].as_str().expect("id");
    w.set_rules(json!({
        "updateRule": "owner = @request.auth.id && (@request.body.credits:isset = false || @request.body.credits <= 100)",
        "createRule": "@request.auth.id != '' && @request.body.owner = @request.auth.id && @request.body.shared:length = 1"
    }))
    .await;

    let (status, updated) = w
        .patch_as_alice(
            id,
            json!({"credits+": 5, "roles+": ["editor"], "+roles": "admin"}),
        )
        .await;
    let (created_status, created) = w
        .post_as_alice(json!({"owner": w.bob, "owner+": w.alice, "shared+": [w.bob]}))
        .await;

    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["credits"], 15, "10 + 5 is within the rule");
    assert_eq!(updated["roles"], json!(["admin", "user", "editor"]));
    assert_eq!(created_status, 200, "{created}");
    assert_eq!(
        created["owner"], w.alice,
        "on a single relation the appended id wins"
    );
    assert_eq!(created["shared"], json!([w.bob]));
}

#[tokio::test]
async fn superusers_are_not_bound_by_body_rules() {
    let w = world().await;
    let wallet = w.alices_wallet().await;
    let id = wallet["id"].as_str().expect("id");
    w.set_rules(json!({"updateRule": "@request.body.credits:isset = false"}))
        .await;

    let (status, body) = status_json(
        w.app
            .update_record("wallets", id, json!({"credits+": 5}))
            .await,
    )
    .await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["credits"], 15);
}

#[tokio::test]
async fn unknown_relation_ids_through_modifiers_are_field_errors() {
    let w = world().await;
    let wallet = w.alices_wallet().await;
    let id = wallet["id"].as_str().expect("id");
    w.set_rules(
        json!({"updateRule": "owner = @request.auth.id", "createRule": "@request.auth.id != ''"}),
    )
    .await;

    for (body, field, why) in [
        (json!({"owner": "nosuchuser0000"}), "owner", "plain single"),
        (
            json!({"owner+": "nosuchuser0000"}),
            "owner",
            "single append",
        ),
        (
            json!({"+owner": "nosuchuser0000"}),
            "owner",
            "single prepend on an empty value",
        ),
        (
            json!({"shared+": ["nosuchuser0000"]}),
            "shared",
            "multi append",
        ),
        (
            json!({"+shared": "nosuchuser0000"}),
            "shared",
            "multi prepend",
        ),
    ] {
        // On alice's wallet `+owner` leaves her own id last, so only create is refused.
        let update_refused = why != "single prepend on an empty value";
        let (update_status, update) = if update_refused {
            w.patch_as_alice(id, body.clone()).await
        } else {
            (
                400,
                json!({"data": {field: {"code": "validation_missing_rel_records"}}}),
            )
        };
        let mut create_body = body.clone();
        if field != "owner" {
            create_body["owner"] = json!(w.alice);
        }
        let (create_status, create) = w.post_as_alice(create_body).await;

        assert_eq!(update_status, 400, "update {why}: {update}");
        assert_eq!(
            update["data"][field]["code"], "validation_missing_rel_records",
            "update {why}: {update}"
        );
        assert_eq!(create_status, 400, "create {why}: {create}");
        assert_eq!(
            create["data"][field]["code"], "validation_missing_rel_records",
            "create {why}: {create}"
        );
        assert_eq!(w.stored(id).await, wallet, "{why}: nothing may change");
        assert_eq!(w.count().await, 1, "{why}: nothing created");
    }
}

#[tokio::test]
async fn garbage_in_fields_and_skip_total_is_a_bad_request() {
    let w = world().await;
    let wallet = w.alices_wallet().await;
    let id = wallet["id"].as_str().expect("id");

    for (key, value, why) in [
        ("skipTotal", "maybe", "not a boolean"),
        ("skipTotal", "yes", "not one of Go's boolean spellings"),
        ("fields", "owner:excerpt(-1)", "negative excerpt length"),
        ("fields", "owner:excerpt(abc)", "non-numeric excerpt length"),
        ("fields", "owner:excerpt()", "excerpt without a length"),
        (
            "fields",
            "owner:excerpt(5,true,1)",
            "too many excerpt arguments",
        ),
        ("fields", "owner:shout", "unknown modifier"),
        ("fields", "owner:excerpt(5", "unbalanced parenthesis"),
    ] {
        let (status, body) =
            status_json(w.app.list_records("wallets", &[(key, value)], None).await).await;
        assert_eq!(status, 400, "list {key}={value} ({why}): {body}");
        assert_eq!(body["status"], 400, "envelope: {body}");
        assert!(body["data"].is_object(), "envelope: {body}");

        if key == "fields" {
            let (status, body) = status_json(
                w.app
                    .request(
                        Method::GET,
                        &format!(
                            "{WALLETS}/{id}?{key}={}",
                            value.replace('(', "%28").replace(')', "%29")
                        ),
                        None,
                        None,
                    )
                    .await,
            )
            .await;
            assert_eq!(status, 400, "view {key}={value} ({why}): {body}");
        }
    }
    for (key, value) in [
        ("skipTotal", "1"),
        ("skipTotal", "TRUE"),
        ("skipTotal", "f"),
        ("fields", "id,owner:excerpt(5,true)"),
        ("fields", ",,,"),
    ] {
        let (status, body) =
            status_json(w.app.list_records("wallets", &[(key, value)], None).await).await;
        assert_eq!(status, 200, "list {key}={value} is fine: {body}");
    }
}
