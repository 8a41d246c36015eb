//! The adversarial access matrix (issue 14, "Prove it"): one world of people,
//! teams, grants and items, a table of rule shapes with the visible item ids
//! per actor written out by hand, and loops over every channel a client can
//! read or write through. Each cell asserts allow or deny, that a hidden
//! record answers exactly like a missing one, and that no hidden id or
//! `SECRET-…` marker appears anywhere in any response body.

mod accounts;
mod guards;
mod streams;
mod tokens;

use crate::helpers::{TestApp, spawn_app, status_json};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const PASSWORD: &str = "matrix-pass-123";
const NEW_PASSWORD: &str = "matrix-pass-456";

const ALICE: &str = "ualice000000000";
const BOB: &str = "ubob00000000000";
const CAROL: &str = "ucarol000000000";
const MANAGER: &str = "umgr00000000000";
const SAM: &str = "ssam00000000000";
const PEOPLE: [&str; 4] = [ALICE, BOB, CAROL, MANAGER];

const T1: &str = "tone00000000000";
const T2: &str = "ttwo00000000000";
const T3: &str = "tthree000000000";
const TEAMS: [&str; 3] = [T1, T2, T3];

const GRANTS: [&str; 3] = ["grant1000000000", "grant2000000000", "grant3000000000"];

const I1: &str = "item10000000000";
const I2: &str = "item20000000000";
const I3: &str = "item30000000000";
const I4: &str = "item40000000000";
const I5: &str = "item50000000000";
const ITEMS: [&str; 5] = [I1, I2, I3, I4, I5];

/// An id no record has: what "missing" looks like.
const MISSING: &str = "nosuchrecord000";

/// The lifetime of the short tokens (seconds) used to make an expired token.
const SHORT_TOKEN_SECS: u64 = 1;

fn marker(id: &str) -> String {
    format!("SECRET-{id}")
}

fn file_marker(id: &str) -> String {
    format!("SECRET-FILE-{id}")
}

/// Who sends the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Actor {
    Guest,
    Alice,
    Bob,
    Manager,
    /// sam, of the second auth collection `staff`.
    Staff,
    Super,
    /// alice's token, past its `authToken.duration`.
    Expired,
    /// carol's token, taken before a superuser changed her password.
    Revoked,
    /// a token claiming alice's id, signed for bob: valid shape, wrong signature.
    Forged,
    /// a superuser's impersonation token for bob.
    Impersonated,
}

const ACTORS: [Actor; 10] = [
    Actor::Guest,
    Actor::Alice,
    Actor::Bob,
    Actor::Manager,
    Actor::Staff,
    Actor::Super,
    Actor::Expired,
    Actor::Revoked,
    Actor::Forged,
    Actor::Impersonated,
];

/// Whose rights an actor must have, decided by hand: a broken token is a
/// guest, an impersonation token is the impersonated user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Persona {
    Guest,
    Alice,
    Bob,
    Manager,
    Staff,
    Super,
}

impl Actor {
    fn persona(self) -> Persona {
        match self {
            Actor::Guest | Actor::Expired | Actor::Revoked | Actor::Forged => Persona::Guest,
            Actor::Alice => Persona::Alice,
            Actor::Bob | Actor::Impersonated => Persona::Bob,
            Actor::Manager => Persona::Manager,
            Actor::Staff => Persona::Staff,
            Actor::Super => Persona::Super,
        }
    }
}

impl Persona {
    /// Auth records this persona may see (people: `id = @request.auth.id`).
    fn own_records(self) -> Vec<&'static str> {
        match self {
            Persona::Guest => vec![],
            Persona::Alice => vec![ALICE],
            Persona::Bob => vec![BOB],
            Persona::Manager => vec![MANAGER],
            Persona::Staff => vec![SAM],
            Persona::Super => PEOPLE.iter().copied().chain([SAM]).collect(),
        }
    }

    /// Teams this persona may see (`members.id ?= @request.auth.id`).
    fn teams(self) -> Vec<&'static str> {
        match self {
            Persona::Alice => vec![T1],
            Persona::Bob => vec![T2],
            Persona::Super => TEAMS.to_vec(),
            _ => vec![],
        }
    }
}

