//! The realtime outbox on PostgreSQL, shared by every node on one database.
//! A record write appends one row holding its changes in the same
//! transaction ([`append`]) and notifies [`REALTIME_CHANNEL`] with only the
//! row's `seq` (NOTIFY is delivered at commit, in commit order, and payloads
//! are capped at 8,000 bytes). Each node's listener (`crate::nodes`) reads
//! the rows after the last `seq` it saw and publishes them to its own hub,
//! the writing node included, so every node sees one order.
//!
//! `seq` comes from a sequence, allocated before commit: without care a
//! smaller `seq` could commit after a larger one had been read, and be
//! skipped. [`append`] takes [`LockKey::Outbox`] just before its insert and
//! holds it to commit, so outbox rows commit in `seq` order and a reader
//! that sees row `n` sees every committed row below it (gaps are rolled
//! back transactions). The lock is held only for the insert and the commit.
//!
//! SQLite has none of this: one node, the hub fed in-process.

use super::Changes;
use crate::db::{Conn, DbError, LockKey};
use crate::rules::{Dialect, SqlValue};
use std::time::Duration;

/// The channel outbox rows are announced on (payload: the row's `seq`).
pub const REALTIME_CHANNEL: &str = "ferrobase_realtime";
/// Outbox rows older than this are deleted: a node whose listener was away
/// longer has closed its streams anyway.
pub const RETENTION: Duration = Duration::from_secs(5 * 60);

/// The outbox table, created by the first node that starts on a database
/// (idempotent, under [`LockKey::Bootstrap`]).
pub const TABLE_SQL: &str = "CREATE TABLE IF NOT EXISTS _realtime_outbox (
    seq     bigserial PRIMARY KEY,
    payload jsonb NOT NULL,
    created timestamptz NOT NULL DEFAULT now()
)";

/// Appends `changes` to the outbox inside the caller's transaction and
/// notifies the listeners at its commit; returns the row's `seq` (for
/// [`super::Hub::wait_for_outbox`]). Call it last in the transaction: it
/// holds [`LockKey::Outbox`] until the commit. Nothing on SQLite or for no
/// changes.
pub fn append(conn: &mut dyn Conn, changes: &Changes) -> Result<Option<i64>, DbError> {
    if conn.dialect() != Dialect::Postgres || changes.is_empty() {
        return Ok(None);
    }
    let payload = serde_json::to_string(changes.as_slice())
        .map_err(|e| DbError::CommitFailed(format!("realtime outbox payload: {e}")))?;
    conn.lock(LockKey::Outbox)?;
    let seq = conn.integer(
        "INSERT INTO _realtime_outbox (payload) VALUES (?1) RETURNING seq",
        &[SqlValue::Text(payload)],
    )?;
    // `execute`: pg_notify answers void, which no row reader decodes.
    conn.execute(
        "SELECT pg_notify(?1, ?2)",
        &[
            SqlValue::Text(REALTIME_CHANNEL.into()),
            SqlValue::Text(seq.to_string()),
        ],
    )?;
    Ok(Some(seq))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatabaseConfig;
    use crate::db::Db;
    use crate::pg_testing::{PgSchema, server};
    use crate::realtime::{Action, Change};
    use std::time::{Duration, Instant};

    fn changes(id: &str) -> Changes {
        Changes::one(Change::new("c1", "notes", id, Action::Create, None))
    }

    /// How long the first transaction holds its outbox row uncommitted.
    const HOLD: Duration = Duration::from_millis(300);

    #[test]
    fn outbox_rows_commit_in_seq_order_and_a_rolled_back_write_leaves_none() {
        let Some(base) = server() else { return };
        let schema = PgSchema::open(&base);
        let url = schema.url(&base);
        crate::dbcopy::initialise(&url).expect("system tables");
        let db = Db::open_postgres(&url, &DatabaseConfig::default()).expect("open");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (first, second, second_took) = rt.block_on(async {
            let slow = db.write_conn(|conn| {
                let seq = append(conn, &changes("first"))?;
                // Still uncommitted: the next append must wait for the commit.
                std::thread::sleep(HOLD);
                Ok::<_, DbError>(seq)
            });
            let fast = async {
                tokio::time::sleep(HOLD / 3).await;
                let started = Instant::now();
                let seq = db.write_conn(|conn| append(conn, &changes("second"))).await;
                (seq, started.elapsed())
            };
            let (first, (second, took)) = tokio::join!(slow, fast);
            let failed = db
                .write_conn(|conn| {
                    append(conn, &changes("rolled back"))?;
                    Err::<(), _>(DbError::CommitFailed("the write fails".into()))
                })
                .await;
            assert!(failed.is_err());
            (first.expect("first"), second.expect("second"), took)
        });

        let (first, second) = (first.expect("a row"), second.expect("a row"));
        assert!(first < second, "seq {first} then {second}");
        assert!(
            second_took >= HOLD / 2,
            "the second append waited for the first commit ({second_took:?})"
        );
        let rows = rt.block_on(db.read_conn(|c| {
            c.rows(
                "SELECT c->>'record_id' FROM _realtime_outbox, jsonb_array_elements(payload) c \
                 ORDER BY seq",
                &[],
            )
        }));
        let ids: Vec<String> = rows
            .expect("rows")
            .into_iter()
            .map(|r| match r.first() {
                Some(SqlValue::Text(t)) => t.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            ids,
            ["first", "second"],
            "nothing from the rolled back write"
        );
    }

    #[test]
    fn nothing_is_appended_on_sqlite() {
        let conn = crate::db::Db::fresh_in_memory().expect("fresh");
        let mut sqlite = crate::db::SqliteConn(&conn);
        assert_eq!(append(&mut sqlite, &changes("x")).expect("sqlite"), None);
    }
}
