//! `/api/metrics`: Prometheus text for superusers (or the configured bearer
//! token), with requests per route template, latency histograms, group
//! commits and database sizes.

use crate::helpers::{spawn_app, status_json};
use ferrobase::{Application, Config};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn superusers_read_request_and_database_metrics() {
    let app = spawn_app().await;
    app.create_collection_ok(
        json!({"name": "notes", "fields": [{"name": "title", "type": "text"}]}),
    )
    .await;
    app.create_record_ok("notes", json!({"title": "a"})).await;
    app.request(Method::GET, "/api/health", None, None).await;

    let resp = app.su(Method::GET, "/api/metrics", None).await;
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let (guest, _) = status_json(app.request(Method::GET, "/api/metrics", None, None).await).await;

    assert_eq!(status, 200);
    assert_eq!(guest, 401);
    let engine = match crate::helpers::TestBackend::current() {
        crate::helpers::TestBackend::Sqlite => [
            "ferrobase_db_file_size_bytes{file=\"data.db\"}",
            "ferrobase_db_writer_queue_depth",
            "ferrobase_db_reader_wait_seconds",
        ],
        // PostgreSQL has no writer thread or files: its pool's counters.
        crate::helpers::TestBackend::Postgres => [
            "ferrobase_db_pg_wait_seconds",
            "ferrobase_db_pg_retries_total",
            "ferrobase_db_pg_deadlocks_total",
        ],
    };
    for expected in [
        "ferrobase_http_requests_total{method=\"GET\",route=\"/api/health\",status=\"200\"}",
        "ferrobase_http_requests_total{method=\"POST\",route=\"/api/collections/{c}/records\",status=\"200\"} 1",
        "ferrobase_http_request_duration_seconds_bucket{",
    ]
    .into_iter()
    .chain(engine)
    {
        assert!(text.contains(expected), "missing {expected} in:\n{text}");
    }
    // PostgreSQL has no group commits: its connection counters instead.
    let writes = match crate::helpers::TestBackend::current() {
        crate::helpers::TestBackend::Sqlite => "ferrobase_db_group_commits_total ",
        crate::helpers::TestBackend::Postgres => "ferrobase_db_pg_jobs_total ",
    };
    let group_commits = text
        .lines()
        .find_map(|l| l.strip_prefix(writes))
        .and_then(|v| v.trim().parse::<u64>().ok());
    assert!(group_commits.is_some_and(|n| n >= 1), "{text}");
}

#[tokio::test]
async fn a_configured_bearer_token_also_reads_metrics() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut config = Config::for_tests(tmp.path());
    config.metrics.token = "scrape-secret-123".into();
    let app = Application::build(config).await.expect("app builds");
    let base = format!("http://127.0.0.1:{}/api/metrics", app.port());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();

    let with_token = client
        .get(&base)
        .bearer_auth("scrape-secret-123")
        .send()
        .await
        .expect("request");
    let wrong = client
        .get(&base)
        .bearer_auth("scrape-secret-124")
        .send()
        .await
        .expect("request");

    assert_eq!(with_token.status(), 200);
    assert!(wrong.status().is_client_error());
}

#[tokio::test]
async fn invented_methods_do_not_grow_the_metric_series() {
    let app = spawn_app().await;
    for i in 0..200 {
        let method = Method::from_bytes(format!("X{i:04}RANDOM").as_bytes()).expect("method");
        app.request(method, "/api/health", None, None).await;
    }
    app.request(Method::GET, "/api/health", None, None).await;

    let resp = app.su(Method::GET, "/api/metrics", None).await;
    let text = resp.text().await.expect("body");

    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("ferrobase_http_requests_total{"))
        .collect();
    assert!(
        series.len() < 20,
        "{} request series after 200 invented methods:\n{text}",
        series.len()
    );
    for line in text.lines().filter(|l| l.contains("method=\"")) {
        let method = line
            .split("method=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default();
        assert!(
            [
                "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "other"
            ]
            .contains(&method),
            "method label {method:?} is outside the fixed set: {line}"
        );
    }
    assert!(
        text.contains("method=\"other\",route=\"/api/health\",status=\"404\"} 200"),
        "{text}"
    );
}
