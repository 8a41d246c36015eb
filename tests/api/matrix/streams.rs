//! Realtime and protected-file cells of the matrix. Realtime: re-subscribing
//! (an empty or different topic set, another token, no token, a guest
//! upgrading), subscription `?options=` (`expand`, `fields`, a smuggled
//! `Authorization` header) and mid-stream revocation (password changed by a
//! superuser or by the owner, record deleted; a harmless change as control),
//! each × create, update and delete events of records the actor may or may
//! not view. Files: file tokens of every signed-in actor on every item's
//! protected file under every view-rule shape, an expired file token, and the
//! file token of a deleted user.

use super::{
    ALICE, Actor, Answer, BOB, CAROL, Cells, ITEMS, PASSWORD, Persona, RECORDS, Stream, World,
    file_marker, forbidden_for, login, marker, shapes, world,
};
use crate::helpers::status_json;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const MEMBERS_RULE: &str = "members.id ?= @request.auth.id";

/// Records created, updated and deleted while the streams listen, with
/// their members.
const R_ALICE: &str = "rsalice00000000";
const R_BOB: &str = "rsbob0000000000";
const R_NOBODY: &str = "rsnobody0000000";

fn options_topic(options: Value) -> String {
    let raw = options.to_string();
    let encoded: String = raw
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("items/*?options={encoded}")
}

async fn subscribe(w: &World, client_id: &str, topics: &[&str], token: Option<&str>) -> Answer {
    let body = json!({"clientId": client_id, "subscriptions": topics});
    let resp = w
        .app
        .request(Method::POST, "/api/realtime", token, Some(body))
        .await;
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer { status, text, json }
}

/// Creates, updates and deletes the three records as the superuser.
async fn churn(w: &World) {
    for (id, members, owner, team) in [
        (R_ALICE, vec![ALICE], BOB, "ttwo00000000000"),
        (R_BOB, vec![BOB], BOB, ""),
        (R_NOBODY, vec![], CAROL, "tone00000000000"),
    ] {
        w.app
            .create_record_ok(
                "items",
                json!({"id": id, "secret": marker(id), "members": members, "owner": owner, "team": team}),
            )
            .await;
    }
    for id in [R_ALICE, R_BOB, R_NOBODY] {
        w.su(
            Method::PATCH,
            &format!("{RECORDS}/{id}"),
            json!({"secret": format!("{}-updated", marker(id))}),
        )
        .await;
    }
    for id in [R_ALICE, R_BOB, R_NOBODY] {
        let resp = w.app.delete_record("items", id).await;
        assert_eq!(resp.status(), 204, "delete {id}");
    }
}

/// The events of `stream` naming `id`, as (action, record) pairs.
fn events_for(stream: &Stream, id: &str) -> Vec<(String, Value)> {
    stream
        .text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .filter(|v| v["record"]["id"] == id)
        .map(|v| (v["action"].as_str().unwrap_or_default().to_owned(), v))
        .collect()
}

/// A second subscription request: (token, topics, expected status).
type Second = Option<(Option<String>, Vec<String>, u16)>;
/// (name, first token, first topics, second request, records it hears, whose rights).
type Resubscribe = (
    &'static str,
    Option<String>,
    Vec<String>,
    Second,
    Vec<&'static str>,
    Persona,
);

/// One stream under test and the records it must (and only may) hear about.
struct Listener {
    name: &'static str,
    stream: Stream,
    hears: Vec<&'static str>,
    /// Whose hidden values it must never receive.
    persona: Persona,
}

