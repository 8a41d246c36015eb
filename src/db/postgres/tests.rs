//! The connection threads and the value bridge against the throwaway
//! PostgreSQL of the test command (`PG_TEST_URL`; skipped, and said so,
//! without it outside CI). Plain tests with a runtime of their own: the
//! test's own blocking client (the schema) must live outside any runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use super::PgDb;
use crate::db::{Conn, DbError};
use crate::pg_testing::{PgSchema, server};
use crate::rules::SqlValue;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// The read timeout of these pools.
const TIMEOUT: std::time::Duration = std::time::Duration::from_millis(300);

fn text(s: &str) -> SqlValue {
    SqlValue::Text(s.to_owned())
}

/// A pool of `connections` on a fresh schema holding `ddl`.
fn pool(connections: usize, ddl: &str) -> Option<(PgSchema, PgDb)> {
    let url = server()?;
    let mut schema = PgSchema::open(&url);
    schema.client.batch_execute(ddl).expect("ddl");
    let db = PgDb::open(&schema.url(&url), connections, TIMEOUT).expect("pool");
    Some((schema, db))
}

#[test]
fn values_cross_as_sqlite_storage_classes_or_are_refused() {
    let Some((_schema, db)) = pool(
        1,
        "CREATE TABLE t (id text PRIMARY KEY, i int8, f float8, b boolean, j jsonb, s text)",
    ) else {
        return;
    };
    block_on(async {
        let row = db
            .write(|c: &mut dyn Conn| {
                c.execute(
                    "INSERT INTO t (id, i, f, b, j, s) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    &[
                        text("a"),
                        SqlValue::Integer(i64::MAX),
                        SqlValue::Integer(1 << 53),
                        SqlValue::Integer(1),
                        text(r#"{"b": [1, 2.50], "a": null}"#),
                        SqlValue::Integer(-7),
                    ],
                )?;
                c.first_row("SELECT id, i, f, b, j, s, NULL, ?1 FROM t", &[text("echo")])
            })
            .await
            .expect("insert and read");
        assert_eq!(
            row,
            Some(vec![
                text("a"),
                SqlValue::Integer(i64::MAX),
                SqlValue::Real(9_007_199_254_740_992.0),
                SqlValue::Integer(1),
                text(r#"{"a": null, "b": [1, 2.50]}"#),
                text("-7"),
                SqlValue::Null,
                text("echo"),
            ])
        );
        let sums = db
            .read(|c: &mut dyn Conn| {
                c.first_row(
                "SELECT sum(i), sum(i) + sum(i), avg(f), sum(x) FROM t, (VALUES (3::int8)) v(x)",
                &[],
            )
            })
            .await
            .expect("aggregates");
        assert_eq!(
            sums,
            Some(vec![
                SqlValue::Integer(i64::MAX),
                SqlValue::Real(2.0 * i64::MAX as f64),
                SqlValue::Real(9_007_199_254_740_992.0),
                SqlValue::Integer(3),
            ]),
            "numeric sums read as integers while they fit"
        );

        let refused = [
            ("UPDATE t SET f = ?1", SqlValue::Integer((1 << 53) + 1)),
            ("UPDATE t SET i = ?1", text("12")),
            ("UPDATE t SET i = ?1", SqlValue::Real(1.5)),
            ("UPDATE t SET b = ?1", SqlValue::Integer(2)),
            ("UPDATE t SET s = ?1", text("nul\0inside")),
            ("UPDATE t SET s = ?1", SqlValue::Real(0.1)),
            ("UPDATE t SET j = ?1", text("{not json")),
        ];
        for (sql, value) in refused {
            let shown = format!("{value:?}");
            let outcome = db
                .write(move |c: &mut dyn Conn| c.execute(sql, std::slice::from_ref(&value)))
                .await;
            assert!(
                matches!(outcome, Err(DbError::Postgres(_))),
                "{sql} with {shown}: {outcome:?}"
            );
        }
        let unchanged = db
            .read(|c: &mut dyn Conn| c.first_row("SELECT f, s FROM t", &[]))
            .await
            .expect("read");
        assert_eq!(
            unchanged,
            Some(vec![SqlValue::Real(9_007_199_254_740_992.0), text("-7")]),
            "refused values changed nothing"
        );
    });
}

#[test]
fn parallel_increments_lose_nothing() {
    let Some((_schema, db)) = pool(4, "CREATE TABLE t (id text PRIMARY KEY, views float8)") else {
        return;
    };
    block_on(async {
        db.write(|c: &mut dyn Conn| c.execute("INSERT INTO t VALUES ('a', 0)", &[]))
            .await
            .expect("seed");
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..40 {
                    db.write(|c: &mut dyn Conn| {
                        c.execute(
                            "UPDATE t SET views = views + ?1 WHERE id = 'a'",
                            &[SqlValue::Integer(1)],
                        )
                    })
                    .await
                    .expect("increment");
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        let views = db
            .read(|c: &mut dyn Conn| c.first_row("SELECT views FROM t", &[]))
            .await
            .expect("read");
        assert_eq!(views, Some(vec![SqlValue::Real(320.0)]));
    });
}

#[test]
fn a_deadlock_is_rolled_back_and_run_again() {
    let Some((_schema, db)) = pool(
        2,
        "CREATE TABLE t (id text PRIMARY KEY, n int8); INSERT INTO t VALUES ('a', 0), ('b', 0);",
    ) else {
        return;
    };
    block_on(async {
        // Both first attempts lock their first row, wait for each other, then
        // ask for the other's: PostgreSQL picks a victim, which runs again.
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let attempts = Arc::new(AtomicU32::new(0));
        let crossing = |first: &'static str, second: &'static str| {
            let (db, barrier, attempts) = (db.clone(), barrier.clone(), attempts.clone());
            let mut first_attempt = true;
            async move {
                db.write(move |c: &mut dyn Conn| {
                    attempts.fetch_add(1, Ordering::Relaxed);
                    c.execute("UPDATE t SET n = n + 1 WHERE id = ?1", &[text(first)])?;
                    if std::mem::take(&mut first_attempt) {
                        barrier.wait();
                    }
                    c.execute("UPDATE t SET n = n + 1 WHERE id = ?1", &[text(second)])
                })
                .await
            }
        };
        let (one, two) = tokio::join!(crossing("a", "b"), crossing("b", "a"));
        one.expect("first writer");
        two.expect("second writer");
        let stats = db.stats();
        assert!(stats.deadlocks >= 1 && stats.retries >= 1, "{stats:?}");
        // Each retry is one more run of one closure (a busy server may pick
        // a victim twice); the sum below shows each ran to the end once.
        assert_eq!(
            u64::from(attempts.load(Ordering::Relaxed)),
            2 + stats.retries,
            "two first attempts plus one run per retry: {stats:?}"
        );
        let total = db
            .read(|c: &mut dyn Conn| c.first_row("SELECT sum(n) FROM t", &[]))
            .await
            .expect("read");
        assert_eq!(
            total,
            Some(vec![SqlValue::Integer(4)]),
            "each writer's two updates, once"
        );
    });
}

#[test]
fn a_failed_write_commits_nothing_and_a_lost_connection_is_replaced() {
    let Some((mut schema, db)) = pool(1, "CREATE TABLE t (id text PRIMARY KEY)") else {
        return;
    };
    block_on(async {
        let failed = db
            .write(|c: &mut dyn Conn| {
                c.execute("INSERT INTO t VALUES ('kept?')", &[])?;
                c.execute("INSERT INTO t VALUES ('kept?')", &[])
            })
            .await;
        assert!(
            matches!(&failed, Err(DbError::Postgres(f)) if f.is_unique_violation()),
            "{failed:?}"
        );
        let pid = |db: PgDb| async move {
            db.read(|c: &mut dyn Conn| {
                c.first_row("SELECT pg_backend_pid(), (SELECT count(*) FROM t)", &[])
            })
            .await
        };
        let before = pid(db.clone()).await.expect("read").expect("row");
        assert_eq!(
            before[1],
            SqlValue::Integer(0),
            "the failed write left nothing"
        );
        let SqlValue::Integer(backend) = before[0] else {
            panic!("pid {before:?}")
        };
        // The test's own blocking client may not run inside this runtime.
        std::thread::scope(|s| {
            s.spawn(|| {
                schema
                    .client
                    .execute("SELECT pg_terminate_backend($1)", &[&(backend as i32)])
                    .expect("terminate")
            })
            .join()
            .expect("terminate thread")
        });
        // The job that meets the dropped connection fails; the next one runs
        // on a fresh connection.
        let mut after = None;
        for _ in 0..3 {
            if let Ok(Some(row)) = pid(db.clone()).await {
                after = Some(row);
                break;
            }
        }
        let after = after.expect("a read succeeds on a fresh connection");
        assert_ne!(after[0], before[0]);
        assert!(db.stats().reconnects >= 1);
    });
}

#[test]
fn a_lock_key_makes_the_second_transaction_wait_for_the_first() {
    let Some((_schema, db)) = pool(2, "SELECT 1") else {
        return;
    };
    block_on(async {
        let hold = std::time::Duration::from_millis(300);
        let started = std::time::Instant::now();
        // The first says when it holds the lock; only then does the second ask.
        let (holding, held) = tokio::sync::oneshot::channel::<()>();
        let mut holding = Some(holding);
        let first = {
            let db = db.clone();
            tokio::spawn(async move {
                db.write(move |c: &mut dyn Conn| {
                    c.lock(crate::db::LockKey::Settings)?;
                    if let Some(tx) = holding.take() {
                        let _ = tx.send(());
                    }
                    std::thread::sleep(hold);
                    Ok::<_, DbError>(started.elapsed())
                })
                .await
            })
        };
        held.await.expect("the first holds the lock");
        let second = db
            .write(move |c: &mut dyn Conn| {
                c.lock(crate::db::LockKey::Settings)?;
                Ok::<_, DbError>(started.elapsed())
            })
            .await
            .expect("second");
        let first = first.await.expect("task").expect("first");
        assert!(
            second >= first,
            "the second got the lock at {second:?}, before the first let go at {first:?}"
        );
    });
}

#[test]
fn a_read_past_the_timeout_is_stopped_and_the_connection_serves_the_next() {
    let Some((_schema, db)) = pool(1, "SELECT 1") else {
        return;
    };
    block_on(async {
        let started = std::time::Instant::now();
        let slow = db
            .read(|c: &mut dyn Conn| c.first_row("SELECT pg_sleep(5)", &[]))
            .await;
        assert!(matches!(slow, Err(DbError::TimedOut)), "{slow:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(3));
        let next = db
            .read(|c: &mut dyn Conn| c.integer("SELECT 7", &[]))
            .await
            .expect("the next read");
        assert_eq!(next, 7);
        // Writes are not limited (as SQLite's exclusive writes).
        db.write(|c: &mut dyn Conn| c.execute("SELECT pg_sleep(0.5)", &[]))
            .await
            .expect("a write longer than the read timeout");
    });
}

/// Prepared statements are kept per connection, and a schema change never
/// leaves one stale: this node's own change empties every connection's
/// cache at its commit; another node's (a second pool here) is met once
/// by a read, which fails, and then prepared again; a write runs again.
#[test]
fn prepared_statements_follow_schema_changes_on_this_node_and_others() {
    let Some((schema, db)) = pool(2, "CREATE TABLE t (a int8); INSERT INTO t VALUES (1)") else {
        return;
    };
    let url = server().expect("server");
    let other = PgDb::open(&schema.url(&url), 1, TIMEOUT).expect("second pool");
    let width = |db: &PgDb| {
        let db = db.clone();
        async move {
            db.read(|c: &mut dyn Conn| Ok::<_, DbError>(c.rows("SELECT * FROM t", &[])?[0].len()))
                .await
        }
    };
    block_on(async {
        for _ in 0..4 {
            assert_eq!(width(&db).await.expect("read"), 1);
        }
        db.write(|c: &mut dyn Conn| c.execute("ALTER TABLE t ADD COLUMN b int8", &[]))
            .await
            .expect("alter here");
        for _ in 0..4 {
            assert_eq!(width(&db).await.expect("own change seen"), 2);
        }

        other
            .write(|c: &mut dyn Conn| c.execute("ALTER TABLE t ADD COLUMN c int8", &[]))
            .await
            .expect("alter on the other node");
        let mut failed = 0;
        for _ in 0..4 {
            match width(&db).await {
                Ok(n) => assert_eq!(n, 3),
                Err(DbError::Postgres(f)) if f.is_stale_statement() => failed += 1,
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert!(failed <= 2, "each connection fails at most once: {failed}");

        other
            .write(|c: &mut dyn Conn| c.execute("ALTER TABLE t ADD COLUMN d int8", &[]))
            .await
            .expect("alter again");
        db.forget_prepared();
        assert_eq!(width(&db).await.expect("told of the change"), 4);
        let written = db
            .write(|c: &mut dyn Conn| {
                c.execute("INSERT INTO t (a) VALUES (2)", &[])?;
                Ok::<_, DbError>(c.rows("SELECT * FROM t", &[])?.len())
            })
            .await
            .expect("write");
        assert_eq!(written, 2);
    });
}
