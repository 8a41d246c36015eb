//! Protected auth fields on plain record writes: `email` and `verified` only
//! change for superusers and for callers matching the collection's
//! `manageRule` (the owner goes through request/confirm-email-change), and an
//! email changed by a manager or superuser is no longer verified unless
//! `verified` is given with it.

use crate::helpers::{TestApp, spawn_app, status_json};
use reqwest::Method;
use reqwest::multipart::Form;
use serde_json::{Value, json};

const PASSWORD: &str = "member-pass-123";
const MEMBERS: &str = "/api/collections/members/records";

struct Members {
    app: TestApp,
    alice: String,
    alice_token: String,
    bob_token: String,
    carol_token: String,
}

/// `members` (auth): `role` text; owners and admins may update, admins manage.
/// alice (verified), bob: role user; carol: role admin.
async fn members() -> Members {
    let app = spawn_app().await;
    app.create_collection_ok(json!({
        "name": "members", "type": "auth",
        "fields": [{"name": "role", "type": "text"}],
        "listRule": "", "viewRule": "", "createRule": "",
        "updateRule": "id = @request.auth.id || @request.auth.role = 'admin'",
        "manageRule": "@request.auth.role = 'admin'"
    }))
    .await;
    let mut ids = Vec::new();
    for (email, role) in [
        ("alice@example.com", "user"),
        ("bob@example.com", "user"),
        ("carol@example.com", "admin"),
    ] {
        let created = app
            .create_record_ok(
                "members",
                json!({"email": email, "password": PASSWORD, "passwordConfirm": PASSWORD,
                       "role": role, "verified": true}),
            )
            .await;
        ids.push(created["id"].as_str().expect("id").to_owned());
    }
    Members {
        alice_token: app.login_as("members", "alice@example.com", PASSWORD).await,
        bob_token: app.login_as("members", "bob@example.com", PASSWORD).await,
        carol_token: app.login_as("members", "carol@example.com", PASSWORD).await,
        alice: ids.remove(0),
        app,
    }
}

impl Members {
    async fn patch_alice(&self, token: &str, body: Value) -> (u16, Value) {
        status_json(
            self.app
                .request(
                    Method::PATCH,
                    &format!("{MEMBERS}/{}", self.alice),
                    Some(token),
                    Some(body),
                )
                .await,
        )
        .await
    }

