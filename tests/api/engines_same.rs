//! The engines through the server: one app on SQLite and one on PostgreSQL
//! get the same collection, rows and users, then generated filters are
//! sent as list requests by a guest, a user and a superuser; status codes
//! and ids must be identical. The rows hold what each engine writes as
//! text its own way (reals needing 17 digits, exponents, JSON objects with
//! several keys, nesting, unicode). Needs `PG_TEST_URL` (skipped without it
//! outside CI); `FB_SERVER_DIFF_CASES` raises the number of filters.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::helpers::{AppBuilder, TestApp, TestBackend, status_json};

/// Filters in an ordinary run (each sent by three actors to two apps).
const CASES: usize = 150;

/// Comparisons the filters are built from: `~` and `=` on numbers and JSON
/// read as text, JSON paths, lists, relations and the request's user.
const ATOMS: &[&str] = &[
    "views ~ '3'",
    "views ~ '0.3'",
    "views ~ '33332'",
    "views ~ '00004'",
    "views ~ 'e-0'",
    "views ~ 'e+21'",
    "views ~ '.0'",
    "views = 0.30000000000000004",
    "views > 0.3",
    "views:lower ~ '1'",
    "title = views",
    "title ~ views",
    "meta ~ '\"a\":'",
    "meta ~ '日本'",
    "meta ~ ',\"b\"'",
    "meta ~ ' '",
    "meta ~ '2.5'",
    "meta ~ '0.33333333333333331'",
    "meta ~ '1.0'",
    "meta = '{\"k\":\"x\"}'",
    "meta = 42",
    "meta = 'str'",
    "meta.k ~ 'x'",
    "meta.n ~ '333'",
    "meta.n ~ '0.1'",
    "meta.n > 0.3",
    "meta.a.z ~ '日'",
    "meta.a.z ~ '2.5'",
    "tags ~ 'a'",
    "tags ?= 'b'",
    "tags:length = 2",
    "flag = true",
    "owner = @request.auth.id",
    "owner.email ~ 'alice'",
    "title ~ '%é%'",
    "title = ''",
    "geo.lat > 0.1",
    "geo ~ 'lon'",
];

/// The collection: a list rule that depends on the user and on values
/// read as text.
fn items(users_id: &str) -> Value {
    json!({
        "name": "items",
        "type": "base",
        "listRule": "owner = @request.auth.id || views ~ '3' || meta.k ~ 'x'",
        "fields": [
            {"name": "title", "type": "text"},
            {"name": "views", "type": "number"},
            {"name": "meta", "type": "json"},
            {"name": "tags", "type": "select", "maxSelect": 3, "values": ["a", "b", "c"]},
            {"name": "flag", "type": "bool"},
            {"name": "geo", "type": "geoPoint"},
            {"name": "owner", "type": "relation", "collectionId": users_id, "maxSelect": 1},
        ]
    })
}

/// The rows, each with its id so both apps hold the same ids.
fn rows(alice: &str, bob: &str) -> Vec<Value> {
    let views = [
        json!(1.0 / 3.0),
        json!(0.1 + 0.2),
        json!(1e-7),
        json!(1e21),
        json!(9_007_199_254_740_993_f64),
        json!(3),
        json!(0.1),
        json!(-2.5),
        json!(2.0 / 3.0 * 1e-5),
        json!(49.47),
    ];
    let metas = [
        json!({"b": 1, "a": {"z": [1, 2.5, "日本"], "y": null}, "k": "x", "n": 1.0 / 3.0}),
        json!({"n": 0.1, "k": "é\"q\n", "A": true}),
        json!([1, "a", {"k": "x"}]),
        json!("str"),
        json!(42),
        json!(0.30000000000000004),
        json!({"k": "x"}),
        json!({"n": 0.5, "a": {"z": []}}),
        Value::Null,
        json!({"😀": "x", "k": "", "n": -1.0}),
    ];
    let owners = [alice, bob, ""];
    let tags = [
        json!(["a"]),
        json!(["a", "b"]),
        json!([]),
        json!(["c", "b"]),
    ];
    let titles = [
        "",
        "0.3",
        "é",
        "1.0e-07",
        "3",
        "x",
        "0.33333333333333331",
        "a b",
    ];
    (0..20)
        .map(|i| {
            json!({
                "id": format!("row{i:0>12}"),
                "title": titles[i % titles.len()],
                "views": views[i % views.len()],
                "meta": metas[(i * 3) % metas.len()],
                "tags": tags[i % tags.len()],
                "flag": i % 3 == 0,
                "geo": {"lon": 0.1 * i as f64, "lat": 1.0 / (i as f64 + 1.0)},
                "owner": owners[i % 3],
            })
        })
        .collect()
}

