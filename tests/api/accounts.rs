//! Account flows through real email: verification, password reset, email
//! change, with a loopback SMTP sink capturing what the server sends; plus
//! auth-methods, impersonation, the verified/email protections and login
//! throttling.

use crate::helpers::{TestApp, spawn_app, spawn_app_with_mail, status_json};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);
const PASSWORD: &str = "first-pass-123";

async fn sign_up(app: &TestApp, email: &str) -> Value {
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
    body
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

#[tokio::test]
async fn auth_methods_describe_password_login() {
    let app = spawn_app().await;

    let (status, body) = status_json(
        app.request(
            Method::GET,
            "/api/collections/users/auth-methods",
            None,
            None,
        )
        .await,
    )
    .await;
    let (base_status, _) = status_json(
        app.request(
            Method::GET,
            "/api/collections/_mfas/auth-methods",
            None,
            None,
        )
        .await,
    )
    .await;

    assert_eq!(status, 200);
    assert_eq!(
        body["password"],
        json!({"identityFields": ["email"], "enabled": true})
    );
    assert_eq!(body["mfa"]["enabled"], false);
    assert_eq!(base_status, 404, "a base collection has no auth methods");
}

#[tokio::test]
async fn verification_through_the_emailed_token_marks_the_account_verified() {
    let (app, sink) = spawn_app_with_mail().await;
    let user = sign_up(&app, "ver@example.com").await;
    assert_eq!(user["verified"], false);

    let (request_status, _) = post(
        &app,
        "request-verification",
        None,
        json!({"email": "ver@example.com"}),
    )
    .await;
    let mail = sink
        .wait_for("ver@example.com", WAIT)
        .await
        .expect("verification email arrives");
    let token = mail.find_token().expect("token in the email");
    let (confirm_status, _) =
        post(&app, "confirm-verification", None, json!({"token": token})).await;
    let (again_status, again) = post(
        &app,
        "confirm-verification",
        None,
        json!({"token": "garbage"}),
    )
    .await;
    let login = app.login_as("users", "ver@example.com", PASSWORD).await;
    let (_, me) = status_json(
        app.request(
            Method::POST,
            "/api/collections/users/auth-refresh",
            Some(&login),
            None,
        )
        .await,
    )
    .await;

    assert_eq!(request_status, 204);
    assert_eq!(confirm_status, 204);
    assert_eq!(again_status, 400);
    assert_eq!(again["data"]["token"]["code"], "validation_invalid_token");
    assert_eq!(me["record"]["verified"], true);
}

#[tokio::test]
async fn password_reset_for_an_unknown_email_is_204_and_sends_nothing() {
    let (app, sink) = spawn_app_with_mail().await;

    let (status, body) = post(
        &app,
        "request-password-reset",
        None,
        json!({"email": "nobody@example.com"}),
    )
    .await;

    assert_eq!(status, 204, "{body}");
    assert!(
        sink.wait_for("nobody@example.com", Duration::from_millis(500))
            .await
            .is_none()
    );
    assert!(sink.messages().is_empty(), "no mail at all");
}

#[tokio::test]
async fn a_password_reset_revokes_every_older_token() {
    let (app, sink) = spawn_app_with_mail().await;
    sign_up(&app, "reset@example.com").await;
    let old_token = app.login_as("users", "reset@example.com", PASSWORD).await;

    post(
        &app,
        "request-password-reset",
        None,
        json!({"email": "reset@example.com"}),
    )
    .await;
    let token = sink
        .wait_for("reset@example.com", WAIT)
        .await
        .expect("mail")
        .find_token()
        .expect("token");
    let (mismatch, body) = post(
        &app,
        "confirm-password-reset",
        None,
        json!({"token": token, "password": "new-pass-456", "passwordConfirm": "other"}),
    )
    .await;
    let (status, _) = post(
        &app,
        "confirm-password-reset",
        None,
        json!({"token": token, "password": "new-pass-456", "passwordConfirm": "new-pass-456"}),
    )
    .await;
    let (reuse, _) = post(
        &app,
        "confirm-password-reset",
        None,
        json!({"token": token, "password": "third-pass-789", "passwordConfirm": "third-pass-789"}),
    )
    .await;
    let (refresh_status, _) = post(&app, "auth-refresh", Some(&old_token), json!({})).await;

    assert_eq!(mismatch, 400);
    assert_eq!(
        body["data"]["passwordConfirm"]["code"],
        "validation_values_mismatch"
    );
    assert_eq!(status, 204);
    assert_eq!(reuse, 400, "the reset token itself died with the tokenKey");
    assert_eq!(refresh_status, 401, "the old auth token is rejected");
    app.login_as("users", "reset@example.com", "new-pass-456")
        .await;
}

#[tokio::test]
async fn one_reset_token_sent_twice_at_once_sets_one_password() {
    let (app, sink) = spawn_app_with_mail().await;
    sign_up(&app, "race@example.com").await;
    post(
        &app,
        "request-password-reset",
        None,
        json!({"email": "race@example.com"}),
    )
    .await;
    let token = sink
        .wait_for("race@example.com", WAIT)
        .await
        .expect("mail")
        .find_token()
        .expect("token");

    let confirm = |password: &'static str| {
        post(
            &app,
            "confirm-password-reset",
            None,
            json!({"token": token, "password": password, "passwordConfirm": password}),
        )
    };
    let (first, second) = tokio::join!(confirm("racer-one-111"), confirm("racer-two-222"));

    let mut statuses = [first.0, second.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [204, 400],
        "exactly one confirm wins: {first:?} {second:?}"
    );
    let loser = if first.0 == 400 { &first.1 } else { &second.1 };
    assert_eq!(
        loser["data"]["token"]["code"], "validation_invalid_token",
        "{loser}"
    );
    let winner = if first.0 == 204 {
        "racer-one-111"
    } else {
        "racer-two-222"
    };
    app.login_as("users", "race@example.com", winner).await;
}

