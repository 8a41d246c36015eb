//! `GET /api/collections/{c}/aggregate` (Ferrobase only): the numbers equal
//! those computed from listing every page as the same actor, under an
//! owner-only list rule; integers stay integers; date buckets and relation
//! paths group; bad parameters are 400s in the error envelope.

use crate::helpers::{TestBackend, sqlite_only, status_json};
use crate::search::{Doc, EVERYONE, KINDS, Who, World, world};
use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, TestRunner};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;

impl World {
    async fn aggregate(&self, who: Who, query: &[(&str, &str)]) -> (u16, Value) {
        let token = self.token(who);
        status_json(self.app.aggregate("docs", query, token.as_deref()).await).await
    }

    /// Every record `who` lists with `filter`, fetched page by page.
    async fn list_all(&self, who: Who, filter: &str) -> Vec<Value> {
        let token = self.token(who);
        let mut out = Vec::new();
        for page in 1.. {
            let page = page.to_string();
            let q = [
                ("filter", filter),
                ("perPage", "7"),
                ("page", page.as_str()),
            ];
            let (status, body) =
                status_json(self.app.list_records("docs", &q, token.as_deref()).await).await;
            assert_eq!(status, 200, "list {filter:?}: {body}");
            let items = body["items"].as_array().expect("items").clone();
            if items.is_empty() {
                break;
            }
            out.extend(items);
        }
        out
    }
}

/// A random record filter over `kind` and `amount`.
fn filter_strategy() -> impl Strategy<Value = String> {
    (
        prop::option::of(prop::sample::select(KINDS.to_vec())),
        prop::option::of((prop::sample::select(vec![">", "<=", "!="]), -50i64..500)),
    )
        .prop_map(|(kind, amount)| {
            let mut parts = Vec::new();
            if let Some(k) = kind {
                parts.push(format!("kind != '{k}'"));
            }
            if let Some((op, n)) = amount {
                parts.push(format!("amount {op} {n}"));
            }
            parts.join(" && ")
        })
}

/// `{kind: (count, sum, min, max)}` from listed records.
fn model(records: &[Value]) -> BTreeMap<String, (i64, i64, i64, i64)> {
    let mut out: BTreeMap<String, (i64, i64, i64, i64)> = BTreeMap::new();
    for r in records {
        let kind = r["kind"].as_str().expect("kind").to_owned();
        let amount = r["amount"].as_i64().expect("integer amount");
        let e = out.entry(kind).or_insert((0, 0, i64::MAX, i64::MIN));
        e.0 += 1;
        e.1 += amount;
        e.2 = e.2.min(amount);
        e.3 = e.3.max(amount);
    }
    out
}

