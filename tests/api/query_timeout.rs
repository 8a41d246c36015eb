//! The query time limit (`database.query_timeout_ms`, PocketBase's
//! `--queryTimeout`): a list whose filter would keep a reader busy for
//! minutes answers PocketBase's generic 400 once the limit passes, and a
//! client that hangs up frees its reader at once.

use crate::helpers::{TestApp, spawn_app_configured, status_json};
use serde_json::json;
use std::time::{Duration, Instant};

const GENERIC_400: &str = "Something went wrong while processing your request.";
const POSTS: usize = 40;
/// Relation hops of the runaway filter.
const DEPTH: usize = 4;
/// Longer than any answer below may take; the old code (no limit) fails here.
const PATIENCE: Duration = Duration::from_secs(10);

/// A public `posts` collection of [`POSTS`] records, each related (through
/// the multi-relation `related`) to every post.
async fn posts(app: &TestApp) {
    let collection = app
        .create_collection_ok(json!({
            "name": "posts", "listRule": "", "viewRule": "",
            "fields": [{"name": "title", "type": "text"}],
        }))
        .await;
    let response = app
        .update_collection(
            "posts",
            json!({"fields": [
                {"name": "title", "type": "text"},
                {"name": "related", "type": "relation", "collectionId": collection["id"],
                 "maxSelect": POSTS},
            ]}),
        )
        .await;
    assert_eq!(response.status(), 200, "relation field added");
    let mut ids = Vec::new();
    for n in 0..POSTS {
        let record = app
            .create_record_ok("posts", json!({"title": format!("t{n:02}")}))
            .await;
        ids.push(record["id"].clone());
    }
    for id in &ids {
        let id = id.as_str().expect("id");
        let response = app
            .update_record("posts", id, json!({"related": ids}))
            .await;
        assert_eq!(response.status(), 200, "relations set");
    }
}

/// A filter no record matches that SQLite can only refute by walking every
/// path of `depth` relations from every record: POSTS^(depth+1) steps,
/// about 10⁸ for depth 4, i.e. minutes.
fn runaway_filter(depth: usize) -> String {
    format!("{}title ?= 'nope'", "related.".repeat(depth))
}

#[tokio::test]
async fn a_runaway_filter_answers_a_generic_400_soon_after_the_query_timeout() {
    let app = spawn_app_configured(|c| {
        c.database.query_timeout_ms = 300;
        c.database.reader_pool_size = 2;
    })
    .await;
    posts(&app).await;
    let guest = None;
    let superuser = Some(app.superuser_token.clone());

    for (token, who) in [(guest, "guest"), (superuser, "superuser")] {
        for (query, why) in [
            (vec![("filter", runaway_filter(DEPTH))], "filter"),
            (
                vec![
                    ("filter", runaway_filter(DEPTH)),
                    ("skipTotal", "1".to_owned()),
                ],
                "filter without the count",
            ),
            (
                vec![
                    ("filter", runaway_filter(DEPTH)),
                    ("sort", "-title".to_owned()),
                ],
                "filter with a sort",
            ),
        ] {
            let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let started = Instant::now();
            let response = tokio::time::timeout(
                PATIENCE,
                app.list_records("posts", &query, token.as_deref()),
            )
            .await
            .unwrap_or_else(|_| panic!("{who}, {why}: the list must not run unbounded"));
            let took = started.elapsed();
            let (status, body) = status_json(response).await;

            assert_eq!(status, 400, "{who}, {why}: {body}");
            assert_eq!(
                body,
                json!({"status": 400, "message": GENERIC_400, "data": {}}),
                "{who}, {why}: PocketBase's envelope, no internals"
            );
            assert!(
                took >= Duration::from_millis(300),
                "{who}, {why}: answered after {took:?}, before the limit: not the runaway query"
            );
            assert!(
                took < Duration::from_secs(3),
                "{who}, {why}: answered after {took:?}"
            );
        }
    }
    // The readers are free again: an ordinary list answers normally.
    let (status, body) =
        status_json(app.list_records("posts", &[("perPage", "1")], None).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["totalItems"], POSTS, "{body}");
}

#[tokio::test]
async fn clients_that_hang_up_mid_query_free_every_reader() {
    const READERS: u32 = 2;
    // A limit far beyond the test: only the hang-ups can free the readers.
    let app = spawn_app_configured(|c| {
        c.database.query_timeout_ms = 600_000;
        c.database.reader_pool_size = READERS;
    })
    .await;
    posts(&app).await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let url = format!("{}/api/collections/posts/records", app.base);
    let filter = runaway_filter(DEPTH);

    // One runaway list per reader, each abandoned by its client.
    let mut hung_up = Vec::new();
    for _ in 0..READERS {
        let request = impatient.get(&url).query(&[("filter", filter.as_str())]);
        hung_up.push(tokio::spawn(request.send()));
    }
    for request in hung_up {
        let outcome = request.await.expect("join");
        assert!(
            outcome.as_ref().is_err_and(|e| e.is_timeout()),
            "the runaway list cannot have answered: {outcome:?}"
        );
    }
    let started = Instant::now();
    let response = tokio::time::timeout(
        PATIENCE,
        app.list_records("posts", &[("perPage", "1")], None),
    )
    .await
    .expect("a reader must be free again");
    let took = started.elapsed();

    let (status, body) = status_json(response).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        took < Duration::from_secs(3),
        "the readers were held for {took:?}"
    );
}