#[tokio::test]
async fn an_email_change_needs_the_emailed_token_and_the_password() {
    let (app, sink) = spawn_app_with_mail().await;
    sign_up(&app, "old@example.com").await;
    let token = app.login_as("users", "old@example.com", PASSWORD).await;

    let (guest, _) = post(
        &app,
        "request-email-change",
        None,
        json!({"newEmail": "new@example.com"}),
    )
    .await;
    let (status, _) = post(
        &app,
        "request-email-change",
        Some(&token),
        json!({"newEmail": "new@example.com"}),
    )
    .await;
    let change = sink
        .wait_for("new@example.com", WAIT)
        .await
        .expect("mail to the new address")
        .find_token()
        .expect("token");
    let (wrong_pw, _) = post(
        &app,
        "confirm-email-change",
        None,
        json!({"token": change, "password": "wrong-password"}),
    )
    .await;
    let (confirmed, _) = post(
        &app,
        "confirm-email-change",
        None,
        json!({"token": change, "password": PASSWORD}),
    )
    .await;

    assert_eq!(guest, 401);
    assert_eq!(status, 204);
    assert_eq!(wrong_pw, 400);
    assert_eq!(confirmed, 204);
    app.login_as("users", "new@example.com", PASSWORD).await;
}

#[tokio::test]
async fn a_superuser_can_impersonate_and_the_token_is_not_refreshable() {
    let app = spawn_app().await;
    let user = sign_up(&app, "imp@example.com").await;
    let id = user["id"].as_str().expect("id");
    let user_token = app.login_as("users", "imp@example.com", PASSWORD).await;

    let (status, body) = status_json(
        app.su(
            Method::POST,
            &format!("/api/collections/users/impersonate/{id}"),
            Some(json!({"duration": 60})),
        )
        .await,
    )
    .await;
    let (denied, _) = post(
        &app,
        &format!("impersonate/{id}"),
        Some(&user_token),
        json!({}),
    )
    .await;
    let token = body["token"].as_str().expect("token").to_owned();
    let (_, refreshed) = post(&app, "auth-refresh", Some(&token), json!({})).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["record"]["id"], id);
    assert_eq!(denied, 403);
    assert_eq!(
        refreshed["token"], token,
        "a non-refreshable token is echoed back"
    );
}