fn answered(body: &Value) -> BTreeMap<String, (i64, i64, i64, i64)> {
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|g| {
            let int = |k: &str| {
                g[k].as_i64()
                    .unwrap_or_else(|| panic!("{k} not an integer: {g}"))
            };
            (
                g["kind"].as_str().expect("kind").to_owned(),
                (
                    int("count"),
                    int("sum_amount"),
                    int("min_amount"),
                    int("max_amount"),
                ),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregate_equals_the_numbers_of_listing_every_page_for_each_actor() {
    let mut runner = TestRunner::new(PropConfig {
        cases: 24,
        failure_persistence: None,
        ..PropConfig::default()
    });
    let w = world(&mut runner, 30).await;
    let handle = tokio::runtime::Handle::current();
    let strategy = (prop::sample::select(EVERYONE.to_vec()), filter_strategy());

    let result = runner.run(&strategy, |(who, filter)| {
        tokio::task::block_in_place(|| {
            handle.block_on(async {
                let (status, body) = w
                    .aggregate(
                        who,
                        &[
                            ("groupBy", "kind"),
                            ("aggregate", "count(),sum(amount),min(amount),max(amount)"),
                            ("filter", &filter),
                        ],
                    )
                    .await;
                prop_assert_eq!(status, 200, "{:?} {:?}: {}", who, filter, body);
                let want = model(&w.list_all(who, &filter).await);
                prop_assert_eq!(answered(&body), want, "{:?} filtering {:?}", who, filter);
                Ok(())
            })
        })
    });

    if let Err(e) = result {
        panic!("{e}");
    }
}

#[tokio::test]
async fn one_group_without_group_by_and_sums_stay_integers() {
    let mut runner = TestRunner::deterministic();
    let w = world(&mut runner, 12).await;
    let alice_docs: Vec<&Doc> = w.visible(Who::Alice).collect();
    let sum: i64 = alice_docs.iter().map(|d| d.amount).sum();

    let (status, body) = w
        .aggregate(
            Who::Alice,
            &[("aggregate", "count(),sum(amount),avg(amount)")],
        )
        .await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"][0]["count"], json!(alice_docs.len()), "{body}");
    assert_eq!(
        body["items"][0]["sum_amount"],
        json!(sum),
        "an integer, not {body}"
    );
    let (_, guest) = w
        .aggregate(Who::Guest, &[("aggregate", "count(),sum(amount)")])
        .await;
    assert_eq!(
        guest["items"],
        json!([{"count": 0, "sum_amount": 0}]),
        "a guest lists nothing, so counts nothing"
    );
}

#[tokio::test]
async fn date_buckets_relation_paths_sort_and_limit_shape_the_groups() {
    let mut runner = TestRunner::deterministic();
    let w = world(&mut runner, 10).await;
    let records = w.list_all(Who::Super, "").await;
    let month = records[0]["created"].as_str().expect("created")[..7].to_owned();

    let (status, body) = w
        .aggregate(Who::Super, &[("groupBy", "created:month")])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["items"],
        json!([{"created:month": month, "count": records.len()}]),
        "all seeded this month"
    );

    let (status, body) = w
        .aggregate(
            Who::Super,
            &[
                ("groupBy", "owner.email"),
                ("sort", "-count"),
                ("limit", "1"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "limit applies to groups: {body}");
    let most = [Who::Alice, Who::Bob]
        .iter()
        .map(|who| w.docs.iter().filter(|d| d.owner == *who).count())
        .max()
        .expect("two owners");
    assert_eq!(
        items[0]["count"],
        json!(most),
        "sorted by count desc: {body}"
    );
    assert!(
        items[0]["owner.email"]
            .as_str()
            .expect("email")
            .ends_with("@example.com")
    );
}

#[tokio::test]
async fn bad_aggregate_parameters_are_400s_and_hidden_fields_are_superuser_only() {
    let mut runner = TestRunner::deterministic();
    let w = world(&mut runner, 3).await;
    for (query, why) in [
        (vec![("groupBy", "nope")], "unknown field"),
        (vec![("groupBy", "note")], "hidden field for a user"),
        (vec![("groupBy", "kind:month")], "bucket on a non-date"),
        (vec![("groupBy", "created:week")], "unknown bucket"),
        (vec![("groupBy", "kind,kind")], "listed twice"),
        (vec![("aggregate", "sum(kind)")], "sum of text"),
        (vec![("aggregate", "drop(amount)")], "unknown function"),
        (vec![("aggregate", "sum()")], "sum needs a field"),
        (vec![("aggregate", "count(")], "unbalanced"),
        (
            vec![("aggregate", "count(amount); DROP TABLE docs")],
            "injection",
        ),
        (vec![("sort", "amount")], "sort by a non-output key"),
        (vec![("limit", "ten")], "limit not a number"),
        (vec![("filter", "amount >")], "broken filter"),
        (vec![("groupBy", "owner.nope")], "unknown relation path"),
    ] {
        let (status, body) = w.aggregate(Who::Alice, &query).await;
        assert_eq!(status, 400, "{why}: {query:?} -> {body}");
        assert_eq!(body["status"], 400, "the envelope: {body}");
    }
    let macro_filter = [("filter", "@request.auth.id != ''")];
    let (listed, _) = w.list(Who::Alice, &macro_filter).await;
    let (status, body) = w.aggregate(Who::Alice, &macro_filter).await;
    assert_eq!(
        status, listed,
        "a request macro is refused as in a list: {body}"
    );
    let (status, body) = w.aggregate(Who::Super, &[("groupBy", "note")]).await;
    assert_eq!(status, 200, "superusers group by hidden fields: {body}");
    let (status, body) = status_json(
        w.app
            .aggregate(
                "users",
                &[("groupBy", "password")],
                Some(&w.app.superuser_token),
            )
            .await,
    )
    .await;
    assert_eq!(
        status, 400,
        "never a password hash, not even for superusers: {body}"
    );
    let (status, _) = status_json(
        w.app
            .request(Method::GET, "/api/collections/nope/aggregate", None, None)
            .await,
    )
    .await;
    assert_eq!(status, 404, "unknown collection");
}

#[tokio::test]
async fn aggregate_combines_with_search() {
    if sqlite_only("full-text search") {
        return;
    }
    let mut runner = TestRunner::deterministic();
    let w = world(&mut runner, 0).await;
    for (title, amount) in [("apple pie", 3), ("apple tart", 4), ("cherry", 100)] {
        w.app
            .create_record_ok(
                "docs",
                json!({"owner": w.alice.0, "title": title, "kind": "a", "amount": amount}),
            )
            .await;
    }

    let (status, body) = w
        .aggregate(
            Who::Alice,
            &[("search", "apple"), ("aggregate", "sum(amount)")],
        )
        .await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"], json!([{"sum_amount": 7}]), "only the apples");
}

#[tokio::test]
async fn a_sum_past_64_bits_falls_back_to_floating_point_not_a_500() {
    let mut runner = TestRunner::deterministic();
    let w = world(&mut runner, 0).await;
    for amount in [9.0e18, 9.0e18, -1.0] {
        w.app
            .create_record_ok("docs", json!({"owner": w.alice.0, "amount": amount}))
            .await;
    }

    let (status, body) = w
        .aggregate(
            Who::Alice,
            &[("aggregate", "sum(amount),avg(amount),max(amount)")],
        )
        .await;

    assert_eq!(status, 200, "{body}");
    let sum = body["items"][0]["sum_amount"].as_f64().expect("a number");
    assert!((sum - 1.8e19).abs() < 1e6, "{body}");
    assert_eq!(
        body["items"][0]["max_amount"].as_f64(),
        Some(9.0e18),
        "{body}"
    );
}

#[tokio::test]
async fn forged_tokens_aggregate_exactly_as_they_list() {
    let mut runner = TestRunner::deterministic();
    let w = world(&mut runner, 8).await;
    let alice = w.alice.1.clone();
    let tampered = format!("{}x", &alice[..alice.len() - 1]);
    let none_alg = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJpZCI6ImFueSIsInR5cGUiOiJhdXRoIn0.";
    let superuser_shaped = w.app.superuser_token.replace('.', "._");

    for (token, why) in [
        (tampered.as_str(), "a changed signature"),
        (none_alg, "alg none"),
        (superuser_shaped.as_str(), "a mangled superuser token"),
        ("garbage", "not a JWT"),
    ] {
        let (list_status, listed) = status_json(
            w.app
                .list_records("docs", &[("perPage", "1000")], Some(token))
                .await,
        )
        .await;
        let (status, body) = status_json(
            w.app
                .aggregate("docs", &[("aggregate", "count(),sum(amount)")], Some(token))
                .await,
        )
        .await;

        assert_eq!(status, list_status, "{why}: {body} vs {listed}");
        if status == 200 {
            let listed = listed["items"].as_array().expect("items").len();
            assert_eq!(body["items"][0]["count"], json!(listed), "{why}: {body}");
        }
    }
}

#[tokio::test]
async fn huge_and_malformed_parameters_are_400s_on_both_engines_and_change_nothing() {
    let mut runner = TestRunner::deterministic();
    let w = world(&mut runner, 5).await;
    let (_, before) = w.aggregate(Who::Super, &[("groupBy", "kind")]).await;
    let huge_group = "kind,".repeat(1_500);
    let many_aggs = (0..40)
        .map(|i| format!("count(amount{i})"))
        .collect::<Vec<_>>()
        .join(",");
    let huge_filter = format!("amount > {}", "1".repeat(10_000));
    for (query, why) in [
        (vec![("groupBy", huge_group.as_str())], "a huge groupBy"),
        (
            vec![("aggregate", many_aggs.as_str())],
            "past MAX_AGGREGATES",
        ),
        (vec![("groupBy", "kind\0")], "a NUL in a name"),
        (vec![("groupBy", "\"kind\"")], "a quoted name"),
        (vec![("groupBy", "owner.email) --")], "SQL in a path"),
        (
            vec![("aggregate", "min(amount) FILTER (WHERE 1)")],
            "SQL in an aggregate",
        ),
        (
            vec![("filter", huge_filter.as_str())],
            "a filter past its size limit",
        ),
        (
            vec![("limit", "99999999999999999999")],
            "a limit past 64 bits",
        ),
    ] {
        for who in [Who::Guest, Who::Alice, Who::Super] {
            let (status, body) = w.aggregate(who, &query).await;
            assert_eq!(status, 400, "{why} ({who:?}): {body}");
            assert_eq!(body["status"], 400, "the envelope: {body}");
            assert!(body["data"].is_object(), "the envelope: {body}");
        }
    }
    let (_, after) = w.aggregate(Who::Super, &[("groupBy", "kind")]).await;
    assert_eq!(before, after, "nothing changed");
}

#[tokio::test]
async fn json_fields_and_search_are_a_clear_400_on_postgres_only() {
    let mut runner = TestRunner::deterministic();
    let w = world(&mut runner, 0).await;
    w.app
        .create_collection_ok(json!({
            "name": "things", "listRule": "",
            "fields": [{"name": "meta", "type": "json"}, {"name": "n", "type": "number"}],
        }))
        .await;
    w.app
        .create_record_ok("things", json!({"meta": {"b": 1, "a": 2}, "n": 1}))
        .await;
    let ask = |query: &'static [(&'static str, &'static str)]| async {
        status_json(w.app.aggregate("things", query, None).await).await
    };
    let (status, body) = ask(&[("aggregate", "count(meta),sum(n)")]).await;
    assert_eq!(
        (status, &body["items"]),
        (200, &json!([{"count_meta": 1, "sum_n": 1}])),
        "counting a JSON field is the same on both: {body}"
    );
    let (status, body) = ask(&[("groupBy", "meta")]).await;
    let postgres = TestBackend::current() == TestBackend::Postgres;
    if !postgres {
        assert_eq!(status, 200, "SQLite groups by a JSON field's text: {body}");
        return;
    }
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("SQLite-only"), "says why: {body}");
    let (status, body) = w.aggregate(Who::Alice, &[("search", "apple")]).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("SQLite-only"), "says why: {body}");
}
