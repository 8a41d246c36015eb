//! Login protections: the collection `authRule` on every way in (password,
//! OTP, refresh), the failed-login throttle under parallel guesses and
//! account hopping, and the OTP attempt limit, newest-code-only and
//! single use.

use crate::helpers::{TestApp, spawn_app, spawn_app_with_mail, status_json};
use crate::smtp_sink::SmtpSink;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);
const PASSWORD: &str = "right-pass-123";
/// `MAX_FAILED_LOGINS_PER_IDENTITY` of the server.
const IDENTITY_LIMIT: usize = 10;
/// `MAX_OTP_ATTEMPTS` of the server.
const OTP_LIMIT: usize = 5;
const AUTH_RULE_REFUSAL: &str =
    "The request doesn't satisfy the collection requirements to authenticate.";

/// Creates a user as the superuser (so `verified` can be set); returns its id.
async fn user(app: &TestApp, email: &str, verified: bool) -> String {
    let body = json!({"email": email, "password": PASSWORD, "passwordConfirm": PASSWORD,
                      "verified": verified});
    let created = app.create_record_ok("users", body).await;
    created["id"].as_str().expect("id").to_owned()
}

async fn post(app: &TestApp, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    status_json(
        app.request(
            Method::POST,
            &format!("/api/collections/users/{path}"),
            token,
            Some(body),
        )
        .await,
    )
    .await
}

async fn password_login(app: &TestApp, email: &str, password: &str) -> (u16, Value) {
    post(
        app,
        "auth-with-password",
        None,
        json!({"identity": email, "password": password}),
    )
    .await
}

async fn set_options(app: &TestApp, options: Value) {
    let (status, body) = status_json(app.update_collection("users", options).await).await;
    assert_eq!(status, 200, "{body}");
}

/// Asks for an OTP for `email` and reads the code from the mail.
async fn request_code(app: &TestApp, sink: &SmtpSink, email: &str) -> (String, String) {
    let (status, body) = post(app, "request-otp", None, json!({"email": email})).await;
    assert_eq!(status, 200, "{body}");
    let code = sink
        .wait_for(email, WAIT)
        .await
        .expect("otp mail")
        .find_digits(6)
        .expect("code");
    (body["otpId"].as_str().expect("otpId").to_owned(), code)
}

async fn otp_login(app: &TestApp, otp_id: &str, code: &str) -> (u16, Value) {
    post(
        app,
        "auth-with-otp",
        None,
        json!({"otpId": otp_id, "password": code}),
    )
    .await
}

/// A six-digit code that is not `code`.
fn wrong(code: &str, n: usize) -> String {
    let guess = format!("{:06}", (n * 7919) % 1_000_000);
    if guess == code {
        format!("{:06}", (n * 7919 + 1) % 1_000_000)
    } else {
        guess
    }
}

// ---------------------------------------------------------------- authRule

#[tokio::test]
async fn auth_rule_verified_refuses_unverified_users_on_password_login_and_refresh() {
    let app = spawn_app().await;
    user(&app, "unverified@example.com", false).await;
    user(&app, "verified@example.com", true).await;
    let old_token = app
        .login_as("users", "unverified@example.com", PASSWORD)
        .await;
    set_options(&app, json!({"authRule": "verified = true"})).await;

    let (unverified, refused) = password_login(&app, "unverified@example.com", PASSWORD).await;
    let (verified, session) = password_login(&app, "verified@example.com", PASSWORD).await;
    let (refresh, refresh_body) = post(&app, "auth-refresh", Some(&old_token), json!({})).await;
    let good_token = session["token"].as_str().unwrap_or_default().to_owned();
    let (good_refresh, _) = post(&app, "auth-refresh", Some(&good_token), json!({})).await;

    assert_eq!(unverified, 403, "{refused}");
    assert_eq!(
        refused,
        json!({"status": 403, "message": AUTH_RULE_REFUSAL, "data": {}})
    );
    assert!(refused.get("token").is_none(), "no token leaks: {refused}");
    assert_eq!(verified, 200, "{session}");
    assert_eq!(
        refresh, 403,
        "a token issued before the rule cannot be refreshed: {refresh_body}"
    );
    assert_eq!(refresh_body["message"], AUTH_RULE_REFUSAL);
    assert_eq!(good_refresh, 200);
}

#[tokio::test]
async fn auth_rule_sees_the_authenticating_record_as_request_auth() {
    let app = spawn_app().await;
    user(&app, "plain@example.com", false).await;
    user(&app, "checked@example.com", true).await;
    set_options(&app, json!({"authRule": "@request.auth.verified = true"})).await;

    let (plain, plain_body) = password_login(&app, "plain@example.com", PASSWORD).await;
    let (checked, checked_body) = password_login(&app, "checked@example.com", PASSWORD).await;

    assert_eq!(plain, 403, "{plain_body}");
    assert_eq!(checked, 200, "{checked_body}");
}

