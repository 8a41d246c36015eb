//! Account cells of the matrix: `manageRule` (who may change another
//! account's email, password, `verified` and `emailVisibility`, over JSON,
//! multipart and batch) and `authRule` (null, `""`, `verified = true`, a rule
//! on a custom field) × password login, OTP login and auth-refresh. A refused
//! change leaves the stored account and its tokens as they were; a refused
//! login issues no token.

use super::{
    ACTORS, ALICE, Actor, Answer, Cells, MANAGER, NEW_PASSWORD, PASSWORD, Persona, World, login,
    marker, world,
};
use crate::helpers::status_json;
use reqwest::Method;
use reqwest::multipart::Form;
use serde_json::{Value, json};
use std::time::Duration;

const ALICE_URL: &str = "/api/collections/people/records/ualice000000000";
const ALICE_EMAIL: &str = "alice@example.com";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Channel {
    Json,
    Multipart,
    Batch,
}

/// One change to alice's account and whether alice herself may make it.
struct Change {
    name: &'static str,
    body: Value,
    owner_may: bool,
}

fn changes() -> Vec<Change> {
    vec![
        Change {
            name: "email",
            body: json!({"email": "taken-over@example.com"}),
            owner_may: false,
        },
        Change {
            name: "password without oldPassword",
            body: json!({"password": NEW_PASSWORD, "passwordConfirm": NEW_PASSWORD}),
            owner_may: false,
        },
        Change {
            name: "password with oldPassword",
            body: json!({"oldPassword": PASSWORD, "password": NEW_PASSWORD, "passwordConfirm": NEW_PASSWORD}),
            owner_may: true,
        },
        Change {
            name: "verified",
            body: json!({"verified": false}),
            owner_may: false,
        },
        Change {
            name: "emailVisibility",
            body: json!({"emailVisibility": true}),
            owner_may: true,
        },
    ]
}

fn form_of(body: &Value) -> Form {
    let mut form = Form::new();
    for (key, value) in body.as_object().into_iter().flatten() {
        let text = value
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| value.to_string());
        form = form.text(key.clone(), text);
    }
    form
}

impl World {
    async fn send_change(&self, actor: Actor, channel: Channel, body: &Value) -> Answer {
        let resp = match channel {
            Channel::Json => {
                self.app
                    .request(
                        Method::PATCH,
                        ALICE_URL,
                        self.token(actor),
                        Some(body.clone()),
                    )
                    .await
            }
            Channel::Multipart => {
                self.app
                    .send_form(Method::PATCH, ALICE_URL, self.token(actor), form_of(body))
                    .await
            }
            Channel::Batch => {
                let batch =
                    json!({"requests": [{"method": "PATCH", "url": ALICE_URL, "body": body}]});
                self.app
                    .request(Method::POST, "/api/batch", self.token(actor), Some(batch))
                    .await
            }
        };
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, text, json }
    }

    async fn stored_alice(&self) -> Value {
        let (status, body) = status_json(self.app.su(Method::GET, ALICE_URL, None).await).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Puts alice's account back and gives her a fresh token.
    async fn restore_alice(&mut self) -> Value {
        self.su(
            Method::PATCH,
            ALICE_URL,
            json!({"email": ALICE_EMAIL, "emailVisibility": false, "verified": true,
                   "password": PASSWORD, "passwordConfirm": PASSWORD}),
        )
        .await;
        self.alice = login(&self.app, "people", ALICE_EMAIL).await;
        self.stored_alice().await
    }
}

fn status_ok(a: &Answer, channel: Channel, direct: u16) -> bool {
    match (channel, direct) {
        (Channel::Batch, 200) => a.status == 200,
        (Channel::Batch, _) => {
            a.status == 400
                && a.json["data"]["requests"]["0"]["response"]["status"] == json!(direct)
        }
        _ => a.status == direct,
    }
}

