//! The request logs on SQLite (`auxiliary.db`) and on PostgreSQL (the
//! throwaway server of the test command): the same entries written in
//! batches, and the same answers to filters on columns and `data.*`,
//! sorts, pages, totals, one entry, hourly stats and the cleanups.

use serde_json::{Value, json};

use super::{Logger, cleanup, delete_all, list, stats, view};
use crate::config::DatabaseConfig;
use crate::db::Db;
use crate::pg_testing::{PgSchema, server};

/// 70 entries (two full 32-row statements and six single rows).
const ENTRIES: i64 = 70;

/// What the engine answered, without the random ids and times.
fn run(db: Db) -> Vec<Value> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let logger = Logger::start(db.clone());
        for i in 0..ENTRIES {
            let status = if i % 5 == 0 { 500 } else { 200 };
            let data = json!({"status": status, "url": format!("/api/{i}"), "auth": {"kind": if i % 2 == 0 { "user" } else { "guest" }}});
            logger.log(i % 3 * 4, &format!("GET /api/{i}"), &data.to_string());
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while logger.written() < ENTRIES as u64 {
            assert!(std::time::Instant::now() < deadline, "written {}", logger.written());
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let messages = |items: &[Value]| -> Vec<Value> { items.iter().map(|e| e["message"].clone()).collect() };
        let mut seen = Vec::new();
        for (filter, sort) in [
            ("", ""),
            ("data.status >= 400", "-created"),
            ("data.status >= 400 && level = 8", "message"),
            ("data.auth.kind = 'guest' && message ~ '/api/1'", "-message"),
            ("level > 0 || data.url = '/api/3'", "level,-message"),
            ("data.missing = null && id != ''", "data.status,message"),
        ] {
            let (items, total) = list(&db, filter, sort, 2, 7, false).await.expect("list");
            let (_, skipped) = list(&db, filter, sort, 1, 7, true).await.expect("list");
            assert_eq!(skipped, None);
            seen.push(json!({"filter": filter, "sort": sort, "total": total, "page2": messages(&items)}));
        }
        let (first, _) = list(&db, "", "", 1, 1, true).await.expect("newest");
        let id = first[0]["id"].as_str().expect("id").to_owned();
        let one = view(&db, id.clone()).await.expect("view").expect("found");
        assert_eq!(one["id"], json!(id));
        assert_eq!(one["data"]["url"], json!(format!("/api/{}", ENTRIES - 1)), "newest first");
        assert!(view(&db, "nope".into()).await.expect("view").is_none());
        let hours = stats(&db, "data.status >= 400").await.expect("stats");
        let total: i64 = hours.iter().map(|h| h["total"].as_i64().unwrap_or(0)).sum();
        assert_eq!(total, ENTRIES / 5);
        assert!(hours[0]["date"].as_str().is_some_and(|d| d.ends_with(":00:00.000Z")), "{hours:?}");
        let bad = list(&db, "secret = 1", "", 1, 7, false).await;
        assert!(bad.is_err(), "unknown columns are refused");
        assert_eq!(cleanup(&db, 30).await.expect("cleanup"), 0, "nothing is a month old");
        delete_all(&db).await.expect("delete all");
        let (_, empty) = list(&db, "", "", 1, 7, false).await.expect("list");
        assert_eq!(empty, Some(0));
        drop(logger);
        seen
    })
}

#[test]
fn logs_answer_the_same_on_sqlite_and_postgres() {
    let dir = tempfile::tempdir().expect("tmp");
    let sqlite = run(Db::open_auxiliary(dir.path(), &DatabaseConfig::default()).expect("open"));
    assert_eq!(sqlite[0]["total"], json!(ENTRIES));
    let Some(base) = server() else { return };
    let schema = PgSchema::open(&base);
    let url = schema.url(&base);
    crate::dbcopy::initialise(&url).expect("system tables");
    let postgres = run(Db::open_postgres(&url, &DatabaseConfig::default()).expect("open"));
    assert_eq!(postgres, sqlite);
}
