//! OAuth2 linking and sign-up answer the same on SQLite and on PostgreSQL
//! (the provider's answer made up): lookups by provider id and email,
//! replacement passwords, links to an unverified record and to the
//! caller's own, and two sign-ups with one address.

use super::backends::{ALICE, ALICE_PW, BOB, Engine, postgres_db, runtime, sqlite_db};
use serde_json::{Map, Value, json};

impl Engine {
    /// The OAuth2 script (the provider's answer made up): every answer,
    /// labelled.
    async fn oauth2(&self) -> Vec<(String, Value)> {
        use super::oauth2::{
            link_existing, linked_record, record_by_email, replacement_password, sign_up,
            signup_body,
        };
        let mut out = Vec::new();
        let mut step = |label: &str, v: Value| out.push((label.to_owned(), v));
        let members = self.collection("members");
        let db = &self.db;
        let google = |id: &str, email: &str| crate::auth::oauth2::OAuth2User {
            id: id.into(),
            email: email.into(),
            ..Default::default()
        };
        let linked = |id: &'static str| linked_record(db, members.id.clone(), "google", id.into());
        step("no link yet", json!(linked("g-1").await.expect("read")));
        let by_email = record_by_email(db, &members, "bob@example.com".into()).await;
        step("bob by email", json!(by_email.expect("read")));
        let by_email = record_by_email(db, &members, "b\0b@example.com".into()).await;
        step("NUL email", json!(by_email.expect("read")));
        for (id, caller) in [(BOB, false), (BOB, true), (ALICE, false)] {
            let hash = replacement_password(db, &members, id, caller).await;
            step(
                &format!("new password for {id} ({caller})"),
                json!(hash.expect("read").is_some()),
            );
        }
        let snapshot = self.registry.snapshot();
        let hash = replacement_password(db, &members, BOB, false)
            .await
            .expect("hash");
        assert!(hash.is_some());
        let user = google("g-1", "bob@example.com");
        let done = link_existing(
            self.backend(),
            snapshot.clone(),
            &members,
            "google",
            &user,
            BOB,
            false,
        )
        .await;
        step("link bob", json!(done.map_err(|e| e.to_string())));
        step("bob's row after the link", self.row(BOB).await);
        step(
            "bob's old password",
            self.login("bob@example.com", ALICE_PW, None).await,
        );
        step("bob linked", json!(linked("g-1").await.expect("read")));
        let user = google("g-2", "other@example.com");
        let done = link_existing(
            self.backend(),
            snapshot.clone(),
            &members,
            "google",
            &user,
            ALICE,
            true,
        )
        .await;
        step("link alice", json!(done.map_err(|e| e.to_string())));
        step("alice's row after the link", self.row(ALICE).await);
        for (n, provider_id) in ["g-3", "g-4"].into_iter().enumerate() {
            let user = google(provider_id, "new@example.com");
            let body = signup_body(&members, Map::new(), &user);
            let guest = crate::records::Caller {
                method: "POST".into(),
                context: "oauth2",
                ..Default::default()
            };
            let created = sign_up(
                self.backend(),
                snapshot.clone(),
                &members,
                "google",
                &user,
                guest,
                body,
                vec![],
            )
            .await;
            let id = created.as_ref().ok().cloned();
            step(
                &format!("sign-up {n}"),
                json!(created.map(|_| "ok").map_err(|e| e.to_string())),
            );
            let link = linked(provider_id).await.expect("read");
            step(
                &format!("sign-up {n} linked"),
                json!(link.is_some() && link == id),
            );
        }
        let rows = "SELECT email, verified FROM members WHERE email = 'new@example.com'";
        step("the signed-up row", json!(self.texts(rows, vec![]).await));
        let links =
            "SELECT provider, \"providerId\" FROM \"_externalAuths\" ORDER BY \"providerId\"";
        step("links", json!(self.texts(links, vec![]).await));
        out
    }
}

/// OAuth2 linking and sign-up answer the same on both engines.
#[test]
fn oauth2_answers_the_same_on_both_engines() {
    let rt = runtime();
    let (_dir, db) = sqlite_db();
    let on_sqlite = rt.block_on(async { Engine::setup(db).await.oauth2().await });
    let get = |label: &str| {
        on_sqlite
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no answer for {label}"))
    };
    for (label, want) in [
        ("bob by email", json!(BOB)),
        ("link bob", json!({"Ok": null})),
        (
            "bob's row after the link",
            json!(["bob@example.com", "Integer(1)"]),
        ),
        (
            "bob's old password",
            json!({"error": "wrong identity or password"}),
        ),
        ("bob linked", json!(BOB)),
        ("sign-up 0", json!({"Ok": "ok"})),
        ("sign-up 0 linked", json!(true)),
        (
            "the signed-up row",
            json!(["new@example.com", "Integer(1)"]),
        ),
    ] {
        assert_eq!(get(label), want, "SQLite: {label}");
    }
    let Some((_schema, db)) = postgres_db() else {
        return;
    };
    let on_postgres = rt.block_on(async { Engine::setup(db).await.oauth2().await });
    assert_eq!(on_sqlite.len(), on_postgres.len());
    for ((label, want), (_, got)) in on_sqlite.iter().zip(&on_postgres) {
        assert_eq!(got, want, "PostgreSQL differs from SQLite at {label:?}");
    }
}
