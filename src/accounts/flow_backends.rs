//! The record-changing account flows answer the same on SQLite and on
//! PostgreSQL: verification, password reset, email change and OTP, each
//! token or code tried twice, across collections, forged, expired and
//! guessed; then the same token spent by two confirms at once finishes
//! exactly one on each engine (the row is locked and its tokenKey checked
//! inside the write).

use super::backends::{
    ALICE, ALICE_PW, BOB, DAVE, Engine, postgres_db, refusal, runtime, sqlite_db,
};
use super::{email_change, otp, password_reset, verification};
use crate::auth::throttle::LoginThrottle;
use crate::auth::{AuthError, token};
use crate::rules::SqlValue;
use futures_util::future::join_all;
use serde_json::{Map, Value, json};

fn answer(result: Result<String, AuthError>, what: &str) -> Value {
    match result {
        Ok(id) => json!({"ok": id}),
        Err(e) => refusal(e, what),
    }
}

impl Engine {
    async fn reset_token(&self, email: &str) -> String {
        let members = self.collection("members");
        password_reset::request_password_reset(&self.db, members, email)
            .await
            .expect("request")
            .expect("an account")
            .token
    }

    async fn confirm_reset(&self, raw: &str, password: &str) -> Value {
        let result = password_reset::confirm_password_reset(
            self.backend(),
            self.collection("members"),
            raw,
            password,
            password,
        )
        .await;
        answer(result, "confirm reset")
    }

    async fn confirm_email(&self, raw: &str, password: &str) -> Value {
        let result = email_change::confirm_email_change(
            self.backend(),
            self.collection("members"),
            raw,
            password,
        )
        .await;
        answer(result, "confirm email change")
    }

    async fn verify(&self, collection: &str, raw: &str) -> Value {
        let result =
            verification::confirm_verification(self.backend(), self.collection(collection), raw)
                .await;
        answer(result, "confirm verification")
    }

    /// Requests a code for `email`; (otp id, code).
    async fn otp(&self, email: &str) -> (String, String) {
        let issued = otp::request_otp(&self.db, None, self.collection("members"), email)
            .await
            .expect("request otp");
        let code = issued.delivery.map(|(_, code, _)| code).unwrap_or_default();
        (issued.otp_id, code)
    }

    async fn use_otp(&self, throttle: &LoginThrottle, otp_id: &str, code: &str) -> Value {
        let members = self.collection("members");
        let checked = otp::check_otp(&self.db, throttle, members, otp_id, code).await;
        let result = match checked {
            Ok(checked) => otp::use_otp(self.backend(), None, checked).await,
            Err(e) => Err(e),
        };
        answer(result, "otp")
    }

    pub(super) async fn row(&self, id: &str) -> Value {
        let sql = "SELECT email, verified FROM members WHERE id = ?1";
        json!(self.texts(sql, vec![SqlValue::Text(id.into())]).await)
    }