#[tokio::test]
async fn auth_rule_null_refuses_everyone_and_empty_admits_everyone() {
    let (app, sink) = spawn_app_with_mail().await;
    user(&app, "a@example.com", true).await;
    user(&app, "b@example.com", false).await;
    let token = app.login_as("users", "a@example.com", PASSWORD).await;
    set_options(&app, json!({"otp": {"enabled": true, "length": 6}})).await;
    let (otp_id, code) = request_code(&app, &sink, "a@example.com").await;
    set_options(&app, json!({"authRule": null})).await;

    for (email, why) in [
        ("a@example.com", "verified"),
        ("b@example.com", "unverified"),
    ] {
        let (status, body) = password_login(&app, email, PASSWORD).await;
        assert_eq!(
            status, 403,
            "null authRule refuses password login ({why}): {body}"
        );
        assert_eq!(body["message"], AUTH_RULE_REFUSAL);
    }
    let (otp, otp_body) = otp_login(&app, &otp_id, &code).await;
    assert_eq!(otp, 403, "null authRule refuses OTP login: {otp_body}");
    let (refresh, _) = post(&app, "auth-refresh", Some(&token), json!({})).await;
    assert_eq!(refresh, 403, "null authRule refuses refresh");

    set_options(&app, json!({"authRule": ""})).await;
    for (email, why) in [
        ("a@example.com", "verified"),
        ("b@example.com", "unverified"),
    ] {
        let (status, body) = password_login(&app, email, PASSWORD).await;
        assert_eq!(status, 200, "empty authRule admits ({why}): {body}");
    }
}

#[tokio::test]
async fn auth_rule_applies_to_otp_login_after_the_code_is_checked() {
    let (app, sink) = spawn_app_with_mail().await;
    app.create_record_ok(
        "users",
        json!({"email": "banned@example.com", "password": PASSWORD, "passwordConfirm": PASSWORD,
               "verified": true, "name": "banned"}),
    )
    .await;
    user(&app, "fresh@example.com", false).await;
    set_options(
        &app,
        json!({"otp": {"enabled": true, "length": 6},
               "authRule": "verified = true && name != 'banned'"}),
    )
    .await;
    let (banned_otp, banned_code) = request_code(&app, &sink, "banned@example.com").await;
    let (fresh_otp, fresh_code) = request_code(&app, &sink, "fresh@example.com").await;

    let (refused, refused_body) = otp_login(&app, &banned_otp, &banned_code).await;
    let (admitted, session) = otp_login(&app, &fresh_otp, &fresh_code).await;

    assert_eq!(
        refused, 403,
        "a failing authRule refuses OTP login: {refused_body}"
    );
    assert_eq!(refused_body["message"], AUTH_RULE_REFUSAL);
    assert_eq!(
        admitted, 200,
        "the OTP proves the address, so (as in PocketBase) it verifies it before the rule: {session}"
    );
    assert_eq!(session["record"]["verified"], true);
}

#[tokio::test]
async fn the_superusers_collection_ignores_the_users_auth_rule() {
    let app = spawn_app().await;
    set_options(&app, json!({"authRule": null})).await;

    let fresh = app
        .login_as(
            "_superusers",
            crate::helpers::SU_EMAIL,
            crate::helpers::SU_PASSWORD,
        )
        .await;
    let (refresh, body) = status_json(
        app.request(
            Method::POST,
            "/api/collections/_superusers/auth-refresh",
            Some(&fresh),
            None,
        )
        .await,
    )
    .await;

    assert_eq!(refresh, 200, "{body}");
}

// ---------------------------------------------------------------- throttle