#[tokio::test]
async fn only_managers_and_superusers_change_another_accounts_email_password_and_verified_flag() {
    let mut w = world().await;
    super::wait_for_expiry(&w).await;
    // Managers must reach the record first (PocketBase checks the update rule,
    // then the manage rule only widens what may change).
    w.su(
        Method::PATCH,
        "/api/collections/people",
        json!({"updateRule": "id = @request.auth.id || @request.auth.role = 'manager'"}),
    )
    .await;
    let mut cells = Cells::default();
    let mut stored = w.restore_alice().await;

    for change in changes() {
        for channel in [Channel::Json, Channel::Multipart, Channel::Batch] {
            for actor in ACTORS {
                let persona = actor.persona();
                let expected = match persona {
                    Persona::Super | Persona::Manager => 200,
                    Persona::Alice if change.owner_may => 200,
                    Persona::Alice => 400,
                    _ => 404,
                };
                let a = w.send_change(actor, channel, &change.body).await;
                let c = format!("[manage {}] {actor:?} {channel:?}", change.name);
                cells.check(status_ok(&a, channel, expected), || {
                    format!("{c}: want {expected}: {} {}", a.status, a.text)
                });
                if !matches!(persona, Persona::Super | Persona::Manager | Persona::Alice) {
                    for secret in [ALICE_EMAIL.to_owned(), marker(ALICE)] {
                        cells.check(!a.text.contains(&secret), || {
                            format!("{c}: leaks {secret}: {}", a.text)
                        });
                    }
                }
                if expected == 200 {
                    stored = w.restore_alice().await;
                    continue;
                }
                let after = w.stored_alice().await;
                cells.check(after == stored, || {
                    format!("{c}: alice's account changed: {stored} -> {after}")
                });
                let still = w.call(Actor::Alice, Method::GET, ALICE_URL, None).await;
                cells.check(still.status == 200, || {
                    format!("{c}: alice's token died (password or tokenKey changed)")
                });
                let relogin = w
                    .app
                    .request(
                        Method::POST,
                        "/api/collections/people/auth-with-password",
                        None,
                        Some(json!({"identity": ALICE_EMAIL, "password": PASSWORD})),
                    )
                    .await;
                cells.check(relogin.status() == 200, || {
                    format!("{c}: alice's old password no longer works")
                });
                if after != stored || still.status != 200 {
                    stored = w.restore_alice().await;
                }
            }
        }
    }
    // The manager's own account was never touched by the cells above.
    let a = w
        .call(
            Actor::Manager,
            Method::GET,
            &format!("/api/collections/people/records/{MANAGER}"),
            None,
        )
        .await;
    cells.check(a.status == 200, || format!("manager's token: {}", a.text));

    cells.finish("manageRule");
}

/// The auth methods an `authRule` guards.
#[derive(Clone, Copy, Debug)]
enum AuthMethod {
    Password,
    Otp,
    Refresh,
}

/// Whether an auth rule admits a user of this kind ("verified", "manager", "unverified").
type Admits = fn(&str) -> bool;

const REFUSED: &str = "The request doesn't satisfy the collection requirements to authenticate.";

