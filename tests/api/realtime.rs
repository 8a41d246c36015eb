//! `/api/realtime`: the SSE stream, subscriptions, and which committed
//! changes reach which subscriber.

use crate::helpers::{TestApp, spawn_app, status_json};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// How long a test waits for an event that should come.
pub(crate) const EVENT_WAIT: Duration = Duration::from_secs(5);
/// How long a test listens to be sure an event does not come.
pub(crate) const SILENCE_WAIT: Duration = Duration::from_millis(400);

/// One open SSE stream, read chunk by chunk.
pub(crate) struct Sse {
    response: reqwest::Response,
    buffer: String,
    pub(crate) client_id: String,
}

/// One parsed SSE message.
#[derive(Debug)]
pub(crate) struct Event {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) data: Value,
}

impl Sse {
    pub(crate) async fn open(app: &TestApp) -> Sse {
        let response = app.connect_realtime().await;
        assert_eq!(response.status(), 200);
        let mut sse = Sse {
            response,
            buffer: String::new(),
            client_id: String::new(),
        };
        let first = sse.next(EVENT_WAIT).await.expect("PB_CONNECT arrives");
        assert_eq!(first.name, "PB_CONNECT");
        assert_eq!(first.data["clientId"], first.id.as_str());
        sse.client_id = first.id;
        sse
    }

    /// The next message within `wait`, or `None`.
    pub(crate) async fn next(&mut self, wait: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let raw: String = self.buffer.drain(..end + 2).collect();
                return Some(parse(&raw));
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?
                .expect("stream readable")?;
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        }
    }

    /// Every message arriving within `wait`.
    pub(crate) async fn drain(&mut self, wait: Duration) -> Vec<Event> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        while let Some(e) = self
            .next(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await
        {
            out.push(e);
        }
        out
    }
}

fn parse(raw: &str) -> Event {
    let mut event = Event {
        id: String::new(),
        name: String::new(),
        data: Value::Null,
    };
    for line in raw.lines() {
        if let Some(v) = line.strip_prefix("id:") {
            event.id = v.to_owned();
        } else if let Some(v) = line.strip_prefix("event:") {
            event.name = v.to_owned();
        } else if let Some(v) = line.strip_prefix("data:") {
            event.data = serde_json::from_str(v).expect("data is JSON");
        }
    }
    event
}

/// `posts` readable by its owner or when public; two users.
async fn setup() -> (TestApp, (String, String), (String, String)) {
    let app = spawn_app().await;
    app.create_collection_ok(json!({
        "name": "posts",
        "listRule": "owner = @request.auth.id || public = true",
        "viewRule": "owner = @request.auth.id || public = true",
        "createRule": "", "updateRule": "", "deleteRule": "",
        "fields": [
            {"name": "title", "type": "text"},
            {"name": "public", "type": "bool"},
            {"name": "owner", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1},
            {"name": "secret", "type": "text", "hidden": true}
        ]
    }))
    .await;
    let mut users = Vec::new();
    for name in ["alice", "bob"] {
        let email = format!("{name}@example.com");
        let user = app
            .create_record_ok(
                "users",
                json!({"email": email, "password": "Passw0rd!123", "passwordConfirm": "Passw0rd!123"}),
            )
            .await;
        let token = app.login_as("users", &email, "Passw0rd!123").await;
        users.push((user["id"].as_str().expect("id").to_owned(), token));
    }
    let bob = users.pop().expect("bob");
    let alice = users.pop().expect("alice");
    (app, alice, bob)
}

async fn subscribed(app: &TestApp, topics: &[&str], token: Option<&str>) -> Sse {
    let sse = Sse::open(app).await;
    let resp = app.subscribe(&sse.client_id, topics, token).await;
    assert_eq!(resp.status(), 204, "subscribe {topics:?}");
    sse
}

#[tokio::test]
async fn the_stream_opens_with_pb_connect_carrying_the_client_id() {
    let app = spawn_app().await;

    let resp = app.connect_realtime().await;
    let headers = resp.headers().clone();
    let mut sse = Sse {
        response: resp,
        buffer: String::new(),
        client_id: String::new(),
    };
    sse.next(EVENT_WAIT).await.expect("first message");
    let first_bytes = sse.buffer.clone();

    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-accel-buffering"], "no");
    assert!(
        first_bytes.is_empty(),
        "nothing else is sent before a subscription"
    );
    let resp = app.connect_realtime().await;
    let body = tokio::time::timeout(EVENT_WAIT, resp_first_chunk(resp))
        .await
        .expect("first chunk in time");
    let id = body
        .strip_prefix("id:")
        .and_then(|rest| rest.split('\n').next())
        .expect("id line first")
        .to_owned();
    assert_eq!(id.len(), 40);
    assert_eq!(
        body,
        format!("id:{id}\nevent:PB_CONNECT\ndata:{{\"clientId\":\"{id}\"}}\n\n"),
        "exact bytes: no space after colons, blank line at the end"
    );
}

async fn resp_first_chunk(mut resp: reqwest::Response) -> String {
    let chunk = resp.chunk().await.expect("read").expect("a chunk");
    String::from_utf8(chunk.to_vec()).expect("utf-8")
}