    /// alice as the superuser sees her (email included).
    async fn alice_stored(&self) -> Value {
        let token = self.app.superuser_token.clone();
        let (status, body) = status_json(
            self.app
                .get_record("members", &self.alice, Some(&token))
                .await,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

#[tokio::test]
async fn the_owner_cannot_change_email_or_verified_with_a_plain_update() {
    let m = members().await;
    let token = m.alice_token.clone();

    for (body, field, why) in [
        (json!({"email": "mine@example.com"}), "email", "plain email"),
        (
            json!({"email": "mine@example.com", "verified": true}),
            "email",
            "email with verified kept",
        ),
        (json!({"verified": false}), "verified", "unverify"),
        (json!({"verified": "false"}), "verified", "unverify as text"),
    ] {
        let before = m.alice_stored().await;

        let (status, response) = m.patch_alice(&token, body.clone()).await;

        assert_eq!(status, 400, "{why}: {body}: {response}");
        assert_eq!(
            response["data"][field]["code"], "validation_values_mismatch",
            "{why}: {response}"
        );
        assert_eq!(m.alice_stored().await, before, "{why}: nothing may change");
    }
}

#[tokio::test]
async fn email_keys_in_other_spellings_are_ignored_not_applied() {
    let m = members().await;
    let token = m.alice_token.clone();

    for body in [
        json!({"Email": "mine@example.com"}),
        json!({"EMAIL": "mine@example.com"}),
        json!({"email+": "mine@example.com"}),
        json!({"+email": "mine@example.com"}),
        json!({"email-": "alice@example.com"}),
        json!({"verified+": true}),
    ] {
        let (status, response) = m.patch_alice(&token, body.clone()).await;
        let stored = m.alice_stored().await;

        assert!(
            status == 200 || status == 400,
            "{body}: a clear answer: {response}"
        );
        assert_eq!(stored["email"], "alice@example.com", "{body} smuggled");
        assert_eq!(stored["verified"], true, "{body} smuggled");
    }
}

#[tokio::test]
async fn the_owner_cannot_change_email_through_multipart_or_batch() {
    let m = members().await;
    let token = m.alice_token.clone();
    m.app
        .su(
            Method::PATCH,
            "/api/settings",
            Some(json!({"batch": {"enabled": true}})),
        )
        .await;
    let before = m.alice_stored().await;

    let (form_status, form) = status_json(
        m.app
            .send_form(
                Method::PATCH,
                &format!("{MEMBERS}/{}", m.alice),
                Some(&token),
                Form::new().text("email", "mine@example.com"),
            )
            .await,
    )
    .await;
    let (batch_status, batch) = status_json(
        m.app
            .request(
                Method::POST,
                "/api/batch",
                Some(&token),
                Some(json!({"requests": [{"method": "PATCH",
                    "url": format!("{MEMBERS}/{}", m.alice),
                    "body": {"email": "mine@example.com"}}]})),
            )
            .await,
    )
    .await;

    assert_eq!(form_status, 400, "{form}");
    assert_eq!(form["data"]["email"]["code"], "validation_values_mismatch");
    assert_eq!(batch_status, 400, "{batch}");
    assert_eq!(m.alice_stored().await, before, "nothing may change");
}

#[tokio::test]
async fn another_user_cannot_touch_the_record_at_all() {
    let m = members().await;
    let token = m.bob_token.clone();
    let before = m.alice_stored().await;

    let (status, response) = m
        .patch_alice(&token, json!({"email": "bob2@example.com"}))
        .await;

    assert_eq!(status, 404, "{response}");
    assert_eq!(m.alice_stored().await, before);
}

#[tokio::test]
async fn a_manager_or_superuser_changes_email_and_verified_resets() {
    let m = members().await;
    let carol = m.carol_token.clone();
    let su = m.app.superuser_token.clone();

    let (status, response) = m
        .patch_alice(&carol, json!({"email": "moved@example.com"}))
        .await;
    assert_eq!(status, 200, "manager: {response}");
    let stored = m.alice_stored().await;
    assert_eq!(stored["email"], "moved@example.com");
    assert_eq!(
        stored["verified"], false,
        "a new address is not verified yet"
    );

    let (status, response) = m
        .patch_alice(&su, json!({"email": "again@example.com", "verified": true}))
        .await;
    assert_eq!(status, 200, "superuser: {response}");
    let stored = m.alice_stored().await;
    assert_eq!(stored["email"], "again@example.com");
    assert_eq!(stored["verified"], true, "an explicit verified is kept");

    let (status, response) = m.patch_alice(&carol, json!({"verified": false})).await;
    assert_eq!(status, 200, "manager unverifies: {response}");
    assert_eq!(m.alice_stored().await["verified"], false);

    let (status, response) = m
        .patch_alice(
            &carol,
            json!({"password": "brand-new-pass-1", "passwordConfirm": "brand-new-pass-1"}),
        )
        .await;
    assert_eq!(status, 200, "a manager needs no oldPassword: {response}");
}

#[tokio::test]
async fn the_owner_still_needs_the_old_password_and_cannot_self_verify_on_create() {
    let m = members().await;
    let token = m.alice_token.clone();

    let (status, response) = m
        .patch_alice(
            &token,
            json!({"password": "brand-new-pass-1", "passwordConfirm": "brand-new-pass-1"}),
        )
        .await;
    let (created_status, created) = status_json(
        m.app
            .request(
                Method::POST,
                MEMBERS,
                None,
                Some(json!({"email": "dave@example.com", "password": PASSWORD,
                            "passwordConfirm": PASSWORD, "verified": true})),
            )
            .await,
    )
    .await;

    assert_eq!(status, 400, "{response}");
    assert_eq!(
        response["data"]["oldPassword"]["code"],
        "validation_required"
    );
    assert_eq!(created_status, 400, "{created}");
    assert_eq!(
        created["data"]["verified"]["code"],
        "validation_values_mismatch"
    );
}

#[tokio::test]
async fn another_users_old_password_cannot_be_probed_through_an_update() {
    let m = members().await;
    let bob = m.bob_token.clone();

    for old in [PASSWORD, "wrong-guess-123"] {
        let (status, response) = m
            .patch_alice(
                &bob,
                json!({"password": "taken-over-123", "passwordConfirm": "taken-over-123",
                       "oldPassword": old}),
            )
            .await;

        assert_eq!(
            status, 404,
            "a right and a wrong guess must look the same: {response}"
        );
    }
    // login_as panics unless alice's password is still the old one.
    m.app
        .login_as("members", "alice@example.com", PASSWORD)
        .await;
}