/// One rule shape set as the list, view, update and delete rule of `items`,
/// with the items each persona may reach through it.
struct Shape {
    name: &'static str,
    rule: &'static str,
    visible: fn(Persona) -> Vec<&'static str>,
}

/// The world's data (see [`world`]):
/// item1: owner alice, members [alice],     team T1 [alice, carol], grant to alice
/// item2: owner bob,   members [bob, carol], team T2 [bob]
/// item3: owner carol, members [],           team T3 [],             grant to bob
/// item4: no owner,    members [],           no team
/// item5: owner alice, members [alice, bob], team T2 [bob],          grant to bob
fn shapes() -> Vec<Shape> {
    vec![
        Shape {
            name: "owner via single relation",
            rule: "owner = @request.auth.id",
            visible: |p| match p {
                Persona::Alice => vec![I1, I5],
                Persona::Bob => vec![I2],
                Persona::Super => ITEMS.to_vec(),
                _ => vec![],
            },
        },
        Shape {
            name: "membership via multi relation with .id",
            rule: "members.id ?= @request.auth.id",
            visible: |p| match p {
                Persona::Alice => vec![I1, I5],
                Persona::Bob => vec![I2, I5],
                Persona::Super => ITEMS.to_vec(),
                _ => vec![],
            },
        },
        Shape {
            // A bare multi relation is its JSON text (as in PocketBase): `?=` matches nobody.
            name: "membership via multi relation without .id, equality",
            rule: "members ?= @request.auth.id",
            visible: |p| match p {
                Persona::Super => ITEMS.to_vec(),
                _ => vec![],
            },
        },
        Shape {
            name: "membership via multi relation without .id, contains",
            rule: "members ~ @request.auth.id",
            visible: |p| match p {
                Persona::Alice => vec![I1, I5],
                Persona::Bob => vec![I2, I5],
                Persona::Super => ITEMS.to_vec(),
                _ => vec![],
            },
        },
        Shape {
            name: "membership through a relation of a relation",
            rule: "team.members.id ?= @request.auth.id",
            visible: |p| match p {
                Persona::Alice => vec![I1],
                Persona::Bob => vec![I2, I5],
                Persona::Super => ITEMS.to_vec(),
                _ => vec![],
            },
        },
        Shape {
            name: "back-relation membership",
            rule: "grants_via_item.user ?= @request.auth.id",
            visible: |p| match p {
                Persona::Alice => vec![I1],
                Persona::Bob => vec![I3, I5],
                Persona::Super => ITEMS.to_vec(),
                _ => vec![],
            },
        },
        Shape {
            name: "@collection join",
            rule: "@collection.grants:g.item ?= id && @collection.grants:g.user ?= @request.auth.id",
            visible: |p| match p {
                Persona::Alice => vec![I1],
                Persona::Bob => vec![I3, I5],
                Persona::Super => ITEMS.to_vec(),
                _ => vec![],
            },
        },
        Shape {
            name: "auth field of the caller",
            rule: "@request.auth.role = 'manager'",
            visible: |p| match p {
                Persona::Manager | Persona::Super => ITEMS.to_vec(),
                _ => vec![],
            },
        },
        Shape {
            name: "caller's auth collection",
            rule: "@request.auth.collectionName = 'staff'",
            visible: |p| match p {
                Persona::Staff | Persona::Super => ITEMS.to_vec(),
                _ => vec![],
            },
        },
        Shape {
            name: "owner or member, guarded against guests",
            rule: "@request.auth.id != '' && (owner = @request.auth.id || members.id ?= @request.auth.id)",
            visible: |p| match p {
                Persona::Alice => vec![I1, I5],
                Persona::Bob => vec![I2, I5],
                Persona::Super => ITEMS.to_vec(),
                _ => vec![],
            },
        },
    ]
}

/// One answer: status, raw body text (what a leak check reads) and its JSON.
struct Answer {
    status: u16,
    text: String,
    json: Value,
}

struct World {
    app: TestApp,
    alice: String,
    bob: String,
    manager: String,
    sam: String,
    expired: String,
    revoked: String,
    forged: String,
    impersonated: String,
    /// Tokens that must have expired by the time this instant has passed.
    expired_at: Instant,
}

