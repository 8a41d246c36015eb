//! A batch of prepared record writes applied in ONE transaction on either
//! engine: every member commits or none does, and the first failing member
//! is named by its index. Knows nothing of HTTP (`api/batch.rs` parses the
//! request, places uploads and shapes the answers) nor of hooks (a hooked
//! batch runs in a write session, SQLite only).
//!
//! SQLite runs the batch on the single writer, interrupted at the deadline.
//! PostgreSQL runs it in a transaction of its own with `statement_timeout`
//! set to the time left, run again as a whole after a deadlock (so each
//! attempt rebuilds its answers, cleanup and realtime changes).

use super::RecordError;
use super::files::Cleanup;
use super::tx::{PgTx, RecordTx, SqliteTx};
use super::write::{PreparedCreate, PreparedDelete, PreparedUpdate};
use crate::db::{Conn, Db, DbError};
use crate::realtime::Changes;
use crate::rules::{Dialect, SqlValue};
use crate::schema::Snapshot;
use rusqlite::{Connection, InterruptHandle, TransactionBehavior};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// One member of a batch, prepared (rules resolved, input validated,
/// passwords hashed) before the transaction begins.
pub enum BatchWrite {
    Create(Box<PreparedCreate>),
    Update(Box<PreparedUpdate>),
    Delete(Box<PreparedDelete>),
}

/// A committed batch: each member's `{status, body}`, the blobs to remove
/// now, and the changes to announce now.
pub struct BatchApplied {
    pub results: Vec<Value>,
    pub cleanup: Cleanup,
    /// To publish once committed (SQLite); empty on PostgreSQL, where they
    /// went to the outbox row [`BatchApplied::outbox`].
    pub changes: Changes,
    /// PostgreSQL: the outbox row holding the changes, for
    /// `Hub::wait_for_outbox`.
    pub outbox: Option<i64>,
}

/// Why a batch's transaction did not commit (nothing was written).
#[derive(Debug)]
pub enum BatchAbort {
    /// Member `index` failed with the error it would have alone.
    Member { index: usize, error: RecordError },
    /// The deadline passed between members.
    Timeout,
    /// Beginning or committing the transaction failed: no member's fault.
    Transaction(DbError),
}

impl From<DbError> for BatchAbort {
    fn from(e: DbError) -> Self {
        BatchAbort::Transaction(e)
    }
}

/// Applies `writes` in order in one transaction, stopping at `deadline`.
pub async fn apply_batch(
    db: &Db,
    snapshot: Arc<Snapshot>,
    writes: Vec<BatchWrite>,
    deadline: Instant,
) -> Result<BatchApplied, BatchAbort> {
    match db.dialect() {
        Dialect::Sqlite => on_sqlite(db, snapshot, writes, deadline).await,
        Dialect::Postgres => on_postgres(db, snapshot, writes, deadline).await,
    }
}

/// The members inside `tx`, in order; the first failure aborts.
fn apply_members(
    tx: &mut dyn RecordTx,
    snapshot: &Snapshot,
    writes: &[BatchWrite],
    deadline: Instant,
) -> Result<BatchApplied, BatchAbort> {
    let mut changes = Changes::default();
    let mut results = Vec::with_capacity(writes.len());
    let mut cleanup = Cleanup::default();
    for (index, write) in writes.iter().enumerate() {
        if Instant::now() >= deadline {
            return Err(BatchAbort::Timeout);
        }
        let result = match write {
            BatchWrite::Create(p) => p.apply_in(tx, snapshot, &mut changes).map(|a| {
                cleanup.absorb(a.cleanup);
                json!({"status": 200, "body": a.record})
            }),
            BatchWrite::Update(p) => p.apply_in(tx, snapshot, &mut changes).map(|a| {
                cleanup.absorb(a.cleanup);
                json!({"status": 200, "body": a.record})
            }),
            BatchWrite::Delete(p) => p.apply_in(tx, snapshot, &mut changes).map(|c| {
                cleanup.absorb(c);
                json!({"status": 204, "body": null})
            }),
        };
        results.push(result.map_err(|error| BatchAbort::Member { index, error })?);
    }
    if Instant::now() >= deadline {
        return Err(BatchAbort::Timeout);
    }
    Ok(BatchApplied {
        results,
        cleanup,
        changes,
        outbox: None,
    })
}

