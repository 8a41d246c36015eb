//! Write sessions answer the same on SQLite and on PostgreSQL (the
//! throwaway server of the test command): record writes joined to a
//! session commit or roll back together, a nested session rolls back
//! alone, a failed write inside a session leaves the rest, a session past
//! its time limit rolls back, and hooks that refuse a write leave nothing.

use super::session::Session;
use super::write_backends::{Engine, postgres_db, runtime};
use super::{Backend, Caller, RecordError, create};
use crate::config::DatabaseConfig;
use crate::db::Db;
use futures_util::future::LocalBoxFuture;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;

impl Engine {
    /// Creates a post as a superuser inside `session`.
    async fn create_in(
        &self,
        session: &Arc<Session>,
        title: &str,
        slug: &str,
    ) -> Result<Value, RecordError> {
        let backend = Backend {
            session: Some(session),
            ..self.backend()
        };
        let posts = self.snapshot.get("posts").expect("posts");
        let Value::Object(body) = json!({"title": title, "slug": slug}) else {
            unreachable!("an object literal")
        };
        create(
            backend,
            self.snapshot.clone(),
            posts,
            Caller::superuser(),
            body,
            Vec::new(),
        )
        .await
    }

    /// The titles of every post, sorted.
    async fn titles(&self) -> Vec<String> {
        let rows = self.rows("posts").await;
        let mut titles: Vec<String> = rows["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|r| r["title"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        titles.sort();
        titles
    }
}

/// The script; answers what each step saw, to compare across engines.
async fn script(engine: &Engine) -> Vec<Value> {
    let (store, hub) = (&engine.store, &engine.hub);
    let limit = Duration::from_secs(10);
    let mut seen = Vec::new();

    // A session and its nested child: the child rolls back alone.
    let outer = Session::begin_in(None, &engine.db, limit);
    seen.push(json!(
        engine.create_in(&outer, "kept", "kept").await.is_ok()
    ));
    let child = Session::begin_in(Some(outer.clone()), &engine.db, limit);
    seen.push(json!(
        engine.create_in(&child, "child", "child").await.is_ok()
    ));
    seen.push(json!(child.end(false, store, hub).await.is_ok()));
    // A unique index refuses this one: it fails alone, the session goes on.
    let dup = engine.create_in(&outer, "dup", "kept").await;
    seen.push(json!(matches!(dup, Err(RecordError::Invalid { .. }))));
    let kept_child = Session::begin_in(Some(outer.clone()), &engine.db, limit);
    seen.push(json!(
        engine
            .create_in(&kept_child, "kept child", "kc")
            .await
            .is_ok()
    ));
    seen.push(json!(kept_child.end(true, store, hub).await.is_ok()));
    // Uncommitted: other connections see none of it yet.
    seen.push(json!(engine.titles().await));
    seen.push(json!(outer.end(true, store, hub).await.is_ok()));
    seen.push(json!(engine.titles().await));

    // A session rolled back leaves nothing.
    let dropped = Session::begin_in(None, &engine.db, limit);
    seen.push(json!(
        engine
            .create_in(&dropped, "dropped", "dropped")
            .await
            .is_ok()
    ));
    seen.push(json!(dropped.end(false, store, hub).await.is_ok()));

    // A session past its time limit rolls back; its commit says so.
    let slow = Session::begin_in(None, &engine.db, Duration::from_millis(200));
    seen.push(json!(engine.create_in(&slow, "slow", "slow").await.is_ok()));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let late = slow.end(true, store, hub).await;
    seen.push(json!(matches!(late, Err(RecordError::Aborted))));

    // Hooks that refuse the write (never calling e.next()): nothing written.
    let hooks = Refuse;
    let backend = Backend {
        hooks: Some(&hooks),
        ..engine.backend()
    };
    let posts = engine.snapshot.get("posts").expect("posts");
    let refused = create(
        backend,
        engine.snapshot.clone(),
        posts,
        Caller::superuser(),
        Map::new(),
        Vec::new(),
    )
    .await;
    seen.push(json!(matches!(refused, Err(RecordError::Aborted))));
    seen.push(json!(engine.titles().await));
    seen
}

#[test]
fn sessions_answer_the_same_on_both_engines() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tmp");
    let db = Db::open(dir.path(), &DatabaseConfig::default()).expect("open");
    let on_sqlite = rt.block_on(async { script(&Engine::setup(db).await).await });
    let expected = vec![
        json!(true),
        json!(true),
        json!(true),
        json!(true),
        json!(true),
        json!(true),
        json!([]),
        json!(true),
        json!(["kept", "kept child"]),
        json!(true),
        json!(true),
        json!(true),
        json!(true),
        json!(true),
        json!(["kept", "kept child"]),
    ];
    assert_eq!(on_sqlite, expected, "sqlite");
    let Some((_schema, db)) = postgres_db() else {
        return;
    };
    let on_postgres = rt.block_on(async { script(&Engine::setup(db).await).await });
    assert_eq!(on_postgres, expected, "postgres");
}

/// Hooks that want every write and refuse it.
struct Refuse;

impl super::WriteHooks for Refuse {
    fn wants(&self, _: &str, _: &crate::schema::CompiledCollection) -> bool {
        true
    }

    fn session_limit(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn run<'a>(
        &'a self,
        _: super::hooked::Invocation<'a>,
    ) -> LocalBoxFuture<'a, Result<(), RecordError>> {
        Box::pin(async { Err(RecordError::Aborted) })
    }

    fn shared(&self) -> Arc<dyn super::WriteHooks> {
        Arc::new(Refuse)
    }
}