#[tokio::test]
async fn parallel_wrong_passwords_cannot_outrun_the_throttle() {
    let app = spawn_app().await;
    user(&app, "victim@example.com", true).await;

    let guesses = (0..20).map(|i| {
        let app = &app;
        async move {
            password_login(app, "victim@example.com", &format!("guess-{i}"))
                .await
                .0
        }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let (right, right_body) = password_login(&app, "victim@example.com", PASSWORD).await;

    let verified = statuses.iter().filter(|s| **s == 400).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert!(
        verified <= IDENTITY_LIMIT,
        "at most {IDENTITY_LIMIT} guesses reach the password check: {statuses:?}"
    );
    assert_eq!(verified + throttled, 20, "{statuses:?}");
    assert_eq!(
        right, 429,
        "the right password is refused while throttled: {right_body}"
    );
}

#[tokio::test]
async fn logging_into_your_own_account_does_not_reset_the_victims_counter() {
    let app = spawn_app().await;
    user(&app, "victim@example.com", true).await;
    user(&app, "attacker@example.com", true).await;

    for i in 0..IDENTITY_LIMIT - 1 {
        let (status, _) = password_login(&app, "victim@example.com", &format!("guess-{i}")).await;
        assert_eq!(status, 400, "guess {i} is checked");
    }
    let (own, own_body) = password_login(&app, "attacker@example.com", PASSWORD).await;
    let (last, _) = password_login(&app, "victim@example.com", "guess-last").await;
    let (right, right_body) = password_login(&app, "victim@example.com", PASSWORD).await;

    assert_eq!(own, 200, "the attacker's own login works: {own_body}");
    assert_eq!(last, 400, "the tenth guess is still checked");
    assert_eq!(
        right, 429,
        "the victim's counter survived the attacker's own login: {right_body}"
    );
}

// ---------------------------------------------------------------- OTP

#[tokio::test]
async fn six_wrong_codes_burn_the_otp_even_for_the_right_code() {
    let (app, sink) = spawn_app_with_mail().await;
    user(&app, "otp@example.com", true).await;
    set_options(&app, json!({"otp": {"enabled": true, "length": 6}})).await;
    let (otp_id, code) = request_code(&app, &sink, "otp@example.com").await;

    let mut statuses = Vec::new();
    for n in 0..=OTP_LIMIT {
        statuses.push(otp_login(&app, &otp_id, &wrong(&code, n)).await.0);
    }
    let (right, right_body) = otp_login(&app, &otp_id, &code).await;

    assert!(
        statuses[..OTP_LIMIT].iter().all(|s| *s == 400),
        "{statuses:?}"
    );
    assert_eq!(statuses[OTP_LIMIT], 429, "{statuses:?}");
    assert_ne!(right, 200, "the burnt code is refused: {right_body}");
    assert!(right_body.get("token").is_none());
}

#[tokio::test]
async fn parallel_otp_guesses_do_not_exceed_the_attempt_limit() {
    let (app, sink) = spawn_app_with_mail().await;
    user(&app, "otp@example.com", true).await;
    set_options(&app, json!({"otp": {"enabled": true, "length": 6}})).await;
    let (otp_id, code) = request_code(&app, &sink, "otp@example.com").await;

    let guesses = (0..20).map(|n| {
        let (app, otp_id, guess) = (&app, otp_id.clone(), wrong(&code, n));
        async move { otp_login(app, &otp_id, &guess).await.0 }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let (right, right_body) = otp_login(&app, &otp_id, &code).await;

    let checked = statuses.iter().filter(|s| **s == 400).count();
    assert!(
        checked <= OTP_LIMIT,
        "at most {OTP_LIMIT} guesses reach the code check: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 400 || *s == 429),
        "{statuses:?}"
    );
    assert_ne!(right, 200, "the burnt code is refused: {right_body}");
}

#[tokio::test]
async fn a_new_otp_request_retires_the_older_code() {
    let (app, sink) = spawn_app_with_mail().await;
    user(&app, "otp@example.com", true).await;
    set_options(&app, json!({"otp": {"enabled": true, "length": 6}})).await;
    let (old_id, old_code) = request_code(&app, &sink, "otp@example.com").await;
    let (new_id, new_code) = request_code(&app, &sink, "otp@example.com").await;

    let (old, old_body) = otp_login(&app, &old_id, &old_code).await;
    let (new, new_body) = otp_login(&app, &new_id, &new_code).await;

    assert_eq!(old, 400, "the older code is dead: {old_body}");
    assert_eq!(old_body["message"], "Invalid or expired OTP.");
    assert_eq!(new, 200, "the newest code works: {new_body}");
}

#[tokio::test]
async fn a_used_code_fails_the_second_time() {
    let (app, sink) = spawn_app_with_mail().await;
    user(&app, "otp@example.com", true).await;
    set_options(&app, json!({"otp": {"enabled": true, "length": 6}})).await;
    let (otp_id, code) = request_code(&app, &sink, "otp@example.com").await;

    let (first, _) = otp_login(&app, &otp_id, &code).await;
    let (second, body) = otp_login(&app, &otp_id, &code).await;

    assert_eq!(first, 200);
    assert_eq!(second, 400, "{body}");
    assert!(body.get("token").is_none());
}

#[tokio::test]
async fn an_otp_that_verifies_an_account_retires_the_password_and_sessions_set_before() {
    let (app, sink) = spawn_app_with_mail().await;
    // The attacker pre-registers the victim's address with a password they know.
    user(&app, "victim@example.com", false).await;
    let attacker_token = app.login_as("users", "victim@example.com", PASSWORD).await;
    set_options(&app, json!({"otp": {"enabled": true, "length": 6}})).await;
    let (otp_id, code) = request_code(&app, &sink, "victim@example.com").await;

    let (victim, session) = otp_login(&app, &otp_id, &code).await;
    let (password, _) = password_login(&app, "victim@example.com", PASSWORD).await;
    let (refresh, _) = post(&app, "auth-refresh", Some(&attacker_token), json!({})).await;
    let victim_token = session["token"].as_str().unwrap_or_default().to_owned();
    let (victim_refresh, _) = post(&app, "auth-refresh", Some(&victim_token), json!({})).await;

    assert_eq!(victim, 200, "{session}");
    assert_eq!(session["record"]["verified"], true);
    assert_eq!(
        password, 400,
        "the pre-verification password no longer logs in"
    );
    assert_eq!(refresh, 401, "the pre-verification session is revoked");
    assert_eq!(victim_refresh, 200, "the OTP session stays valid");
}