/// On PostgreSQL: one transaction, retried as a whole after a deadlock; a
/// statement still running at the deadline is cancelled by the server.
async fn on_postgres(
    db: &Db,
    snapshot: Arc<Snapshot>,
    writes: Vec<BatchWrite>,
    deadline: Instant,
) -> Result<BatchApplied, BatchAbort> {
    db.write_conn(move |conn: &mut dyn Conn| {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(BatchAbort::Timeout);
        }
        // Whole milliseconds, at least one (0 would mean no timeout at all).
        let ms = left.as_millis().max(1).to_string();
        conn.first_row(
            "SELECT set_config('statement_timeout', ?1, true)",
            &[SqlValue::Text(ms)],
        )?;
        let mut applied = apply_members(&mut PgTx(conn), &snapshot, &writes, deadline)?;
        // Published by every node's listener once committed (`realtime::outbox`).
        applied.outbox = crate::realtime::outbox::append(conn, &applied.changes)?;
        applied.changes = Changes::default();
        Ok(applied)
    })
    .await
}

/// The writer connection while a batch runs on it: the interrupt handle is
/// only used before `finished`, so a late timer cannot interrupt the next
/// job the writer picks up.
#[derive(Default)]
struct OnWriter {
    handle: Option<InterruptHandle>,
    finished: bool,
}

fn lock(slot: &Mutex<OnWriter>) -> std::sync::MutexGuard<'_, OnWriter> {
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

/// On SQLite: the single writer, interrupted at `deadline` so a statement
/// still running then (a slow rule) stops too.
async fn on_sqlite(
    db: &Db,
    snapshot: Arc<Snapshot>,
    writes: Vec<BatchWrite>,
    deadline: Instant,
) -> Result<BatchApplied, BatchAbort> {
    let slot = Arc::new(Mutex::new(OnWriter::default()));
    let on_writer = slot.clone();
    let work = db.write(move |conn| {
        lock(&on_writer).handle = Some(conn.get_interrupt_handle());
        let result = in_sqlite_tx(conn, &snapshot, &writes, deadline);
        lock(&on_writer).finished = true;
        result
    });
    tokio::pin!(work);
    tokio::select! {
        result = &mut work => result,
        () = tokio::time::sleep_until(deadline.into()) => {
            {
                let on_writer = lock(&slot);
                if let (false, Some(handle)) = (on_writer.finished, &on_writer.handle) {
                    handle.interrupt();
                }
            }
            // Still queued: the job sees the deadline passed before its first member.
            work.await
        }
    }
}

/// The transaction itself, on the writer thread.
fn in_sqlite_tx(
    conn: &mut Connection,
    snapshot: &Snapshot,
    writes: &[BatchWrite],
    deadline: Instant,
) -> Result<BatchApplied, BatchAbort> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(DbError::from)?;
    let applied = apply_members(&mut SqliteTx::new(&tx), snapshot, writes, deadline)?;
    tx.commit().map_err(DbError::from)?;
    Ok(applied)
}

/// Whether record `id` of `collection` exists (an upsert's question), on
/// either engine.
pub async fn exists(
    db: &Db,
    collection: &crate::schema::Collection,
    id: &str,
) -> Result<bool, RecordError> {
    // PostgreSQL text cannot hold NUL, so no stored id has one.
    if id.contains('\0') {
        return Ok(false);
    }
    let sql = format!(
        "SELECT EXISTS(SELECT 1 FROM {} WHERE id = ?1)",
        crate::db::ident(collection.name.as_str())
    );
    let id = SqlValue::Text(id.to_owned());
    db.read_conn(move |c: &mut dyn Conn| {
        Ok::<_, RecordError>(c.integer(&sql, std::slice::from_ref(&id))? != 0)
    })
    .await
}