#[tokio::test]
async fn users_cannot_set_their_own_verified_flag_or_see_hidden_emails() {
    let app = spawn_app().await;
    let alice = sign_up(&app, "alice@example.com").await;
    sign_up(&app, "bob@example.com").await;
    app.update_collection("users", json!({"listRule": "", "viewRule": ""}))
        .await;
    let alice_token = app.login_as("users", "alice@example.com", PASSWORD).await;
    let bob_token = app.login_as("users", "bob@example.com", PASSWORD).await;
    let alice_path = format!(
        "/api/collections/users/records/{}",
        alice["id"].as_str().expect("id")
    );

    let (verify_status, verify) = status_json(
        app.request(
            Method::PATCH,
            &alice_path,
            Some(&alice_token),
            Some(json!({"verified": true})),
        )
        .await,
    )
    .await;
    let (_, seen_by_bob) = status_json(
        app.request(Method::GET, &alice_path, Some(&bob_token), None)
            .await,
    )
    .await;
    let (_, seen_by_alice) = status_json(
        app.request(Method::GET, &alice_path, Some(&alice_token), None)
            .await,
    )
    .await;

    assert_eq!(verify_status, 400, "{verify}");
    assert_eq!(
        verify["data"]["verified"]["code"],
        "validation_values_mismatch"
    );
    assert!(
        seen_by_bob.get("email").is_none(),
        "bob must not see alice's email: {seen_by_bob}"
    );
    assert_eq!(seen_by_alice["email"], "alice@example.com");
    assert!(seen_by_bob.get("password").is_none() && seen_by_bob.get("tokenKey").is_none());
}

#[tokio::test]
async fn the_eleventh_rapid_wrong_password_is_throttled() {
    let app = spawn_app().await;
    sign_up(&app, "throttle@example.com").await;

    let mut statuses = Vec::new();
    for _ in 0..11 {
        let (status, _) = post(
            &app,
            "auth-with-password",
            None,
            json!({"identity": "throttle@example.com", "password": "wrong-guess"}),
        )
        .await;
        statuses.push(status);
    }

    assert!(statuses[..10].iter().all(|s| *s == 400), "{statuses:?}");
    assert_eq!(statuses[10], 429, "{statuses:?}");
}