impl World {
    fn token(&self, actor: Actor) -> Option<&str> {
        match actor {
            Actor::Guest => None,
            Actor::Alice => Some(&self.alice),
            Actor::Bob => Some(&self.bob),
            Actor::Manager => Some(&self.manager),
            Actor::Staff => Some(&self.sam),
            Actor::Super => Some(&self.app.superuser_token),
            Actor::Expired => Some(&self.expired),
            Actor::Revoked => Some(&self.revoked),
            Actor::Forged => Some(&self.forged),
            Actor::Impersonated => Some(&self.impersonated),
        }
    }

    async fn call(&self, actor: Actor, method: Method, path: &str, body: Option<Value>) -> Answer {
        let resp = self
            .app
            .request(method, path, self.token(actor), body)
            .await;
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, text, json }
    }

    async fn su(&self, method: Method, path: &str, body: Value) -> Value {
        let (status, json) = status_json(self.app.su(method, path, Some(body.clone())).await).await;
        assert!(status < 300, "superuser {path} {body}: {status} {json}");
        json
    }

    async fn set_item_rules(&self, rule: &str) {
        self.su(
            Method::PATCH,
            "/api/collections/items",
            json!({"listRule": rule, "viewRule": rule, "updateRule": rule, "deleteRule": rule}),
        )
        .await;
    }
}

async fn login(app: &TestApp, collection: &str, email: &str) -> String {
    app.login_as(collection, email, PASSWORD).await
}

/// bob's token with the payload swapped to claim alice's id (signature now wrong).
fn forge(bob_token: &str) -> String {
    let parts: Vec<&str> = bob_token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT has three parts");
    let payload = URL_SAFE_NO_PAD.decode(parts[1]).expect("base64 payload");
    let mut claims: Value = serde_json::from_slice(&payload).expect("json payload");
    assert_eq!(claims["id"], BOB, "the token's id claim: {claims}");
    claims["id"] = json!(ALICE);
    let forged = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{}.{forged}.{}", parts[0], parts[2])
}