#[tokio::test]
async fn resubscribing_and_subscription_options_never_widen_what_a_stream_delivers() {
    let w = world().await;
    super::wait_for_expiry(&w).await;
    w.set_item_rules(MEMBERS_RULE).await;
    let alice = w.token(Actor::Alice).map(str::to_owned);
    let bob = w.token(Actor::Bob).map(str::to_owned);
    let su = Some(w.app.superuser_token.clone());
    let mut cells = Cells::default();
    let mut listeners = Vec::new();
    let items = ["items/*"];

    let expand = options_topic(json!({"query": {
        "expand": "owner,members,team,grants_via_item,team.members",
        "fields": "id,secret,members,expand.owner.marker,expand.owner.email,expand.members.marker,expand.team.marker,expand.grants_via_item.marker,expand.team.expand.members.marker"
    }}));
    let smuggled = options_topic(
        json!({"headers": {"Authorization": w.app.superuser_token.clone()}, "query": {"expand": "owner,members"}}),
    );
    let filtered = options_topic(json!({"query": {"filter": "id != ''"}}));
    let rows: Vec<Resubscribe> = vec![
        (
            "alice, once (control)",
            alice.clone(),
            vec![items[0].into()],
            None,
            vec![R_ALICE],
            Persona::Alice,
        ),
        (
            "alice, then an empty set",
            alice.clone(),
            vec![items[0].into()],
            Some((alice.clone(), vec![], 204)),
            vec![],
            Persona::Alice,
        ),
        (
            "alice, then teams only",
            alice.clone(),
            vec![items[0].into()],
            Some((alice.clone(), vec!["teams/*".into()], 204)),
            vec![],
            Persona::Alice,
        ),
        (
            "alice, then bob's token",
            alice.clone(),
            vec![items[0].into()],
            Some((bob.clone(), vec![items[0].into()], 403)),
            vec![R_ALICE],
            Persona::Alice,
        ),
        (
            "alice, then the superuser's token",
            alice.clone(),
            vec![items[0].into()],
            Some((su.clone(), vec![items[0].into()], 403)),
            vec![R_ALICE],
            Persona::Alice,
        ),
        (
            "alice, then no token",
            alice.clone(),
            vec![items[0].into()],
            Some((None, vec![items[0].into()], 403)),
            vec![R_ALICE],
            Persona::Alice,
        ),
        (
            "guest, then alice (upgrade)",
            None,
            vec![items[0].into()],
            Some((alice.clone(), vec![items[0].into()], 204)),
            vec![R_ALICE],
            Persona::Alice,
        ),
        (
            "guest",
            None,
            vec![items[0].into()],
            None,
            vec![],
            Persona::Guest,
        ),
        (
            "bob",
            bob.clone(),
            vec![items[0].into()],
            None,
            vec![R_BOB],
            Persona::Bob,
        ),
        (
            "alice with expand and fields",
            alice.clone(),
            vec![expand.clone()],
            None,
            vec![R_ALICE],
            Persona::Alice,
        ),
        (
            "guest with the superuser's Authorization in options",
            None,
            vec![smuggled.clone()],
            None,
            vec![],
            Persona::Guest,
        ),
        (
            "alice with the superuser's Authorization in options",
            alice.clone(),
            vec![smuggled.clone()],
            None,
            vec![R_ALICE],
            Persona::Alice,
        ),
        (
            "bob with a filter in options",
            bob.clone(),
            vec![filtered.clone()],
            None,
            vec![R_BOB],
            Persona::Bob,
        ),
        (
            "alice, per record topics",
            alice.clone(),
            vec![
                format!("items/{R_ALICE}"),
                format!("items/{R_BOB}"),
                format!("items/{R_NOBODY}"),
            ],
            None,
            vec![R_ALICE],
            Persona::Alice,
        ),
    ];
    for (name, first, topics, second, hears, persona) in rows {
        let (stream, client_id) = Stream::open(&w).await;
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        let a = subscribe(&w, &client_id, &topics, first.as_deref()).await;
        cells.check(a.status == 204, || {
            format!("[resubscribe {name}] first: {} {}", a.status, a.text)
        });
        if let Some((token, topics, want)) = second {
            let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
            let a = subscribe(&w, &client_id, &topics, token.as_deref()).await;
            cells.check(a.status == want, || {
                format!(
                    "[resubscribe {name}] second: want {want}: {} {}",
                    a.status, a.text
                )
            });
        }
        listeners.push(Listener {
            name,
            stream,
            hears,
            persona,
        });
    }

    churn(&w).await;
    check_listeners(listeners, &mut cells).await;
    cells.finish("realtime re-subscribe and options");
}

