//! Body guards × modifier forms × actors × channels. A `wallets` collection
//! joins the matrix world; its update (or create) rule is
//! `@request.auth.id != '' && (GUARD)` where GUARD reads `@request.body.F`
//! (`:isset`, `:changed`, `=`, `:length`, `:each`). Each row sends one
//! modifier form (`F+`, `+F`, `F-`) as JSON, as multipart and as a batch
//! member. Refusals must leave the whole stored row (or the whole collection,
//! for creates) exactly as it was; the rows marked allowed prove the rule sees
//! the resolved value rather than refusing everything.

use super::{ACTORS, Actor, Answer, BOB, CAROL, Cells, MANAGER, Persona, World, world};
use crate::helpers::status_json;
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

const WALLETS: &str = "/api/collections/wallets/records";
const WALLET: &str = "wallet000000000";

/// How a request travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Channel {
    Json,
    Multipart,
    Batch,
}

const CHANNELS: [Channel; 3] = [Channel::Json, Channel::Multipart, Channel::Batch];

/// A submitted value, read from the stored row.
type FromStored = fn(&Value) -> Value;

/// One modifier sent under one guard.
struct Row {
    /// The submitted key, e.g. `credits+` or `+roles`.
    key: &'static str,
    /// The submitted value, read from the stored row (file names change on reset).
    value: FromStored,
    /// An uploaded file instead of `value` (multipart channels only).
    upload: bool,
    guard: &'static str,
    /// Whether an authenticated non-superuser passes the guard.
    users_allowed: bool,
    /// A plain key sent in the same body, before the modifier (`credits`
    /// beside `credits+`): the rule must see the two combined.
    plain: Option<(&'static str, FromStored)>,
}

fn row(key: &'static str, value: FromStored, guard: &'static str, ok: bool) -> Row {
    Row {
        key,
        value,
        upload: false,
        guard,
        users_allowed: ok,
        plain: None,
    }
}

fn upload(key: &'static str, guard: &'static str, ok: bool) -> Row {
    Row {
        key,
        value: |_| Value::Null,
        upload: true,
        guard,
        users_allowed: ok,
        plain: None,
    }
}

/// The stored wallet: credits 10, roles [a, b], shared [carol, manager], one doc.
fn update_rows() -> Vec<Row> {
    let five: FromStored = |_| json!(5);
    let three: FromStored = |_| json!(3);
    let admin: FromStored = |_| json!("admin");
    let a: FromStored = |_| json!("a");
    let bob: FromStored = |_| json!(BOB);
    let carol: FromStored = |_| json!(CAROL);
    let doc: FromStored = |s| s["docs"][0].clone();
    let mut rows = Vec::new();
    for (key, value, guards) in [
        (
            "credits+",
            five,
            [
                "@request.body.credits:isset = false",
                "@request.body.credits:changed = false",
                "@request.body.credits = 10",
                "@request.body.credits < 11",
            ],
        ),
        (
            "credits-",
            three,
            [
                "@request.body.credits:isset = false",
                "@request.body.credits:changed = false",
                "@request.body.credits = 10",
                "@request.body.credits > 8",
            ],
        ),
        (
            "roles+",
            admin,
            [
                "@request.body.roles:isset = false",
                "@request.body.roles:changed = false",
                "@request.body.roles:length < 3",
                "@request.body.roles:each != 'admin'",
            ],
        ),
        (
            "+roles",
            admin,
            [
                "@request.body.roles:isset = false",
                "@request.body.roles:changed = false",
                "@request.body.roles:length < 3",
                "@request.body.roles:each != 'admin'",
            ],
        ),
        (
            "roles-",
            a,
            [
                "@request.body.roles:isset = false",
                "@request.body.roles:changed = false",
                "@request.body.roles:length > 1",
                "@request.body.roles:each ?= 'a'",
            ],
        ),
        (
            "shared+",
            bob,
            [
                "@request.body.shared:isset = false",
                "@request.body.shared:changed = false",
                "@request.body.shared:length < 3",
                "@request.body.shared:each != 'ubob00000000000'",
            ],
        ),
        (
            "+shared",
            bob,
            [
                "@request.body.shared:isset = false",
                "@request.body.shared:changed = false",
                "@request.body.shared:length < 3",
                "@request.body.shared:each != 'ubob00000000000'",
            ],
        ),
        (
            "shared-",
            carol,
            [
                "@request.body.shared:isset = false",
                "@request.body.shared:changed = false",
                "@request.body.shared:length > 1",
                "@request.body.shared:each ?= 'ucarol000000000'",
            ],
        ),
        (
            "docs-",
            doc,
            [
                "@request.body.docs:isset = false",
                "@request.body.docs:changed = false",
                "@request.body.docs:length > 0",
                "@request.body.docs:each != ''",
            ],
        ),
    ] {
        rows.extend(guards.into_iter().map(|g| row(key, value, g, false)));
    }
    for guard in [
        "@request.body.docs:isset = false",
        "@request.body.docs:changed = false",
        "@request.body.docs:length < 2",
    ] {
        rows.push(upload("docs+", guard, false));
    }
    // A plain key beside its modifier: the rule sees both applied.
    let with = |key, value, plain: (&'static str, FromStored), guard| Row {
        plain: Some(plain),
        ..row(key, value, guard, false)
    };
    let ten: FromStored = |_| json!(10);
    let lots: FromStored = |_| json!(1000);
    let roles: FromStored = |s| s["roles"].clone();
    let shared: FromStored = |s| s["shared"].clone();
    let docs: FromStored = |s| s["docs"].clone();
    rows.extend([
        with(
            "credits+",
            lots,
            ("credits", ten),
            "@request.body.credits = 10",
        ),
        with(
            "credits+",
            lots,
            ("credits", ten),
            "@request.body.credits:changed = false",
        ),
        with(
            "credits+",
            lots,
            ("credits", ten),
            "@request.body.credits <= 100",
        ),
        with(
            "roles+",
            admin,
            ("roles", roles),
            "@request.body.roles:each != 'admin'",
        ),
        with(
            "roles+",
            admin,
            ("roles", roles),
            "@request.body.roles:changed = false",
        ),
        with(
            "+shared",
            bob,
            ("shared", shared),
            "@request.body.shared:each != 'ubob00000000000'",
        ),
        with(
            "+shared",
            bob,
            ("shared", shared),
            "@request.body.shared:length < 3",
        ),
        with(
            "docs-",
            doc,
            ("docs", docs),
            "@request.body.docs:length > 0",
        ),
        with(
            "docs-",
            doc,
            ("docs", docs),
            "@request.body.docs:changed = false",
        ),
    ]);
    // The rule sees the resolved value: these pass for every signed-in user.
    // (A bare multi-valued `@request.body.F` is its JSON text, as in PocketBase,
    // so membership is asked with `:each ?=`.)
    rows.extend([
        row("credits+", five, "@request.body.credits = 15", true),
        row("credits-", three, "@request.body.credits = 7", true),
        row("roles+", admin, "@request.body.roles:length = 3", true),
        row("+roles", admin, "@request.body.roles:each ?= 'admin'", true),
        row(
            "shared-",
            carol,
            "@request.body.shared:each = 'umgr00000000000'",
            true,
        ),
        row("docs-", doc, "@request.body.docs:length = 0", true),
        upload("docs+", "@request.body.docs:length = 2", true),
    ]);
    rows
}

/// Creates start from zero values: the `isset` guard must see every form.
fn create_rows() -> Vec<Row> {
    let guard_rows = [
        ("credits+", (|_| json!(5)) as FromStored),
        ("credits-", |_| json!(3)),
        ("roles+", |_| json!("admin")),
        ("+roles", |_| json!("admin")),
        ("shared+", |_| json!(BOB)),
        ("+shared", |_| json!(BOB)),
    ];
    let mut rows: Vec<Row> = guard_rows
        .into_iter()
        .map(|(key, value)| {
            let field = key.trim_matches(|c| c == '+' || c == '-');
            let guard: &'static str =
                Box::leak(format!("@request.body.{field}:isset = false").into_boxed_str());
            row(key, value, guard, false)
        })
        .collect();
    rows.push(upload("docs+", "@request.body.docs:isset = false", false));
    rows.push(row(
        "roles+",
        |_| json!("admin"),
        "@request.body.roles:each != 'admin'",
        false,
    ));
    rows.push(row(
        "credits+",
        |_| json!(5),
        "@request.body.credits = 5",
        true,
    ));
    rows.push(upload("docs+", "@request.body.docs:length = 1", true));
    rows
}

fn seed_form() -> Form {
    Form::new()
        .text("id", WALLET)
        .text("credits", "10")
        .text("roles", "a")
        .text("roles", "b")
        .text("shared", CAROL)
        .text("shared", MANAGER)
        .part("docs", Part::bytes(b"seed".to_vec()).file_name("seed.txt"))
}

impl World {
    async fn stored_wallet(&self) -> Value {
        let (status, body) = status_json(
            self.app
                .request(
                    Method::GET,
                    &format!("{WALLETS}/{WALLET}"),
                    Some(&self.app.superuser_token),
                    None,
                )
                .await,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn all_wallets(&self) -> Value {
        let (status, body) = status_json(
            self.app
                .request(
                    Method::GET,
                    &format!("{WALLETS}?perPage=100&sort=id"),
                    Some(&self.app.superuser_token),
                    None,
                )
                .await,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        body["items"].clone()
    }

    /// Puts the wallet back to its seed state (a new stored file name).
    async fn reset_wallet(&self) -> Value {
        let token = self.app.superuser_token.clone();
        let _ = self
            .app
            .request(
                Method::DELETE,
                &format!("{WALLETS}/{WALLET}"),
                Some(&token),
                None,
            )
            .await;
        let (status, body) = status_json(
            self.app
                .send_form(Method::POST, WALLETS, Some(&token), seed_form())
                .await,
        )
        .await;
        assert_eq!(status, 200, "seed wallet: {body}");
        self.stored_wallet().await
    }

    /// Sends one row over one channel as `actor`.
    async fn send_row(
        &self,
        actor: Actor,
        channel: Channel,
        method: Method,
        url: &str,
        row: &Row,
        stored: &Value,
    ) -> Answer {
        let value = (row.value)(stored);
        let mut body = json!({});
        if let Some((k, f)) = row.plain {
            body[k] = f(stored);
        }
        body[row.key] = value.clone();
        let (key, upload) = (row.key, row.upload);
        let file = || Part::bytes(b"new".to_vec()).file_name("new.txt");
        let plain = row.plain.map(|(k, f)| (k, f(stored)));
        let text_parts = |mut form: Form| {
            for (k, v) in plain.iter() {
                for v in v.as_array().cloned().unwrap_or_else(|| vec![v.clone()]) {
                    let text = v
                        .as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string());
                    form = form.text(k.to_string(), text);
                }
            }
            for v in value
                .as_array()
                .cloned()
                .unwrap_or_else(|| vec![value.clone()])
            {
                let text = v
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string());
                form = form.text(key.to_owned(), text);
            }
            form
        };
        let resp = match (channel, upload) {
            (Channel::Json, _) => {
                self.app
                    .request(method, url, self.token(actor), Some(body.clone()))
                    .await
            }
            (Channel::Multipart, true) => {
                let form = Form::new().part(key.to_owned(), file());
                self.app
                    .send_form(method, url, self.token(actor), form)
                    .await
            }
            (Channel::Multipart, false) => {
                self.app
                    .send_form(method, url, self.token(actor), text_parts(Form::new()))
                    .await
            }
            (Channel::Batch, true) => {
                let payload =
                    json!({"requests": [{"method": method.as_str(), "url": url, "body": {}}]});
                let form = Form::new()
                    .text("@jsonPayload", payload.to_string())
                    .part(format!("requests.0.{key}"), file());
                self.app
                    .send_form(Method::POST, "/api/batch", self.token(actor), form)
                    .await
            }
            (Channel::Batch, false) => {
                let body =
                    json!({"requests": [{"method": method.as_str(), "url": url, "body": body}]});
                self.app
                    .request(Method::POST, "/api/batch", self.token(actor), Some(body))
                    .await
            }
        };
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, text, json }
    }
}

/// Adds the `wallets` collection and its seeded record to the matrix world.
async fn wallets_world() -> World {
    let w = world().await;
    let people = w
        .su(Method::GET, "/api/collections/people", json!({}))
        .await;
    let people = people["id"].as_str().expect("people id").to_owned();
    w.app
        .create_collection_ok(json!({
            "name": "wallets",
            "listRule": "@request.auth.id != ''", "viewRule": "@request.auth.id != ''",
            "fields": [
                {"name": "credits", "type": "number"},
                {"name": "roles", "type": "select", "values": ["a", "b", "admin"], "maxSelect": 3},
                {"name": "shared", "type": "relation", "collectionId": people, "maxSelect": 10},
                {"name": "docs", "type": "file", "maxSelect": 3, "maxSize": 1000}
            ]
        }))
        .await;
    w
}

/// Whether the request went through: 200 alone, 200 for the batch.
fn passed(a: &Answer) -> bool {
    a.status == 200
}

fn refusal_ok(a: &Answer, channel: Channel, direct_status: u16) -> bool {
    match channel {
        Channel::Batch => {
            a.status == 400
                && a.json["data"]["requests"]["0"]["response"]["status"] == json!(direct_status)
        }
        _ => a.status == direct_status,
    }
}

#[tokio::test]
async fn every_actor_meets_each_body_guard_with_every_modifier_form_on_every_update_channel() {
    let w = wallets_world().await;
    super::wait_for_expiry(&w).await;
    let mut cells = Cells::default();
    let url = format!("{WALLETS}/{WALLET}");
    let mut stored = w.reset_wallet().await;

    for row in update_rows() {
        let rule = format!("@request.auth.id != '' && ({})", row.guard);
        w.su(
            Method::PATCH,
            "/api/collections/wallets",
            json!({"updateRule": rule}),
        )
        .await;
        for channel in CHANNELS {
            if row.upload && channel == Channel::Json {
                continue;
            }
            for actor in ACTORS {
                let persona = actor.persona();
                let allowed =
                    persona == Persona::Super || (row.users_allowed && persona != Persona::Guest);
                let a = w
                    .send_row(actor, channel, Method::PATCH, &url, &row, &stored)
                    .await;
                let c = format!("[update {} | {}] {actor:?} {channel:?}", row.key, row.guard);
                if allowed {
                    cells.check(passed(&a), || format!("{c}: should pass: {}", a.text));
                    stored = w.reset_wallet().await;
                } else {
                    cells.check(refusal_ok(&a, channel, 404), || {
                        format!("{c}: should be refused as missing: {} {}", a.status, a.text)
                    });
                    let after = w.stored_wallet().await;
                    cells.check(after == stored, || {
                        format!("{c}: the stored row changed: {stored} -> {after}")
                    });
                    if after != stored {
                        stored = w.reset_wallet().await;
                    }
                }
            }
        }
    }

    cells.finish("body guards on update");
}

#[tokio::test]
async fn every_actor_meets_each_body_guard_with_every_modifier_form_on_every_create_channel() {
    let w = wallets_world().await;
    super::wait_for_expiry(&w).await;
    let mut cells = Cells::default();
    w.reset_wallet().await;
    let before = w.all_wallets().await;

    for row in create_rows() {
        let rule = format!("@request.auth.id != '' && ({})", row.guard);
        w.su(
            Method::PATCH,
            "/api/collections/wallets",
            json!({"createRule": rule}),
        )
        .await;
        for channel in CHANNELS {
            if row.upload && channel == Channel::Json {
                continue;
            }
            for actor in ACTORS {
                let persona = actor.persona();
                let allowed =
                    persona == Persona::Super || (row.users_allowed && persona != Persona::Guest);
                let a = w
                    .send_row(actor, channel, Method::POST, WALLETS, &row, &Value::Null)
                    .await;
                let c = format!("[create {} | {}] {actor:?} {channel:?}", row.key, row.guard);
                if allowed {
                    cells.check(passed(&a), || format!("{c}: should pass: {}", a.text));
                    for item in w.all_wallets().await.as_array().into_iter().flatten() {
                        let id = item["id"].as_str().unwrap_or_default();
                        if id != WALLET {
                            w.app.delete_record("wallets", id).await;
                        }
                    }
                } else {
                    cells.check(refusal_ok(&a, channel, 400), || {
                        format!("{c}: should be refused: {} {}", a.status, a.text)
                    });
                    let after = w.all_wallets().await;
                    cells.check(after == before, || {
                        format!("{c}: the collection changed: {after}")
                    });
                }
            }
        }
    }

    cells.finish("body guards on create");
}
