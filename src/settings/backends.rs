//! Settings stored through [`crate::db::Conn`] behave the same on SQLite and
//! on PostgreSQL (the throwaway server of the test command), concurrent
//! patches included: on PostgreSQL each takes the settings lock, so none is
//! lost between its read and its write.

use serde_json::{Value, json};

use super::{Seal, load, patch};
use crate::config::DatabaseConfig;
use crate::db::Db;
use crate::db::postgres::SYSTEM_SCHEMA;
use crate::pg_testing::{PgSchema, server};

/// Eight patches of different keys, sent at once.
fn patches() -> Vec<(Value, &'static str, Value)> {
    vec![
        (
            json!({"meta": {"appName": "Concurrent"}}),
            "/meta/appName",
            json!("Concurrent"),
        ),
        (
            json!({"meta": {"senderName": "Sender"}}),
            "/meta/senderName",
            json!("Sender"),
        ),
        (json!({"logs": {"maxDays": 3}}), "/logs/maxDays", json!(3)),
        (
            json!({"batch": {"maxRequests": 77}}),
            "/batch/maxRequests",
            json!(77),
        ),
        (json!({"batch": {"timeout": 9}}), "/batch/timeout", json!(9)),
        (
            json!({"smtp": {"host": "mail.example"}}),
            "/smtp/host",
            json!("mail.example"),
        ),
        (json!({"smtp": {"port": 2525}}), "/smtp/port", json!(2525)),
        (
            json!({"trustedProxy": {"headers": ["X-Real-IP"]}}),
            "/trustedProxy/headers",
            json!(["X-Real-IP"]),
        ),
    ]
}

fn run(db: &Db) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            // Sealed: what is stored is base64 text, not JSON.
            let seal = Seal::from_key("FB_TEST_KEY", &[7; 32]).expect("key");
            let fresh = load(db, &seal).await.expect("load defaults");
            assert_eq!(fresh, super::Settings::default());
            let tasks: Vec<_> = patches()
                .into_iter()
                .map(|(body, _, _)| {
                    let (db, seal) = (db.clone(), seal.clone());
                    tokio::spawn(async move { patch(&db, &seal, body).await })
                })
                .collect();
            for t in tasks {
                t.await.expect("task").expect("patch");
            }
            let stored = serde_json::to_value(load(db, &seal).await.expect("load")).expect("json");
            for (_, pointer, want) in patches() {
                assert_eq!(stored.pointer(pointer), Some(&want), "{pointer} was lost");
            }
            let refused = patch(db, &seal, json!({"batch": {"maxRequests": -1}})).await;
            assert!(refused.is_err());
            let after = serde_json::to_value(load(db, &seal).await.expect("load")).expect("json");
            assert_eq!(after, stored, "a refused patch changes nothing");
        });
}

#[test]
fn concurrent_patches_all_land_on_sqlite() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = Db::open(dir.path(), &DatabaseConfig::default()).expect("open");
    run(&db);
}

#[test]
fn concurrent_patches_all_land_on_postgres() {
    let Some(url) = server() else { return };
    let mut schema = PgSchema::open(&url);
    schema
        .client
        .batch_execute(SYSTEM_SCHEMA)
        .expect("system tables");
    let db = Db::open_postgres(&schema.url(&url), &DatabaseConfig::default()).expect("open");
    run(&db);
    let stats = db.postgres_stats().expect("postgres");
    assert!(stats.jobs >= 10, "{stats:?}");
}