/// One filter: one to three comparisons, some negated, joined by && / ||.
fn filter(rng: &mut StdRng) -> String {
    let n = rng.random_range(1..=3);
    let mut out = String::new();
    for k in 0..n {
        if k > 0 {
            out.push_str(if rng.random_bool(0.5) { " && " } else { " || " });
        }
        // PocketBase's language has no `!`: negation is `!=` / `!~`.
        let atom = ATOMS[rng.random_range(0..ATOMS.len())];
        if rng.random_bool(0.2) {
            out.push_str(&atom.replacen(" ~ ", " !~ ", 1).replacen(" = ", " != ", 1));
        } else {
            out.push_str(atom);
        }
    }
    out
}

/// An app on `backend` with the collection, two users and the rows;
/// returns it with the actors' tokens (guest, alice, superuser).
async fn seeded(backend: TestBackend) -> (TestApp, Vec<Option<String>>) {
    let app = AppBuilder::default().on(backend).spawn().await;
    let mut users = Vec::new();
    for name in ["alice", "bob"] {
        let id = format!("{name:0>15}");
        let body = json!({"id": id, "email": format!("{name}@example.com"),
            "password": "secret-pass-1", "passwordConfirm": "secret-pass-1"});
        let (status, body) = status_json(app.create_record("users", body).await).await;
        assert_eq!(status, 200, "user {name}: {body}");
        users.push(id);
    }
    let (status, users_collection) = status_json(
        app.su(reqwest::Method::GET, "/api/collections/users", None)
            .await,
    )
    .await;
    assert_eq!(status, 200, "{users_collection}");
    let users_id = users_collection["id"].as_str().unwrap_or_default();
    app.create_collection_ok(items(users_id)).await;
    for row in rows(&users[0], &users[1]) {
        let (status, body) = status_json(app.create_record("items", row.clone()).await).await;
        assert_eq!(status, 200, "{row} on {backend:?}: {body}");
    }
    let alice = app
        .login_as("users", "alice@example.com", "secret-pass-1")
        .await;
    let su = app.superuser_token.clone();
    (app, vec![None, Some(alice), Some(su)])
}

/// The status and the ids a list request answers.
async fn answer(app: &TestApp, filter: &str, token: Option<&str>) -> (u16, Vec<String>) {
    let query = [("filter", filter), ("perPage", "500"), ("sort", "id")];
    let (status, body) = status_json(app.list_records("items", &query, token).await).await;
    let ids = body["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|r| r["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    (status, ids)
}

#[tokio::test]
async fn generated_filters_list_the_same_records_on_sqlite_and_postgres() {
    if std::env::var_os("PG_TEST_URL").is_none() {
        assert!(std::env::var_os("CI").is_none(), "PG_TEST_URL is not set");
        eprintln!("skipped: PG_TEST_URL is not set (tests/postgres/throwaway.sh starts one)");
        return;
    }
    let cases = std::env::var("FB_SERVER_DIFF_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(CASES);
    let (lite, actors) = seeded(TestBackend::Sqlite).await;
    let (pg, pg_actors) = seeded(TestBackend::Postgres).await;
    let mut rng = StdRng::seed_from_u64(21);
    let (mut answered, mut refused) = (0, 0);
    for _ in 0..cases {
        let f = filter(&mut rng);
        for (actor, (on_lite, on_pg)) in actors.iter().zip(&pg_actors).enumerate() {
            let want = answer(&lite, &f, on_lite.as_deref()).await;
            let got = answer(&pg, &f, on_pg.as_deref()).await;
            assert_eq!(
                got, want,
                "filter {f:?} as actor {actor} (guest, alice, superuser)"
            );
            if want.0 == 200 {
                answered += 1;
            } else {
                refused += 1;
            }
        }
    }
    eprintln!("{cases} filters: {answered} answered, {refused} refused on both");
    assert!(answered > refused, "the generator has drifted into errors");
}

#[tokio::test]
async fn json_numbers_jsonb_would_rewrite_are_refused_on_postgres_only() {
    if std::env::var_os("PG_TEST_URL").is_none() {
        eprintln!("skipped: PG_TEST_URL is not set");
        return;
    }
    for backend in [TestBackend::Sqlite, TestBackend::Postgres] {
        let app = AppBuilder::default().on(backend).spawn().await;
        app.create_collection_ok(json!({"name": "docs", "type": "base",
            "fields": [{"name": "meta", "type": "json"}]}))
            .await;
        for meta in [json!({"n": 1e21}), json!([1e-7]), json!({"z": -0.0})] {
            let (status, body) =
                status_json(app.create_record("docs", json!({"meta": meta})).await).await;
            let want = if backend == TestBackend::Postgres {
                400
            } else {
                200
            };
            assert_eq!(status, want, "{meta} on {backend:?}: {body}");
            if want == 400 {
                assert_eq!(
                    body["data"]["meta"]["code"], "validation_not_on_postgres",
                    "{body}"
                );
            }
        }
    }
}
