//! Validation of auth collection options that bound secrets and codes:
//! token durations (1 s — PocketBase says 10 — to ~3 years), OTP length (at least 4)
//! and the OTP and MFA durations (10 s to a day while enabled). Bad values
//! are refused with PocketBase's field errors on create and update alike,
//! and change nothing. The rules among the options (`authRule`, `manageRule`,
//! `mfa.rule`) are checked against the collection like its API rules.

use crate::helpers::{TestApp, spawn_app, status_json};
use serde_json::{Value, json};

/// The longest token lifetime PocketBase accepts (~3 years).
const MAX_TOKEN_SECS: u64 = 94_670_856;

async fn create_auth(app: &TestApp, name: &str, options: Value) -> (u16, Value) {
    let mut body = json!({"name": name, "type": "auth"});
    if let (Some(body), Some(options)) = (body.as_object_mut(), options.as_object()) {
        body.extend(options.clone());
    }
    status_json(app.create_collection(body).await).await
}

#[tokio::test]
async fn token_durations_outside_pocketbases_bounds_are_refused() {
    let app = spawn_app().await;
    for key in [
        "authToken",
        "passwordResetToken",
        "emailChangeToken",
        "verificationToken",
        "fileToken",
    ] {
        for (duration, code, why) in [
            (json!(0), "validation_required", "zero"),
            (
                json!(-1),
                "validation_min_greater_equal_than_required",
                "negative",
            ),
            (
                json!(MAX_TOKEN_SECS + 1),
                "validation_max_less_equal_than_required",
                "over ~3 years",
            ),
            (
                json!(i64::MAX),
                "validation_max_less_equal_than_required",
                "i64::MAX (overflows now + duration)",
            ),
            (
                json!(u64::MAX),
                "validation_max_less_equal_than_required",
                "u64::MAX",
            ),
            (
                json!(1e300),
                "validation_max_less_equal_than_required",
                "huge float",
            ),
        ] {
            let (status, body) =
                create_auth(&app, "members", json!({key: {"duration": duration}})).await;

            assert_eq!(status, 400, "{key} {duration} ({why}): {body}");
            assert_eq!(
                body["data"][key]["duration"]["code"], code,
                "{key} {duration} ({why}): {body}"
            );
        }
        for ok in [1, 10, MAX_TOKEN_SECS] {
            let name = format!("ok_{}_{ok}", key.to_ascii_lowercase());
            let (status, body) = create_auth(&app, &name, json!({key: {"duration": ok}})).await;
            assert_eq!(status, 200, "{key} {ok} is within bounds: {body}");
        }
    }
}

#[tokio::test]
async fn a_token_duration_update_out_of_bounds_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let (status, _) = create_auth(&app, "members", json!({})).await;
    assert_eq!(status, 200);

    let (status, body) = status_json(
        app.update_collection("members", json!({"authToken": {"duration": i64::MAX}}))
            .await,
    )
    .await;
    let (_, stored) = status_json(
        app.su(reqwest::Method::GET, "/api/collections/members", None)
            .await,
    )
    .await;

    assert_eq!(status, 400, "{body}");
    assert_eq!(
        stored["authToken"]["duration"], 432_000,
        "unchanged: {stored}"
    );
}

#[tokio::test]
async fn otp_length_under_four_is_refused_while_otp_is_enabled() {
    let app = spawn_app().await;
    for (length, ok, why) in [
        (json!(0), false, "zero"),
        (json!(3), false, "three digits"),
        (json!(-8), false, "negative"),
        (json!(4), true, "PocketBase's minimum"),
        (json!(8), true, "the default"),
    ] {
        let name = format!("otp{}", if ok { "ok" } else { "bad" });
        let (status, body) = create_auth(
            &app,
            &name,
            json!({"otp": {"enabled": true, "duration": 180, "length": length}}),
        )
        .await;

        if ok {
            assert_eq!(status, 200, "length {length} ({why}): {body}");
            let deleted = app
                .su(
                    reqwest::Method::DELETE,
                    &format!("/api/collections/{name}"),
                    None,
                )
                .await;
            assert_eq!(deleted.status(), 204);
        } else {
            assert_eq!(status, 400, "length {length} ({why}): {body}");
            let code = body["data"]["otp"]["length"]["code"]
                .as_str()
                .unwrap_or_default();
            assert!(
                [
                    "validation_required",
                    "validation_min_greater_equal_than_required"
                ]
                .contains(&code),
                "length {length} ({why}): {body}"
            );
        }
    }
}

#[tokio::test]
async fn otp_and_mfa_durations_are_bounded_while_enabled() {
    let app = spawn_app().await;
    for (key, duration, why) in [
        ("otp", json!(5), "under 10 s"),
        ("otp", json!(86_401), "over a day"),
        ("mfa", json!(5), "under 10 s"),
        ("mfa", json!(i64::MAX), "absurd"),
    ] {
        let (status, body) = create_auth(
            &app,
            "members",
            json!({key: {"enabled": true, "duration": duration}}),
        )
        .await;

        assert_eq!(status, 400, "{key} {duration} ({why}): {body}");
        assert!(
            body["data"][key]["duration"]["code"].is_string(),
            "{key} {duration} ({why}): {body}"
        );
    }
}

#[tokio::test]
async fn auth_manage_and_mfa_rules_naming_unknown_fields_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let bad = "nosuchfield = 1";
    for (body, path, why) in [
        (json!({"authRule": bad}), vec!["authRule"], "authRule"),
        (json!({"manageRule": bad}), vec!["manageRule"], "manageRule"),
        (
            json!({"mfa": {"enabled": true, "duration": 600, "rule": bad}}),
            vec!["mfa", "rule"],
            "mfa.rule while MFA is on",
        ),
        (
            json!({"mfa": {"enabled": false, "rule": bad}}),
            vec!["mfa", "rule"],
            "mfa.rule while MFA is off",
        ),
        (
            json!({"mfa": {"rule": "email ="}}),
            vec!["mfa", "rule"],
            "an mfa.rule that does not parse",
        ),
    ] {
        for create in [true, false] {
            let (status, answer) = if create {
                create_auth(&app, "members", body.clone()).await
            } else {
                status_json(app.update_collection("users", body.clone()).await).await
            };
            let at = path.iter().fold(&answer["data"], |node, key| &node[*key]);
            assert_eq!(status, 400, "{why} (create: {create}): {answer}");
            assert_eq!(
                at["code"], "validation_invalid_rule",
                "{why} (create: {create}): {answer}"
            );
        }
    }
    let (_, users) = status_json(
        app.su(reqwest::Method::GET, "/api/collections/users", None)
            .await,
    )
    .await;
    assert_eq!(users["mfa"]["rule"], "", "nothing changed: {users}");
    assert_eq!(users["authRule"], "", "nothing changed: {users}");
    let (status, _) = status_json(
        app.su(reqwest::Method::GET, "/api/collections/members", None)
            .await,
    )
    .await;
    assert_eq!(status, 404, "no collection was created");

    // Valid rules, naming the collection's own fields, are kept.
    let good = json!({"authRule": "verified = true", "manageRule": "@request.auth.id != ''",
        "mfa": {"enabled": true, "duration": 600, "rule": "email != ''"}});
    let (status, saved) = status_json(app.update_collection("users", good).await).await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["mfa"]["rule"], "email != ''");
    assert_eq!(saved["authRule"], "verified = true");
}