async fn check_listeners(listeners: Vec<Listener>, cells: &mut Cells) {
    let mut wait = Duration::from_secs(2);
    for mut l in listeners {
        l.stream.read_for(wait).await;
        wait = Duration::from_millis(200);
        for id in [R_ALICE, R_BOB, R_NOBODY] {
            let events = events_for(&l.stream, id);
            let actions: Vec<&str> = events.iter().map(|(a, _)| a.as_str()).collect();
            let c = format!("[realtime {}] {id}", l.name);
            if l.hears.contains(&id) {
                cells.check(actions == ["create", "update", "delete"], || {
                    format!(
                        "{c}: want create, update, delete; got {actions:?}: {}",
                        l.stream.text
                    )
                });
            } else {
                cells.check(actions.is_empty(), || {
                    format!("{c}: must hear nothing; got {actions:?}")
                });
                cells.check(!l.stream.text.contains(id), || {
                    format!("{c}: the id leaks: {}", l.stream.text)
                });
            }
        }
        if l.name.contains("expand") {
            // The expansion works (alice may see herself), so its silence elsewhere means something.
            cells.check(l.stream.text.contains(&marker(ALICE)), || {
                format!("[realtime {}] expand.members: {}", l.name, l.stream.text)
            });
        }
        // Hidden values of the world (other people, teams, grants) never
        // travel in an event, expanded or not.
        let mut forbidden = forbidden_for(l.persona, &[]);
        forbidden.retain(|s| !ITEMS.iter().any(|i| s.contains(i)));
        if l.persona != Persona::Super {
            for other in ["bob@example.com", "carol@example.com"] {
                if !(l.persona == Persona::Bob && other.starts_with("bob")) {
                    forbidden.push(other.to_owned());
                }
            }
        }
        let answer = Answer {
            status: 200,
            text: l.stream.text.clone(),
            json: Value::Null,
        };
        cells.no_leak(
            &answer,
            &forbidden,
            &format!("[realtime {}] stream", l.name),
        );
    }
}