async fn enable(app: &TestApp, options: Value) {
    let (status, body) = status_json(app.update_collection("users", options).await).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn otp_login_works_once_with_the_emailed_code() {
    let (app, sink) = spawn_app_with_mail().await;
    sign_up(&app, "otp@example.com").await;
    let (disabled, _) = post(
        &app,
        "request-otp",
        None,
        json!({"email": "otp@example.com"}),
    )
    .await;
    enable(&app, json!({"otp": {"enabled": true, "length": 6}})).await;

    let (status, body) = post(
        &app,
        "request-otp",
        None,
        json!({"email": "otp@example.com"}),
    )
    .await;
    let (unknown_status, unknown) = post(
        &app,
        "request-otp",
        None,
        json!({"email": "ghost@example.com"}),
    )
    .await;
    let otp_id = body["otpId"].as_str().expect("otpId").to_owned();
    let code = sink
        .wait_for("otp@example.com", WAIT)
        .await
        .expect("otp mail")
        .find_digits(6)
        .expect("code");
    let (wrong, _) = post(
        &app,
        "auth-with-otp",
        None,
        json!({"otpId": otp_id, "password": "000000x"}),
    )
    .await;
    let (ok, session) = post(
        &app,
        "auth-with-otp",
        None,
        json!({"otpId": otp_id, "password": code}),
    )
    .await;
    let (again, again_body) = post(
        &app,
        "auth-with-otp",
        None,
        json!({"otpId": otp_id, "password": code}),
    )
    .await;

    assert_eq!(disabled, 403);
    assert_eq!(status, 200);
    assert_eq!(otp_id.len(), 15);
    assert_eq!(unknown_status, 200, "unknown emails get a fake id");
    assert_eq!(unknown["otpId"].as_str().map(str::len), Some(15));
    assert_eq!(wrong, 400);
    assert_eq!(ok, 200, "{session}");
    assert_eq!(
        session["record"]["verified"], true,
        "a successful OTP verifies the email"
    );
    assert_eq!(again, 400, "one-time use");
    assert_eq!(again_body["message"], "Invalid or expired OTP.");
}

#[tokio::test]
async fn mfa_needs_a_second_different_method() {
    let (app, sink) = spawn_app_with_mail().await;
    sign_up(&app, "mfa@example.com").await;
    enable(
        &app,
        json!({"otp": {"enabled": true}, "mfa": {"enabled": true}}),
    )
    .await;
    let login = json!({"identity": "mfa@example.com", "password": PASSWORD});

    let (first, challenge) = post(&app, "auth-with-password", None, login.clone()).await;
    let mfa_id = challenge["mfaId"].as_str().expect("mfaId").to_owned();
    let mut same_method = login.clone();
    same_method["mfaId"] = json!(mfa_id);
    let (same, same_body) = post(&app, "auth-with-password", None, same_method).await;
    let (_, otp) = post(
        &app,
        "request-otp",
        None,
        json!({"email": "mfa@example.com"}),
    )
    .await;
    let code = sink
        .wait_for("mfa@example.com", WAIT)
        .await
        .expect("otp mail")
        .find_digits(8)
        .expect("code");
    let (second, session) = post(
        &app,
        "auth-with-otp",
        None,
        json!({"otpId": otp["otpId"], "password": code, "mfaId": mfa_id}),
    )
    .await;

    assert_eq!(first, 401);
    assert_eq!(
        challenge.as_object().map(|o| o.len()),
        Some(1),
        "the challenge is only {{mfaId}}: {challenge}"
    );
    assert_eq!(same, 400);
    assert_eq!(
        same_body["message"],
        "A different authentication method is required."
    );
    assert_eq!(second, 200, "{session}");
    assert!(session["token"].is_string());
}

#[tokio::test]
async fn an_otp_login_resets_a_password_pre_set_by_someone_else() {
    let (app, sink) = spawn_app_with_mail().await;
    enable(&app, json!({"otp": {"enabled": true, "length": 6}})).await;
    // The attacker registers the victim's address before the victim does.
    let planted = sign_up(&app, "victim@example.com").await;
    let (_, attacker) = post(
        &app,
        "auth-with-password",
        None,
        json!({"identity": "victim@example.com", "password": PASSWORD}),
    )
    .await;
    let attacker_token = attacker["token"].as_str().expect("token").to_owned();

    let (_, otp) = post(
        &app,
        "request-otp",
        None,
        json!({"email": "victim@example.com"}),
    )
    .await;
    let code = sink
        .wait_for("victim@example.com", WAIT)
        .await
        .expect("otp mail")
        .find_digits(6)
        .expect("code");
    let (status, session) = post(
        &app,
        "auth-with-otp",
        None,
        json!({"otpId": otp["otpId"], "password": code}),
    )
    .await;
    let (password_after, _) = post(
        &app,
        "auth-with-password",
        None,
        json!({"identity": "victim@example.com", "password": PASSWORD}),
    )
    .await;
    let (token_after, _) = post(&app, "auth-refresh", Some(&attacker_token), json!({})).await;
    let (session_refresh, _) =
        post(&app, "auth-refresh", session["token"].as_str(), json!({})).await;

    assert_eq!(status, 200, "{session}");
    assert_eq!(session["record"]["id"], planted["id"]);
    assert_eq!(session["record"]["verified"], true);
    assert_eq!(password_after, 400, "the pre-set password must be reset");
    assert_eq!(token_after, 401, "older tokens die with the tokenKey");
    assert_eq!(session_refresh, 200, "the OTP session itself stays valid");
}

#[tokio::test]
async fn one_mfa_id_finishes_only_one_of_two_parallel_logins() {
    let (app, sink) = spawn_app_with_mail().await;
    sign_up(&app, "race@example.com").await;
    enable(
        &app,
        json!({"otp": {"enabled": true, "length": 6}, "mfa": {"enabled": true}}),
    )
    .await;
    let (_, challenge) = post(
        &app,
        "auth-with-password",
        None,
        json!({"identity": "race@example.com", "password": PASSWORD}),
    )
    .await;
    let mfa_id = challenge["mfaId"].as_str().expect("mfaId").to_owned();
    // Two OTPs, so both second factors are valid on their own.
    let mut second_factors = Vec::new();
    for _ in 0..2 {
        let (_, otp) = post(
            &app,
            "request-otp",
            None,
            json!({"email": "race@example.com"}),
        )
        .await;
        let code = sink
            .wait_for("race@example.com", WAIT)
            .await
            .expect("otp mail")
            .find_digits(6)
            .expect("code");
        second_factors.push(json!({"otpId": otp["otpId"], "password": code, "mfaId": mfa_id}));
    }

    let (a, b) = tokio::join!(
        post(&app, "auth-with-otp", None, second_factors[0].clone()),
        post(&app, "auth-with-otp", None, second_factors[1].clone()),
    );

    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 400], "one mfaId, one session: {a:?} {b:?}");
}