#[tokio::test]
async fn the_auth_rule_decides_every_login_method_and_a_refused_login_issues_no_token() {
    let w = world().await;
    let sink = crate::smtp_sink::start().await;
    w.su(
        Method::PATCH,
        "/api/settings",
        json!({"smtp": {"enabled": true, "host": "127.0.0.1", "port": sink.port}}),
    )
    .await;
    w.su(
        Method::PATCH,
        "/api/collections/people",
        json!({"otp": {"enabled": true, "length": 6}, "authRule": ""}),
    )
    .await;
    w.app
        .create_record_ok(
            "people",
            json!({"id": "ueve00000000000", "email": "eve@example.com", "password": PASSWORD,
                   "passwordConfirm": PASSWORD, "role": "", "verified": false}),
        )
        .await;
    let users = [
        ("alice@example.com", "verified"),
        ("manager@example.com", "manager"),
        ("eve@example.com", "unverified"),
    ];
    let mut refresh_tokens: Vec<String> = Vec::new();
    for (email, _) in users {
        refresh_tokens.push(login(&w.app, "people", email).await);
    }
    let rules: [(Value, &str, Admits); 4] = [
        (Value::Null, "null (auth disabled)", |_| false),
        (json!(""), "empty", |_| true),
        (json!("verified = true"), "verified = true", |u| {
            u != "unverified"
        }),
        (json!("role = 'manager'"), "custom field", |u| {
            u == "manager"
        }),
    ];
    let mut cells = Cells::default();

    for (rule, rule_name, admits) in rules {
        w.su(
            Method::PATCH,
            "/api/collections/people",
            json!({ "authRule": rule.clone() }),
        )
        .await;
        for (user, (email, who)) in users.iter().enumerate() {
            // OTP last: it verifies an unverified account (see below).
            for method in [AuthMethod::Password, AuthMethod::Refresh, AuthMethod::Otp] {
                let refresh_token = refresh_tokens[user].clone();
                let a = match method {
                    AuthMethod::Password => {
                        w.call(
                            Actor::Guest,
                            Method::POST,
                            "/api/collections/people/auth-with-password",
                            Some(json!({"identity": email, "password": PASSWORD})),
                        )
                        .await
                    }
                    AuthMethod::Otp => {
                        let asked = w
                            .call(
                                Actor::Guest,
                                Method::POST,
                                "/api/collections/people/request-otp",
                                Some(json!({ "email": email })),
                            )
                            .await;
                        let otp_id = asked.json["otpId"].as_str().unwrap_or_default().to_owned();
                        // Generous: a code that arrives after a timeout would be read
                        // by the next cell as its own (the sink hands out the oldest).
                        let code = sink
                            .wait_for(email, Duration::from_secs(30))
                            .await
                            .and_then(|m| m.find_digits(6))
                            .unwrap_or_default();
                        w.call(
                            Actor::Guest,
                            Method::POST,
                            "/api/collections/people/auth-with-otp",
                            Some(json!({"otpId": otp_id, "password": code})),
                        )
                        .await
                    }
                    AuthMethod::Refresh => {
                        let resp = w
                            .app
                            .request(
                                Method::POST,
                                "/api/collections/people/auth-refresh",
                                Some(&refresh_token),
                                Some(json!({})),
                            )
                            .await;
                        let status = resp.status().as_u16();
                        let text = resp.text().await.expect("body");
                        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
                        Answer { status, text, json }
                    }
                };
                let c = format!("[authRule {rule_name}] {who} {method:?}");
                // The code proves eve's address before the rule is asked (PocketBase
                // does the same), so the rule meets her verified.
                let at_check = match (method, *who) {
                    (AuthMethod::Otp, "unverified") => "verified",
                    _ => who,
                };
                if admits(at_check) {
                    cells.check(a.status == 200 && a.json["token"].is_string(), || {
                        format!("{c}: should sign in: {} {}", a.status, a.text)
                    });
                } else {
                    cells.check(a.status == 403 && a.json["message"] == REFUSED, || {
                        format!("{c}: should be 403: {} {}", a.status, a.text)
                    });
                    cells.check(!a.text.contains("token") && !a.text.contains("eyJ"), || {
                        format!("{c}: a refused login carries a token: {}", a.text)
                    });
                }
                if matches!(method, AuthMethod::Otp) && *who == "unverified" {
                    // As in PocketBase, a correct code proves the address before the
                    // auth rule is asked: eve is now verified with a random password.
                    // Put her back for the next rule.
                    w.su(
                        Method::PATCH,
                        "/api/collections/people/records/ueve00000000000",
                        json!({"verified": false, "password": PASSWORD, "passwordConfirm": PASSWORD}),
                    )
                    .await;
                    w.su(
                        Method::PATCH,
                        "/api/collections/people",
                        json!({"authRule": ""}),
                    )
                    .await;
                    refresh_tokens[user] = login(&w.app, "people", email).await;
                    w.su(
                        Method::PATCH,
                        "/api/collections/people",
                        json!({ "authRule": rule.clone() }),
                    )
                    .await;
                }
            }
        }
    }

    cells.finish("authRule");
}