#[tokio::test]
async fn a_collection_subscriber_receives_create_update_and_delete_in_order() {
    let (app, _, _) = setup().await;
    let mut sse = subscribed(&app, &["posts/*"], Some(&app.superuser_token)).await;

    let post = app
        .create_record_ok(
            "posts",
            json!({"title": "hello", "public": true, "secret": "s"}),
        )
        .await;
    let id = post["id"].as_str().expect("id");
    app.update_record("posts", id, json!({"title": "edited"}))
        .await;
    app.delete_record("posts", id).await;
    let events = sse.drain(Duration::from_secs(2)).await;

    let seen: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| {
            (
                e.name.as_str(),
                e.data["action"].as_str().unwrap_or_default(),
                e.data["record"]["title"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("posts/*", "create", "hello"),
            ("posts/*", "update", "edited"),
            ("posts/*", "delete", "edited"),
        ]
    );
    assert!(
        events.iter().all(|e| e.id == sse.client_id),
        "every message carries id:"
    );
    assert_eq!(
        events[0].data["record"]["secret"], "s",
        "superusers see hidden fields"
    );
    assert_eq!(events[0].data["record"]["collectionName"], "posts");
}

#[tokio::test]
async fn a_user_never_receives_records_the_list_rule_hides_from_them() {
    let (app, (alice_id, alice), (bob_id, bob)) = setup().await;
    let mut as_alice = subscribed(&app, &["posts/*"], Some(&alice)).await;
    let mut as_guest = subscribed(&app, &["posts"], None).await;

    app.create_record_ok(
        "posts",
        json!({"title": "bobs", "owner": bob_id, "secret": "x"}),
    )
    .await;
    let mine = app
        .create_record_ok(
            "posts",
            json!({"title": "alices", "owner": alice_id, "secret": "x"}),
        )
        .await;
    app.delete_record("posts", mine["id"].as_str().expect("id"))
        .await;
    app.create_record_ok("posts", json!({"title": "public", "public": true}))
        .await;
    let alice_saw = as_alice.drain(Duration::from_secs(2)).await;
    let guest_saw = as_guest.drain(SILENCE_WAIT).await;
    let _ = bob;

    let titles = |events: &[Event]| -> Vec<(String, String)> {
        events
            .iter()
            .map(|e| {
                (
                    e.data["action"].as_str().unwrap_or_default().to_owned(),
                    e.data["record"]["title"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(
        titles(&alice_saw),
        vec![
            ("create".into(), "alices".into()),
            ("delete".into(), "alices".into()),
            ("create".into(), "public".into()),
        ],
        "alice sees her own post (also its deletion) and the public one, never bob's"
    );
    assert!(
        alice_saw
            .iter()
            .all(|e| e.data["record"].get("secret").is_none()),
        "hidden fields stay hidden from users"
    );
    assert_eq!(titles(&guest_saw), vec![("create".into(), "public".into())]);
    assert_eq!(
        guest_saw[0].name, "posts",
        "the event is named by the exact topic"
    );
}

#[tokio::test]
async fn a_record_topic_receives_only_that_record_under_the_view_rule() {
    let (app, (alice_id, alice), _) = setup().await;
    let watched = app
        .create_record_ok("posts", json!({"title": "w", "owner": alice_id}))
        .await;
    let other = app
        .create_record_ok("posts", json!({"title": "o", "owner": alice_id}))
        .await;
    let wid = watched["id"].as_str().expect("id");
    let topic = format!("posts/{wid}");
    let mut as_alice = subscribed(&app, &[&topic], Some(&alice)).await;
    let mut as_guest = subscribed(&app, &[&topic], None).await;

    app.update_record(
        "posts",
        other["id"].as_str().expect("id"),
        json!({"title": "o2"}),
    )
    .await;
    app.update_record("posts", wid, json!({"title": "w2"}))
        .await;
    let alice_saw = as_alice.drain(Duration::from_secs(1)).await;
    let guest_saw = as_guest.drain(SILENCE_WAIT).await;

    assert_eq!(alice_saw.len(), 1, "{alice_saw:?}");
    assert_eq!(alice_saw[0].name, topic);
    assert_eq!(alice_saw[0].data["action"], "update");
    assert_eq!(alice_saw[0].data["record"]["title"], "w2");
    assert!(
        guest_saw.is_empty(),
        "the view rule hides it from guests: {guest_saw:?}"
    );
}

#[tokio::test]
async fn topic_options_apply_fields_expand_and_filter() {
    let (app, (alice_id, alice), _) = setup().await;
    let fields = format!(
        "posts/*?options={}",
        urlencode(&json!({"query": {"fields": "id,title"}}).to_string())
    );
    let expand = format!(
        "posts/*?options={}",
        urlencode(&json!({"query": {"expand": "owner"}}).to_string())
    );
    let filter = format!(
        "posts/*?options={}",
        urlencode(&json!({"query": {"filter": "title = 'b'"}}).to_string())
    );
    let mut sse = subscribed(&app, &[&fields, &expand, &filter], Some(&alice)).await;

    app.create_record_ok("posts", json!({"title": "a", "owner": alice_id}))
        .await;
    app.create_record_ok("posts", json!({"title": "b", "owner": alice_id}))
        .await;
    let events = sse.drain(Duration::from_secs(2)).await;

    let of = |name: &str| -> Vec<&Event> { events.iter().filter(|e| e.name == name).collect() };
    let f = of(&fields);
    assert_eq!(f.len(), 2);
    assert_eq!(
        f[0].data["record"],
        json!({"id": f[0].data["record"]["id"], "title": "a"})
    );
    let e = of(&expand);
    assert_eq!(e.len(), 2);
    assert_eq!(
        e[0].data["record"]["expand"]["owner"]["id"],
        alice_id.as_str()
    );
    let only_b = of(&filter);
    assert_eq!(only_b.len(), 1, "the filter admits only 'b'");
    assert_eq!(only_b[0].data["record"]["title"], "b");
}

#[tokio::test]
async fn an_empty_subscription_set_stops_events() {
    let (app, _, _) = setup().await;
    let mut sse = subscribed(&app, &["posts/*"], None).await;
    app.create_record_ok("posts", json!({"title": "one", "public": true}))
        .await;
    assert!(
        sse.next(EVENT_WAIT).await.is_some(),
        "subscribed: the event comes"
    );

    let resp = app.subscribe(&sse.client_id, &[], None).await;
    app.create_record_ok("posts", json!({"title": "two", "public": true}))
        .await;

    assert_eq!(resp.status(), 204);
    let late = sse.drain(SILENCE_WAIT).await;
    assert!(late.is_empty(), "unsubscribed: nothing more: {late:?}");
}

#[tokio::test]
async fn bad_subscription_requests_get_4xx_envelopes() {
    let (app, (_, alice), (_, bob)) = setup().await;
    let sse = Sse::open(&app).await;
    let long = "p".repeat(2501);
    let many: Vec<String> = (0..1001).map(|i| format!("t{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();

    for (body, status, message, why) in [
        (
            json!({"clientId": "nope", "subscriptions": ["posts/*"]}),
            404,
            "Missing or invalid client id.",
            "unknown client",
        ),
        (
            json!({"subscriptions": []}),
            400,
            "Something went wrong while processing your request.",
            "no client id",
        ),
        (
            json!({"clientId": sse.client_id, "subscriptions": "posts/*"}),
            400,
            "Something went wrong while processing your request.",
            "not an array",
        ),
        (
            json!({"clientId": sse.client_id, "subscriptions": [1]}),
            400,
            "Something went wrong while processing your request.",
            "not strings",
        ),
        (
            json!({"clientId": sse.client_id, "subscriptions": [long]}),
            400,
            "Something went wrong while processing your request.",
            "topic too long",
        ),
        (
            json!({"clientId": sse.client_id, "subscriptions": many}),
            400,
            "Something went wrong while processing your request.",
            "too many topics",
        ),
    ] {
        let (got, envelope) = status_json(
            app.request(Method::POST, "/api/realtime", None, Some(body))
                .await,
        )
        .await;
        assert_eq!(got, status, "{why}: {envelope}");
        assert_eq!(envelope["message"], message, "{why}");
        assert_eq!(envelope["status"], status, "{why}");
    }
    let (_, missing) = status_json(
        app.request(Method::POST, "/api/realtime", None, Some(json!({})))
            .await,
    )
    .await;
    assert_eq!(missing["data"]["clientId"]["code"], "validation_required");

    let first = app
        .subscribe(&sse.client_id, &["posts/*"], Some(&alice))
        .await;
    let (other, envelope) = status_json(
        app.subscribe(&sse.client_id, &["posts/*"], Some(&bob))
            .await,
    )
    .await;
    assert_eq!(first.status(), 204);
    assert_eq!(other, 403, "another user's token on the same client");
    assert_eq!(
        envelope["message"],
        "The current and the previous request authorization don't match."
    );
}

#[tokio::test]
async fn cascaded_deletes_are_announced_and_checked_against_the_removed_row() {
    let (app, (alice_id, alice), _) = setup().await;
    let (_, posts) = status_json(app.su(Method::GET, "/api/collections/posts", None).await).await;
    app.create_collection_ok(json!({
        "name": "comments",
        "listRule": "author = @request.auth.id", "viewRule": "author = @request.auth.id",
        "fields": [
            {"name": "post", "type": "relation", "collectionId": posts["id"], "maxSelect": 1, "cascadeDelete": true},
            {"name": "author", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1},
            {"name": "text", "type": "text"}
        ]
    }))
    .await;
    let post = app.create_record_ok("posts", json!({"title": "p"})).await;
    let pid = post["id"].as_str().expect("id");
    let c1 = app
        .create_record_ok(
            "comments",
            json!({"post": pid, "author": alice_id, "text": "mine"}),
        )
        .await;
    app.create_record_ok("comments", json!({"post": pid, "text": "anonymous"}))
        .await;
    let mut sse = subscribed(&app, &["comments/*"], Some(&alice)).await;

    let resp = app.delete_record("posts", pid).await;
    let events = sse.drain(Duration::from_secs(1)).await;

    assert_eq!(resp.status(), 204);
    assert_eq!(
        events.len(),
        1,
        "only alice's comment is hers to see: {events:?}"
    );
    assert_eq!(events[0].data["action"], "delete");
    assert_eq!(events[0].data["record"]["id"], c1["id"]);
    assert_eq!(events[0].data["record"]["text"], "mine");
}

#[tokio::test]
async fn truncating_a_collection_announces_each_deleted_record() {
    let (app, _, _) = setup().await;
    for title in ["a", "b"] {
        app.create_record_ok("posts", json!({"title": title, "public": true}))
            .await;
    }
    let mut sse = subscribed(&app, &["posts/*"], None).await;

    let resp = app
        .su(Method::DELETE, "/api/collections/posts/truncate", None)
        .await;
    let events = sse.drain(Duration::from_secs(1)).await;

    assert_eq!(resp.status(), 204);
    let mut seen: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e.data["action"].as_str().unwrap_or_default(),
                e.data["record"]["title"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(seen, vec![("delete", "a"), ("delete", "b")]);
}

#[tokio::test]
async fn a_batch_is_announced_only_when_it_commits() {
    let (app, _, _) = setup().await;
    app.su(
        Method::PATCH,
        "/api/settings",
        Some(json!({"batch": {"enabled": true}})),
    )
    .await;
    let mut sse = subscribed(&app, &["posts/*"], None).await;

    let failing = app
        .su(
            Method::POST,
            "/api/batch",
            Some(json!({"requests": [
                {"method": "POST", "url": "/api/collections/posts/records", "body": {"title": "rolled back", "public": true}},
                {"method": "PATCH", "url": "/api/collections/posts/records/missing0000000", "body": {}}
            ]})),
        )
        .await;
    let committed = app
        .su(
            Method::POST,
            "/api/batch",
            Some(json!({"requests": [
                {"method": "POST", "url": "/api/collections/posts/records", "body": {"title": "kept", "public": true}}
            ]})),
        )
        .await;
    let events = sse.drain(Duration::from_secs(1)).await;

    assert_eq!(failing.status(), 400);
    assert_eq!(committed.status(), 200);
    let titles: Vec<&str> = events
        .iter()
        .filter_map(|e| e.data["record"]["title"].as_str())
        .collect();
    assert_eq!(
        titles,
        vec!["kept"],
        "a rolled-back write publishes nothing"
    );
}

#[tokio::test]
async fn a_closed_stream_is_unregistered_once_an_event_finds_it_gone() {
    // Like PocketBase, no keep-alive is sent, so a silent peer that went away
    // is noticed when the next write to it fails (or at the idle timeout).
    let (app, _, _) = setup().await;
    let sse = subscribed(&app, &["posts/*"], None).await;
    let id = sse.client_id.clone();

    drop(sse);
    let mut status = 0;
    for _ in 0..50 {
        app.create_record_ok("posts", json!({"title": "ping", "public": true}))
            .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        status = app
            .subscribe(&id, &["posts/*"], None)
            .await
            .status()
            .as_u16();
        if status == 404 {
            break;
        }
    }

    assert_eq!(
        status, 404,
        "the client id is forgotten once its stream is gone"
    );
}

#[tokio::test]
async fn confirming_a_verification_is_announced_as_an_update() {
    let (app, sink) = crate::helpers::spawn_app_with_mail().await;
    let user = app
        .create_record_ok(
            "users",
            json!({"email": "v@example.com", "password": "Passw0rd!123", "passwordConfirm": "Passw0rd!123"}),
        )
        .await;
    let mut sse = subscribed(&app, &["users/*"], Some(&app.superuser_token)).await;
    app.request(
        Method::POST,
        "/api/collections/users/request-verification",
        None,
        Some(json!({"email": "v@example.com"})),
    )
    .await;
    let mail = sink
        .wait_for("v@example.com", EVENT_WAIT)
        .await
        .expect("mail");
    let token = mail.find_token().expect("token");

    let resp = app
        .request(
            Method::POST,
            "/api/collections/users/confirm-verification",
            None,
            Some(json!({"token": token})),
        )
        .await;
    let event = sse.next(EVENT_WAIT).await.expect("an update event");

    assert_eq!(resp.status(), 204);
    assert_eq!(event.data["action"], "update");
    assert_eq!(event.data["record"]["id"], user["id"]);
    assert_eq!(event.data["record"]["verified"], true);
}

#[tokio::test]
async fn a_verification_confirm_reaches_only_subscribers_who_may_view_the_user_once_without_hidden_fields()
 {
    let (app, sink) = crate::helpers::spawn_app_with_mail().await;
    let (_, users) = status_json(app.su(Method::GET, "/api/collections/users", None).await).await;
    let mut fields = users["fields"].as_array().expect("fields").clone();
    fields.push(json!({"name": "secretNote", "type": "text", "hidden": true}));
    fields.push(json!({"name": "role", "type": "text"}));
    let resp = app
        .update_collection(
            "users",
            json!({
                "fields": fields,
                "listRule": "@request.auth.role = 'admin'",
                "viewRule": "@request.auth.role = 'admin'",
            }),
        )
        .await;
    assert_eq!(resp.status(), 200, "collection update");
    let mut ids = Vec::new();
    let mut tokens = Vec::new();
    for (name, role) in [("alice", ""), ("carol", "admin"), ("bob", "")] {
        let email = format!("{name}@example.com");
        let user = app
            .create_record_ok(
                "users",
                json!({"email": email, "password": "Passw0rd!123", "passwordConfirm": "Passw0rd!123",
                       "role": role, "secretNote": "only the server knows"}),
            )
            .await;
        ids.push(user["id"].as_str().expect("id").to_owned());
        tokens.push(app.login_as("users", &email, "Passw0rd!123").await);
    }
    // Password login off: the confirm also replaces alice's password, so the
    // flow makes two system updates of her record in one transaction.
    let resp = app
        .update_collection("users", json!({"passwordAuth": {"enabled": false}}))
        .await;
    assert_eq!(resp.status(), 200, "password login off");
    let mut carol = subscribed(&app, &["users/*"], Some(&tokens[1])).await;
    let mut bob = subscribed(&app, &["users/*"], Some(&tokens[2])).await;
    app.request(
        Method::POST,
        "/api/collections/users/request-verification",
        None,
        Some(json!({"email": "alice@example.com"})),
    )
    .await;
    let mail = sink
        .wait_for("alice@example.com", EVENT_WAIT)
        .await
        .expect("mail");
    let token = mail.find_token().expect("token");

    let resp = app
        .request(
            Method::POST,
            "/api/collections/users/confirm-verification",
            None,
            Some(json!({"token": token})),
        )
        .await;
    let to_carol = carol.drain(Duration::from_secs(1)).await;
    let to_bob = bob.drain(SILENCE_WAIT).await;

    assert_eq!(resp.status(), 204);
    assert_eq!(to_carol.len(), 1, "one write, one event: {to_carol:?}");
    let record = &to_carol[0].data["record"];
    assert_eq!(to_carol[0].data["action"], "update");
    assert_eq!(record["id"], ids[0].as_str());
    assert_eq!(record["verified"], true);
    for hidden in ["secretNote", "password", "tokenKey"] {
        assert!(
            record.get(hidden).is_none(),
            "{hidden} must not be sent: {record}"
        );
    }
    assert!(to_bob.is_empty(), "bob may not view alice: {to_bob:?}");
}

#[tokio::test]
async fn a_subscription_from_another_address_than_the_stream_is_refused() {
    let app = spawn_app().await;
    let sse = Sse::open(&app).await;
    let elsewhere = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .expect("client");

    let (status, envelope) = status_json(
        elsewhere
            .post(format!("{}/api/realtime", app.base))
            .json(&json!({"clientId": sse.client_id, "subscriptions": ["posts/*"]}))
            .send()
            .await
            .expect("sent"),
    )
    .await;

    assert_eq!(status, 400);
    assert_eq!(envelope["message"], "Invalid realtime client.");
}

fn urlencode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn the_oauth2_redirect_hands_the_code_to_the_clients_oauth2_subscription() {
    let app = spawn_app().await;
    let mut sse = subscribed(&app, &["@oauth2"], None).await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");

    let ok = no_redirects
        .get(format!(
            "{}/api/oauth2-redirect?state={}&code=the-code",
            app.base, sse.client_id
        ))
        .send()
        .await
        .expect("redirect");
    let event = sse.next(EVENT_WAIT).await.expect("the @oauth2 event");
    let unknown = no_redirects
        .get(format!(
            "{}/api/oauth2-redirect?state=nobody&code=x",
            app.base
        ))
        .send()
        .await
        .expect("redirect");
    let posted = no_redirects
        .post(format!("{}/api/oauth2-redirect", app.base))
        .form(&[
            ("state", sse.client_id.as_str()),
            ("error", "access_denied"),
        ])
        .send()
        .await
        .expect("redirect");
    let refused = sse.next(EVENT_WAIT).await.expect("the error event");

    assert_eq!(ok.status(), 307);
    assert!(
        ok.headers()["location"]
            .to_str()
            .is_ok_and(|l| l.ends_with("oauth2-redirect-success"))
    );
    assert_eq!(event.name, "@oauth2");
    assert_eq!(
        event.data,
        json!({"state": sse.client_id, "code": "the-code"})
    );
    assert_eq!(unknown.status(), 307);
    assert!(
        unknown.headers()["location"]
            .to_str()
            .is_ok_and(|l| l.ends_with("oauth2-redirect-failure"))
    );
    assert_eq!(posted.status(), 303);
    assert_eq!(refused.data["error"], "access_denied");
}

// ---------------------------------------------------------------------------
// A stream's auth: who may change it, and how long it lasts.
// ---------------------------------------------------------------------------

/// A logged-in member of the `members` auth collection.
struct Member {
    id: String,
    email: String,
    token: String,
}

const MEMBER_PASSWORD: &str = "Passw0rd!123";

/// `members` (auth, with a `role` field; tokens valid `token_secs`) with
/// alice (role "admin") and bob (role "user"), and `notes` whose `audience`
/// says who may list them: "all" (everyone, the test's marker), "members"
/// (any member), "admins" (members whose role is "admin") or a member id.
async fn member_setup(token_secs: u64) -> (TestApp, Member, Member) {
    member_setup_in(spawn_app().await, token_secs).await
}

/// [`member_setup`] on a given server.
async fn member_setup_in(app: TestApp, token_secs: u64) -> (TestApp, Member, Member) {
    app.create_collection_ok(json!({
        "name": "members", "type": "auth",
        "listRule": "", "viewRule": "",
        "fields": [
            {"name": "role", "type": "text"},
            {"name": "updated", "type": "autodate", "onCreate": true, "onUpdate": true}
        ],
        "authToken": {"duration": token_secs},
    }))
    .await;
    let rule = "audience = 'all' \
        || (audience = 'members' && @request.auth.collectionName = 'members') \
        || (audience = 'admins' && @request.auth.collectionName = 'members' && @request.auth.role = 'admin') \
        || (audience = @request.auth.id && @request.auth.id != '')";
    app.create_collection_ok(json!({
        "name": "notes",
        "listRule": rule, "viewRule": rule,
        "createRule": null, "updateRule": null, "deleteRule": null,
        "fields": [{"name": "title", "type": "text"}, {"name": "audience", "type": "text"}]
    }))
    .await;
    let mut members = Vec::new();
    for (name, role) in [("alice", "admin"), ("bob", "user")] {
        let email = format!("{name}@example.com");
        let record = app
            .create_record_ok(
                "members",
                json!({"email": email, "password": MEMBER_PASSWORD,
                       "passwordConfirm": MEMBER_PASSWORD, "role": role}),
            )
            .await;
        let token = app.login_as("members", &email, MEMBER_PASSWORD).await;
        let id = record["id"].as_str().expect("id").to_owned();
        members.push(Member { id, email, token });
    }
    let bob = members.pop().expect("bob");
    let alice = members.pop().expect("alice");
    (app, alice, bob)
}

/// Creates a note for `audience` (as the superuser).
async fn note(app: &TestApp, audience: &str, title: &str) {
    app.create_record_ok("notes", json!({"title": title, "audience": audience}))
        .await;
}

/// Creates a note everyone may see and returns the titles `sse` received
/// before it (events reach a client in commit order, so anything that was
/// going to be sent for earlier notes has arrived by then). Markers of
/// earlier calls (a second topic's copy) are skipped.
async fn titles_until_marker(app: &TestApp, sse: &mut Sse) -> Vec<String> {
    static MARKERS: AtomicUsize = AtomicUsize::new(0);
    let marker = format!("marker {}", MARKERS.fetch_add(1, Ordering::SeqCst));
    note(app, "all", &marker).await;
    let mut titles = Vec::new();
    loop {
        let event = sse.next(EVENT_WAIT).await.expect("the marker arrives");
        let title = event.data["record"]["title"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if title == marker {
            return titles;
        }
        if !title.starts_with("marker ") {
            titles.push(title);
        }
    }
}

#[tokio::test]
async fn other_callers_cannot_take_over_an_authenticated_stream() {
    let (app, alice, bob) = member_setup(3600).await;
    let expired_or_forged = ["Bearer not-a-token".to_owned(), format!("{}x", alice.token)];
    let mut sse = subscribed(&app, &["notes/*"], Some(&alice.token)).await;

    for (token, why) in [
        (None, "a guest"),
        (Some(bob.token.as_str()), "another member"),
        (Some(app.superuser_token.as_str()), "a superuser"),
        (Some(expired_or_forged[0].as_str()), "a malformed token"),
        (
            Some(expired_or_forged[1].as_str()),
            "alice's token with a broken signature",
        ),
    ] {
        let (status, envelope) = status_json(
            app.subscribe(&sse.client_id, &["notes/*", "members/*"], token)
                .await,
        )
        .await;
        assert_eq!(
            status, 403,
            "{why} must not change alice's stream: {envelope}"
        );
        assert_eq!(envelope["status"], 403, "{why}");
        assert_eq!(
            envelope["message"], "The current and the previous request authorization don't match.",
            "{why}"
        );
    }
    let (empty, _) = status_json(app.subscribe(&sse.client_id, &[], Some(&bob.token)).await).await;
    note(&app, "members", "for members").await;
    note(&app, &bob.id, "for bob").await;
    let seen = titles_until_marker(&app, &mut sse).await;

    assert_eq!(empty, 403, "bob cannot clear alice's subscriptions either");
    assert_eq!(
        seen,
        vec!["for members"],
        "alice keeps her subscriptions and her own view, never bob's"
    );
}

#[tokio::test]
async fn the_same_auth_may_resubscribe_and_a_guest_stream_takes_the_first_auth() {
    let (app, alice, bob) = member_setup(3600).await;
    let mut sse = subscribed(&app, &["notes/*"], None).await;
    note(&app, "members", "before login").await;
    assert!(
        titles_until_marker(&app, &mut sse).await.is_empty(),
        "a guest stream sees no member notes"
    );

    let upgrade = app
        .subscribe(&sse.client_id, &["notes/*"], Some(&alice.token))
        .await;
    let again = app
        .subscribe(&sse.client_id, &["notes/*"], Some(&alice.token))
        .await;
    let fresh_token = app.login_as("members", &alice.email, MEMBER_PASSWORD).await;
    let renewed = app
        .subscribe(&sse.client_id, &["notes/*"], Some(&fresh_token))
        .await;
    let bob_after = app
        .subscribe(&sse.client_id, &["notes/*"], Some(&bob.token))
        .await;
    note(&app, "members", "after login").await;

    assert_eq!(upgrade.status(), 204, "guest to member, as in PocketBase");
    assert_eq!(again.status(), 204, "the same token again");
    assert_eq!(renewed.status(), 204, "another token of the same member");
    assert_eq!(bob_after.status(), 403, "the stream now belongs to alice");
    assert_eq!(
        titles_until_marker(&app, &mut sse).await,
        vec!["after login"]
    );
}

/// How a test ends alice's session from outside her stream.
#[derive(Debug, Clone, Copy)]
enum Revocation {
    PasswordChange,
    EmailChange,
    RecordDelete,
    CollectionSecretChange,
}

impl Revocation {
    async fn apply(self, app: &TestApp, alice: &Member) {
        let resp = match self {
            Revocation::PasswordChange => {
                app.update_record(
                    "members",
                    &alice.id,
                    json!({"password": "N3wPassw0rd!", "passwordConfirm": "N3wPassw0rd!"}),
                )
                .await
            }
            Revocation::EmailChange => {
                app.update_record("members", &alice.id, json!({"email": "alice2@example.com"}))
                    .await
            }
            Revocation::RecordDelete => app.delete_record("members", &alice.id).await,
            Revocation::CollectionSecretChange => {
                app.update_collection(
                    "members",
                    json!({"authToken": {"duration": 3600, "secret": "x".repeat(50)}}),
                )
                .await
            }
        };
        assert!(resp.status().is_success(), "{self:?}: {}", resp.status());
    }
}

#[tokio::test]
async fn a_revoked_session_stops_receiving_member_only_records() {
    let mut leaks = Vec::new();
    for revocation in [
        Revocation::PasswordChange,
        Revocation::EmailChange,
        Revocation::RecordDelete,
        Revocation::CollectionSecretChange,
    ] {
        let (app, alice, _) = member_setup(3600).await;
        let mut sse = subscribed(&app, &["notes/*", "notes"], Some(&alice.token)).await;
        note(&app, "members", "before").await;
        let before = titles_until_marker(&app, &mut sse).await;

        revocation.apply(&app, &alice).await;
        note(&app, "members", "after").await;
        note(&app, "admins", "admins after").await;
        note(&app, &alice.id, "alice's after").await;
        let after = titles_until_marker(&app, &mut sse).await;

        assert_eq!(
            before,
            vec!["before", "before"],
            "{revocation:?}: delivered while the session holds (two topics)"
        );
        if !after.is_empty() {
            leaks.push(format!("{revocation:?}: {after:?}"));
        }
    }

    assert!(
        leaks.is_empty(),
        "the stream must continue as a guest: {leaks:#?}"
    );
}

#[tokio::test]
async fn a_password_reset_by_email_ends_the_streams_auth() {
    // The reset writes the new password and tokenKey without announcing the
    // record, so only checking the token again can notice it.
    let (app, sink) = crate::helpers::spawn_app_with_mail().await;
    let (app, alice, _) = member_setup_in(app, 3600).await;
    let mut sse = subscribed(&app, &["notes/*"], Some(&alice.token)).await;
    note(&app, "members", "before").await;
    let before = titles_until_marker(&app, &mut sse).await;

    let body = json!({"email": alice.email});
    app.request(
        Method::POST,
        "/api/collections/members/request-password-reset",
        None,
        Some(body),
    )
    .await;
    let token = sink
        .wait_for(&alice.email, EVENT_WAIT)
        .await
        .expect("mail")
        .find_token()
        .expect("token");
    let confirm =
        json!({"token": token, "password": "N3wPassw0rd!", "passwordConfirm": "N3wPassw0rd!"});
    let reset = app
        .request(
            Method::POST,
            "/api/collections/members/confirm-password-reset",
            None,
            Some(confirm),
        )
        .await;
    note(&app, "members", "after").await;
    let after = titles_until_marker(&app, &mut sse).await;

    assert_eq!(reset.status(), 204);
    assert_eq!(before, vec!["before"]);
    assert!(
        after.is_empty(),
        "the reset revoked alice's token: {after:?}"
    );
}

#[tokio::test]
async fn a_superuser_stream_loses_superuser_sight_when_its_password_changes() {
    let (mut app, _, _) = member_setup(3600).await;
    let (_, list) = status_json(
        app.su(Method::GET, "/api/collections/_superusers/records", None)
            .await,
    )
    .await;
    let su_id = list["items"][0]["id"].as_str().expect("id").to_owned();
    let mut sse = subscribed(&app, &["notes/*"], Some(&app.superuser_token)).await;
    note(&app, "admins", "before").await;
    let before = titles_until_marker(&app, &mut sse).await;

    let changed = app
        .update_record(
            "_superusers",
            &su_id,
            json!({"password": "An0therPassw0rd!", "passwordConfirm": "An0therPassw0rd!"}),
        )
        .await;
    let su = app
        .request(
            Method::POST,
            "/api/collections/_superusers/auth-with-password",
            None,
            Some(json!({"identity": list["items"][0]["email"], "password": "An0therPassw0rd!"})),
        )
        .await;
    app.superuser_token = su.json::<Value>().await.expect("json")["token"]
        .as_str()
        .expect("token")
        .to_owned();
    note(&app, "admins", "after").await;
    let after = titles_until_marker(&app, &mut sse).await;

    assert!(changed.status().is_success(), "{}", changed.status());
    assert_eq!(before, vec!["before"], "a superuser sees every note");
    assert!(after.is_empty(), "the old session ended: {after:?}");
}

#[tokio::test]
async fn an_expired_token_stops_receiving_member_only_records() {
    let (app, alice, _) = member_setup(2).await;
    let alice_token = app.login_as("members", &alice.email, MEMBER_PASSWORD).await;
    let mut sse = subscribed(&app, &["notes/*"], Some(&alice_token)).await;
    note(&app, "members", "while valid").await;
    let before = titles_until_marker(&app, &mut sse).await;

    tokio::time::sleep(Duration::from_millis(3100)).await;
    note(&app, "members", "after expiry").await;
    let after = titles_until_marker(&app, &mut sse).await;

    assert_eq!(before, vec!["while valid"]);
    assert!(after.is_empty(), "the token expired: {after:?}");
}

#[tokio::test]
async fn a_role_change_takes_effect_on_the_next_event() {
    let (app, alice, _) = member_setup(3600).await;
    let mut sse = subscribed(&app, &["notes/*"], Some(&alice.token)).await;
    note(&app, "admins", "as admin").await;
    let as_admin = titles_until_marker(&app, &mut sse).await;

    app.update_record("members", &alice.id, json!({"role": "user"}))
        .await;
    note(&app, "admins", "demoted").await;
    note(&app, "members", "still a member").await;
    let demoted = titles_until_marker(&app, &mut sse).await;
    app.update_record("members", &alice.id, json!({"role": "admin"}))
        .await;
    note(&app, "admins", "promoted again").await;
    let promoted = titles_until_marker(&app, &mut sse).await;

    assert_eq!(as_admin, vec!["as admin"]);
    assert_eq!(
        demoted,
        vec!["still a member"],
        "rules see alice's role as it is now, not as it was at subscribe time"
    );
    assert_eq!(promoted, vec!["promoted again"]);
}

#[tokio::test]
async fn streams_from_one_address_are_capped_with_429() {
    let app = spawn_app().await;
    let cap = ferrobase::config::DEFAULT_MAX_REALTIME_STREAMS_PER_IP;
    let mut open = Vec::new();
    for _ in 0..cap {
        open.push(Sse::open(&app).await);
    }

    let (status, envelope) = status_json(app.connect_realtime().await).await;
    let elsewhere = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .expect("client")
        .get(format!("{}/api/realtime", app.base))
        .send()
        .await
        .expect("sent");

    assert_eq!(
        status,
        429,
        "stream {} from one address: {envelope}",
        cap + 1
    );
    assert_eq!(envelope["status"], 429);
    assert!(envelope["message"].is_string() && envelope["data"].is_object());
    assert_eq!(elsewhere.status(), 200, "another address has its own count");
    let resp = app.subscribe(&open[0].client_id, &["posts/*"], None).await;
    assert_eq!(resp.status(), 204, "the open streams keep working");
}

/// A topic on `posts` whose options carry `query`.
fn topic_with_query(query: Value) -> String {
    let options = json!({ "query": query }).to_string();
    let encoded = serde_urlencoded::to_string([("options", options)]).expect("encodes");
    format!("posts/*?{encoded}")
}

#[tokio::test]
async fn subscription_options_with_garbage_fields_or_options_are_refused_with_400() {
    let (app, _, _) = setup().await;
    let sse = Sse::open(&app).await;
    let good = topic_with_query(json!({"fields": "id,title:excerpt(10)"}));
    assert_eq!(
        app.subscribe(&sse.client_id, &[good.as_str()], None)
            .await
            .status(),
        204,
        "well-formed options are accepted"
    );

    for (topic, why) in [
        (
            topic_with_query(json!({"fields": "id,(title"})),
            "unbalanced parenthesis",
        ),
        (
            topic_with_query(json!({"fields": "title:nope(1)"})),
            "unknown modifier",
        ),
        (
            topic_with_query(json!({"fields": "title:excerpt(0)"})),
            "non-positive excerpt",
        ),
        (
            topic_with_query(json!({"fields": "title:excerpt(1,true,3)"})),
            "too many excerpt args",
        ),
        (
            "posts/*?options=notjson".to_owned(),
            "options that are not JSON",
        ),
        (
            "posts/*?options=%5B1%5D".to_owned(),
            "options that are not an object",
        ),
    ] {
        let resp = app
            .subscribe(&sse.client_id, &["posts/*", topic.as_str()], None)
            .await;
        let (status, body) = status_json(resp).await;

        assert_eq!(status, 400, "{why}: {body}");
        assert_eq!(
            body["data"]["subscriptions"]["1"]["code"], "validation_invalid_value",
            "{why}: the failing topic is named: {body}"
        );
    }
}