/// A TCP listener that accepts connections and never answers: an SMTP
/// server stuck before its greeting, so a delivery waits for its timeout.
async fn silent_smtp() -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (port, task)
}

#[tokio::test]
async fn email_requests_answer_as_fast_for_real_accounts_as_for_unknown_ones() {
    let app = spawn_app().await;
    let (port, _smtp) = silent_smtp().await;
    let (status, body) = status_json(
        app.su(
            Method::PATCH,
            "/api/settings",
            Some(json!({"smtp": {"enabled": true, "host": "127.0.0.1", "port": port}})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    enable(&app, json!({"otp": {"enabled": true}})).await;
    let real = sign_up(&app, "real@example.com").await;
    let (_, session) = post(
        &app,
        "auth-with-password",
        None,
        json!({"identity": "real@example.com", "password": PASSWORD}),
    )
    .await;
    let token = session["token"].as_str().expect("token").to_owned();
    assert!(real["id"].is_string());
    // SMTP never answers, so a request that waited for delivery would take
    // the mailer's timeout (seconds); one that doesn't answers at once.
    let bound = Duration::from_millis(1_500);

    for (path, email, auth) in [
        ("request-otp", "real@example.com", None),
        ("request-otp", "ghost@example.com", None),
        ("request-verification", "real@example.com", None),
        ("request-verification", "ghost@example.com", None),
        ("request-password-reset", "real@example.com", None),
        ("request-password-reset", "ghost@example.com", None),
        ("request-email-change", "", Some(token.as_str())),
    ] {
        let body = if auth.is_some() {
            json!({"newEmail": "new-address@example.com"})
        } else {
            json!({"email": email})
        };
        let started = std::time::Instant::now();
        let (status, answer) = tokio::time::timeout(bound * 4, post(&app, path, auth, body))
            .await
            .unwrap_or_else(|_| panic!("{path} for {email:?} hung on SMTP"));
        let took = started.elapsed();

        assert!(status < 300, "{path} {email}: {status} {answer}");
        assert!(
            took < bound,
            "{path} for {email:?} took {took:?}: it waited for SMTP"
        );
    }
}

#[tokio::test]
async fn impersonate_durations_out_of_range_are_refused_without_a_token() {
    let app = spawn_app().await;
    let user = sign_up(&app, "dur@example.com").await;
    let path = format!(
        "/api/collections/users/impersonate/{}",
        user["id"].as_str().expect("id")
    );

    for (duration, why) in [
        (json!(u64::MAX), "past i64"),
        (json!(1e300), "huge float"),
        (json!(1.5), "fraction"),
        (json!("60"), "text"),
        (json!(true), "a boolean"),
    ] {
        let (status, body) = status_json(
            app.su(Method::POST, &path, Some(json!({ "duration": duration })))
                .await,
        )
        .await;
        assert_eq!(status, 400, "{duration} ({why}): {body}");
        assert_eq!(
            body,
            json!({"status": 400, "message": "An error occurred while loading the submitted data.", "data": {}}),
            "{why}: as PocketBase, a value that is not a whole number does not bind"
        );
    }
    for (duration, why) in [
        (json!(i64::MAX), "i64::MAX overflows now + duration"),
        (json!(-1), "negative"),
        (json!(i64::MIN), "i64::MIN"),
        (json!(315_360_001), "past the ten-year cap"),
    ] {
        let (status, body) = status_json(
            app.su(Method::POST, &path, Some(json!({ "duration": duration })))
                .await,
        )
        .await;
        assert_eq!(status, 400, "{duration} ({why}): {body}");
        assert_eq!(
            body["message"], "An error occurred while validating the submitted data.",
            "{why}"
        );
        assert!(
            body["data"]["duration"]["code"].is_string(),
            "{why}: {body}"
        );
    }
    for (duration, why) in [
        (json!(0), "zero: the collection default"),
        (json!(null), "null: the collection default"),
        (json!(315_360_000), "exactly the cap"),
    ] {
        let (status, body) = status_json(
            app.su(Method::POST, &path, Some(json!({ "duration": duration })))
                .await,
        )
        .await;
        assert_eq!(status, 200, "{why}: {body}");
        let (me, _) = post(&app, "auth-refresh", body["token"].as_str(), json!({})).await;
        assert_eq!(me, 200, "{why}: the token works");
    }
}

/// Sets the `users` email field's `onlyDomains` / `exceptDomains`.
async fn restrict_email_domains(app: &TestApp, only: Value, except: Value) {
    let (_, users) = status_json(app.su(Method::GET, "/api/collections/users", None).await).await;
    let mut fields = users["fields"].as_array().expect("fields").clone();
    let email = fields
        .iter_mut()
        .find(|f| f["name"] == "email")
        .expect("email field");
    email["onlyDomains"] = only;
    email["exceptDomains"] = except;
    let resp = app
        .update_collection("users", json!({"fields": fields}))
        .await;
    assert_eq!(resp.status(), 200, "domain restriction saved");
}

#[tokio::test]
async fn an_email_change_request_to_a_refused_domain_is_a_400_and_sends_nothing() {
    let (app, sink) = spawn_app_with_mail().await;
    sign_up(&app, "old@example.com").await;
    let token = app.login_as("users", "old@example.com", PASSWORD).await;
    for (only, except, new_email, why) in [
        (
            json!(["example.com"]),
            json!([]),
            "new@elsewhere.test",
            "outside onlyDomains",
        ),
        (
            json!(["example.com"]),
            json!([]),
            "new@EXAMPLE.com.evil.test",
            "a suffix trick",
        ),
        (
            json!([]),
            json!(["blocked.test"]),
            "new@blocked.test",
            "inside exceptDomains",
        ),
        (
            json!([]),
            json!(["blocked.test"]),
            "new@BLOCKED.test",
            "exceptDomains, other case",
        ),
    ] {
        restrict_email_domains(&app, only, except).await;

        let (status, body) = post(
            &app,
            "request-email-change",
            Some(&token),
            json!({"newEmail": new_email}),
        )
        .await;

        assert_eq!(status, 400, "{why}: {body}");
        assert_eq!(
            body["data"]["newEmail"]["code"], "validation_email_domain_not_allowed",
            "{why}: {body}"
        );
        assert!(
            sink.wait_for(new_email, Duration::from_millis(300))
                .await
                .is_none(),
            "{why}: no token may be mailed"
        );
    }
}

#[tokio::test]
async fn an_email_change_token_issued_before_the_domains_narrowed_does_not_confirm() {
    let (app, sink) = spawn_app_with_mail().await;
    let user = sign_up(&app, "old@example.com").await;
    let token = app.login_as("users", "old@example.com", PASSWORD).await;
    let mut tokens = Vec::new();
    for new_email in ["new@elsewhere.test", "new@blocked.test"] {
        let (status, _) = post(
            &app,
            "request-email-change",
            Some(&token),
            json!({"newEmail": new_email}),
        )
        .await;
        assert_eq!(status, 204, "request for {new_email} before narrowing");
        let change = sink
            .wait_for(new_email, WAIT)
            .await
            .expect("mail to the new address")
            .find_token()
            .expect("token");
        tokens.push(change);
    }
    restrict_email_domains(&app, json!([]), json!(["blocked.test"])).await;
    let blocked = tokens.pop().expect("blocked token");
    restrict_email_domains(&app, json!(["example.com"]), json!(["blocked.test"])).await;
    let elsewhere = tokens.pop().expect("elsewhere token");

    for (change, why) in [
        (elsewhere, "outside onlyDomains"),
        (blocked, "inside exceptDomains"),
    ] {
        let (status, body) = post(
            &app,
            "confirm-email-change",
            None,
            json!({"token": change, "password": PASSWORD}),
        )
        .await;
        assert_eq!(status, 400, "{why}: {body}");
        assert_eq!(
            body["data"]["newEmail"]["code"], "validation_email_domain_not_allowed",
            "{why}: {body}"
        );
    }

    let (_, stored) = status_json(
        app.su(
            Method::GET,
            &format!(
                "/api/collections/users/records/{}",
                user["id"].as_str().expect("id")
            ),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(stored["email"], "old@example.com", "nothing changed");
    assert_eq!(stored["verified"], false, "not verified either");
    app.login_as("users", "old@example.com", PASSWORD).await;
}

#[tokio::test]
async fn request_otp_stops_mailing_new_codes_after_ten_live_ones_and_reuses_the_last() {
    let (app, sink) = spawn_app_with_mail().await;
    sign_up(&app, "flood@example.com").await;
    enable(&app, json!({"otp": {"enabled": true}})).await;

    let mut ids = Vec::new();
    for _ in 0..13 {
        let (status, body) = post(
            &app,
            "request-otp",
            None,
            json!({"email": "flood@example.com"}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        ids.push(body["otpId"].as_str().expect("otpId").to_owned());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let distinct: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), 10, "ten codes are issued: {ids:?}");
    assert_eq!(ids[10], ids[9], "the 11th request gets the last issued id");
    assert_eq!(ids[12], ids[9], "and so does every later one");
    assert_eq!(
        sink.count_for("flood@example.com"),
        10,
        "no mail past the tenth"
    );
    let code = sink
        .messages()
        .into_iter()
        .last()
        .and_then(|m| m.find_digits(8))
        .expect("the last mailed code");
    let (status, body) = post(
        &app,
        "auth-with-otp",
        None,
        json!({"otpId": ids[12], "password": code}),
    )
    .await;
    assert_eq!(
        status, 200,
        "the reused id still takes the last mailed code: {body}"
    );
}