#[tokio::test]
async fn a_stream_stops_delivering_when_its_account_is_revoked_mid_stream() {
    let w = world().await;
    w.set_item_rules(MEMBERS_RULE).await;
    let mut cells = Cells::default();
    // Fresh accounts so the world's own tokens stay intact.
    let accounts = [
        ("urvpwsu00000000", "password changed by a superuser", true),
        ("urvpwown0000000", "password changed by the owner", true),
        ("urvdel000000000", "record deleted", true),
        (
            "urvkeep00000000",
            "an unrelated field changed (control)",
            false,
        ),
    ];
    let mut listeners = Vec::new();
    for (id, name, _) in accounts {
        let email = format!("{id}@example.com");
        w.app
            .create_record_ok(
                "people",
                json!({"id": id, "email": email, "password": PASSWORD, "passwordConfirm": PASSWORD, "verified": true}),
            )
            .await;
        let token = login(&w.app, "people", &email).await;
        let (stream, client_id) = Stream::open(&w).await;
        let a = subscribe(&w, &client_id, &["items/*"], Some(&token)).await;
        cells.check(a.status == 204, || {
            format!("[revoke {name}] subscribe: {}", a.text)
        });
        listeners.push((id, name, token, stream));
    }
    // Prove the streams work before revoking.
    w.app
        .create_record_ok(
            "items",
            json!({"id": "rvbefore0000000", "secret": marker("rvbefore0000000"), "members": accounts.map(|a| a.0)}),
        )
        .await;
    let new_password = "revoked-pass-789";
    let (status, body) = status_json(
        w.app
            .update_record(
                "people",
                accounts[0].0,
                json!({"password": new_password, "passwordConfirm": new_password}),
            )
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = status_json(
        w.app
            .request(
                Method::PATCH,
                &format!("/api/collections/people/records/{}", accounts[1].0),
                Some(&listeners[1].2),
                Some(json!({"oldPassword": PASSWORD, "password": new_password, "passwordConfirm": new_password})),
            )
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Nothing references the account any more, so it can go.
    w.su(
        Method::PATCH,
        "/api/collections/items/records/rvbefore0000000",
        json!({"members": [accounts[0].0, accounts[1].0, accounts[3].0]}),
    )
    .await;
    let resp = w.app.delete_record("people", accounts[2].0).await;
    assert_eq!(resp.status(), 204, "delete the account");
    w.su(
        Method::PATCH,
        &format!("/api/collections/people/records/{}", accounts[3].0),
        json!({"marker": "harmless"}),
    )
    .await;
    let after = "rvafter00000000";
    w.app
        .create_record_ok(
            "items",
            json!({"id": after, "secret": marker(after), "members": [accounts[0].0, accounts[1].0, accounts[3].0]}),
        )
        .await;

    let mut wait = Duration::from_secs(2);
    for ((_, name, revoked), (_, _, _, mut stream)) in accounts.iter().zip(listeners) {
        stream.read_for(wait).await;
        wait = Duration::from_millis(200);
        cells.check(stream.text.contains(&marker("rvbefore0000000")), || {
            format!("[revoke {name}] the stream worked before: {}", stream.text)
        });
        let got = stream.text.contains(&marker(after));
        cells.check(got != *revoked, || {
            format!("[revoke {name}] delivery after: got {got}: {}", stream.text)
        });
    }
    cells.finish("realtime revocation");
}

async fn upload_docs(w: &World) -> Vec<(String, String)> {
    let token = w.app.superuser_token.clone();
    let mut urls = Vec::new();
    for id in ITEMS {
        let form = reqwest::multipart::Form::new().part(
            "doc",
            reqwest::multipart::Part::bytes(file_marker(id).into_bytes()).file_name("doc.txt"),
        );
        let (status, body) = status_json(
            w.app
                .send_form(
                    Method::PATCH,
                    &format!("{RECORDS}/{id}"),
                    Some(&token),
                    form,
                )
                .await,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let url = format!(
            "/api/files/{}/{id}/{}",
            body["collectionId"].as_str().unwrap_or_default(),
            body["doc"].as_str().unwrap_or_default()
        );
        urls.push((id.to_owned(), url));
    }
    urls
}

async fn file_token_of(w: &World, token: &str) -> String {
    let (status, body) = status_json(
        w.app
            .request(Method::POST, "/api/files/token", Some(token), None)
            .await,
    )
    .await;
    assert_eq!(status, 200, "file token: {body}");
    body["token"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn file_tokens_open_exactly_the_protected_files_each_view_rule_shape_admits() {
    let w = world().await;
    let urls = upload_docs(&w).await;
    let signed_in = [
        Actor::Alice,
        Actor::Bob,
        Actor::Manager,
        Actor::Staff,
        Actor::Super,
        Actor::Impersonated,
    ];
    let mut tokens = Vec::new();
    for actor in signed_in {
        let token = w.token(actor).expect("token").to_owned();
        tokens.push((actor, file_token_of(&w, &token).await));
    }
    let mut cells = Cells::default();

    for shape in shapes() {
        w.set_item_rules(shape.rule).await;
        for (actor, file_token) in &tokens {
            let visible = (shape.visible)(actor.persona());
            for (id, url) in &urls {
                let a = w
                    .call(
                        Actor::Guest,
                        Method::GET,
                        &format!("{url}?token={file_token}"),
                        None,
                    )
                    .await;
                let c = format!("[files {}] {actor:?} {id}", shape.name);
                if visible.contains(&id.as_str()) {
                    cells.check(a.status == 200 && a.text == file_marker(id), || {
                        format!("{c}: {} {}", a.status, a.text)
                    });
                } else {
                    cells.check(a.status == 404 && !a.text.contains("SECRET"), || {
                        format!("{c}: {} {}", a.status, a.text)
                    });
                }
            }
        }
    }

    // A user whose rights come from a field: its file token works, then the
    // user is deleted and the same token opens nothing.
    w.set_item_rules("@request.auth.role = 'manager'").await;
    w.app
        .create_record_ok(
            "people",
            json!({"id": "ugone0000000000", "email": "gone@example.com", "password": PASSWORD,
                   "passwordConfirm": PASSWORD, "role": "manager"}),
        )
        .await;
    let gone = login(&w.app, "people", "gone@example.com").await;
    let gone_file = file_token_of(&w, &gone).await;
    // An expired file token: people's file tokens live one second.
    w.su(
        Method::PATCH,
        "/api/collections/people",
        json!({"fileToken": {"duration": 1}}),
    )
    .await;
    let manager = w.token(Actor::Manager).expect("manager").to_owned();
    let short = file_token_of(&w, &manager).await;
    let issued = Instant::now();
    let (id, url) = &urls[0];
    for (token, what) in [
        (&gone_file, "deleted user's, before"),
        (&short, "short, fresh"),
    ] {
        let a = w
            .call(
                Actor::Guest,
                Method::GET,
                &format!("{url}?token={token}"),
                None,
            )
            .await;
        cells.check(a.status == 200 && a.text == file_marker(id), || {
            format!("[files {what}] {} {}", a.status, a.text)
        });
    }
    let resp = w.app.delete_record("people", "ugone0000000000").await;
    assert_eq!(resp.status(), 204);
    tokio::time::sleep(Duration::from_millis(2100).saturating_sub(issued.elapsed())).await;
    for (token, what) in [(&gone_file, "deleted user's, after"), (&short, "expired")] {
        for (id, url) in &urls {
            let a = w
                .call(
                    Actor::Guest,
                    Method::GET,
                    &format!("{url}?token={token}"),
                    None,
                )
                .await;
            cells.check(a.status == 404 && !a.text.contains("SECRET"), || {
                format!("[files {what}] {id}: {} {}", a.status, a.text)
            });
        }
    }

    cells.finish("protected files");
}