    /// The flows script: every answer, labelled.
    async fn flows(&self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        let mut step = |label: &str, v: Value| out.push((label.to_owned(), v));
        let members = self.collection("members");

        // Verification.
        for email in [
            "bob@example.com",
            "alice@example.com",
            "zed@example.com",
            "no\0@x.io",
        ] {
            let asked = verification::request_verification(&self.db, members.clone(), email)
                .await
                .map(|o| json!(o.map(|o| [o.to, o.record_id])));
            let asked = asked.unwrap_or_else(|e| refusal(e, "request verification"));
            step(&format!("request verification {email:?}"), asked);
        }
        let bad = verification::request_verification(&self.db, members.clone(), "not-mail").await;
        step(
            "request verification of a non-address",
            refusal(bad.expect_err("bad"), "bad"),
        );
        let bob = verification::request_verification(&self.db, members.clone(), "bob@example.com")
            .await
            .expect("request")
            .expect("bob")
            .token;
        step("verify bob in users", self.verify("users", &bob).await);
        step("verify bob", self.verify("members", &bob).await);
        step("verify bob again", self.verify("members", &bob).await);
        step("bob's row", self.row(BOB).await);

        // Password reset.
        let reset = self.reset_token("alice@example.com").await;
        step(
            "reset as verification",
            self.verify("members", &reset).await,
        );
        let forged = token::issue_purpose(
            token::Purpose::PasswordReset,
            &members.id,
            ALICE,
            Map::from_iter([("email".to_owned(), json!("alice@example.com"))]),
            "not-the-key",
            600,
        )
        .expect("token");
        step(
            "a forged reset",
            self.confirm_reset(&forged, "forged-pass-1").await,
        );
        step("reset too short", self.confirm_reset(&reset, "short").await);
        step(
            "reset",
            self.confirm_reset(&reset, "alice-password-3").await,
        );
        step(
            "reset again",
            self.confirm_reset(&reset, "alice-password-4").await,
        );
        step(
            "old password",
            self.login("alice@example.com", ALICE_PW, None).await,
        );
        step(
            "reset password",
            self.login("alice@example.com", "alice-password-3", None)
                .await,
        );

        // Email change.
        let change = email_change::request_email_change(
            &self.db,
            members.clone(),
            ALICE.into(),
            "alice2@example.com",
        )
        .await
        .expect("request email change")
        .token;
        step(
            "change, wrong password",
            self.confirm_email(&change, "nope-nope-1").await,
        );
        step(
            "change",
            self.confirm_email(&change, "alice-password-3").await,
        );
        step(
            "change again",
            self.confirm_email(&change, "alice-password-3").await,
        );
        step("alice's row", self.row(ALICE).await);
        let taken = email_change::request_email_change(
            &self.db,
            members.clone(),
            BOB.into(),
            "alice2@example.com",
        )
        .await;
        let taken = taken.map(|o| json!(o.to));
        step(
            "change to a taken address",
            taken.unwrap_or_else(|e| refusal(e, "taken")),
        );

        // OTP: wrong codes count, a code works once, expiry, unknown ids.
        let throttle = LoginThrottle::default();
        let (id, code) = self.otp("dave@example.com").await;
        step(
            "otp wrong code",
            self.use_otp(&throttle, &id, "000000x").await,
        );
        step(
            "otp unknown id",
            self.use_otp(&throttle, "nope", &code).await,
        );
        step("otp NUL id", self.use_otp(&throttle, "no\0pe", &code).await);
        step("otp", self.use_otp(&throttle, &id, &code).await);
        step("otp again", self.use_otp(&throttle, &id, &code).await);
        step("dave verified by the otp", self.row(DAVE).await);
        let (unknown, none) = self.otp("zed@example.com").await;
        step(
            "otp for nobody",
            self.use_otp(&throttle, &unknown, &none).await,
        );
        let (old, code) = self.otp("dave@example.com").await;
        self.execute(
            "UPDATE _otps SET created = '2020-01-01 00:00:00.000Z' WHERE id = ?1",
            vec![SqlValue::Text(old.clone())],
        )
        .await;
        step("otp expired", self.use_otp(&throttle, &old, &code).await);
        let (id, code) = self.otp("bob@example.com").await;
        for n in 0..5 {
            step(
                &format!("otp guess {n}"),
                self.use_otp(&throttle, &id, "999999").await,
            );
        }
        step(
            "otp after the guesses",
            self.use_otp(&throttle, &id, &code).await,
        );
        out
    }
}

#[test]
fn flows_answer_the_same_on_both_engines() {
    let rt = runtime();
    let (_dir, db) = sqlite_db();
    let on_sqlite = rt.block_on(async { Engine::setup(db).await.flows().await });
    let get = |label: &str| {
        on_sqlite
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no answer for {label}"))
    };
    let bad_token = get("verify bob in users");
    assert!(bad_token.to_string().contains("token"), "{bad_token}");
    let invalid_otp = json!({"error": "invalid or expired OTP"});
    for (label, want) in [
        (
            "request verification \"bob@example.com\"",
            json!(["bob@example.com", BOB]),
        ),
        ("request verification \"alice@example.com\"", Value::Null),
        ("request verification \"zed@example.com\"", Value::Null),
        ("verify bob", json!({"ok": BOB})),
        ("verify bob again", json!({"ok": BOB})),
        ("bob's row", json!(["bob@example.com", "Integer(1)"])),
        ("reset as verification", bad_token.clone()),
        ("a forged reset", bad_token.clone()),
        ("reset", json!({"ok": ALICE})),
        ("reset again", bad_token.clone()),
        ("reset password", json!({"ok": ALICE})),
        (
            "old password",
            json!({"error": "wrong identity or password"}),
        ),
        ("change", json!({"ok": ALICE})),
        ("change again", bad_token.clone()),
        ("alice's row", json!(["alice2@example.com", "Integer(1)"])),
        ("otp wrong code", invalid_otp.clone()),
        ("otp unknown id", invalid_otp.clone()),
        ("otp", json!({"ok": DAVE})),
        ("otp again", invalid_otp.clone()),
        (
            "dave verified by the otp",
            json!(["dave@example.com", "Integer(1)"]),
        ),
        ("otp expired", invalid_otp.clone()),
        (
            "otp after the guesses",
            json!({"error": "too many OTP attempts for this record"}),
        ),
    ] {
        assert_eq!(get(label), want, "SQLite: {label}");
    }
    let Some((_schema, db)) = postgres_db() else {
        return;
    };
    let on_postgres = rt.block_on(async { Engine::setup(db).await.flows().await });
    assert_eq!(on_sqlite.len(), on_postgres.len());
    for ((label, want), (_, got)) in on_sqlite.iter().zip(&on_postgres) {
        assert_eq!(got, want, "PostgreSQL differs from SQLite at {label:?}");
    }
}