/// Builds the world. Every record has an id chosen here and a `SECRET-<id>` marker.
async fn world() -> World {
    let app = spawn_app().await;
    let (status, body) = status_json(
        app.su(
            Method::PATCH,
            "/api/settings",
            Some(json!({"batch": {"enabled": true}})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let own = "id = @request.auth.id";
    let people = app
        .create_collection_ok(json!({
            "name": "people", "type": "auth",
            "listRule": own, "viewRule": own, "updateRule": own, "deleteRule": null,
            "createRule": null,
            "manageRule": "@request.auth.role = 'manager'",
            "authToken": {"duration": SHORT_TOKEN_SECS},
            "fields": [{"name": "role", "type": "text"}, {"name": "marker", "type": "text"}]
        }))
        .await;
    let people = people["id"].as_str().expect("id").to_owned();
    app.create_collection_ok(json!({
        "name": "staff", "type": "auth",
        "listRule": own, "viewRule": own, "createRule": null, "updateRule": null, "deleteRule": null,
        "fields": [{"name": "marker", "type": "text"}]
    }))
    .await;
    let teams = app.create_collection_ok(json!({
        "name": "teams",
        "listRule": "members.id ?= @request.auth.id", "viewRule": "members.id ?= @request.auth.id",
        "fields": [
            {"name": "marker", "type": "text"},
            {"name": "members", "type": "relation", "collectionId": people, "maxSelect": 10}
        ]
    }))
    .await;
    let teams = teams["id"].as_str().expect("id").to_owned();
    let items = app
        .create_collection_ok(json!({
            "name": "items",
            "createRule": null,
            "fields": [
                {"name": "secret", "type": "text"},
                {"name": "owner", "type": "relation", "collectionId": people, "maxSelect": 1},
                {"name": "members", "type": "relation", "collectionId": people, "maxSelect": 10},
                {"name": "team", "type": "relation", "collectionId": teams, "maxSelect": 1},
                {"name": "doc", "type": "file", "protected": true, "maxSelect": 1}
            ]
        }))
        .await;
    let items = items["id"].as_str().expect("id").to_owned();
    app.create_collection_ok(json!({
        "name": "grants",
        "fields": [
            {"name": "marker", "type": "text"},
            {"name": "item", "type": "relation", "collectionId": items, "maxSelect": 1},
            {"name": "user", "type": "relation", "collectionId": people, "maxSelect": 1}
        ]
    }))
    .await;

    app.create_collection_ok(json!({
        "name": "sentinel", "createRule": "",
        "fields": [{"name": "title", "type": "text", "required": true}],
        "indexes": ["CREATE UNIQUE INDEX idx_sentinel_title ON sentinel (title)"]
    }))
    .await;
    app.create_record_ok("sentinel", json!({"title": "taken"}))
        .await;

    for (id, name, role) in [
        (ALICE, "alice", ""),
        (BOB, "bob", ""),
        (CAROL, "carol", ""),
        (MANAGER, "manager", "manager"),
    ] {
        app.create_record_ok(
            "people",
            json!({"id": id, "email": format!("{name}@example.com"), "password": PASSWORD,
                   "passwordConfirm": PASSWORD, "role": role, "marker": marker(id), "verified": true}),
        )
        .await;
    }
    // Taken while people's tokens live SHORT_TOKEN_SECS.
    let expired = login(&app, "people", "alice@example.com").await;
    let expired_at = Instant::now() + Duration::from_millis(SHORT_TOKEN_SECS * 1000 + 1100);
    let (status, body) = status_json(
        app.update_collection("people", json!({"authToken": {"duration": 3600}}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Auth ids are unique across auth collections: sam cannot take alice's id.
    let (status, body) = status_json(
        app.create_record(
            "staff",
            json!({"id": ALICE, "email": "sam@example.com", "password": PASSWORD, "passwordConfirm": PASSWORD}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400, "a staff record with alice's id: {body}");
    assert!(!body.to_string().contains(&marker(ALICE)), "{body}");
    app.create_record_ok(
        "staff",
        json!({"id": SAM, "email": "sam@example.com", "password": PASSWORD,
               "passwordConfirm": PASSWORD, "marker": marker(SAM)}),
    )
    .await;

    for (id, members) in [(T1, vec![ALICE, CAROL]), (T2, vec![BOB]), (T3, vec![])] {
        app.create_record_ok(
            "teams",
            json!({"id": id, "marker": marker(id), "members": members}),
        )
        .await;
    }
    for (id, owner, members, team) in [
        (I1, ALICE, vec![ALICE], T1),
        (I2, BOB, vec![BOB, CAROL], T2),
        (I3, CAROL, vec![], T3),
        (I4, "", vec![], ""),
        (I5, ALICE, vec![ALICE, BOB], T2),
    ] {
        app.create_record_ok(
            "items",
            json!({"id": id, "secret": marker(id), "owner": owner, "members": members, "team": team}),
        )
        .await;
    }
    for (id, item, user) in [
        (GRANTS[0], I1, ALICE),
        (GRANTS[1], I3, BOB),
        (GRANTS[2], I5, BOB),
    ] {
        app.create_record_ok(
            "grants",
            json!({"id": id, "marker": marker(id), "item": item, "user": user}),
        )
        .await;
    }

    let alice = login(&app, "people", "alice@example.com").await;
    let bob = login(&app, "people", "bob@example.com").await;
    let manager = login(&app, "people", "manager@example.com").await;
    let sam = login(&app, "staff", "sam@example.com").await;
    let revoked = login(&app, "people", "carol@example.com").await;
    let (status, body) = status_json(
        app.update_record(
            "people",
            CAROL,
            json!({"password": NEW_PASSWORD, "passwordConfirm": NEW_PASSWORD}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "carol's password change: {body}");
    let forged = forge(&bob);
    let (status, body) = status_json(
        app.su(
            Method::POST,
            &format!("/api/collections/people/impersonate/{BOB}"),
            Some(json!({"duration": 3600})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "impersonate bob: {body}");
    let impersonated = body["token"].as_str().expect("token").to_owned();

    World {
        app,
        alice,
        bob,
        manager,
        sam,
        expired,
        revoked,
        forged,
        impersonated,
        expired_at,
    }
}

/// Collects failed cells and counts all of them.
#[derive(Default)]
struct Cells {
    checked: usize,
    failures: Vec<String>,
}

impl Cells {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        self.checked += 1;
        if !ok {
            self.failures.push(what());
        }
    }

    /// No forbidden string anywhere in the body.
    fn no_leak(&mut self, answer: &Answer, forbidden: &[String], ctx: &str) {
        for secret in forbidden {
            self.check(!answer.text.contains(secret.as_str()), || {
                format!("{ctx}: leaks {secret}: {}", answer.text)
            });
        }
    }

    fn finish(self, test: &str) {
        println!("matrix cells checked: {} ({test})", self.checked);
        assert!(
            self.failures.is_empty(),
            "{} of {} cells failed:\n{}",
            self.failures.len(),
            self.checked,
            self.failures.join("\n")
        );
    }
}

/// Everything `persona` must never see when `visible` are the items it may reach:
/// the hidden items' ids and markers, other people's, other teams' and all grants' markers.
fn forbidden_for(persona: Persona, visible: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for id in ITEMS.iter().filter(|id| !visible.contains(id)) {
        out.push((*id).to_owned());
        out.push(marker(id));
        out.push(file_marker(id));
    }
    let own = persona.own_records();
    for id in PEOPLE.iter().chain([&SAM]).filter(|id| !own.contains(id)) {
        out.push(marker(id));
    }
    let teams = persona.teams();
    for id in TEAMS.iter().filter(|id| !teams.contains(id)) {
        out.push(marker(id));
    }
    if persona != Persona::Super {
        out.extend(GRANTS.iter().map(|id| marker(id)));
    }
    out
}

fn ids_of(list: &Value) -> Vec<String> {
    let mut ids: Vec<String> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["id"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

const RECORDS: &str = "/api/collections/items/records";
const EXPAND: &str = "owner,members,team,grants_via_item";

/// The read channels: list (+ totalItems), filter, sort, expand, fields, view.
async fn check_reads(w: &World, shape: &Shape, actor: Actor, cells: &mut Cells) {
    let persona = actor.persona();
    let visible = (shape.visible)(persona);
    let forbidden = forbidden_for(persona, &visible);
    let want: Vec<String> = visible.iter().map(|s| (*s).to_owned()).collect();
    let ctx = |channel: &str| format!("[{}] {actor:?} {channel}", shape.name);

    let lists = [
        ("list", "perPage=100&sort=id".to_owned()),
        ("filter", "filter=secret~'SECRET-'".to_owned()),
        ("sort", "sort=-secret,owner,-team".to_owned()),
        ("expand", format!("expand={EXPAND}")),
        ("fields", format!("fields=*,expand.*&expand={EXPAND}")),
        (
            "filter through relations",
            "filter=(owner.id!='' || members.id?!='' || team.id!='' || id!='')".to_owned(),
        ),
    ];
    for (channel, query) in lists {
        let a = w
            .call(actor, Method::GET, &format!("{RECORDS}?{query}"), None)
            .await;
        let c = ctx(channel);
        cells.check(a.status == 200, || {
            format!("{c}: status {}: {}", a.status, a.text)
        });
        if channel == "filter through relations" {
            // Client filters through relations may drop more (hidden joined rows), never add.
            let got = ids_of(&a.json);
            cells.check(got.iter().all(|id| want.contains(id)), || {
                format!("{c}: got {got:?}, allowed at most {want:?}")
            });
        } else {
            cells.check(ids_of(&a.json) == want, || {
                format!("{c}: got {:?}, want {want:?}", ids_of(&a.json))
            });
            cells.check(a.json["totalItems"] == json!(want.len()), || {
                format!("{c}: totalItems {} for {want:?}", a.json["totalItems"])
            });
        }
        cells.no_leak(&a, &forbidden, &c);
    }

    for id in ITEMS.iter().filter(|id| !visible.contains(id)) {
        let probe = format!("filter=(id='{id}' || secret='SECRET-{id}')");
        let a = w
            .call(actor, Method::GET, &format!("{RECORDS}?{probe}"), None)
            .await;
        let c = ctx(&format!("probe {id}"));
        cells.check(a.status == 200 && a.json["totalItems"] == 0, || {
            format!("{c}: {} {}", a.status, a.text)
        });
        cells.no_leak(&a, &forbidden, &c);
    }

    let missing = w
        .call(
            actor,
            Method::GET,
            &format!("{RECORDS}/{MISSING}?expand={EXPAND}"),
            None,
        )
        .await;
    cells.check(missing.status == 404, || {
        format!("{}: {}", ctx("view missing"), missing.text)
    });
    for id in ITEMS {
        let a = w
            .call(
                actor,
                Method::GET,
                &format!("{RECORDS}/{id}?expand={EXPAND}"),
                None,
            )
            .await;
        let c = ctx(&format!("view {id}"));
        if visible.contains(&id) {
            cells.check(a.status == 200 && a.json["id"] == id, || {
                format!("{c}: {} {}", a.status, a.text)
            });
        } else {
            cells.check(a.status == 404 && a.text == missing.text, || {
                format!("{c}: {} {} (missing: {})", a.status, a.text, missing.text)
            });
        }
        cells.no_leak(&a, &forbidden, &c);
    }
}

/// Sends `[request, a request that always fails]` as one batch and returns
/// the answer; nothing it does is kept.
async fn rolled_back_batch(w: &World, actor: Actor, request: Value) -> Answer {
    let body = json!({"requests": [
        request,
        // Open to all and valid, but the title is taken: it fails only when
        // applied (batches prepare every request first), for everyone.
        {"method": "POST", "url": "/api/collections/sentinel/records", "body": {"title": "taken"}}
    ]});
    w.call(actor, Method::POST, "/api/batch", Some(body)).await
}

/// The write channels on existing records: update, delete, and both inside a batch.
async fn check_writes(w: &World, shape: &Shape, actor: Actor, cells: &mut Cells) {
    let persona = actor.persona();
    let visible = (shape.visible)(persona);
    let forbidden = forbidden_for(persona, &visible);
    let ctx = |channel: &str| format!("[{}] {actor:?} {channel}", shape.name);

    let missing_patch = w
        .call(
            actor,
            Method::PATCH,
            &format!("{RECORDS}/{MISSING}"),
            Some(json!({})),
        )
        .await;
    let missing_delete = w
        .call(actor, Method::DELETE, &format!("{RECORDS}/{MISSING}"), None)
        .await;
    let missing_batch_patch = rolled_back_batch(
        w,
        actor,
        json!({"method": "PATCH", "url": format!("{RECORDS}/{MISSING}"), "body": {}}),
    )
    .await;
    let missing_batch_delete = rolled_back_batch(
        w,
        actor,
        json!({"method": "DELETE", "url": format!("{RECORDS}/{MISSING}")}),
    )
    .await;
    for (a, what) in [
        (&missing_patch, "patch missing"),
        (&missing_delete, "delete missing"),
    ] {
        cells.check(a.status == 404, || format!("{}: {}", ctx(what), a.text));
    }
    for (a, what) in [
        (&missing_batch_patch, "batch patch missing"),
        (&missing_batch_delete, "batch delete missing"),
    ] {
        cells.check(
            a.status == 400 && a.json["data"]["requests"]["0"]["response"]["status"] == 404,
            || format!("{}: {}", ctx(what), a.text),
        );
    }

    for id in ITEMS {
        let allowed = visible.contains(&id);
        let a = w
            .call(
                actor,
                Method::PATCH,
                &format!("{RECORDS}/{id}?expand={EXPAND}"),
                Some(json!({})),
            )
            .await;
        let c = ctx(&format!("update {id}"));
        if allowed {
            cells.check(a.status == 200 && a.json["id"] == id, || {
                format!("{c}: {}", a.text)
            });
        } else {
            cells.check(a.status == 404 && a.text == missing_patch.text, || {
                format!(
                    "{c}: {} {} (missing: {})",
                    a.status, a.text, missing_patch.text
                )
            });
            let a = w
                .call(actor, Method::DELETE, &format!("{RECORDS}/{id}"), None)
                .await;
            let c = ctx(&format!("delete {id}"));
            cells.check(a.status == 404 && a.text == missing_delete.text, || {
                format!(
                    "{c}: {} {} (missing: {})",
                    a.status, a.text, missing_delete.text
                )
            });
            cells.no_leak(&a, &forbidden, &c);
        }
        cells.no_leak(&a, &forbidden, &c);

        for (request, missing, what) in [
            (
                json!({"method": "PATCH", "url": format!("{RECORDS}/{id}"), "body": {}}),
                &missing_batch_patch,
                "batch update",
            ),
            (
                json!({"method": "DELETE", "url": format!("{RECORDS}/{id}")}),
                &missing_batch_delete,
                "batch delete",
            ),
        ] {
            let a = rolled_back_batch(w, actor, request).await;
            let c = ctx(&format!("{what} {id}"));
            let failed_at = a.json["data"]["requests"]
                .as_object()
                .and_then(|m| m.keys().next().cloned())
                .unwrap_or_default();
            if allowed {
                cells.check(a.status == 400 && failed_at == "1", || {
                    format!("{c}: should pass its first request: {}", a.text)
                });
            } else {
                cells.check(a.text == missing.text, || {
                    format!("{c}: {} (missing: {})", a.text, missing.text)
                });
            }
            cells.no_leak(&a, &forbidden, &c);
        }
    }
}

async fn wait_for_expiry(w: &World) {
    let now = Instant::now();
    if w.expired_at > now {
        tokio::time::sleep(w.expired_at - now).await;
    }
}

async fn assert_items_intact(w: &World, shape: &Shape) {
    let (status, list) = status_json(
        w.app
            .list_records("items", &[("perPage", "100")], Some(&w.app.superuser_token))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        ids_of(&list),
        ITEMS.to_vec(),
        "[{}] no item may be gone",
        shape.name
    );
}

#[tokio::test]
async fn every_actor_reads_exactly_what_each_rule_shape_admits_on_every_read_channel() {
    let w = world().await;
    wait_for_expiry(&w).await;
    let mut cells = Cells::default();

    for shape in shapes() {
        w.set_item_rules(shape.rule).await;
        for actor in ACTORS {
            check_reads(&w, &shape, actor, &mut cells).await;
        }
    }

    cells.finish("reads");
}

#[tokio::test]
async fn every_actor_updates_and_deletes_exactly_what_each_rule_shape_admits_alone_and_in_batches()
{
    let w = world().await;
    wait_for_expiry(&w).await;
    let mut cells = Cells::default();

    for shape in shapes() {
        w.set_item_rules(shape.rule).await;
        for actor in ACTORS {
            check_writes(&w, &shape, actor, &mut cells).await;
        }
        assert_items_intact(&w, &shape).await;
    }

    cells.finish("writes");
}

/// How long each realtime subscriber listens for its events.
const EVENT_WAIT: Duration = Duration::from_secs(2);

/// An open SSE stream and its client id.
struct Stream {
    response: reqwest::Response,
    text: String,
}

impl Stream {
    async fn open(w: &World) -> (Stream, String) {
        let response = w.app.connect_realtime().await;
        assert_eq!(response.status(), 200);
        let mut stream = Stream {
            response,
            text: String::new(),
        };
        stream.read_for(Duration::from_millis(300)).await;
        let id = stream
            .text
            .lines()
            .find_map(|l| l.strip_prefix("id:"))
            .expect("PB_CONNECT carries the client id")
            .trim()
            .to_owned();
        (stream, id)
    }

    /// Appends everything that arrives within `wait` to `text`.
    async fn read_for(&mut self, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Ok(Some(chunk))) =
            tokio::time::timeout_at(deadline, self.response.chunk()).await
        {
            self.text.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

#[tokio::test]
async fn realtime_delivery_and_protected_files_reach_exactly_the_actors_the_view_rule_admits() {
    let w = world().await;
    wait_for_expiry(&w).await;
    let mut cells = Cells::default();
    let shape = &shapes()[1];
    assert_eq!(shape.rule, "members.id ?= @request.auth.id");
    w.set_item_rules(shape.rule).await;

    // Protected files: one per item, its content a marker.
    for id in ITEMS {
        let form = reqwest::multipart::Form::new().part(
            "doc",
            reqwest::multipart::Part::bytes(file_marker(id).into_bytes()).file_name("doc.txt"),
        );
        let token = w.app.superuser_token.clone();
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
    }
    let (_, all) = status_json(
        w.app
            .list_records("items", &[("perPage", "100")], Some(&w.app.superuser_token))
            .await,
    )
    .await;
    for actor in ACTORS {
        let persona = actor.persona();
        let visible = (shape.visible)(persona);
        let forbidden = forbidden_for(persona, &visible);
        let a = w.call(actor, Method::POST, "/api/files/token", None).await;
        let c = format!("[files] {actor:?} file token");
        let file_token = a.json["token"].as_str().unwrap_or_default().to_owned();
        if persona == Persona::Guest {
            cells.check(a.status == 401, || format!("{c}: {} {}", a.status, a.text));
        } else {
            cells.check(a.status == 200 && !file_token.is_empty(), || {
                format!("{c}: {}", a.text)
            });
        }
        for record in all["items"].as_array().into_iter().flatten() {
            let id = record["id"].as_str().unwrap_or_default();
            let name = record["doc"].as_str().unwrap_or_default();
            let url = format!(
                "/api/files/{}/{id}/{name}?token={file_token}",
                record["collectionId"].as_str().unwrap_or_default()
            );
            let a = w.call(Actor::Guest, Method::GET, &url, None).await;
            let c = format!("[files] {actor:?} download {id}");
            if visible.contains(&id) {
                cells.check(a.status == 200 && a.text == file_marker(id), || {
                    format!("{c}: {} {}", a.status, a.text)
                });
            } else {
                cells.check(a.status == 404, || format!("{c}: {} {}", a.status, a.text));
                cells.no_leak(&a, &forbidden, &c);
            }
        }
    }

    // Realtime: every actor subscribes to items/*; the superuser creates
    // records whose members decide who may see them.
    let mut streams = Vec::new();
    for actor in ACTORS {
        let (stream, client_id) = Stream::open(&w).await;
        let body = json!({"clientId": client_id, "subscriptions": ["items/*", "items"]});
        let a = w
            .call(actor, Method::POST, "/api/realtime", Some(body))
            .await;
        let c = format!("[realtime] {actor:?} subscribe");
        cells.check(
            a.status == 204 || (actor.persona() == Persona::Guest && a.status == 401),
            || format!("{c}: {} {}", a.status, a.text),
        );
        streams.push((actor, stream));
    }
    let fresh = [
        ("rtalice00000000", vec![ALICE]),
        ("rtbob0000000000", vec![BOB]),
        ("rtnobody0000000", vec![]),
        ("rtboth000000000", vec![ALICE, BOB]),
        ("rtcarol00000000", vec![CAROL]),
    ];
    for (id, members) in &fresh {
        w.app
            .create_record_ok(
                "items",
                json!({"id": id, "secret": marker(id), "members": members}),
            )
            .await;
    }
    // The first stream waits the whole bound; by then the others' events are sent.
    let mut wait = EVENT_WAIT;
    for (actor, mut stream) in streams {
        stream.read_for(wait).await;
        wait = Duration::from_millis(200);
        let want: Vec<&str> = match actor.persona() {
            Persona::Alice => vec!["rtalice00000000", "rtboth000000000"],
            Persona::Bob => vec!["rtbob0000000000", "rtboth000000000"],
            Persona::Super => fresh.iter().map(|(id, _)| *id).collect(),
            _ => vec![],
        };
        for (id, _) in &fresh {
            let got = stream.text.contains(&marker(id));
            let c = format!("[realtime] {actor:?} delivery of {id}");
            cells.check(got == want.contains(id), || {
                format!(
                    "{c}: received {got}, expected {}: {}",
                    want.contains(id),
                    stream.text
                )
            });
            if !want.contains(id) {
                cells.check(!stream.text.contains(id), || {
                    format!("{c}: the id leaks: {}", stream.text)
                });
            }
        }
        let forbidden = forbidden_for(actor.persona(), &(shape.visible)(actor.persona()));
        let answer = Answer {
            status: 200,
            text: stream.text.clone(),
            json: Value::Null,
        };
        cells.no_leak(&answer, &forbidden, &format!("[realtime] {actor:?} stream"));
    }

    cells.finish("files and realtime");
}
