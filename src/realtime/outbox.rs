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