/// One reset token and one OTP, each spent by two requests at once: exactly
/// one of each pair finishes.
async fn spent_once(engine: &Engine) {
    let throttle = LoginThrottle::default();
    for round in 0..6 {
        let reset = engine.reset_token("bob@example.com").await;
        let password = format!("bob-password-{round}x");
        let tries = (0..2).map(|_| engine.confirm_reset(&reset, &password));
        let answers = join_all(tries).await;
        let done = answers.iter().filter(|a| a.get("ok").is_some()).count();
        assert_eq!(done, 1, "reset round {round}: {answers:?}");

        let (id, code) = engine.otp("bob@example.com").await;
        let tries = (0..2).map(|_| engine.use_otp(&throttle, &id, &code));
        let answers = join_all(tries).await;
        let done = answers.iter().filter(|a| a.get("ok").is_some()).count();
        assert_eq!(done, 1, "otp round {round}: {answers:?}");
    }
}

#[test]
fn a_token_or_code_spent_twice_at_once_finishes_once_on_sqlite() {
    let rt = runtime();
    let (_dir, db) = sqlite_db();
    rt.block_on(async { spent_once(&Engine::setup(db).await).await });
}

#[test]
fn a_token_or_code_spent_twice_at_once_finishes_once_on_postgres() {
    let rt = runtime();
    let Some((_schema, db)) = postgres_db() else {
        return;
    };
    rt.block_on(async { spent_once(&Engine::setup(db).await).await });
}

/// Hooks that want every write (and must never be run here).
struct EveryHook;

impl crate::records::WriteHooks for EveryHook {
    fn wants(&self, _: &str, _: &crate::schema::CompiledCollection) -> bool {
        true
    }

    fn session_limit(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }

    fn run<'a>(
        &'a self,
        _: crate::records::hooked::Invocation<'a>,
    ) -> futures_util::future::LocalBoxFuture<'a, Result<(), crate::records::RecordError>> {
        Box::pin(async { Err(crate::records::RecordError::Aborted) })
    }

    fn shared(&self) -> std::sync::Arc<dyn crate::records::WriteHooks> {
        std::sync::Arc::new(EveryHook)
    }
}

/// A confirm or an OAuth2 link whose collection has model hooks runs
/// inside them on either engine: hooks that refuse the write roll the whole
/// flow back (the token still unspent, no row or tokenKey changed).
async fn refused_by_hooks(engine: &Engine) {
    let before = engine.row(ALICE).await;
    let keys = "SELECT \"tokenKey\" FROM members ORDER BY id";
    let key_before = engine.texts(keys, vec![]).await;
    let reset = engine.reset_token("alice@example.com").await;
    let hooks = EveryHook;
    let backend = crate::records::Backend {
        hooks: Some(&hooks),
        ..engine.backend()
    };
    let members = engine.collection("members");
    let refused = password_reset::confirm_password_reset(
        backend,
        members.clone(),
        &reset,
        "alice-password-9",
        "alice-password-9",
    )
    .await;
    assert!(format!("{refused:?}").contains("Aborted"), "{refused:?}");
    let bob = verification::request_verification(&engine.db, members.clone(), "bob@example.com")
        .await
        .expect("request")
        .expect("bob")
        .token;
    let refused = verification::confirm_verification(backend, members, &bob).await;
    assert!(format!("{refused:?}").contains("Aborted"), "{refused:?}");
    let user = crate::auth::oauth2::OAuth2User {
        id: "g-1".into(),
        email: "bob@example.com".into(),
        ..Default::default()
    };
    let snapshot = engine.registry.snapshot();
    let members = engine.collection("members");
    let refused =
        super::oauth2::link_existing(backend, snapshot, &members, "google", &user, BOB, false)
            .await;
    assert!(
        matches!(refused, Err(crate::records::RecordError::Aborted)),
        "{refused:?}"
    );
    assert_eq!(engine.row(ALICE).await, before);
    assert_eq!(
        engine.row(BOB).await,
        json!(["bob@example.com", "Integer(0)"])
    );
    assert_eq!(
        engine.texts(keys, vec![]).await,
        key_before,
        "no tokenKey rotated"
    );
    assert_eq!(
        engine.confirm_reset(&reset, "alice-password-9").await,
        json!({"ok": ALICE})
    );
}

#[test]
fn flows_refused_by_model_hooks_roll_back_on_sqlite() {
    let rt = runtime();
    let (_dir, db) = sqlite_db();
    rt.block_on(async { refused_by_hooks(&Engine::setup(db).await).await });
}

#[test]
fn flows_refused_by_model_hooks_roll_back_on_postgres() {
    let rt = runtime();
    let Some((_schema, db)) = postgres_db() else {
        return;
    };
    rt.block_on(async { refused_by_hooks(&Engine::setup(db).await).await });
}
